import MinidumpSynth
import Testing
@testable import Stackwalker

/// Breakpad's `stackwalker_amd64_unittest.cc` scenarios on synthetic dumps. Modules: module1
/// at 0x00007400c0000000, module2 at 0x00007500b0000000; the stack at 0x8000000080000000 is
/// not canonical, so stack addresses never look like return addresses.
@Suite struct AMD64UnwindTests {
    static let module1: UInt64 = 0x0000_7400_c000_0000, module2: UInt64 = 0x0000_7500_b000_0000

    static func scenario(_ os: MinidumpBuilder.OS = .linux) -> UnwindScenario {
        var s = UnwindScenario(.amd64, os)
        s.dump.addModule(base: module1, size: 0x10000, name: "module1")
        s.dump.addModule(base: module2, size: 0x10000, name: "module2")
        return s
    }

    static func stack() -> SyntheticStack { SyntheticStack(base: 0x8000_0000_8000_0000, pointerSize: 8) }

    @Test func anRBPChainIsFollowed() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let ra1 = Self.module2 + 0x100, ra2 = Self.module2 + 0x900
        let frame0RBP = Label(), frame1RBP = Label(), frame1SP = Label(), frame2SP = Label()
        stack.fill(16)
        stack.mark(frame0RBP); stack.word(frame1RBP); stack.d64(ra1)
        stack.mark(frame1SP)
        stack.fill(32)
        stack.mark(frame1RBP); stack.word(frame1RBP, plus: 64); stack.d64(ra2)
        stack.mark(frame2SP)
        stack.fill(80)
        s.dump.addThread(id: 1, registers: ["rip": Self.module1 + 0x40, "rsp": stack.base, "rbp": frame0RBP.address, "rbx": 0xB],
                         stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(3)), [
            ExpectedFrame(trust: .context, ip: Self.module1 + 0x40),
            ExpectedFrame(trust: .framePointer, ip: ra1, sp: frame1SP.address, registers: ["rbp": frame1RBP.address], unknown: ["rbx"]),
            ExpectedFrame(trust: .framePointer, ip: ra2, sp: frame2SP.address, registers: ["rbp": frame1RBP.address + 64]),
        ])
    }

    /// A %rbp that is misaligned, or whose saved %rbp is below the frame, or whose return address
    /// is not canonical, is no frame pointer: scanning takes over.
    @Test(arguments: ["misaligned", "callerBelow", "nonCanonical"])
    func implausibleFramePointersAreRejected(_ flaw: String) async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let rbp = Label()
        let ra = Self.module2 + 0x200
        stack.fill(8)
        stack.mark(rbp)
        stack.d64(flaw == "callerBelow" ? stack.base : stack.base + 0x100)  // saved %rbp
        stack.d64(flaw == "nonCanonical" ? 0x8000_0000_0000_1000 : Self.module1 + 0x5000)
        stack.d64(ra)  // found by scanning
        stack.fill(512)
        let frame0RBP = flaw == "misaligned" ? rbp.address + 4 : rbp.address
        s.dump.addThread(id: 1, registers: ["rip": Self.module1 + 0x40, "rsp": stack.base, "rbp": frame0RBP], stack: stack)
        let frames = try await s.frames()
        #expect(frames.count >= 2)
        #expect(frames[1].trust == .scan)
        if flaw == "nonCanonical" {
            #expect(frames[1].context.instructionPointer == ra)
        } else {
            // The word at rbp + 8 is itself a plausible return address; scanning finds it first.
            #expect(frames[1].context.instructionPointer == Self.module1 + 0x5000)
        }
    }

    /// Scanning passes on %rbp: the saved value just below the return address when %rbp points
    /// there (a standard prologue), else the callee's %rbp when it is above the new stack pointer.
    @Test func scanningRestoresAPushedRBP() async throws {
        var s = Self.scenario()
        var stack = Self.stack()
        let savedRBPSlot = Label(), callerRBP = Label(), frame1SP = Label()
        stack.fill(16)
        stack.d64(0x1000)  // not a return address
        stack.mark(savedRBPSlot); stack.word(callerRBP)
        stack.d64(Self.module2 + 0x300)
        stack.mark(frame1SP)
        stack.fill(32)
        stack.mark(callerRBP); stack.fill(32)
        s.dump.addThread(id: 1, registers: ["rip": Self.module1 + 0x40, "rsp": stack.base, "rbp": savedRBPSlot.address], stack: stack)
        var frames = try await s.frames()
        // The frame pointer rule accepts this frame (it is a real frame record), like Breakpad.
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: Self.module1 + 0x40),
            ExpectedFrame(trust: .framePointer, ip: Self.module2 + 0x300, sp: frame1SP.address, registers: ["rbp": callerRBP.address]),
        ])
        // On Windows there is no frame-pointer rule: scanning finds the same frame and restores %rbp.
        s.dump.os = .windows
        frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: Self.module1 + 0x40),
            ExpectedFrame(trust: .scan, ip: Self.module2 + 0x300, sp: frame1SP.address, registers: ["rbp": callerRBP.address]),
        ])
    }

    /// Windows x64: a leaf function without unwind information is unwound by simulating a
    /// return from the top of the stack, and frame pointers are never followed.
    @Test func windowsLeafFunctionsSimulateAReturn() async throws {
        var s = Self.scenario(.windows)
        s.symbols["module1"] = "FUNC 1000 100 0 leaf\nFUNC 5000 100 0 caller\n"
        var stack = Self.stack()
        stack.d64(Self.module1 + 0x5010)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["rip": Self.module1 + 0x1010, "rsp": stack.base, "rbp": stack.base + 32, "rbx": 0x77],
                         stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: Self.module1 + 0x1010),
            ExpectedFrame(trust: .leaf, ip: Self.module1 + 0x5010, sp: stack.base + 8, registers: ["rbx": 0x77, "rbp": stack.base + 32]),
        ])
        #expect(frames[1].function == "caller")
    }

    @Test func windowsNeverFollowsFramePointers() async throws {
        var s = Self.scenario(.windows)
        var stack = Self.stack()
        let record = Label()
        stack.fill(0x100)  // nothing that looks like a return address for 32 words
        stack.mark(record); stack.word(record, plus: 32); stack.d64(Self.module2 + 0x100)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["rip": Self.module1 + 0x40, "rsp": stack.base, "rbp": record.address], stack: stack)
        let frames = try await s.frames()
        #expect(frames.count >= 2)
        #expect(frames[1].trust == .scan)
        #expect(frames[1].context.instructionPointer == Self.module2 + 0x100)
    }

    static let cfiSymbols = """
        FUNC 4000 1000 10 enchiridion
        STACK CFI INIT 4000 100 .cfa: $rsp 8 + .ra: .cfa 8 - ^
        STACK CFI 4001 .cfa: $rsp 16 + $rbx: .cfa 16 - ^
        STACK CFI 4002 .cfa: $rsp 24 + $r12: .cfa 24 - ^
        STACK CFI 4003 .cfa: $rsp 32 + $rbp: .cfa 32 - ^
        STACK CFI 4004 .cfa: $rbp 32 +
        FUNC 5000 1000 10 epictetus
        """

    /// Breakpad's CFI fixture: at each step of a prologue (push rbx; push r12; push rbp;
    /// mov rsp, rbp) the rules recover the same caller; registers the callee has pushed come
    /// from the stack, others are carried over, volatile ones are unknown.
    @Test(arguments: [0, 1, 2, 3, 4])
    func cfiRecoversTheCallerAtEachPrologueStep(step: Int) async throws {
        var s = Self.scenario()
        s.symbols["module1"] = Self.cfiSymbols
        var stack = Self.stack()
        let frame1SP = Label()
        let caller: [String: UInt64] = ["rbx": 0x5555_0000_1111, "r12": 0x5555_0000_1212, "rbp": stack.base + 0x1000]
        let pushOrder = ["rbp", "r12", "rbx"]  // lowest address first
        let pushed = Array(pushOrder.suffix(min(step, 3)))
        stack.fill(16)
        let sp = stack.here
        for name in pushed { stack.d64(caller[name]!) }
        stack.d64(Self.module1 + 0x5020)
        stack.mark(frame1SP)
        stack.fill(64)
        var registers: [String: UInt64] = ["rip": Self.module1 + 0x4000 + UInt64(step), "rsp": sp, "r13": 0x1313, "rax": 0xAAAA]
        for name in pushOrder { registers[name] = pushed.contains(name) ? 0xBAD0_0000 : caller[name]! }
        if step == 4 { registers["rbp"] = sp; registers["rsp"] = sp - 8 }
        s.dump.addThread(id: 1, registers: registers, stack: stack)
        let frames = try await s.frames()
        expectFrames(Array(frames.prefix(2)), [
            ExpectedFrame(trust: .context, ip: Self.module1 + 0x4000 + UInt64(step)),
            ExpectedFrame(trust: .cfi, ip: Self.module1 + 0x5020, sp: frame1SP.address,
                          registers: caller.merging(["r13": 0x1313]) { a, _ in a }, unknown: ["rax"]),
        ])
    }
}
