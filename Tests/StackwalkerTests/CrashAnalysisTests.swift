import MinidumpFormat
import Testing
@testable import Stackwalker

/// Crash analysis on synthetic contexts, instructions and memory maps: each bit-flip heuristic,
/// adjusted addresses, guard pages, instruction-pointer updates and every inconsistency.
@Suite struct CrashAnalysisTests {
    static let linux: UInt32 = 0x8201, windows: UInt32 = 2

    /// A module mapped at 0x400000 (r-x), data, a stack with a guard page below it, a big
    /// reservation without permissions (never a bit-flip candidate).
    static let map = MemoryMap(regions: [
        .init(start: 0x40_0000, end: 0x40_1000, readable: true, writable: false, executable: true),
        .init(start: 0x60_0000, end: 0x60_2000, readable: true, writable: true, executable: false),
        .init(start: 0x7000_0000, end: 0x7000_1000, readable: false, writable: false, executable: false),
        .init(start: 0x7000_1000, end: 0x7001_1000, readable: true, writable: true, executable: false),
        .init(start: 0x8000_0000, end: 0x8010_0000, readable: false, writable: false, executable: false),
        .init(start: 0x8010_0000, end: 0x8010_1000, readable: true, writable: false, executable: false),
    ])

    static func context(_ registers: [String: UInt64] = [:], ip: UInt64 = 0x60_1800, cpu: ContextCPU = .amd64) -> CPUContext {
        var values: [String: UInt64] = [:]
        for name in cpu.registerOrder { values[name] = 0xdead_0000_0000 } // far from everything, not poison
        values[cpu.instructionPointer] = ip
        values[cpu.stackPointer] = 0x7001_0000
        for (k, v) in registers { values[k] = v }
        return CPUContext(cpu: cpu, values: values)
    }

    static func analyze(_ bytes: [UInt8]?, _ context: CPUContext, reason: String = "SIGSEGV / SEGV_MAPERR", address: UInt64,
                        platform: UInt32 = linux, memory: [UInt64: UInt64] = [:]) -> CrashAnalysis {
        CrashAnalyzer.analyze(context: context, cpu: context.cpu, instructionBytes: bytes, map: map, readWord: { a, _ in memory[a] },
                              reason: reason, address: address, platformId: platform)
    }

    // mov dword [0x45], 0x5
    static let storeToAbsolute: [UInt8] = [0xC7, 0x04, 0x25, 0x45, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00]

    @Test func aMappedOneBitNeighbourIsABaselineCandidate() {
        let a = Self.analyze(Self.storeToAbsolute, Self.context(), address: 0x45)
        #expect(a.instruction == "mov dword [0x45], 0x5")
        #expect(a.memoryAccesses == [.init(address: 0x45, size: 4, access: .write)])
        #expect(a.possibleBitFlips.map(\.address) == [0x40_0045])
        let f = a.possibleBitFlips[0]
        #expect(!f.isNull && !f.wasLow && !f.wasNonCanonical && !f.poisonRegisters && f.nearbyRegisters == 0 && f.sourceRegister == nil)
        #expect(f.confidence == 0.25)
        #expect(a.inconsistencies.isEmpty)
    }

    @Test func registersNearTheCandidateRaiseTheConfidence() {
        let a = Self.analyze(Self.storeToAbsolute, Self.context(["rbx": 0x40_0100, "rcx": 0x40_0900]), address: 0x45)
        let f = a.possibleBitFlips[0]
        #expect(f.nearbyRegisters == 2)
        let expected: Float = 1 - (1 - 0.25) * (1 - 0.55)
        #expect(f.confidence == expected)
    }

    @Test func aFlipToNullCountsAndALowOriginalHalvesIt() {
        // 0x1000: one bit from null, and low (≤ 0x2000).
        let low = Self.analyze(nil, Self.context(), address: 0x1000)
        let nullLow = low.possibleBitFlips.first { $0.address == 0 }
        #expect(nullLow?.isNull == true && nullLow?.wasLow == true)
        let lowConfidence: Float = 1 - 0.75 * 0.75
        #expect(nullLow?.confidence == lowConfidence)
        // 0x100000: one bit from null, not low.
        let high = Self.analyze(nil, Self.context(), address: 0x10_0000)
        let nullHigh = high.possibleBitFlips.first { $0.address == 0 }
        #expect(nullHigh?.isNull == true && nullHigh?.wasLow == false)
        #expect(nullHigh?.confidence == 0.625)
        #expect(low.instruction == nil && low.memoryAccesses == nil) // no instruction bytes: not analysed
    }

    @Test func poisonInARegisterHalvesTheConfidence() {
        let a = Self.analyze(Self.storeToAbsolute, Self.context(["rdx": 0xe5e5_e5e5_e5e5_e5e5]), address: 0x45)
        #expect(a.possibleBitFlips[0].poisonRegisters)
        #expect(a.possibleBitFlips[0].confidence == 0.125)
        // A repeated byte that is not a poison value does not count.
        let b = Self.analyze(Self.storeToAbsolute, Self.context(["rdx": 0x1111_1111_1111_1111]), address: 0x45)
        #expect(!b.possibleBitFlips[0].poisonRegisters)
    }

