import BreakpadSymbols
import Foundation
import MinidumpFormat
import SymbolSources

/// Symbols of the dump's modules, fetched on first use and shared by all threads of one walk;
/// records each module's symbol status for the output.
actor ModuleSymbols {
    private let modules: [MinidumpModule]
    private let supplier: SymbolSupplier?
    private var tables: [Int: SymbolTable?] = [:]
    private(set) var status: [Int: (SymbolStatus, String?, String?)] = [:]

    init(modules: [MinidumpModule], supplier: SymbolSupplier?) {
        self.modules = modules
        self.supplier = supplier
    }

    func table(_ index: Int) async -> SymbolTable? {
        if let known = tables[index] { return known }
        guard let supplier else { tables[index] = .some(nil); return nil }
        let m = modules[index]
        let identity = ModuleIdentity(debugFile: m.debugFile.isEmpty ? m.codeFile : m.debugFile, debugId: m.debugId,
                                      codeFile: m.codeFile, codeId: m.codeId.uppercased())
        let fetch = await supplier.symbols(for: identity)
        if let cached = tables[index] { return cached }  // another thread finished first
        tables[index] = .some(fetch.table)
        switch (fetch.table, fetch.notFound) {
        case (let t?, _): status[index] = (.loaded, fetch.report.source.flatMap { $0.hasPrefix("http") ? $0 : nil }, t.module.debugId)
        case (nil, .malformed?), (nil, .debugIdMismatch?): status[index] = (.corrupt, nil, nil)
        default: status[index] = (.missing, nil, nil)
        }
        return fetch.table
    }
}

/// The symbol tables one thread's walk has already asked for, so that each frame does not hop to
/// the shared `ModuleSymbols` actor again. Used by one task only.
final class ThreadTables {
    private let symbols: ModuleSymbols
    private var known: [Int: SymbolTable?] = [:]

    init(symbols: ModuleSymbols) { self.symbols = symbols }

    func table(_ index: Int) async -> SymbolTable? {
        if let t = known[index] { return t }
        let t = await symbols.table(index)
        known[index] = .some(t)
        return t
    }
}

/// Reads words of a thread's stack memory for unwinding.
struct ThreadMemory: StackMemory {
    let region: MemoryRegion?
    func readWord(at address: UInt64, size: Int) -> UInt64? { region?.word(at: address, size: size) }
}

/// Walks every thread of a dump (`minidump.md` §5–§6).
public struct Stackwalker: Sendable {
    public let supplier: SymbolSupplier?
    /// Module file name → certificate subject (from `--evil-json`).
    public let certSubjects: [String: String]
    /// Frames per thread at most; a corrupt stack cannot make a walk run away.
    public var maxFrames = 1 << 16

    public init(supplier: SymbolSupplier?, certSubjects: [String: String] = [:]) {
        self.supplier = supplier
        self.certSubjects = certSubjects
    }

