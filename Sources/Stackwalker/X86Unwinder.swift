import BreakpadSymbols
import MinidumpFormat

/// 32-bit x86: STACK WIN, then STACK CFI, then the %ebp chain with scanning as its fallback
/// (Breakpad `stackwalker_x86.cc`; `docs/stackwalking.md` §x86).
struct X86Unwinder: Unwinder {
    func caller(of frames: [StackFrame], scanAllowed: Bool, in env: UnwindEnvironment) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        let symbols = await env.symbols(at: callee.instruction)
        if let (table, rel) = symbols, let win = table.stackWin(at: rel),
           let frame = await byStackWin(frames, win, scanAllowed: scanAllowed, env) {
            return frame
        }
        if let (table, rel) = symbols, let rules = table.cfiRules(at: rel), let frame = byCFI(callee, rules, env) {
            return frame
        }
        return await byFramePointer(callee, scanAllowed: scanAllowed, env)
    }

    func byCFI(_ callee: StackFrame, _ rules: CFIRules, _ env: UnwindEnvironment) -> StackFrame? {
        guard let regs = callerRegistersByCFI(rules, callee: callee.context, env: env),
              regs["eip"] != nil, regs["esp"] != nil, regs["ebp"] != nil else { return nil }
        return StackFrame(instruction: 0, trust: .cfi, context: CPUContext(cpu: .x86, values: regs))
    }

    /// The caller by the %ebp chain: return address at [ebp+4], saved %ebp at [ebp]. When %ebp
    /// does not point into the stack, scan for a return address and rebuild the chain from the
    /// slot below it if that looks like a saved %ebp.
    func byFramePointer(_ callee: StackFrame, scanAllowed: Bool, _ env: UnwindEnvironment) async -> StackFrame? {
        let ebp = callee.context["ebp"] ?? 0, esp = callee.context.stackPointer
        if let eip = env.word(at: (ebp &+ 4) & 0xFFFF_FFFF), let callerEBP = env.word(at: ebp) {
            return StackFrame(instruction: 0, trust: .framePointer,
                              context: CPUContext(cpu: .x86, values: ["eip": eip, "esp": (ebp &+ 8) & 0xFFFF_FFFF, "ebp": callerEBP]))
        }
        guard scanAllowed,
              let (location, eip) = await env.scanForReturnAddress(from: esp, words: UnwindEnvironment.scanWords(calleeIsContext: callee.trust == .context))
        else { return nil }
        let callerESP = (location &+ 4) & 0xFFFF_FFFF
        var callerEBP = ebp
        let savedAt = (callerESP &- 8) & 0xFFFF_FFFF
        if let saved = env.word(at: savedAt), saved > savedAt, saved - savedAt <= Self.maxReasonableGapBetweenFrames {
            callerEBP = saved
        }
        return StackFrame(instruction: 0, trust: .scan,
                          context: CPUContext(cpu: .x86, values: ["eip": eip, "esp": callerESP, "ebp": callerEBP]))
    }

    /// Breakpad's `kMaxReasonableGapBetweenFrames` for rebuilding an %ebp chain after a scan.
    static let maxReasonableGapBetweenFrames: UInt64 = 128 * 1024

    /// The caller by a STACK WIN record. Windows system DLLs align their stacks, so the computed
    /// return-address slot can be up to three words short: search those words first, and when
    /// the program's %eip is not in a module, search the stack above it for a better one.
    func byStackWin(_ frames: [StackFrame], _ win: StackWinInfo, scanAllowed: Bool, _ env: UnwindEnvironment) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        let esp = callee.context.stackPointer
        let ebp = callee.context["ebp"] ?? 0
        let scanWords = UnwindEnvironment.scanWords(calleeIsContext: callee.trust == .context)
        // The parameters the callee's own callee pushed, which are still on the stack.
        let calleeParams = UInt64(frames.count >= 2 ? frames[frames.count - 2].parameterSize ?? 0 : 0)
        let mask: UInt64 = 0xFFFF_FFFF

        var raSearchStart = (esp &+ calleeParams &+ UInt64(win.localSize) &+ UInt64(win.savedRegisterSize)) & mask
        let computed = raSearchStart
        if let (location, found) = await env.scanForReturnAddress(from: raSearchStart, words: 3) {
            raSearchStart = location
            // An FPO system call in the context frame whose callee already returned leaves the
            // address of the current instruction on top of the stack: skip it and search again.
            if callee.trust == .context, win.type == .fpo, location == computed, found == callee.context.instructionPointer {
                raSearchStart = (raSearchStart &+ 4) & mask
                if let (next, _) = await env.scanForReturnAddress(from: raSearchStart, words: 3) { raSearchStart = next }
            }
        }

        let program: String
        var recoverEBP = true
        if let p = win.programString, !p.isEmpty {
            program = p
        } else if win.allocatesBasePointer {
            program = "$eip .raSearchStart ^ = $ebp $esp .cbCalleeParams + .cbSavedRegs + 8 - ^ = $esp .raSearchStart 4 + ="
        } else {
            program = "$eip .raSearchStart ^ = $esp .raSearchStart 4 + =" + (callee.context["ebx"] != nil ? " $ebx $ebx =" : "")
            recoverEBP = false
        }
        // Alignment (`@`) makes %esp-based arithmetic lossy; %ebp is then the reliable anchor.
        if callee.context["ebp"] != nil, program.contains("@") { raSearchStart = (ebp &+ 4) & mask }

        var vars: [String: UInt64] = [
            "$ebp": ebp, "$esp": esp, ".cbCalleeParams": calleeParams, ".cbSavedRegs": UInt64(win.savedRegisterSize),
            ".cbLocals": UInt64(win.localSize), ".cbParams": UInt64(win.parameterSize),
            ".raSearchStart": raSearchStart, ".raSearch": raSearchStart,
        ]
        if let ebx = callee.context["ebx"] { vars["$ebx"] = ebx }
        var evaluator = PostfixEvaluator(wordSize: 4, variables: vars, memory: env.memory)
        var trust = FrameTrust.cfi
        var ok = true
        do { try evaluator.execute(program: program) } catch { ok = false }
        var result = evaluator.variables
        let assigned = evaluator.assigned
        if !ok || !assigned.contains("$eip") || !assigned.contains("$esp") {
            // The program could not run (often %ebp does not point into the stack): scan.
            guard scanAllowed, let (location, eip) = await env.scanForReturnAddress(from: esp, words: scanWords) else { return nil }
            result["$eip"] = eip
            result["$esp"] = (location &+ 4) & mask
            trust = .scan
        }

        // Both %eip and %ebp 0 is the end of the stack; anything else may be improved by scanning.
        if (result["$eip"] ?? 0) != 0 || (result["$ebp"] ?? 0) != 0 {
            var offset: UInt64 = 0
            if env.dump.module(containing: result["$eip"] ?? 0) == nil {
                let start = ((result[".raSearchStart"] ?? raSearchStart) &+ 4) & mask
                if scanAllowed,
                   let (location, eip) = await env.scanForReturnAddress(from: start, words: scanWords) {
                    result["$eip"] = eip
                    result["$esp"] = (location &+ 4) & mask
                    offset = location &- start
                    trust = .cfiScan
                }
            }
            if recoverEBP {
                let callerEBP = result["$ebp"] ?? 0
                // A scan that skipped frames leaves %ebp below the return address it found.
                let skipped = trust != .cfi && callerEBP <= (raSearchStart &+ offset) & mask
                if skipped || env.word(at: callerEBP) == nil {
                    // Search the saved-register area, from its top down, for a pointer into the stack.
                    let bottom = (esp &+ calleeParams) & mask
                    var location = (bottom &+ UInt64(win.savedRegisterSize) &+ offset) & mask
                    while location >= bottom {
                        guard let candidate = env.word(at: location) else { break }
                        if env.word(at: candidate) != nil { result["$ebp"] = candidate; break }
                        if location < 4 { break }
                        location -= 4
                    }
                }
            }
        }

        var values: [String: UInt64] = ["eip": result["$eip"] ?? 0, "esp": result["$esp"] ?? 0, "ebp": result["$ebp"] ?? ebp]
        // Callee-saved registers the program does not assign are carried over, as rust-minidump
        // reports them (Breakpad marks them unknown; no STACK WIN rule of ours reads them).
        for r in ["ebx", "esi", "edi"] { values[r] = assigned.contains("$" + r) ? result["$" + r] : callee.context[r] }
        return StackFrame(instruction: 0, trust: trust, context: CPUContext(cpu: .x86, values: values.mapValues { $0 & mask }))
    }
}