    @Test func aNonCanonicalAccessIsTheAdjustedAddressAndItsHighBitsAreTried() {
        // mov eax, dword [rcx] with rcx non-canonical; Linux reports a GP fault as SIGSEGV / SI_KERNEL at 0.
        let rcx: UInt64 = 0x0100_0000_0040_0045
        let a = Self.analyze([0x8B, 0x01], Self.context(["rcx": rcx]), reason: "SIGSEGV / SI_KERNEL", address: 0)
        #expect(a.adjustedAddress == .nonCanonical(rcx))
        #expect(a.possibleBitFlips.map(\.address) == [0x40_0045, 0x40_0045])
        #expect(a.possibleBitFlips.map(\.sourceRegister) == [nil, "rcx"])
        let expected: Float = 1 - 0.75 * (1 - 0.9)
        #expect(a.possibleBitFlips.allSatisfy { $0.wasNonCanonical && $0.confidence == expected })
        #expect(a.inconsistencies.isEmpty)
    }

    @Test func aNullBaseRegisterGivesTheOffsetAndNoBitFlips() {
        // mov eax, dword [rax + 0x10] with rax = 0
        let a = Self.analyze([0x8B, 0x40, 0x10], Self.context(["rax": 0]), address: 0x10)
        #expect(a.adjustedAddress == .nullPointer(offset: 0x10))
        #expect(a.possibleBitFlips.isEmpty)
        #expect(a.memoryAccesses?.first?.access == .read)
    }

    @Test func accessesIntoASmallInaccessibleRegionNextToMemoryAreGuardPages() {
        // push rax just below the stack: the write lands in the guard page.
        let a = Self.analyze([0x50], Self.context(["rsp": 0x7000_1000]), address: 0x7000_0ff8)
        #expect(a.memoryAccesses == [.init(address: 0x7000_0ff8, size: 8, access: .write, isLikelyGuardPage: true)])
        // A large reservation without permissions is not a guard page.
        let b = Self.analyze([0x8B, 0x01], Self.context(["rcx": 0x8000_0010]), address: 0x8000_0010)
        #expect(b.memoryAccesses?.first?.isLikelyGuardPage == false)
        // Nor is unmapped memory.
        let c = Self.analyze([0x8B, 0x01], Self.context(["rcx": 0x9000_0000]), address: 0x9000_0000)
        #expect(c.memoryAccesses?.first?.isLikelyGuardPage == false)
    }

    @Test func callsJumpsAndReturnsReportWhereTheyWereGoing() {
        let call = Self.analyze([0xFF, 0xD0], Self.context(["rax": 0x7000_0010]), address: 0x7000_0010) // call rax
        #expect(call.instructionPointerUpdate?.address == 0x7000_0010)
        #expect(call.instructionPointerUpdate?.isLikelyGuardPage == true)
        let ret = Self.analyze([0xC3], Self.context(), address: 0x1234, memory: [0x7001_0000: 0x1234]) // ret reads [rsp]
        #expect(ret.instructionPointerUpdate?.address == 0x1234)
        let jump = Self.analyze([0xFF, 0x21], Self.context(["rcx": 0x60_0000]), address: 0x99, memory: [0x60_0000: 0x99]) // jmp [rcx]
        #expect(jump.instructionPointerUpdate?.address == 0x99)
        let direct = Self.analyze([0xE8, 0, 0, 0, 0], Self.context(), address: 0x7001_0000 - 8)
        #expect(direct.instructionPointerUpdate == nil)
        let unknownTarget = Self.analyze([0xC3], Self.context(), address: 0x1234) // the stack is not in the dump
        #expect(unknownTarget.instructionPointerUpdate == nil)
    }

