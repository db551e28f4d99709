import MinidumpSynth
import Testing
@testable import Stackwalker

/// Breakpad's `stackwalker_arm_unittest.cc` scenarios on synthetic Android/iOS dumps (ARM and
/// Thumb code). Modules: module1 at 0x40000000, module2 at 0x50000000; the stack at 0x80000000.
@Suite struct ARMUnwindTests {
    static func scenario(_ os: MinidumpBuilder.OS = .android) -> UnwindScenario {
        var s = UnwindScenario(.arm, os)
        s.dump.addModule(base: 0x4000_0000, size: 0x10000, name: "module1")
        s.dump.addModule(base: 0x5000_0000, size: 0x10000, name: "module2")
        return s
    }

    static func stack() -> SyntheticStack { SyntheticStack(base: 0x8000_0000, pointerSize: 4) }

    @Test func scanningFindsReturnAddressesWithoutSymbols() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let frame1SP = Label(), frame2SP = Label()
        stack.fill(16); stack.d32(0x4009_0000); stack.d32(0x6000_0000); stack.d32(0x5000_0101)  // Thumb: low bit set
        stack.mark(frame1SP)
        stack.fill(16); stack.d32(0xF000_0000); stack.d32(0xD); stack.d32(0x5000_0900)
        stack.mark(frame2SP)
        stack.fill(32)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "sp": 0x8000_0000, "fp": 0x8000_0010, "lr": 0x1357_9bdf], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .scan, ip: 0x5000_0101, sp: frame1SP.address, unknown: ["fp", "lr"]),
            ExpectedFrame(trust: .scan, ip: 0x5000_0900, sp: frame2SP.address),
        ])
        // The instruction for a Thumb return address is two bytes back.
        #expect(frames[1].instruction == 0x5000_00ff)
    }

    static let cfiSymbols = """
        FUNC 4000 1000 10 enchiridion
        STACK CFI INIT 4000 100 .cfa: sp 0 + .ra: lr
        STACK CFI 4002 .cfa: sp 12 + r4: .cfa 12 - ^ r11: .cfa 8 - ^ .ra: .cfa 4 - ^
        STACK CFI 4004 .cfa: r11 8 +
        FUNC 5000 1000 10 epictetus
        """

    /// At function entry the caller is the link register; after the prologue, the return address,
    /// r4 and r11 come from the stack; r5–r10 are carried over and r0–r3 become unknown.
    @Test(arguments: [0x4000_4000 as UInt64, 0x4000_4002, 0x4000_4004])
    func cfiRecoversTheCaller(pc: UInt64) async throws {
        var s = Self.scenario()
        s.symbols["module1"] = Self.cfiSymbols
        var stack = Self.stack()
        let record = Label()
        stack.fill(16)
        let sp = stack.here
        let entry = pc == 0x4000_4000
        if !entry { stack.d32(0x0404); stack.mark(record); stack.d32(0x8000_0100); stack.d32(0x4000_5020) }
        stack.fill(64)
        var registers: [String: UInt64] = ["pc": pc, "sp": sp, "lr": 0x4000_5020, "r4": entry ? 0x0404 : 0xBAD, "r5": 0x0505, "r0": 0x0101,
                                           "fp": entry ? 0x8000_0100 : 0xBAD]
        if pc == 0x4000_4004 { registers["fp"] = record.address }
        s.dump.addThread(id: 1, registers: registers, stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: pc),
            ExpectedFrame(trust: .cfi, ip: 0x4000_5020, sp: entry ? sp : sp + 12,
                          registers: ["r4": 0x0404, "r5": 0x0505, "fp": 0x8000_0100], unknown: ["r0"]),
        ])
        #expect(frames[1].function == "epictetus")
    }

    /// Android and Linux ARM code keeps no usable frame-pointer chain: r11 is never followed.
    @Test func framePointersAreNotFollowedOnAndroid() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let record = Label()
        stack.fill(0x300)
        stack.mark(record); stack.d32(0); stack.d32(0x5000_0100)
        stack.fill(16)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "sp": 0x8000_0000, "fp": record.address, "lr": 0x5000_0200], stack: stack)
        let frames = try await s.frames()
        // 0x300 bytes is 192 words: beyond even the context frame's scan.
        expectFrames(frames, [ExpectedFrame(trust: .context, ip: 0x4000_5510)])
    }

    /// iOS keeps {saved r7, saved lr} at r7; the caller resumes at the callee's lr.
    @Test func iOSFollowsTheR7Chain() async throws {
        var s = Self.scenario(.iOS)
        var stack = Self.stack()
        let frame1FP = Label(), frame2FP = Label()
        stack.fill(32)
        stack.mark(frame1FP); stack.word(frame2FP); stack.d32(0x5000_0900)
        stack.fill(32)
        stack.mark(frame2FP); stack.d32(0); stack.d32(0)
        stack.fill(32)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5510, "sp": 0x8000_0000, "r7": frame1FP.address, "lr": 0x5000_0100], stack: stack)
        let frames = try await s.frames()
        expectFrames(frames, [
            ExpectedFrame(trust: .context, ip: 0x4000_5510),
            ExpectedFrame(trust: .framePointer, ip: 0x5000_0100, sp: frame1FP.address + 8, registers: ["r7": frame2FP.address, "lr": 0x5000_0900]),
            ExpectedFrame(trust: .framePointer, ip: 0x5000_0900, sp: frame2FP.address + 8, registers: ["r7": 0, "lr": 0]),
        ])
    }
}
