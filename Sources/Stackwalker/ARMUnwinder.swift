import BreakpadSymbols
import MinidumpFormat

/// 32-bit ARM (ARM and Thumb): STACK CFI (not on iOS, whose CFI Breakpad ignores), the r7
/// frame-pointer chain on iOS only, then scanning (Breakpad `stackwalker_arm.cc`;
/// `docs/stackwalking.md` §arm). Linux and Android code has no usable frame-pointer convention.
struct ARMUnwinder: Unwinder {
    func caller(of frames: [StackFrame], scanAllowed: Bool, in env: UnwindEnvironment) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        if !env.isIOS, let (table, rel) = await env.symbols(at: callee.instruction), let rules = table.cfiRules(at: rel),
           let frame = byCFI(callee, rules, env) {
            return frame
        }
        if env.isIOS, let frame = byFramePointer(callee, env) { return frame }
        if scanAllowed { return await byScan(callee, isContextFrame: frames.count == 1, env) }
        return nil
    }

    func byCFI(_ callee: StackFrame, _ rules: CFIRules, _ env: UnwindEnvironment) -> StackFrame? {
        guard let regs = callerRegistersByCFI(rules, callee: callee.context, env: env), regs["pc"] != nil, regs["sp"] != nil
        else { return nil }
        return StackFrame(instruction: 0, trust: .cfi, context: CPUContext(cpu: .arm, values: regs))
    }

    /// iOS keeps {saved r7, saved lr} at r7; the caller resumes at the callee's lr.
    func byFramePointer(_ callee: StackFrame, _ env: UnwindEnvironment) -> StackFrame? {
        guard let fp = callee.context["r7"] else { return nil }
        var callerFP: UInt64 = 0, callerLR: UInt64 = 0
        if fp != 0 {
            guard let f = env.word(at: fp), let l = env.word(at: (fp &+ 4) & 0xFFFF_FFFF) else { return nil }
            callerFP = f
            callerLR = l
        }
        let sp = fp != 0 ? (fp &+ 8) & 0xFFFF_FFFF : callee.context.stackPointer
        return StackFrame(instruction: 0, trust: .framePointer,
                          context: CPUContext(cpu: .arm, values: ["pc": callee.register("lr"), "lr": callerLR, "r7": callerFP, "sp": sp]))
    }

    func byScan(_ callee: StackFrame, isContextFrame: Bool, _ env: UnwindEnvironment) async -> StackFrame? {
        let words = UnwindEnvironment.scanWords(calleeIsContext: isContextFrame)
        guard let (location, pc) = await env.scanForReturnAddress(from: callee.context.stackPointer, words: words) else { return nil }
        return StackFrame(instruction: 0, trust: .scan, context: CPUContext(cpu: .arm, values: ["pc": pc, "sp": (location &+ 4) & 0xFFFF_FFFF]))
    }
}
