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

extension StackWinInfo {
    /// Unwinds one x86 frame with this record (`symbol-files.md` §3, STACK WIN semantics).
    /// `registers` holds the frame's `$esp`, `$ebp` and (if known) `$ebx`; the result holds the
    /// caller registers the program assigned (`$eip`, `$esp`, `$ebp`, `$ebx`, `$esi`, `$edi`).
    public func unwind<M: StackMemory>(registers: [String: UInt64], grandCalleeParameterSize: UInt32,
                                       memory: M) throws(PostfixError) -> [String: UInt64] {
        guard let esp = registers["$esp"] else { throw .undefinedVariable("$esp") }
        let frameSize = UInt64(localSize) + UInt64(savedRegisterSize) + UInt64(grandCalleeParameterSize)
        switch type {
        case .frameData:
            var vars: [String: UInt64] = [
                ".cbParams": UInt64(parameterSize), ".cbSavedRegs": UInt64(savedRegisterSize),
                ".cbLocals": UInt64(localSize), ".cbCalleeParams": UInt64(grandCalleeParameterSize),
                ".raSearchStart": (esp &+ frameSize) & 0xFFFF_FFFF, ".raSearch": (esp &+ frameSize) & 0xFFFF_FFFF,
            ]
            for r in ["$esp", "$ebp", "$ebx"] { if let v = registers[r] { vars[r] = v } }
            var evaluator = PostfixEvaluator(wordSize: 4, variables: vars, memory: memory)
            try evaluator.execute(program: programString ?? "")
            var caller: [String: UInt64] = [:]
            for r in ["$eip", "$esp", "$ebp", "$ebx", "$esi", "$edi"] where evaluator.assigned.contains(r) {
                caller[r] = evaluator.variables[r]
            }
            return caller
        case .fpo:
            let returnAddressAt = (esp &+ frameSize) & 0xFFFF_FFFF
            guard let eip = memory.readWord(at: returnAddressAt, size: 4) else { throw .memoryReadFailed(address: returnAddressAt) }
            var caller: [String: UInt64] = ["$eip": eip, "$esp": (returnAddressAt &+ 4) & 0xFFFF_FFFF]
            if allocatesBasePointer {
                let at = (esp &+ UInt64(grandCalleeParameterSize) &+ UInt64(savedRegisterSize) &- 8) & 0xFFFF_FFFF
                guard let ebp = memory.readWord(at: at, size: 4) else { throw .memoryReadFailed(address: at) }
                caller["$ebp"] = ebp
            } else if let ebp = registers["$ebp"] {
                caller["$ebp"] = ebp
            }
            return caller
        }
    }
}