    public func process(_ dump: Minidump) async throws(MinidumpError) -> ProcessState {
        guard let sys = dump.systemInfo else {
            // Say why: a SystemInfo stream that could not be read, or none at all.
            if let e = dump.streamErrors.first(where: { "\($0)".contains("SystemInfo") }) { throw e }
            throw .badStream(stream: "SystemInfo", reason: "not present (the CPU and OS of the dump are unknown)")
        }
        let arch = sys.processorArchitecture
        let pointerSize = ContextCPU(architecture: arch).pointerSize
        let symbols = ModuleSymbols(modules: dump.modules, supplier: supplier)

        // The crashing/requesting thread and the dump-writer thread.
        let requestingId = dump.exception?.threadId ?? dump.breakpadInfo?.requestingThreadId
        let dumpThreadId = dump.breakpadInfo?.dumpThreadId
        let requestingIndex = requestingId.flatMap { id in dump.threads.firstIndex { $0.threadId == id } }

        let context = WalkContext(dump: dump, arch: arch, pointerSize: pointerSize, symbols: symbols, maxFrames: maxFrames)
        var threads = [ThreadState?](repeating: nil, count: dump.threads.count)
        await withTaskGroup(of: (Int, ThreadState).self) { group in
            for (i, t) in dump.threads.enumerated() {
                let isRequesting = i == requestingIndex
                group.addTask {
                    var contextBytes = t.contextBytes
                    if isRequesting, let e = dump.exception?.contextBytes { contextBytes = e }
                    var frames: [StackFrame] = []
                    if t.threadId != dumpThreadId || isRequesting, let bytes = contextBytes,
                       let cpu = try? CPUContext.decode(bytes, architecture: arch) {
                        frames = await context.walk(thread: t, context: cpu)
                    }
                    return (i, ThreadState(threadId: t.threadId, name: dump.threadNames[t.threadId], frames: frames,
                                           lastErrorValue: Self.lastError(t, dump: dump, pointerSize: pointerSize)))
                }
            }
            for await (i, state) in group { threads[i] = state }
        }

        var modules: [ModuleState] = []
        let status = await symbols.status
        for (i, m) in dump.modules.enumerated() {
            var state = ModuleState(module: m, debugId: m.debugId, debugFile: m.debugFile)
            if let (s, url, resolvedId) = status[i] {
                state.symbolStatus = s
                state.symbolURL = url
                if state.debugId.isEmpty, let resolvedId { state.debugId = resolvedId }
            }
            state.certSubject = certSubjects[m.codeFile]
            modules.append(state)
        }

        var crash = CrashInfo(crashingThread: requestingIndex)
        if let e = dump.exception {
            crash.reason = CrashReason.describe(e, platform: sys.platformId)
            crash.address = CrashReason.address(e, windows: sys.isWindows, pointerSize: pointerSize)
            let exceptionContext = (e.contextBytes ?? requestingIndex.flatMap { dump.threads[$0].contextBytes })
                .flatMap { try? CPUContext.decode($0, architecture: arch) }
            crash.analysis = CrashAnalyzer.analyze(dump: dump, context: exceptionContext, reason: crash.reason ?? "",
                                                   address: crash.address ?? 0, platformId: sys.platformId)
        }
        if let a = dump.assertion {
            crash.assertion = Self.describe(a)
        }
        var uptime: UInt32?
        if let misc = dump.miscInfo, let created = misc.processCreateTime, dump.timeDateStamp >= created {
            uptime = dump.timeDateStamp - created
        }
        return ProcessState(
            pointerSize: pointerSize, systemInfo: Self.systemInfo(sys), crash: crash, hasException: dump.exception != nil,
            requestingThread: requestingIndex, dumpThreadId: dumpThreadId, threads: threads.compactMap { $0 },
            modules: modules, unloadedModules: dump.unloadedModules, pid: dump.miscInfo?.processId ?? dump.linuxProcStatusPid,
            processUptime: uptime, linuxMapsLineCount: dump.linuxMapsLineCount, lsbRelease: dump.linuxLsbRelease,
            macBootArgs: dump.macBootArgs, macCrashInfo: dump.macCrashInfo, processLimits: dump.linuxLimits,
            softErrorsJSON: dump.softErrorsJSON, handles: dump.handles,
            streams: dump.directory.map { ($0.type, $0.rva) }, modulesContainCertInfo: !certSubjects.isEmpty
                && modules.contains { $0.certSubject != nil })
    }

    /// Windows threads: `GetLastError()` from the TEB (offset 0x34 on x86, 0x68 on x64), when the
    /// dump captured the TEB.
    static func lastError(_ t: MinidumpThread, dump: Minidump, pointerSize: Int) -> String? {
        guard let sys = dump.systemInfo, sys.isWindows, t.teb != 0 else { return nil }
        let address = t.teb &+ (pointerSize == 4 ? 0x34 : 0x68)
        guard let value = dump.memoryRegion(containing: address)?.word(at: address, size: 4) else { return nil }
        return CrashReason.lastErrorName(UInt32(truncatingIfNeeded: value))
    }

    static func describe(_ a: AssertionInfo) -> String {
        var s = a.expression
        if !a.function.isEmpty { s += " in function \(a.function)" }
        if !a.file.isEmpty { s += ", in file \(a.file) at line \(a.line)" }
        if s.isEmpty {
            switch a.type {
            case 1: return "Invalid parameter passed to library function"
            case 2: return "Pure virtual function called"
            default: return String(format: "Unknown assertion type 0x%08x", a.type)
            }
        }
        return s
    }

