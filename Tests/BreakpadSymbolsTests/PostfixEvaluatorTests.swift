import Testing
@testable import BreakpadSymbols

/// Stack memory made of little-endian words at given addresses.
struct WordMemory: StackMemory {
    var words: [UInt64: UInt64]
    func readWord(at address: UInt64, size: Int) -> UInt64? {
        guard let w = words[address] else { return nil }
        return size == 4 ? w & 0xFFFF_FFFF : w
    }
}

@Suite struct PostfixEvaluatorTests {
    let memory = WordMemory(words: [0x1000: 0xdead_beef, 0x2000: 0x1122_3344_5566_7788])

    func eval(_ e: String, _ vars: [String: UInt64] = [:], word: Int = 8) throws(PostfixError) -> UInt64 {
        try PostfixEvaluator(wordSize: word, variables: vars, memory: memory).evaluate(e)
    }

    @Test func arithmeticPopsBThenA() throws {
        #expect(try eval("10 3 -") == 7)
        #expect(try eval("10 3 /") == 3)
        #expect(try eval("10 3 %") == 1)
        #expect(try eval("6 7 *") == 42)
        #expect(try eval("$rsp 16 +", ["$rsp": 0x100]) == 0x110)
        #expect(try eval("sp 8 +", ["sp": 0x100]) == 0x108)
        #expect(try eval("0x20 1 +") == 0x21)
    }

    @Test func alignRoundsDownToMultiple() throws {
        #expect(try eval("$esp 23 + 16 @", ["$esp": 0x1000], word: 4) == 0x1010)
        #expect(try eval("37 8 @") == 32)
    }

    @Test func negativeLiteralsWrapAtWordSize() throws {
        #expect(try eval(".cfa -8 +", [".cfa": 0x100]) == 0xf8)
        #expect(try eval("0 1 -", word: 4) == 0xFFFF_FFFF)
        #expect(try eval("0 1 -", word: 8) == UInt64.max)
    }

    @Test func dereferenceReadsAWordOfTheWordSize() throws {
        #expect(try eval("$rsp ^", ["$rsp": 0x2000]) == 0x1122_3344_5566_7788)
        #expect(try eval("$esp ^", ["$esp": 0x2000], word: 4) == 0x5566_7788)
        #expect(throws: PostfixError.memoryReadFailed(address: 0x3000)) { try eval("12288 ^") }
    }

    @Test func malformedProgramsGiveTypedErrors() {
        #expect(throws: PostfixError.stackUnderflow(operator: "+")) { try eval("1 +") }
        #expect(throws: PostfixError.stackUnderflow(operator: "^")) { try eval("^") }
        #expect(throws: PostfixError.unknownToken("#")) { try eval("1 #") }
        #expect(throws: PostfixError.undefinedVariable("$rbp")) { try eval("$rbp 8 +") }
        #expect(throws: PostfixError.divisionByZero) { try eval("1 0 /") }
        #expect(throws: PostfixError.divisionByZero) { try eval("1 0 %") }
        #expect(throws: PostfixError.divisionByZero) { try eval("1 0 @") }
        #expect(throws: PostfixError.unbalanced(values: 2)) { try eval("1 2") }
        #expect(throws: PostfixError.emptyExpression) { try eval("  ") }
        #expect(throws: PostfixError.undefinedValue) { try eval(".undef") }
        #expect(throws: PostfixError.badAssignment) {
            var e = PostfixEvaluator(wordSize: 4, memory: memory)
            try e.execute(program: "1 2 =")
        }
        #expect(throws: PostfixError.unbalanced(values: 1)) {
            var e = PostfixEvaluator(wordSize: 4, memory: memory)
            try e.execute(program: "$T0 1 = 5")
        }
    }

    @Test func stackWinConstantsAreVariables() throws {
        let v: [String: UInt64] = [".cbParams": 8, ".cbCalleeParams": 4, ".cbSavedRegs": 12, ".cbLocals": 16, ".raSearch": 0x500, ".raSearchStart": 0x500]
        #expect(try eval(".raSearch .cbParams + .cbLocals + .cbSavedRegs + .cbCalleeParams +", v) == 0x500 + 40)
    }

    @Test func assignmentsRecordTheirTargets() throws {
        var e = PostfixEvaluator(wordSize: 4, variables: ["$ebp": 0xff8], memory: WordMemory(words: [0x1000: 0x1234, 0xffc: 0x4000]))
        try e.execute(program: "$T0 $ebp 8 + = $eip $T0 4 - ^ = $esp $T0 =")
        #expect(e.variables["$T0"] == 0x1000)
        #expect(e.variables["$eip"] == 0x4000)
        #expect(e.variables["$esp"] == 0x1000)
        #expect(e.assigned == ["$T0", "$eip", "$esp"])
    }
}

