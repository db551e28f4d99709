import BreakpadSymbols
import MinidumpFormat

/// One CPU's rules for finding a frame's caller (`docs/stackwalking.md`). The walker owns the
/// loop, symbolization and the termination rules common to every CPU; an unwinder only proposes
/// the caller's registers and how it found them.
protocol Unwinder: Sendable {
    /// The caller of `frames.last`, or nil when no strategy finds one. `scanAllowed` is false
    /// once a thread has used up its budget of scanned frames.
    func caller(of frames: [StackFrame], scanAllowed: Bool, in env: UnwindEnvironment) async -> StackFrame?
}

extension ContextCPU {
    var unwinder: any Unwinder {
        switch self {
        case .x86: return X86Unwinder()
        case .amd64: return AMD64Unwinder()
        case .arm: return ARMUnwinder()
        case .arm64: return ARM64Unwinder()
        }
    }

    /// The registers Breakpad's frame-pointer rules read from a frame's register record whether
    /// or not they were recovered (so `StackFrame.stale` keeps only these).
    var registersReadFromRecord: [String] {
        switch self { case .x86: return []; case .amd64: return ["rbp"]; case .arm: return ["lr"]; case .arm64: return ["fp", "lr", "sp"] }
    }

    /// The return-address adjustment that turns a caller's resume address into its lookup address.
    var returnAddressAdjustment: UInt64 {
        switch self { case .x86, .amd64: return 1; case .arm: return 2; case .arm64: return 4 }
    }
}

/// Reads words of one thread's stack memory: the only memory unwinding may read, as in Breakpad.
struct ThreadMemory: StackMemory {
    let region: MemoryRegion?
    func readWord(at address: UInt64, size: Int) -> UInt64? { region?.word(at: address, size: size) }
}

/// What an unwinder may consult for one thread: its stack, the dump's modules, their symbols.
/// Used by one thread's task only.
final class UnwindEnvironment {
    let dump: Minidump
    let cpu: ContextCPU
    let memory: ThreadMemory
    let tables: ThreadTables
    let isWindows: Bool
    let isIOS: Bool
    /// ARM64 pointer-authentication mask (Breakpad: all bits up to the highest module's end).
    let addressRangeMask: UInt64

    init(dump: Minidump, cpu: ContextCPU, memory: ThreadMemory, tables: ThreadTables, addressRangeMask: UInt64) {
        self.dump = dump
        self.cpu = cpu
        self.memory = memory
        self.tables = tables
        isWindows = dump.systemInfo?.isWindows ?? false
        isIOS = dump.systemInfo?.platformId == 0x8102
        self.addressRangeMask = addressRangeMask
    }

    /// Every bit up to the highest module's end address (all ones without modules). The same for
    /// every thread of a dump, so the walk computes it once.
    static func addressRangeMask(_ modules: [MinidumpModule]) -> UInt64 {
        guard var mask = modules.map(\.endAddress).max() else { return .max }
        for shift: UInt64 in [1, 2, 4, 8, 16, 32] { mask |= mask >> shift }
        return mask
    }

    var pointerSize: Int { cpu.pointerSize }

    func word(at address: UInt64) -> UInt64? { memory.readWord(at: address, size: cpu.pointerSize) }

    /// The symbol table and module-relative address for `address`, when its module has symbols.
    func symbols(at address: UInt64) async -> (SymbolTable, UInt64)? {
        guard let (index, module) = dump.module(containing: address), let table = await tables.table(index) else { return nil }
        return (table, address &- module.baseAddress)
    }

    /// Breakpad's `InstructionAddressSeemsValid` as rust-minidump applies it: the byte before a
    /// candidate return address (inside the call, which matters after calls to noreturn
    /// functions at the end of a function) must be in a loaded module and, when that module has
    /// symbols, in one of its functions or public symbols. 0 and non-canonical values never are.
    func instructionSeemsValid(_ address: UInt64) async -> Bool {
        guard address != 0, cpu.pointerSize == 4 ? address <= 0xFFFF_FFFF : isCanonical64(address) else { return false }
        let call = address &- 1
        guard let (index, module) = dump.module(containing: call) else { return false }
        guard let table = await tables.table(index) else { return true }
        return !(table.function(at: call &- module.baseAddress)?.name.isEmpty ?? true)
    }

    /// Breakpad's `ScanForReturnAddress`: the first word from `start` up to and including
    /// `start + words × pointer size` that seems to be a return address, and where it was.
    func scanForReturnAddress(from start: UInt64, words: Int) async -> (location: UInt64, address: UInt64)? {
        let w = UInt64(pointerSize)
        for i in 0...UInt64(max(0, words)) {
            let (location, overflow) = start.addingReportingOverflow(i * w)
            if overflow { return nil }
            guard let value = word(at: location) else { return nil }
            if await instructionSeemsValid(value) { return (location, value) }
        }
        return nil
    }