    static func systemInfo(_ s: SystemInfo) -> SystemInfoState {
        let os: String
        switch s.platformId {
        case 0, 1, 2, 3: os = "Windows NT"
        case 0x8101: os = "Mac OS X"
        case 0x8102: os = "iOS"
        case 0x8201: os = "Linux"
        case 0x8202: os = "Solaris"
        case 0x8203: os = "Android"
        case 0x8204: os = "PS3"
        case 0x8205: os = "NaCl"
        case 0x8206: os = "Fuchsia"
        default: os = String(format: "0x%08x", s.platformId)
        }
        var version = "\(s.majorVersion).\(s.minorVersion).\(s.buildNumber)"
        if let csd = s.csdVersion, !csd.isEmpty { version += " \(csd)" }
        let arch: String
        switch s.processorArchitecture {
        case 0: arch = "x86"
        case 3: arch = "ppc"
        case 5: arch = "arm"
        case 9: arch = "amd64"
        case 12, 0x8003: arch = "arm64"
        case 0x8001: arch = "sparc"
        case 0x8002: arch = "ppc64"
        case 1, 0x8004: arch = "mips"
        default: arch = "unknown"
        }
        var info: String?
        if [0, 9, 10].contains(s.processorArchitecture) {
            let body = "family \(s.processorLevel) model \(s.processorRevision >> 8) stepping \(s.processorRevision & 0xFF)"
            // Only Windows writers fill the CPUID vendor; other writers leave garbage there.
            info = s.isWindows ? s.cpuVendor.map { "\($0) \(body)" } ?? body : body
        }
        // Breakpad's Linux writer puts `uname` (sysname release version machine) in the CSD
        // string and leaves the version numbers 0: the OS version is the release and version.
        if [0x8201, 0x8203].contains(s.platformId), let csd = s.csdVersion {
            let parts = csd.split(separator: " ")
            if parts.count >= 3 { version = parts.dropFirst().dropLast().joined(separator: " ") }
        }
        return SystemInfoState(os: os, osVersion: version, cpuArch: arch, cpuInfo: info, cpuCount: Int(s.numberOfProcessors))
    }
}

/// What one walk needs, shared by the threads.
struct WalkContext: Sendable {
    let dump: Minidump
    let arch: UInt16
    let pointerSize: Int
    let symbols: ModuleSymbols
    let maxFrames: Int

    func walk(thread: MinidumpThread, context: CPUContext) async -> [StackFrame] {
        let sp = context.stackPointer
        var region = thread.stack
        if region.map({ !$0.contains(sp) }) ?? true, let other = dump.memoryRegion(containing: sp) { region = other }
        let memory = ThreadMemory(region: region)
        let tables = ThreadTables(symbols: symbols)
        var frames = [StackFrame(instruction: context.instructionPointer, trust: .context, context: context)]
        await symbolize(&frames[0], tables)
        guard region != nil else { return frames }
        var scanned = 0
        while frames.count < maxFrames, scanned < 1 << 14 {
            // A caller with a time limit cancels the walk; a hostile stack cannot hold a worker.
            if Task.isCancelled { break }
            guard var caller = await callerFrame(frames, memory, tables) else { break }
            if caller.trust == .scan { scanned += 1 }
            await symbolize(&caller, tables)
            frames.append(caller)
        }
        return frames
    }

    // MARK: symbolization

    func symbolize(_ frame: inout StackFrame, _ tables: ThreadTables) async {
        guard let (index, module) = dump.module(containing: frame.instruction) else {
            var hits: [String: [UInt64]] = [:]
            for u in dump.unloadedModules where frame.instruction >= u.baseAddress && frame.instruction < u.endAddress {
                let name = MinidumpFormat.baseName(u.name)
                let offset = frame.instruction - u.baseAddress
                if !(hits[name]?.contains(offset) ?? false) { hits[name, default: []].append(offset) }
            }
            frame.unloadedModules = hits.keys.sorted().map { ($0, hits[$0]!) }
            return
        }
        frame.moduleIndex = index
        guard let table = await tables.table(index) else { return }
        let rel = frame.instruction - module.baseAddress
        guard let hit = table.lookup(rel) else { return }
        frame.function = hit.function.name
        frame.functionBase = module.baseAddress + hit.function.address
        frame.parameterSize = table.parameterSize(at: rel)
        frame.file = hit.file
        frame.line = hit.file == nil && hit.line == 0 ? nil : hit.line
        frame.lineBase = (hit.callSiteRangeAddress ?? hit.lineRecordAddress).map { module.baseAddress + $0 }
        frame.inlines = hit.inlines
    }

    // MARK: unwinding

    var isWindows: Bool { dump.systemInfo?.isWindows ?? false }

    var cpu: ContextCPU { ContextCPU(architecture: arch) }

    /// The return-address adjustment that turns a caller's resume address into its lookup address.
    var returnAddressAdjustment: UInt64 {
        switch cpu { case .x86, .amd64: return 1; case .arm: return 2; case .arm64: return 4 }
    }

