import BreakpadSymbols
import Foundation
import MinidumpFormat
import Synchronization
import SymbolSources

/// Walks every thread of a dump (`minidump.md` §5–§6).
public struct Stackwalker: Sendable {
    public let symbols: (any SymbolProvider)?
    /// Module file name → certificate subject (from `--evil-json`).
    public let certSubjects: [String: String]
    /// Frames per thread at most; a corrupt stack cannot make a walk run away.
    public var maxFrames = 1 << 16
    /// Scanned frames per thread at most (Breakpad's `max_frames_scanned_`); past it only CFI
    /// and frame pointers may find callers.
    public var maxScannedFrames = 1 << 14
    /// Threads walked per dump at most; later threads are listed without frames. With the
    /// total below, this bounds the work one hostile dump can ask for.
    public var maxThreads = 4_096
    /// Frames per dump at most, over all threads.
    public var maxTotalFrames = 1 << 20

    public init(symbols: (any SymbolProvider)?, certSubjects: [String: String] = [:]) {
        self.symbols = symbols
        self.certSubjects = certSubjects
    }

    public init(supplier: SymbolSupplier?, certSubjects: [String: String] = [:]) {
        self.init(symbols: supplier, certSubjects: certSubjects)
    }

    public func process(_ dump: Minidump) async throws(MinidumpError) -> ProcessState {
        guard let sys = dump.systemInfo else {
            // Say why: a SystemInfo stream that could not be read, or none at all.
            if let e = dump.streamErrors.first(where: { "\($0)".contains("SystemInfo") }) { throw e }
            throw .badStream(stream: "SystemInfo", reason: "not present (the CPU and OS of the dump are unknown)")
        }
        let arch = sys.processorArchitecture
        let cpu = ContextCPU(architecture: arch)
        let pointerSize = cpu.pointerSize
        let symbols = ModuleSymbols(modules: dump.modules, provider: self.symbols)

        // The crashing/requesting thread and the dump-writer thread.
        let requestingId = dump.exception?.threadId ?? dump.breakpadInfo?.requestingThreadId
        let dumpThreadId = dump.breakpadInfo?.dumpThreadId
        let requestingIndex = requestingId.flatMap { id in dump.threads.firstIndex { $0.threadId == id } }

        let context = WalkContext(dump: dump, cpu: cpu, symbols: symbols, maxFrames: maxFrames, maxScannedFrames: maxScannedFrames,
                                  budget: FrameBudget(maxTotalFrames), addressRangeMask: UnwindEnvironment.addressRangeMask(dump.modules))
        var threads = [ThreadState?](repeating: nil, count: dump.threads.count)
        await withTaskGroup(of: (Int, ThreadState).self) { group in
            for (i, t) in dump.threads.enumerated() {
                let isRequesting = i == requestingIndex
                group.addTask {
                    var contextBytes = t.contextBytes
                    if isRequesting, let e = dump.exception?.contextBytes { contextBytes = e }
                    var frames: [StackFrame] = []
                    if i < maxThreads || isRequesting, t.threadId != dumpThreadId || isRequesting, let bytes = contextBytes,
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
            // The CPUID vendor exists only in the x86 member of the CPU_INFORMATION union; amd64
            // dumps hold processor feature bits there. Only Windows writers fill it.
            let x86 = s.processorArchitecture == 0 || s.processorArchitecture == 10
            info = s.isWindows && x86 ? s.cpuVendor.map { "\($0) \(body)" } ?? body : body
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
    let cpu: ContextCPU
    let symbols: ModuleSymbols
    let maxFrames: Int
    let maxScannedFrames: Int
    let budget: FrameBudget
    /// ARM64 pointer-authentication mask, one per dump.
    let addressRangeMask: UInt64

    /// The thread's stack: its own memory descriptor when that is usable, else the memory-list
    /// region holding the stack's start address (Windows writers often leave the descriptor's
    /// RVA 0 and store stacks in the MemoryList or Memory64List).
    func stackRegion(_ thread: MinidumpThread) -> MemoryRegion? {
        if let stack = thread.stack { return stack }
        guard thread.stackStart != 0 else { return nil }
        return dump.memoryRegion(containing: thread.stackStart)
    }

    func walk(thread: MinidumpThread, context: CPUContext) async -> [StackFrame] {
        var region = stackRegion(thread)
        // A 32-bit CPU cannot have memory above 4 GiB: such a stack descriptor is corrupt.
        if cpu.pointerSize == 4, let r = region, r.end > 1 << 32 { region = nil }
        let tables = ThreadTables(symbols: symbols)
        let env = UnwindEnvironment(dump: dump, cpu: cpu, memory: ThreadMemory(region: region), tables: tables,
                                    addressRangeMask: addressRangeMask)
        var first = StackFrame(instruction: context.instructionPointer, trust: .context, context: context)
        if cpu == .arm64, let lr = context["lr"] { first.context["lr"] = env.stripPointerAuth(lr) }
        guard budget.take() else { return [] }
        var frames = [first]
        await symbolize(&frames[0], tables)
        guard region != nil else { return frames }
        let unwinder = cpu.unwinder
        var scanned = 0
        while frames.count < maxFrames {
            // A caller with a time limit cancels the walk; a hostile stack cannot hold a worker.
            if Task.isCancelled { break }
            let callee = frames[frames.count - 1]
            guard budget.take() else { break }
            guard var caller = await unwinder.caller(of: frames, scanAllowed: scanned < maxScannedFrames, in: env) else { break }
            let ip = caller.context.instructionPointer
            if terminatesWalk(callerIP: ip, callerSP: caller.context.stackPointer, calleeSP: callee.context.stackPointer,
                              firstUnwind: callee.trust == .context) {
                break
            }
            if caller.trust != .cfi {
                for r in cpu.registersReadFromRecord where caller.context[r] == nil { caller.stale[r] = callee.register(r) }
            }
            caller.instruction = ip &- cpu.returnAddressAdjustment
            if caller.trust == .scan || caller.trust == .cfiScan || caller.trust == .none { scanned += 1 }
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
}

/// The frames a whole dump may still add, shared by its concurrent thread walks.
final class FrameBudget: Sendable {
    private let remaining: Mutex<Int>
    init(_ frames: Int) { remaining = Mutex(frames) }

    /// Takes one frame from the budget; false when it is spent.
    func take() -> Bool {
        remaining.withLock { n in
            guard n > 0 else { return false }
            n -= 1
            return true
        }
    }
}