    /// Words scanned for a caller: four times more below the context frame, whose stack is
    /// often messier (Breakpad's `kRASearchWords` and `is_context_frame`).
    static func scanWords(calleeIsContext: Bool) -> Int { calleeIsContext ? 160 : 40 }

    /// ARM64 pointer authentication: high bits cleared when the result falls inside a module.
    func stripPointerAuth(_ value: UInt64) -> UInt64 {
        let stripped = value & addressRangeMask
        return dump.module(containing: stripped) != nil ? stripped : value
    }
}

/// Breakpad's `TerminateWalk`: a caller instruction pointer in the first page ends the stack,
/// and the stack pointer must grow (it may stay equal only when unwinding the context frame,
/// for leaf functions that keep their return address in a register).
func terminatesWalk(callerIP: UInt64, callerSP: UInt64, calleeSP: UInt64, firstUnwind: Bool) -> Bool {
    if callerIP < 1 << 12 { return true }
    return firstUnwind ? callerSP < calleeSP : callerSP <= calleeSP
}

/// Evaluates the STACK CFI rules at the callee's address and maps the result to the caller's
/// registers by the CPU's names: explicit rules first, `.ra`/`.cfa` for the instruction and
/// stack pointers when no rule names them, unmentioned callee-saved registers carried over.
func callerRegistersByCFI(_ rules: CFIRules, callee: CPUContext, env: UnwindEnvironment) -> [String: UInt64]? {
    let cpu = env.cpu
    var vars: [String: UInt64] = [:]
    for (name, value) in callee.values {
        for alias in cpu.cfiNames(of: name) { vars[alias] = value }
    }
    guard let result = try? rules.evaluate(callee: vars, wordSize: cpu.pointerSize, memory: env.memory) else { return nil }
    var regs: [String: UInt64] = [:]
    for (name, value) in result where !name.hasPrefix(".") {
        guard let canonical = cpu.canonicalRegister(name) else { continue }
        regs[canonical] = cpu.pointerSize == 4 ? value & 0xFFFF_FFFF : value
    }
    if regs[cpu.instructionPointer] == nil { regs[cpu.instructionPointer] = result[".ra"] }
    if regs[cpu.stackPointer] == nil { regs[cpu.stackPointer] = result[".cfa"] }
    for r in cpu.calleeSaved where regs[r] == nil { regs[r] = callee[r] }
    return regs
}

extension ContextCPU {
    /// The names a `.sym` file may use for one of our registers.
    func cfiNames(of register: String) -> [String] {
        Self.cfiNames[self]?[register] ?? [register]
    }

    /// Our name for a register a `.sym` rule assigns, or nil for one we do not track.
    func canonicalRegister(_ name: String) -> String? {
        Self.canonicalNames[self]?[name]
    }

    /// The `.sym` names of each register beyond its own (`$`-prefixed on x86; ARM's numbered
    /// names of the registers we call fp, sp, lr, pc). Both lookups are derived from this one
    /// table and precomputed: they run for every register of every frame unwound by CFI.
    private static let aliases: [ContextCPU: [String: [String]]] = [
        .x86: [:], .amd64: [:],
        .arm64: ["fp": ["x29"], "lr": ["x30"]],
        .arm: ["fp": ["r11"], "sp": ["r13"], "lr": ["r14"], "pc": ["r15"]],
    ]

    /// Register → every name a rule may use for it. x86 and amd64 rules write `$rsp`; the bare
    /// name is accepted too (`eflags` is in the context but not in the output order).
    private static let cfiNames: [ContextCPU: [String: [String]]] = {
        var out: [ContextCPU: [String: [String]]] = [:]
        for (cpu, extra) in aliases {
            let registers = Set(cpu.registerOrder + (cpu == .x86 || cpu == .amd64 ? ["eflags"] : []))
            out[cpu] = Dictionary(uniqueKeysWithValues: registers.map { r in
                (r, cpu == .x86 || cpu == .amd64 ? ["$" + r, r] : (extra[r] ?? []) + [r])
            })
        }
        return out
    }()

    /// Name in a rule (with or without `$`) → our register, for the registers in the output order.
    private static let canonicalNames: [ContextCPU: [String: String]] = {
        var out: [ContextCPU: [String: String]] = [:]
        for (cpu, extra) in aliases {
            var map: [String: String] = [:]
            for r in cpu.registerOrder {
                for name in [r] + (extra[r] ?? []) { map[name] = r; map["$" + name] = r }
            }
            out[cpu] = map
        }
        return out
    }()
}

/// x86-64 canonical addresses (the top 17 bits all equal).
func isCanonical64(_ address: UInt64) -> Bool {
    !(address > 0x7FFF_FFFF_FFFF && address < 0xFFFF_8000_0000_0000)
}