    func callerFrame(_ frames: [StackFrame], _ memory: ThreadMemory, _ tables: ThreadTables) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        var caller = await byCFI(frames, memory, tables)
        if caller == nil { caller = byFramePointer(callee, memory) }
        if caller == nil { caller = await byScan(callee, memory, tables) }
        guard var found = caller else { return nil }
        let ip = found.context.instructionPointer, sp = found.context.stackPointer
        // Termination rules.
        if ip < 4096 { return nil }
        switch cpu {
        case .x86, .amd64:
            if sp <= callee.context.stackPointer { return nil }
        case .arm:
            if sp < callee.context.stackPointer || (sp == callee.context.stackPointer && callee.trust != .context) { return nil }
        case .arm64:
            if sp < callee.context.stackPointer { return nil }
            if sp == callee.context.stackPointer, !(callee.trust == .context || found.trust == .cfi) || ip == callee.context.instructionPointer {
                return nil
            }
        }
        found.instruction = ip &- returnAddressAdjustment
        return found
    }

    private func registerVariables(_ c: CPUContext) -> [String: UInt64] {
        var vars: [String: UInt64] = [:]
        for (k, v) in c.values {
            vars[k] = v
            vars["$" + k] = v
        }
        if cpu == .arm64 { vars["x29"] = c["fp"]; vars["x30"] = c["lr"] }
        if cpu == .arm { vars["r11"] = c["fp"]; vars["r13"] = c["sp"]; vars["r14"] = c["lr"]; vars["r15"] = c["pc"] }
        return vars
    }

    private func canonicalName(_ register: String) -> String {
        let name = register.hasPrefix("$") ? String(register.dropFirst()) : register
        switch (cpu, name) {
        case (.arm64, "x29"): return "fp"
        case (.arm64, "x30"): return "lr"
        case (.arm, "r11"): return "fp"
        case (.arm, "r13"): return "sp"
        case (.arm, "r14"): return "lr"
        case (.arm, "r15"): return "pc"
        default: return name
        }
    }

    func byCFI(_ frames: [StackFrame], _ memory: ThreadMemory, _ tables: ThreadTables) async -> StackFrame? {
        let callee = frames[frames.count - 1]
        guard let moduleIndex = callee.moduleIndex, let table = await tables.table(moduleIndex) else { return nil }
        let rel = callee.instruction - dump.modules[moduleIndex].baseAddress
        var recovered: [String: UInt64]?
        if cpu == .x86, let win = table.stackWin(at: rel) {
            // The parameter size of the function the callee called (0 for the youngest frame).
            let grandCallee = frames.count >= 2 ? frames[frames.count - 2].parameterSize ?? 0 : 0
            var regs: [String: UInt64] = [:]
            for r in ["esp", "ebp", "ebx"] { if let v = callee.context[r] { regs["$" + r] = v } }
            if let result = try? win.unwind(registers: regs, grandCalleeParameterSize: grandCallee, memory: memory),
               result["$eip"] != nil, result["$esp"] != nil {
                recovered = Dictionary(uniqueKeysWithValues: result.map { (canonicalName($0.key), $0.value & 0xFFFF_FFFF) })
            }
        }
        if recovered == nil, let rules = table.cfiRules(at: rel),
           let result = try? rules.evaluate(callee: registerVariables(callee.context), wordSize: pointerSize, memory: memory) {
            var regs: [String: UInt64] = [:]
            for (k, v) in result where k != ".cfa" && k != ".ra" { regs[canonicalName(k)] = v }
            regs[cpu.stackPointer] = regs[cpu.stackPointer] ?? result[".cfa"]
            regs[cpu.instructionPointer] = result[".ra"]
            recovered = regs
        }
        guard var regs = recovered else { return nil }
        for r in cpu.calleeSaved where regs[r] == nil { regs[r] = callee.context[r] }
        if cpu == .arm64, let pc = regs["pc"] { regs["pc"] = stripPointerAuth(pc) }
        return StackFrame(instruction: 0, trust: .cfi, context: CPUContext(cpu: cpu, values: regs.filter { cpu.registerOrder.contains($0.key) }))
    }

    func byFramePointer(_ callee: StackFrame, _ memory: ThreadMemory) -> StackFrame? {
        let w = UInt64(pointerSize)
        switch cpu {
        case .x86, .amd64:
            guard let fp = callee.context[cpu.framePointer], fp != 0 else { return nil }
            // Windows x64 code may point the frame register into the middle of the locals (an
            // UNWIND_INFO frame offset of 0–15 × 16 bytes), so the saved frame pointer and return
            // address can sit up to 240 bytes above it; other systems keep them at the frame pointer.
            let probes: [UInt64] = cpu == .amd64 && isWindows ? (0..<16).map { $0 * 16 } : [0]
            for delta in probes {
                let base = fp &+ delta
                guard base < UInt64.max - 2 * w, let callerFP = memory.readWord(at: base, size: pointerSize),
                      let ip = memory.readWord(at: base &+ w, size: pointerSize) else { continue }
                let sp = base &+ 2 * w
                // The frame pointers must be well ordered. On x86 a zero frame pointer (the end of
                // the chain) is still accepted: the walk then ends on the caller's IP, as
                // rust-minidump's x86 goldens show; on amd64 it rejects the strategy and scanning
                // takes over. The new SP and frame pointer must lie in the stack.
                let ordered = callerFP >= sp || (cpu == .x86 && callerFP == 0)
                guard sp > callee.context.stackPointer, ordered, isCanonical(ip) else { continue }
                if cpu == .amd64 {
                    guard memory.readWord(at: sp, size: 8) != nil, memory.readWord(at: callerFP, size: 8) != nil else { continue }
                    // A probed slot must hold a return address into a loaded module.
                    if delta > 0, dump.module(containing: ip &- 1) == nil { continue }
                }
                return StackFrame(instruction: 0, trust: .framePointer,
                                  context: CPUContext(cpu: cpu, values: [cpu.instructionPointer: ip, cpu.stackPointer: sp, cpu.framePointer: callerFP]))
            }
            return nil
        case .arm64:
            guard let fp = callee.context["fp"], fp != 0,
                  let callerFP = memory.readWord(at: fp, size: 8), let lr = memory.readWord(at: fp &+ 8, size: 8) else { return nil }
            let pc = stripPointerAuth(lr)
            return StackFrame(instruction: 0, trust: .framePointer,
                              context: CPUContext(cpu: cpu, values: ["pc": pc, "sp": fp &+ 16, "fp": stripPointerAuth(callerFP), "lr": pc]))
        case .arm:
            return nil
        }
    }

    func byScan(_ callee: StackFrame, _ memory: ThreadMemory, _ tables: ThreadTables) async -> StackFrame? {
        let w = UInt64(pointerSize)
        let words: UInt64 = callee.trust == .context || callee.trust == .cfi ? 160 : 40
        let start = callee.context.stackPointer
        for i in 0..<words {
            let slot = start &+ i * w
            guard let candidate = memory.readWord(at: slot, size: pointerSize) else { return nil }
            guard await isPlausibleReturnAddress(candidate, tables) else { continue }
            let sp = slot &+ w
            var values: [String: UInt64] = [cpu.instructionPointer: candidate, cpu.stackPointer: sp]
            // The caller's frame pointer: saved just below the return address by a standard
            // prologue (and then pointing a plausible distance up the stack), or left unchanged
            // by a function that does not use it. The first slot leaves no room for a saved one.
            if i > 0, let fp = callee.context[cpu.framePointer] {
                let savedAt = slot &- w
                if fp == savedAt, let next = memory.readWord(at: savedAt, size: pointerSize), next > slot,
                   next - savedAt <= 128 * 1024, memory.readWord(at: next, size: pointerSize) != nil {
                    values[cpu.framePointer] = next
                } else if fp >= sp {
                    values[cpu.framePointer] = fp
                }
            }
            return StackFrame(instruction: 0, trust: .scan, context: CPUContext(cpu: cpu, values: values))
        }
        return nil
    }

    private func isPlausibleReturnAddress(_ address: UInt64, _ tables: ThreadTables) async -> Bool {
        guard address != 0, isCanonical(address) else { return false }
        let lookup = address &- returnAddressAdjustment
        guard let (index, module) = dump.module(containing: lookup) else { return false }
        guard let table = await tables.table(index) else { return true }
        return !(table.function(at: lookup - module.baseAddress)?.name.isEmpty ?? true)
    }

    private func isCanonical(_ address: UInt64) -> Bool {
        if pointerSize == 4 { return address <= 0xFFFF_FFFF }
        return !(address >= 0x0000_8000_0000_0000 && address <= 0xFFFF_7FFF_FFFF_FFFF)
    }

    /// Clears ARM64 pointer-authentication bits above the highest address a module occupies.
    private func stripPointerAuth(_ value: UInt64) -> UInt64 {
        let highest = max((1 << 47) - 1, dump.modules.map(\.endAddress).max() ?? 0)
        var mask: UInt64 = 1
        while mask <= highest, mask != 0 { mask <<= 1 }
        return mask == 0 ? value : value & (mask - 1)
    }
}
