import BreakpadSymbols
import MinidumpFormat

/// x86-64: STACK CFI; on Windows a simulated return from a leaf function of the context frame
/// and never the frame pointer (MSVC and LLVM do not keep %rbp chains there); elsewhere the %rbp
/// chain; then scanning (Breakpad `stackwalker_amd64.cc`; `docs/stackwalking.md` §amd64).
struct AMD64Unwinder: Unwinder {
    func caller(of frames: [StackFrame], scanAllowed: Bool, in env: UnwindEnvironment) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        if let (table, rel) = await env.symbols(at: callee.instruction), let rules = table.cfiRules(at: rel),
           let frame = byCFI(callee, rules, env) {
            return frame
        }
        if callee.trust == .context, env.isWindows, let frame = await bySimulatingReturn(callee, env) { return frame }
        if !env.isWindows, let frame = byFramePointer(callee, env) { return frame }
        if scanAllowed { return await byScan(callee, env) }
        return nil
    }

    func byCFI(_ callee: StackFrame, _ rules: CFIRules, _ env: UnwindEnvironment) -> StackFrame? {
        guard let regs = callerRegistersByCFI(rules, callee: callee.context, env: env),
              let rip = regs["rip"], let rsp = regs["rsp"], rip != 0, rsp != 0 else { return nil }
        return StackFrame(instruction: 0, trust: .cfi, context: CPUContext(cpu: .amd64, values: regs))
    }

    /// A leaf function without unwind information has not moved %rsp: its return address is on
    /// top of the stack (or one word above it).
    func bySimulatingReturn(_ callee: StackFrame, _ env: UnwindEnvironment) async -> StackFrame? {
        guard let (location, rip) = await env.scanForReturnAddress(from: callee.context.stackPointer, words: 1) else { return nil }
        var values = callee.context.values
        values["rip"] = rip
        values["rsp"] = location &+ 8
        return StackFrame(instruction: 0, trust: .leaf, context: CPUContext(cpu: .amd64, values: values))
    }

    /// The %rbp chain: return address at [rbp+8], saved %rbp at [rbp], with the checks that reject
    /// a %rbp used as a general register.
    func byFramePointer(_ callee: StackFrame, _ env: UnwindEnvironment) -> StackFrame? {
        // Breakpad reads %rbp from the record even when a scan could not vouch for it.
        let rbp = callee.register("rbp")
        guard rbp % 8 == 0, rbp < UInt64.max - 16,
              let rip = env.word(at: rbp + 8), let callerRBP = env.word(at: rbp) else { return nil }
        let rsp = rbp + 16
        guard isCanonical64(rip), callerRBP >= rsp, env.word(at: callerRBP) != nil else { return nil }
        return StackFrame(instruction: 0, trust: .framePointer,
                          context: CPUContext(cpu: .amd64, values: ["rip": rip, "rsp": rsp, "rbp": callerRBP]))
    }

    func byScan(_ callee: StackFrame, _ env: UnwindEnvironment) async -> StackFrame? {
        let words = UnwindEnvironment.scanWords(calleeIsContext: callee.trust == .context)
        guard let (location, rip) = await env.scanForReturnAddress(from: callee.context.stackPointer, words: words) else { return nil }
        var values: [String: UInt64] = ["rip": rip, "rsp": location &+ 8]
        var hidden: Set<String> = []
        // Pass on a plausible %rbp: saved just below the return address by a standard prologue,
        // or left unchanged by a callee that did not use it.
        if let rbp = callee.context["rbp"] {
            if location &- 8 == rbp {
                if let saved = env.word(at: rbp), saved > location { values["rbp"] = saved }
            } else if rbp >= location &+ 8 {
                values["rbp"] = rbp
            }
            // rust-minidump does not report %rbp when the return address was in the first slot
            // (no room for a saved one); Breakpad still unwinds with it, so it stays known but
            // is left out of the output.
            if location == callee.context.stackPointer, values["rbp"] != nil { hidden.insert("rbp") }
        }
        var frame = StackFrame(instruction: 0, trust: .scan, context: CPUContext(cpu: .amd64, values: values))
        frame.unreportedRegisters = hidden
        return frame
    }
}
