import MinidumpSynth
import Testing
@testable import Stackwalker

/// Breakpad's `stackwalker_arm64_unittest.cc` scenarios (and rust-minidump's where they agree),
/// on synthetic dumps. Modules: module1 at 0x40000000, module2 at 0x50000000.
@Suite struct ARM64UnwindTests {
    static func scenario(_ os: MinidumpBuilder.OS = .linux, highModule: UInt64? = nil) -> UnwindScenario {
        var s = UnwindScenario(.arm64, os)
        s.dump.addModule(base: 0x4000_0000, size: 0x10000, name: "module1")
        s.dump.addModule(base: 0x5000_0000, size: 0x10000, name: "module2")
        if let highModule { s.dump.addModule(base: highModule, size: 0x10000, name: "high-module") }
        return s
    }

    /// Breakpad's fixtures fill unset registers with garbage; fp and lr pointing nowhere make the
    /// frame-pointer rule fail, so scanning is what finds callers.
    static let garbage: [String: UInt64] = ["fp": 0x2345_6789_0000, "lr": 0x1357_9bdf]

    @Test func aContextWithoutStackMemoryGivesOneFrame() async throws {
        var s = Self.scenario()
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_c020, "fp": 0x8000_0000], stack: nil)
        let frames = try await s.frames()
        expectFrames(frames, [ExpectedFrame(trust: .context, ip: 0x4000_c020)])
    }

    @Test func scanningFindsReturnAddressesWithoutSymbols() async throws {
        var s = Self.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let frame1SP = Label(), frame2SP = Label()
        stack.fill(16); stack.d64(0x4009_0000); stack.d64(0x6000_0000); stack.d64(0x5000_0100)
        stack.mark(frame1SP)
        stack.fill(16); stack.d64(0xF000_0000); stack.d64(0xD); stack.d64(0x5000_0900)
        stack.mark(frame2SP)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "sp": 0x8000_0000] + Self.garbage, stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .scan, ip: 0x5000_0100, sp: frame1SP.address, unknown: ["fp", "lr"]),
            ExpectedFrame(trust: .scan, ip: 0x5000_0900, sp: frame2SP.address),
        ])
    }

    @Test func symbolsRejectScannedAddressesOutsideFunctions() async throws {
        var s = Self.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let frame1SP = Label()
        stack.fill(16); stack.d64(0x4009_0000); stack.d64(0x6000_0000)
        stack.d64(0x4000_1000); stack.d64(0x5000_F000)  // in modules, not in functions
        stack.d64(0x5000_0200)
        stack.mark(frame1SP)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_0200, "sp": 0x8000_0000] + Self.garbage, stack: stack)
        s.symbols["module1"] = "FUNC 100 400 10 monotreme\n"
        s.symbols["module2"] = "FUNC 100 400 10 marsupial\n"
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_0200),
            ExpectedFrame(trust: .scan, ip: 0x5000_0200, sp: frame1SP.address),
        ])
        #expect(frames.map(\.function) == ["monotreme", "marsupial"])
    }

    /// The context frame scans 160 words, later frames 40.
    @Test func onlyTheContextFrameScansFourTimesFurther() async throws {
        var s = Self.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let frame1SP = Label()
        stack.fill(16); stack.d64(0x4009_0000); stack.d64(0x6000_0000)
        stack.fill(8 * 96); stack.d64(0x5000_0100)  // word 100: only the long scan reaches it
        stack.mark(frame1SP)
        stack.fill(32); stack.d64(0xF000_0000); stack.d64(0xD)
        stack.fill(336); stack.d64(0x5000_0900)  // 46 words above frame 1's sp: past the 40-word scan
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "sp": 0x8000_0000] + Self.garbage, stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .scan, ip: 0x5000_0100, sp: frame1SP.address),
        ])
    }

    /// The caller resumes at the callee's lr; the frame record gives the caller's lr and fp.
    @Test func framePointerChainKeepsTheFrameInTheLinkRegister() async throws {
        var s = Self.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let ra1: UInt64 = 0x5000_0100, ra2: UInt64 = 0x5000_0900
        let frame1FP = Label(), frame2FP = Label(), frame1SP = Label(), frame2SP = Label()
        stack.fill(64); stack.d64(0xD); stack.d64(0xF000_0000)
        stack.mark(frame1FP); stack.word(frame2FP); stack.d64(ra2)
        stack.mark(frame1SP)
        stack.fill(64); stack.d64(0xD); stack.d64(0xF000_0000)
        stack.mark(frame2FP); stack.d64(0); stack.d64(0)
        stack.mark(frame2SP)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "lr": ra1, "fp": frame1FP.address, "sp": 0x8000_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .framePointer, ip: ra1, sp: frame1SP.address, registers: ["fp": frame2FP.address, "lr": ra2]),
            ExpectedFrame(trust: .framePointer, ip: ra2, sp: frame2SP.address, registers: ["fp": 0, "lr": 0]),
        ])
        #expect(frames[1].instruction == ra1 - 4)
    }

    /// A zero fp with a return address in lr: the lr frame, then the end (pc 0).
    @Test func aLeafWithZeroFramePointerGivesItsLinkRegisterFrame() async throws {
        var s = Self.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "lr": 0x5000_0100, "fp": 0, "sp": 0x8000_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .framePointer, ip: 0x5000_0100, sp: 0x8000_0000),
        ])
    }

    /// Pointer-authentication bits in saved lr and fp are stripped (modules end below 2^31).
    @Test func pointerAuthenticationBitsAreStrippedFromFrameRecords() async throws {
        var s = Self.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let ra1: UInt64 = 0x5000_0100, ra2: UInt64 = 0x5000_0900
        let frame1FP = Label(), frame2FP = Label()
        stack.fill(64)
        stack.mark(frame1FP); stack.word(frame2FP); stack.d64(ra2 | 0xFF3C_0000_0000_0000)
        stack.fill(64)
        stack.mark(frame2FP); stack.d64(0); stack.d64(0)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "lr": ra1 | 0x0012_0000_0000_0000, "fp": frame1FP.address,
                                            "sp": 0x8000_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510, registers: ["lr": ra1]),
            ExpectedFrame(trust: .framePointer, ip: ra1, registers: ["lr": ra2]),
            ExpectedFrame(trust: .framePointer, ip: ra2),
        ])
    }

    /// A module mapped above 2^63 leaves no bits to strip: values pass through unchanged.
    @Test func aModuleAtTheTopOfTheAddressSpaceDisablesStripping() async throws {
        var s = Self.scenario(highModule: 0xA000_0000_0000_0000)
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "lr": 0xA000_0000_0000_0100, "fp": 0, "sp": 0x8000_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .framePointer, ip: 0xA000_0000_0000_0100),
        ])
    }

    static let cfiSymbols = """
        FUNC 4000 1000 10 enchiridion
        STACK CFI INIT 4000 100 .cfa: sp 0 + .ra: x30
        STACK CFI 4004 .cfa: sp 32 + .ra: .cfa -8 + ^ x19: .cfa -32 + ^ x20: .cfa -24 + ^ x29: .cfa -16 + ^
        STACK CFI 4008 .cfa: x29 16 + .ra: .cfa -8 + ^ x19: .cfa -32 + ^ x20: .cfa -24 + ^ x29: .cfa -16 + ^
        FUNC 5000 1000 10 epictetus
        """

    /// CFI at the function entry: caller pc is lr, sp unchanged, callee-saved x19–x28 and fp
    /// carried over; lr itself is unknown to the caller.
    @Test func cfiAtFunctionEntryUsesTheLinkRegister() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = Self.cfiSymbols
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        stack.fill(128)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_4000, "lr": 0x4000_5020, "sp": 0x8000_0000, "fp": 0x8000_0040,
                                            "x19": 0x1919, "x28": 0x2828, "x0": 0x0101], stack: stack)
        let frames = try await s.frames()
        #expect(frames.count >= 2)
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4000),
            ExpectedFrame(trust: .cfi, ip: 0x4000_5020, sp: 0x8000_0000, registers: ["x19": 0x1919, "x28": 0x2828, "fp": 0x8000_0040],
                          unknown: ["x0", "lr"]),
        ])
        #expect(frames[1].function == "epictetus")
    }

    /// CFI after the prologue: caller pc, fp, x19 and x20 come from the stack, sp is the CFA;
    /// at 0x4008 the CFA is fp-based.
    @Test(arguments: [UInt64(0x4000_4004), 0x4000_4008])
    func cfiRestoresRegistersSavedOnTheStack(pc: UInt64) async throws {
        var s = Self.scenario()
        s.symbols["module1"] = Self.cfiSymbols
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let record = Label()
        stack.d64(0x1919_1919); stack.d64(0x2020_2020)  // x19, x20 at cfa - 32, cfa - 24
        stack.mark(record); stack.d64(0x8000_0100); stack.d64(0x4000_5040)  // saved fp, return address
        stack.fill(512)
        s.dump.addThread(id: 1, registers: ["pc": pc, "lr": 0x1234, "sp": 0x8000_0000, "fp": record.address, "x19": 0x77, "x21": 0x2121],
                         stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: pc),
            ExpectedFrame(trust: .cfi, ip: 0x4000_5040, sp: 0x8000_0020,
                          registers: ["fp": 0x8000_0100, "x19": 0x1919_1919, "x20": 0x2020_2020, "x21": 0x2121], unknown: ["lr", "x0"]),
        ])
    }

    /// After a CFI frame whose lr is unknown, the callee's frame record supplies it when its
    /// saved fp matches (Breakpad's `CorrectRegLRByFramePointer`).
    @Test func aCFIFrameGetsItsLinkRegisterFromItsCalleesFrameRecord() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 100 10 callee
            STACK CFI INIT 4000 100 .cfa: x29 16 + .ra: .cfa -8 + ^ x29: .cfa -16 + ^
            FUNC 5000 100 10 caller
            """
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let calleeFP = Label(), callerFP = Label()
        stack.fill(32)
        stack.mark(calleeFP); stack.word(callerFP); stack.d64(0x4000_5010)  // callee's record: caller fp, return into caller
        stack.fill(32)
        stack.mark(callerFP); stack.d64(0); stack.d64(0x5000_0200)  // caller's record: return into module2
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_4010, "lr": 0x4000_5010, "sp": 0x8000_0000, "fp": calleeFP.address],
                         stack: stack)
        let frames = try await s.frames()
        // Breakpad reads the lr from the callee's record, which holds this frame's own return
        // address: the caller repeats it, then the zero fp ends the walk (checked against
        // Breakpad's processor).
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_4010),
            ExpectedFrame(trust: .cfi, ip: 0x4000_5010, sp: calleeFP.address + 16, registers: ["fp": callerFP.address], unknown: ["lr"]),
            ExpectedFrame(trust: .framePointer, ip: 0x4000_5010, sp: callerFP.address + 16, registers: ["fp": 0, "lr": 0x5000_0200]),
        ])
    }
}

extension Dictionary where Key == String, Value == UInt64 {
    static func + (a: Self, b: Self) -> Self { a.merging(b) { x, _ in x } }
}
