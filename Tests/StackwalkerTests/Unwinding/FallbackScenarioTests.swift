import MinidumpSynth
import Testing
@testable import Stackwalker

/// When a rule cannot be applied the next one takes over (Breakpad's `GetCallerFrame` order):
/// CFI that names a register the frame does not know, or reads memory outside the stack, falls
/// back to the frame pointer or scanning; and the scanning limits per frame kind.
@Suite struct FallbackScenarioTests {
    /// amd64 CFI whose rule needs %r12, which a scanned frame does not know: CFI cannot be
    /// evaluated for that frame, and (its %rbp being misaligned) scanning finds the caller.
    @Test func cfiNeedingAnUnknownRegisterFallsBackToScanning() async throws {
        var s = AMD64UnwindTests.scenario()
        s.symbols["module1"] = """
            FUNC 1000 100 0 needsR12
            STACK CFI INIT 1000 100 .cfa: $r12 16 + .ra: .cfa 8 - ^
            """
        var stack = AMD64UnwindTests.stack()
        let record = Label(), frame2SP = Label()
        stack.d64(AMD64UnwindTests.module1 + 0x1050)  // the context's caller: inside needsR12
        stack.fill(8)
        stack.mark(record); stack.word(record, plus: 64); stack.d64(AMD64UnwindTests.module2 + 0x700)
        stack.mark(frame2SP)
        stack.fill(128)
        s.dump.addThread(id: 1, registers: ["rip": AMD64UnwindTests.module2 + 0x40, "rsp": stack.base, "rbp": record.address + 4,
                                            "r12": 0x1234], stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(3)), [
            ExpectedFrame(trust: .context, ip: AMD64UnwindTests.module2 + 0x40),
            ExpectedFrame(trust: .scan, ip: AMD64UnwindTests.module1 + 0x1050, sp: stack.base + 8, unknown: ["r12"]),
            ExpectedFrame(trust: .scan, ip: AMD64UnwindTests.module2 + 0x700, sp: frame2SP.address),
        ])
        #expect(frames[1].function == "needsR12")
    }

    /// CFI whose return address would be read outside the stack memory fails; scanning takes over.
    @Test func cfiReadingOutsideTheStackFallsBackToScanning() async throws {
        var s = ARM64UnwindTests.scenario()
        s.symbols["module1"] = """
            FUNC 5000 100 0 farAway
            STACK CFI INIT 5000 100 .cfa: sp 4096 + .ra: .cfa -8 + ^
            """
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let frame1SP = Label()
        stack.fill(16); stack.d64(0x5000_0100)
        stack.mark(frame1SP)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5010, "sp": stack.base] + ARM64UnwindTests.garbage, stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: 0x4000_5010),
            ExpectedFrame(trust: .scan, ip: 0x5000_0100, sp: frame1SP.address),
        ])
    }

    /// x86: the context frame scans up to 160 words for its caller; later frames 40.
    @Test func x86ScansTheLongWayOnlyFromTheContextFrame() async throws {
        var s = X86UnwindTests.scenario()
        var stack = X86UnwindTests.stack()
        let frame1SP = Label()
        stack.fill(4 * 100); stack.d32(0x5000_0100)  // word 100
        stack.mark(frame1SP)
        stack.fill(4 * 45); stack.d32(0x5000_0200)  // 45 words up: beyond a later frame's scan
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_1000, "esp": stack.base, "ebp": 0xDEAD_0000], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_1000),
            ExpectedFrame(trust: .scan, ip: 0x5000_0100, sp: frame1SP.address),
        ])
    }

    /// ARM scanning with symbols: addresses in a module but outside every function are skipped.
    @Test func armScanningWithSymbolsSkipsAddressesOutsideFunctions() async throws {
        var s = ARMUnwindTests.scenario()
        s.symbols["module1"] = "FUNC 100 400 10 monotreme\n"
        s.symbols["module2"] = "FUNC 100 400 10 marsupial\n"
        var stack = ARMUnwindTests.stack()
        let frame1SP = Label()
        stack.fill(16); stack.d32(0x4009_0000); stack.d32(0x6000_0000); stack.d32(0x4000_1000); stack.d32(0x5000_F000)
        stack.d32(0x5000_0200)
        stack.mark(frame1SP)
        stack.fill(32)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_0200, "sp": stack.base], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_0200),
            ExpectedFrame(trust: .scan, ip: 0x5000_0200, sp: frame1SP.address),
        ])
        #expect(frames.map(\.function) == ["monotreme", "marsupial"])
    }
}
