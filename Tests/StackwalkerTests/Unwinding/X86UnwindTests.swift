import MinidumpSynth
import Testing
@testable import Stackwalker

/// Breakpad's `stackwalker_x86_unittest.cc` scenarios on synthetic Windows dumps. Modules:
/// module1 at 0x40000000, module2 at 0x50000000; the stack at 0x80000000.
@Suite struct X86UnwindTests {
    static func scenario(_ os: MinidumpBuilder.OS = .windows) -> UnwindScenario {
        var s = UnwindScenario(.x86, os)
        s.dump.addModule(base: 0x4000_0000, size: 0x10000, name: "module1")
        s.dump.addModule(base: 0x5000_0000, size: 0x10000, name: "module2")
        return s
    }

    static func stack() -> SyntheticStack { SyntheticStack(base: 0x8000_0000, pointerSize: 4) }

    @Test func anEBPChainIsFollowed() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let frame0EBP = Label(), frame1EBP = Label(), frame1ESP = Label(), frame2ESP = Label()
        stack.fill(16)
        stack.mark(frame0EBP); stack.word(frame1EBP); stack.d32(0x4000_8000)
        stack.mark(frame1ESP)
        stack.fill(8)
        stack.mark(frame1EBP); stack.d32(0); stack.d32(0x5000_0100)
        stack.mark(frame2ESP)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_c000, "esp": 0x8000_0000, "ebp": frame0EBP.address, "ebx": 0xBB], stack: stack)
        let frames = try await s.frames()
        // The zero frame pointer of frame 2 cannot be followed, and nothing above it scans as
        // a return address: the walk ends.
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_c000),
            ExpectedFrame(trust: .framePointer, ip: 0x4000_8000, sp: frame1ESP.address, registers: ["ebp": frame1EBP.address], unknown: ["ebx"]),
            ExpectedFrame(trust: .framePointer, ip: 0x5000_0100, sp: frame2ESP.address, registers: ["ebp": 0]),
        ])
        #expect(frames[1].instruction == 0x4000_7fff)
    }

    /// When %ebp does not point into the stack, scan; the slot below the return address is the
    /// saved %ebp when it points a reasonable distance up the stack.
    @Test func scanningRebuildsTheEBPChain() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let frame1EBP = Label(), frame1ESP = Label()
        stack.fill(12); stack.d32(0x4009_0000)  // junk outside any module's code
        stack.word(frame1EBP)  // saved %ebp just below the return address
        stack.d32(0x4000_4010)
        stack.mark(frame1ESP)
        stack.fill(24)
        stack.mark(frame1EBP); stack.d32(0); stack.d32(0)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_0010, "esp": 0x8000_0000, "ebp": 0xDEAD_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_0010),
            ExpectedFrame(trust: .scan, ip: 0x4000_4010, sp: frame1ESP.address, registers: ["ebp": frame1EBP.address]),
        ])
    }

    /// A scanned return address whose lower slot is not a plausible saved %ebp keeps %ebp.
    @Test func scanningKeepsEBPWhenTheSlotBelowIsNotAFramePointer() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        stack.fill(8); stack.d32(0x1234); stack.d32(0x5000_0200)
        stack.fill(32)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_0010, "esp": 0x8000_0000, "ebp": 0xDEAD_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_0010),
            ExpectedFrame(trust: .scan, ip: 0x5000_0200, sp: 0x8000_0010, registers: ["ebp": 0xDEAD_0000]),
        ])
    }

    /// STACK WIN type 4 (FrameData) with a program: the classic %ebp-based frame.
    @Test func frameDataProgramsRecoverTheCaller() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 enchiridion
            STACK WIN 4 4000 1000 a 4 0 0 0 0 1 $T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + = $ebx $T0 28 - ^ =
            """
        var stack = Self.stack()
        let frame0EBP = Label(), frame1ESP = Label()
        stack.d32(0x0BB0)  // saved %ebx at ebp - 28
        stack.fill(24)
        stack.mark(frame0EBP); stack.d32(0x8000_0100); stack.d32(0x4000_5000)
        stack.mark(frame1ESP)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4010, "esp": 0x8000_0000, "ebp": frame0EBP.address, "esi": 0x5151], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4010),
            ExpectedFrame(trust: .cfi, ip: 0x4000_5000, sp: frame1ESP.address, registers: ["ebp": 0x8000_0100, "ebx": 0x0BB0, "esi": 0x5151]),
        ])
    }

    /// Windows system DLLs align their stacks (`$T1 .raSearch = $T0 $T1 4 - 8 @ = …`): with `@`
    /// in the program `.raSearch` is computed from %ebp, and the aligned slot is found.
    @Test func alignedFrameDataProgramsUseTheFramePointer() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 RtlUserThreadStart
            STACK WIN 4 4000 1000 1 0 8 4 0 0 1 $T1 .raSearch = $T0 $T1 4 - 8 @ = $ebp $T1 4 - ^ = $eip $T1 ^ = $esp $T1 4 + =
            """
        var stack = Self.stack()
        let frame0EBP = Label(), frame1ESP = Label()
        stack.fill(20)  // aligned locals: esp + saved registers is 16 bytes short of the return address
        stack.mark(frame0EBP); stack.d32(0x8000_0200); stack.d32(0x5000_0300)
        stack.mark(frame1ESP)
        stack.fill(32)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4010, "esp": 0x8000_0000, "ebp": frame0EBP.address], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4010),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0300, sp: frame1ESP.address, registers: ["ebp": 0x8000_0200]),
        ])
    }

    /// `.raSearchStart` (esp + callee parameters + locals + saved registers) can be up to three
    /// words short of the return address when the function aligned its stack; Breakpad scans
    /// those words before running the program.
    @Test(arguments: [0, 1, 2, 3])
    func frameDataSearchesUpToThreeWordsForTheReturnAddress(padding: Int) async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 NtWaitForSingleObject
            STACK WIN 4 4000 1000 1 0 0 8 c 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =
            """
        var stack = Self.stack()
        let frame1ESP = Label()
        stack.fill(8 + 12)  // saved registers (8) + locals (12)
        for _ in 0..<padding { stack.d32(0x1000) }  // alignment padding: not return addresses
        stack.d32(0x5000_0400)
        stack.mark(frame1ESP)
        stack.fill(32)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4020, "esp": 0x8000_0000, "ebp": 0x8000_0100], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4020),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0400, sp: frame1ESP.address, registers: ["ebp": 0x8000_0100]),
        ])
    }

    /// A program whose %eip is not in any module: scan above `.raSearchStart` for a better one
    /// (trust `cfi_scan`), then look for the caller's %ebp in the saved-register area.
    @Test func aBadProgramResultIsImprovedByScanning() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 broken
            STACK WIN 4 4000 1000 1 0 0 8 0 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + = $ebp $ebp =
            """
        var stack = Self.stack()
        let frame1ESP = Label(), callerFrame = Label()
        stack.word(callerFrame); stack.d32(0x0000_1111)  // saved registers: a pointer into the stack, junk
        stack.d32(0x7000_0000)  // what the program takes as the return address: no module there
        stack.d32(0x2222); stack.d32(0x3333); stack.d32(0x4444)  // beyond the three-word search
        stack.d32(0x5000_0500)
        stack.mark(frame1ESP)
        stack.fill(16)
        stack.mark(callerFrame); stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4020, "esp": 0x8000_0000, "ebp": 0x00F0_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4020),
            ExpectedFrame(trust: .cfiScan, ip: 0x5000_0500, sp: frame1ESP.address, registers: ["ebp": callerFrame.address]),
        ])
    }

    /// FPO (type 0) without a base pointer: %ebp is unchanged, %esp is past the return address.
    @Test func fpoFramesKeepEBP() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 leaf
            STACK WIN 0 4000 1000 0 0 4 10 0 0 0 0
            """
        var stack = Self.stack()
        let frame1ESP = Label()
        stack.fill(16 + 4)
        stack.d32(0x5000_0600)
        stack.mark(frame1ESP)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4020, "esp": 0x8000_0000, "ebp": 0x8000_0040, "ebx": 0xB], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4020),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0600, sp: frame1ESP.address, registers: ["ebp": 0x8000_0040, "ebx": 0xB]),
        ])
    }

    /// FPO with a base pointer: the caller's %ebp is in the saved-register area.
    @Test func fpoFramesThatUseEBPRestoreIt() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 user
            STACK WIN 0 4000 1000 0 0 4 10 8 0 0 1
            """
        var stack = Self.stack()
        let frame1ESP = Label()
        stack.fill(8)
        stack.d32(0x8000_0080)  // saved %ebp at esp + saved registers - 8
        stack.fill(4 + 16)
        stack.d32(0x5000_0700)
        stack.mark(frame1ESP)
        stack.fill(160)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4020, "esp": 0x8000_0000, "ebp": 0x1234], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4020),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0700, sp: frame1ESP.address, registers: ["ebp": 0x8000_0080]),
        ])
    }

    /// The context frame stopped in an FPO system call whose callee already returned: the top
    /// of the stack holds the current instruction's address; skip it and find the real return.
    @Test func anFPOSystemCallSkipsTheStaleInstructionPointer() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 1000 10 NtGetContextThread
            STACK WIN 0 4000 1000 0 0 0 0 0 0 0 0
            """
        var stack = Self.stack()
        let frame1ESP = Label()
        stack.d32(0x4000_4020)  // == eip
        stack.d32(0x5000_0800)
        stack.mark(frame1ESP)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4020, "esp": 0x8000_0000, "ebp": 0x8000_0010], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4020),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0800, sp: frame1ESP.address),
        ])
    }

    /// The callee's parameter size (here from the FUNC record) is skipped in the caller's frame.
    @Test func theCalleesParametersAreSkipped() async throws {
        var s = Self.scenario()
        s.symbols["module1"] = """
            FUNC 4000 100 c callee
            FUNC 5000 100 0 caller
            STACK WIN 4 5000 100 0 0 0 0 4 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =
            """
        var stack = Self.stack()
        let frame0EBP = Label(), frame1ESP = Label(), frame2ESP = Label()
        stack.fill(8)
        stack.mark(frame0EBP); stack.d32(0x8000_0100); stack.d32(0x4000_5010)
        stack.mark(frame1ESP)
        stack.fill(12)  // callee's parameters (c bytes)
        stack.fill(4)  // caller's locals
        stack.d32(0x5000_0900)
        stack.mark(frame2ESP)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4010, "esp": 0x8000_0000, "ebp": frame0EBP.address], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(3)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4010),
            ExpectedFrame(trust: .framePointer, ip: 0x4000_5010, sp: frame1ESP.address),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0900, sp: frame2ESP.address),
        ])
    }

    /// STACK CFI on x86 (Linux): caller %eip, %esp and %ebp from the rules.
    @Test func cfiRecoversTheCallerOnLinux() async throws {
        var s = Self.scenario(.linux)
        s.symbols["module1"] = """
            FUNC 4000 100 0 f
            STACK CFI INIT 4000 100 .cfa: $esp 4 + .ra: .cfa 4 - ^
            STACK CFI 4001 .cfa: $esp 8 + $ebp: .cfa 8 - ^
            STACK CFI 4003 .cfa: $ebp 8 +
            """
        var stack = Self.stack()
        let frame0EBP = Label(), frame1ESP = Label()
        stack.fill(8)
        stack.mark(frame0EBP); stack.d32(0x8000_0040); stack.d32(0x5000_0a00)
        stack.mark(frame1ESP)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_4010, "esp": 0x8000_0000, "ebp": frame0EBP.address, "esi": 0x5, "eax": 0xA],
                         stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_4010),
            ExpectedFrame(trust: .cfi, ip: 0x5000_0a00, sp: frame1ESP.address, registers: ["ebp": 0x8000_0040, "esi": 0x5], unknown: ["eax"]),
        ])
    }
}