@Suite struct UnwindRuleTests {
    @Test func cfiRulesMergeInitAndDeltasInAddressOrder() throws {
        let t = try SymbolFileParser().parse(Array(SymbolFileParserTests.sample.utf8))
        #expect(t.cfiRules(at: 0x1000)?.rules == [".cfa": "$esp 4 +", ".ra": ".cfa -4 + ^"])
        #expect(t.cfiRules(at: 0x1002)?.rules == [".cfa": "$esp 8 +", ".ra": ".cfa -4 + ^", "$ebp": ".cfa -8 + ^"])
        #expect(t.cfiRules(at: 0x103f)?.rules == [".cfa": "$ebp 8 +", ".ra": ".cfa -4 + ^", "$ebp": ".cfa -8 + ^"])
        #expect(t.cfiRules(at: 0x1040) == nil)
        #expect(t.cfiRules(at: 0xfff) == nil)
    }

    @Test func cfiEvaluationComputesCfaFirst() throws {
        let rules = CFIRules(parsing: ".cfa: $rsp 16 + .ra: .cfa -8 + ^ $rbp: .cfa -16 + ^ $rbx: .undef")
        let memory = WordMemory(words: [0x1000: 0x4242, 0xff8: 0x2000])
        let caller = try rules.evaluate(callee: ["$rsp": 0xff8, "$rbx": 1], wordSize: 8, memory: memory)
        // .cfa = rsp + 16; .ra = *(.cfa - 8); rbp = *(.cfa - 16); rbx is .undef (not recovered).
        #expect(caller == [".cfa": 0x1008, ".ra": 0x4242, "$rbp": 0x2000])
        #expect(throws: PostfixError.memoryReadFailed(address: 0x2000)) {  // .ra = *(.cfa - 8)
            try rules.evaluate(callee: ["$rsp": 0x1ff8], wordSize: 8, memory: memory)
        }
    }

    @Test func cfiWithoutCfaOrRaRuleIsRejected() {
        let m = WordMemory(words: [:])
        #expect(throws: PostfixError.missingRule(".ra")) { try CFIRules(parsing: ".cfa: sp 16 +").evaluate(callee: ["sp": 0], wordSize: 8, memory: m) }
        #expect(throws: PostfixError.missingRule(".cfa")) { try CFIRules(parsing: ".ra: lr").evaluate(callee: ["lr": 0], wordSize: 8, memory: m) }
    }

    @Test func stackWinPrefersFrameDataOverFPO() throws {
        let t = try SymbolFileParser().parse(Array(SymbolFileParserTests.sample.utf8))
        let w = try #require(t.stackWin(at: 0x1010))
        #expect(w.type == .frameData && w.parameterSize == 8 && w.localSize == 0x10 && w.programString?.hasPrefix("$T0 $ebp =") == true)
        let fpo = try #require(t.stackWin(at: 0x1104))
        #expect(fpo.type == .fpo && !fpo.allocatesBasePointer)
        #expect(t.stackWin(at: 0x1204) == nil) // type 2 is ignored
        #expect(t.parameterSize(at: 0x1010) == 8)
        #expect(t.parameterSize(at: 0x2004) == 0xc) // from the PUBLIC
    }
}
