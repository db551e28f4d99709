/// The STACK CFI rules in force at one address: register → postfix expression.
public struct CFIRules: Sendable, Equatable {
    /// Keys are register names as written (`$rsp`, `sp`, `x29`) plus `.cfa` and `.ra`.
    public private(set) var rules: [String: String] = [:]

    public init() {}

    public init(parsing text: String) {
        apply(text)
    }

    /// Applies `reg: expr reg: expr …`; a later rule for a register replaces the earlier one.
    mutating func apply(_ text: String) {
        var text = text
        text.withUTF8 { apply(bytes: $0) }
    }

    /// The same, straight from a symbol table's bytes: one pass, one String per register name
    /// and expression (this runs for every frame unwound by CFI).
    mutating func apply(bytes b: UnsafeBufferPointer<UInt8>) {
        let n = b.count
        var i = 0
        var register: Range<Int>?
        var expression: Range<Int>?
        func flush() {
            if let r = register, let e = expression {
                rules[String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self)] =
                    String(decoding: UnsafeBufferPointer(rebasing: b[e]), as: UTF8.self)
            }
        }
        while i < n {
            while i < n, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
            guard i < n else { break }
            let start = i
            while i < n, b[i] != 0x20, b[i] != 0x09 { i += 1 }
            if i - start > 1, b[i - 1] == UInt8(ascii: ":") {
                flush()
                register = start..<(i - 1)
                expression = nil
            } else {
                expression = (expression?.lowerBound ?? start)..<i
            }
        }
        flush()
    }

    /// Evaluates the rules against the callee's registers: `.cfa` first, then every other rule
    /// with `.cfa` available. Returns the recovered caller registers, including `.cfa` and `.ra`
    /// (the caller's program counter); rules that are `.undef` are left out.
    public func evaluate<M: StackMemory>(callee: [String: UInt64], wordSize: Int, memory: M) throws(PostfixError) -> [String: UInt64] {
        guard let cfaRule = rules[".cfa"] else { throw .missingRule(".cfa") }
        guard let raRule = rules[".ra"] else { throw .missingRule(".ra") }
        var evaluator = PostfixEvaluator(wordSize: wordSize, variables: callee, memory: memory)
        evaluator.variables[".cfa"] = nil
        let cfa = try evaluator.evaluate(cfaRule)
        evaluator.variables[".cfa"] = cfa
        var caller: [String: UInt64] = [".cfa": cfa]
        caller[".ra"] = try evaluator.evaluate(raRule)
        for (register, expression) in rules where register != ".cfa" && register != ".ra" {
            do {
                caller[register] = try evaluator.evaluate(expression)
            } catch .undefinedValue {
                continue
            }
        }
        return caller
    }
}