    @Test func eachInconsistencyIsReported() {
        let mov: [UInt8] = [0x89, 0xC8] // mov eax, ecx: no memory, no division, not privileged
        #expect(Self.analyze(mov, Self.context(), reason: "SIGFPE / FPE_INTDIV", address: 0x40_0100).inconsistencies == [.intDivByZeroNotPossible])
        #expect(Self.analyze([0xF7, 0xF1], Self.context(), reason: "SIGFPE / FPE_INTDIV", address: 0x40_0100).inconsistencies.isEmpty)
        #expect(Self.analyze(mov, Self.context(), reason: "EXCEPTION_PRIV_INSTRUCTION", address: 0x40_0100, platform: Self.windows)
            .inconsistencies == [.privInstructionCrashWithoutPrivInstruction])
        #expect(Self.analyze([0xF4], Self.context(), reason: "EXCEPTION_PRIV_INSTRUCTION", address: 0x40_0100, platform: Self.windows)
            .inconsistencies.isEmpty)
        // A GP fault, but the instruction's access is canonical.
        #expect(Self.analyze([0x8B, 0x01], Self.context(["rcx": 0x60_0000]), reason: "SIGSEGV / SI_KERNEL", address: 0)
            .inconsistencies == [.nonCanonicalAddressFalselyReported])
        // A write violation on writable memory.
        let store: [UInt8] = [0x89, 0x01] // mov dword [rcx], eax
        #expect(Self.analyze(store, Self.context(["rcx": 0x60_0010]), reason: "EXCEPTION_ACCESS_VIOLATION_WRITE", address: 0x60_0010,
                             platform: Self.windows).inconsistencies == [.accessViolationWhenAccessAllowed])
        // The fault address is not what the instruction touched.
        #expect(Self.analyze(store, Self.context(["rcx": 0x9000_0000]), address: 0x5000).inconsistencies == [.crashingAccessNotFoundInMemoryAccesses])
        #expect(Self.analyze(store, Self.context(["rcx": 0x9000_0000]), address: 0x9000_0003).inconsistencies.isEmpty)
        // A fault on the instruction fetch itself is consistent.
        #expect(Self.analyze(store, Self.context(["rcx": 0x9000_0000], ip: 0xA000_0000), address: 0xA000_0000).inconsistencies.isEmpty)
    }

    @Test func otherArchitecturesGetNullFieldsNotWrongOnes() {
        let arm = Self.analyze([0x00, 0x00, 0x80, 0xD2], Self.context(cpu: .arm64), address: 0x45)
        #expect(arm.instruction == nil && arm.memoryAccesses == nil && arm.instructionPointerUpdate == nil && arm.adjustedAddress == nil)
        #expect(arm.inconsistencies.isEmpty)
        // Undecodable bytes: nothing claimed about the instruction.
        let junk = Self.analyze([0x0F, 0xFF], Self.context(), address: 0x45)
        #expect(junk.instruction == nil && junk.memoryAccesses == nil)
    }

    @Test func thirtyTwoBitDumpsDecodeButTryNoBitFlips() {
        let a = Self.analyze([0x8B, 0x01], Self.context(["ecx": 0x45], ip: 0x40_0100, cpu: .x86), address: 0x45)
        #expect(a.instruction == "mov eax, dword [ecx]")
        #expect(a.memoryAccesses == [.init(address: 0x45, size: 4, access: .read)])
        #expect(a.possibleBitFlips.isEmpty)
    }
}

/// How the analysis prints where the goldens have nothing to show: adjusted addresses, guard
/// pages, IP updates, register-sourced bit flips and inconsistencies.
@Suite struct CrashAnalysisOutputTests {
    @Test func everyPartOfTheAnalysisIsPrintedAsTheReferenceDoes() async throws {
        var state = try await GoldenOutputTests.walk("linux-mini.dmp")
        var a = CrashAnalysis()
        a.instruction = "call qword [rax + 0x8]"
        a.memoryAccesses = [.init(address: 0x7000_0ff8, size: 8, access: .write, isLikelyGuardPage: true), .init(address: 0x10, size: nil, access: nil)]
        a.instructionPointerUpdate = (0x7000_0010, true)
        a.adjustedAddress = .nullPointer(offset: 0x10)
        var flip = CrashAnalysis.BitFlip(address: 0x40_0045, sourceRegister: "rax")
        flip.nearbyRegisters = 1
        a.possibleBitFlips = [CrashAnalysis.BitFlip(address: 0x40_0044), flip]
        a.inconsistencies = [.crashingAccessNotFoundInMemoryAccesses]
        state.crash.analysis = a
        let human = state.humanReport(brief: true)
        let expected = """
            Crash address: 0x0000000000000045 **
                ** Null pointer detected with offset: 0x0000000000000010
            Crashing instruction: `call qword [rax + 0x8]`
            Memory accessed by instruction:
              0. Address: 0x0000000070000ff8
                 Size: 8
                 This address falls in a likely guard page.
                 Access type: Write
              1. Address: 0x0000000000000010
                 Size: Unknown
            Instruction pointer update done by instruction:
              Address: 0x0000000070000010
              This address falls in a likely guard page.
            Crashing address may be the result of a flipped bit:
              0. Valid address: rax=0x0000000000400045 (0.625)
              1. Valid address: 0x0000000000400044 (0.250)
            Crash is inconsistent:
              crashing_access_not_found_in_memory_accesses
            """
        #expect(human.contains(expected))

        let json = state.json(pretty: false)
        for fragment in [#""adjusted_address":{"kind":"null-pointer","offset":"0x0000000000000010"}"#,
                         #"{"access_type":"write","address":"0x0000000070000ff8","is_likely_guard_page":true,"size":8}"#,
                         #"{"address":"0x0000000000000010","size":null}"#,
                         #""instruction_pointer_update":{"address":"0x0000000070000010","is_likely_guard_page":true}"#,
                         #""confidence":0.625"#, #""source_register":"rax""#,
                         #""crash_inconsistencies":["crashing_access_not_found_in_memory_accesses"]"#] {
            #expect(json.contains(fragment), "\(fragment)")
        }
    }
}
