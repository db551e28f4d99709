import BreakpadSymbols
import MinidumpFormat

/// AArch64: STACK CFI, then the frame-record chain, then scanning (Breakpad
/// `stackwalker_arm64.cc`; `docs/stackwalking.md` §arm64). Return addresses and saved frame
/// pointers may carry pointer-authentication bits, which are stripped.
struct ARM64Unwinder: Unwinder {
    func caller(of frames: [StackFrame], scanAllowed: Bool, in env: UnwindEnvironment) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        if let (table, rel) = await env.symbols(at: callee.instruction), let rules = table.cfiRules(at: rel),
           let frame = byCFI(callee, rules, env) {
            return frame
        }
        if let frame = byFramePointer(frames, env) { return frame }
        if scanAllowed { return await byScan(callee, env) }
        return nil
    }

    func byCFI(_ callee: StackFrame, _ rules: CFIRules, _ env: UnwindEnvironment) -> StackFrame? {
        guard var regs = callerRegistersByCFI(rules, callee: callee.context, env: env), let pc = regs["pc"], regs["sp"] != nil
        else { return nil }
        regs["pc"] = env.stripPointerAuth(pc)
        return StackFrame(instruction: 0, trust: .cfi, context: CPUContext(cpu: .arm64, values: regs))
    }

    /// A frame record is {saved fp, saved lr} at fp. The caller resumes at the callee's lr (the
    /// frame whose return address is still in lr is not skipped); the caller's own lr is the one
    /// saved in the record, its fp the saved fp, and its sp is just above the record. fp 0 ends the
    /// chain: the caller is then the lr frame with the same sp, and the walk ends after it.
    func byFramePointer(_ frames: [StackFrame], _ env: UnwindEnvironment) -> StackFrame? {
        let callee = frames[frames.count - 1]
        // Breakpad reads lr and fp from the frame's register record whether or not they were
        // recovered: a scanned frame still holds its callee's values.
        let lr = callee.context["lr"] ?? recoveredLinkRegister(frames, env) ?? callee.register("lr")
        let fp = callee.register("fp")
        var callerFP: UInt64 = 0, callerLR: UInt64 = 0
        if fp != 0 {
            guard fp < UInt64.max - 16, let f = env.word(at: fp), let l = env.word(at: fp + 8) else { return nil }
            callerFP = f
            callerLR = env.stripPointerAuth(l)
        }
        let sp = fp != 0 ? fp + 16 : callee.context.stackPointer
        return StackFrame(instruction: 0, trust: .framePointer,
                          context: CPUContext(cpu: .arm64, values: ["pc": lr, "lr": callerLR, "fp": callerFP, "sp": sp]))
    }

    /// A frame found by CFI has no lr of its own; when its fp agrees with the record its callee
    /// saved, the lr saved in that record is its lr (Breakpad's `CorrectRegLRByFramePointer`).
    func recoveredLinkRegister(_ frames: [StackFrame], _ env: UnwindEnvironment) -> UInt64? {
        guard frames.count >= 2 else { return nil }
        let frame = frames[frames.count - 1], calleeOfFrame = frames[frames.count - 2]
        let fp = frame.register("fp")
        guard fp > frame.register("sp") else { return nil }
        let recordAt = calleeOfFrame.register("fp")
        guard recordAt != 0, recordAt < UInt64.max - 8, env.word(at: recordAt) == fp,
              let lr = env.word(at: recordAt + 8) else { return nil }
        return env.stripPointerAuth(lr)
    }

    func byScan(_ callee: StackFrame, _ env: UnwindEnvironment) async -> StackFrame? {
        let words = UnwindEnvironment.scanWords(calleeIsContext: callee.trust == .context)
        guard let (location, pc) = await env.scanForReturnAddress(from: callee.context.stackPointer, words: words) else { return nil }
        return StackFrame(instruction: 0, trust: .scan, context: CPUContext(cpu: .arm64, values: ["pc": pc, "sp": location &+ 8]))
    }
}
