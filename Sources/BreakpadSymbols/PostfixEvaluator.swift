/// Memory the evaluator may dereference (`^`): the thread's stack in a minidump.
public protocol StackMemory {
    /// The little-endian word of `size` bytes (4 or 8) at `address`, or nil when it is not in the dump.
    func readWord(at address: UInt64, size: Int) -> UInt64?
}

/// Why a STACK CFI or STACK WIN expression could not be evaluated.
public enum PostfixError: Error, Equatable, CustomStringConvertible {
    case emptyExpression
    case stackUnderflow(operator: String)
    case unknownToken(String)
    case undefinedVariable(String)
    case divisionByZero
    case memoryReadFailed(address: UInt64)
    /// An expression left other than exactly one value (or a program left values unassigned).
    case unbalanced(values: Int)
    /// The expression is `.undef`: the value cannot be recovered.
    case undefinedValue
    case badAssignment
    /// A CFI rule set lacks the `.cfa` or `.ra` rule.
    case missingRule(String)

    public var description: String {
        switch self {
        case .emptyExpression: return "empty expression"
        case .stackUnderflow(let op): return "not enough operands for '\(op)'"
        case .unknownToken(let t): return "unknown token '\(t)'"
        case .undefinedVariable(let v): return "undefined variable '\(v)'"
        case .divisionByZero: return "division by zero"
        case .memoryReadFailed(let a): return "cannot read memory at 0x\(String(a, radix: 16))"
        case .unbalanced(let n): return "expression leaves \(n) values"
        case .undefinedValue: return "value is .undef"
        case .badAssignment: return "assignment target is not a variable"
        case .missingRule(let r): return "no rule for \(r)"
        }
    }
}

/// Evaluates the reverse-Polish language of STACK CFI rules and STACK WIN programs
/// (`symbol-files.md` §3): literals, variables/registers, `.cfa`, `.cb*`/`.raSearch*` constants,
/// `+ - * / % @` (pop b, pop a, push a op b), `^` (dereference) and `=` (assignment, STACK WIN).
/// Arithmetic wraps at the word size.
public struct PostfixEvaluator<Memory: StackMemory> {
    public var variables: [String: UInt64]
    /// Variables written by `=` so far.
    public private(set) var assigned: Set<String> = []
    public let wordSize: Int
    public let memory: Memory

    public init(wordSize: Int, variables: [String: UInt64] = [:], memory: Memory) {
        self.wordSize = wordSize == 4 ? 4 : 8
        self.variables = variables
        self.memory = memory
    }

    private var mask: UInt64 { wordSize == 4 ? 0xFFFF_FFFF : .max }

    private enum Operand {
        case value(UInt64)
        case name(Substring)
    }

    /// Evaluates an expression that must leave exactly one value.
    public func evaluate(_ expression: String) throws(PostfixError) -> UInt64 {
        var copy = self
        let stack = try copy.run(tokens: expression.split(whereSeparator: { $0 == " " || $0 == "\t" }))
        guard !stack.isEmpty else { throw .emptyExpression }
        guard stack.count == 1 else { throw .unbalanced(values: stack.count) }
        return try resolve(stack[0])
    }

    /// Runs a STACK WIN program of assignments; the assigned variables end up in `variables`.
    public mutating func execute(program: String) throws(PostfixError) {
        let stack = try run(tokens: program.split(whereSeparator: { $0 == " " || $0 == "\t" }))
        guard stack.isEmpty else { throw .unbalanced(values: stack.count) }
    }

    private mutating func run(tokens: [Substring]) throws(PostfixError) -> [Operand] {
        var stack: [Operand] = []
        stack.reserveCapacity(8)
        for token in tokens {
            switch token {
            case "+", "-", "*", "/", "%", "@":
                guard stack.count >= 2 else { throw .stackUnderflow(operator: String(token)) }
                let b = try resolve(stack.removeLast())
                let a = try resolve(stack.removeLast())
                let r: UInt64
                switch token {
                case "+": r = a &+ b
                case "-": r = a &- b
                case "*": r = a &* b
                case "/": guard b != 0 else { throw .divisionByZero }; r = a / b
                case "%": guard b != 0 else { throw .divisionByZero }; r = a % b
                default: guard b != 0 else { throw .divisionByZero }; r = a / b &* b
                }
                stack.append(.value(r & mask))
            case "^":
                guard let top = stack.popLast() else { throw .stackUnderflow(operator: "^") }
                let address = try resolve(top)
                guard let v = memory.readWord(at: address, size: wordSize) else { throw .memoryReadFailed(address: address) }
                stack.append(.value(v & mask))
            case "=":
                guard stack.count >= 2 else { throw .stackUnderflow(operator: "=") }
                let value = try resolve(stack.removeLast())
                guard case .name(let name) = stack.removeLast() else { throw .badAssignment }
                variables[String(name)] = value
                assigned.insert(String(name))
            case ".undef":
                throw .undefinedValue
            default:
                if let v = Self.literal(token) { stack.append(.value(v & mask)) }
                else if Self.isIdentifier(token) { stack.append(.name(token)) }
                else { throw .unknownToken(String(token)) }
            }
        }
        return stack
    }

    private func resolve(_ o: Operand) throws(PostfixError) -> UInt64 {
        switch o {
        case .value(let v): return v
        case .name(let n):
            guard let v = variables[String(n)] else { throw .undefinedVariable(String(n)) }
            return v & mask
        }
    }

    /// Decimal (optionally negative, two's complement) or `0x` hex.
    static func literal(_ t: Substring) -> UInt64? {
        var u = t.utf8[...]
        var negative = false
        if u.first == UInt8(ascii: "-") { negative = true; u = u.dropFirst() }
        guard let first = u.first, first >= 0x30, first <= 0x39 else { return nil }
        var value: UInt64 = 0
        if u.count > 2, u.starts(with: "0x".utf8) {
            for c in u.dropFirst(2) {
                guard let d = hexValue(c) else { return nil }
                let (m, o) = value.multipliedReportingOverflow(by: 16)
                if o { return nil }
                value = m | UInt64(d)
            }
        } else {
            for c in u {
                guard c >= 0x30, c <= 0x39 else { return nil }
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(c - 0x30))
                if o1 || o2 { return nil }
                value = a
            }
        }
        return negative ? 0 &- value : value
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    static func isIdentifier(_ t: Substring) -> Bool {
        guard let f = t.utf8.first else { return false }
        return f == UInt8(ascii: "$") || f == UInt8(ascii: ".") || f == UInt8(ascii: "_")
            || (f | 0x20 >= UInt8(ascii: "a") && f | 0x20 <= UInt8(ascii: "z"))
    }
}
