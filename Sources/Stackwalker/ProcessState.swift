import BreakpadSymbols
import MinidumpFormat

/// How a frame was found (rust-minidump's `FrameTrust`).
public enum FrameTrust: String, Sendable {
    case context, cfi, cfiScan = "cfi_scan", framePointer = "frame_pointer", scan, prewalked, none = "non"
    /// Breakpad's FRAME_TRUST_LEAF: a Windows x64 leaf function unwound by simulating a return.
    case leaf

    /// The value `--json` prints: rust-minidump's vocabulary, which has no leaf trust (it finds
    /// such a frame by scanning the first stack word), so strict consumers of its schema keep working.
    public var jsonName: String { self == .leaf ? FrameTrust.scan.rawValue : rawValue }

    public var humanDescription: String {
        switch self {
        case .context: return "given as instruction pointer in context"
        case .cfi: return "call frame info"
        case .cfiScan: return "call frame info with scanning"
        case .framePointer: return "previous frame's frame pointer"
        case .scan: return "stack scanning"
        case .prewalked: return "recovered by external stack walker"
        case .leaf: return "simulating a return from leaf function"
        case .none: return "unknown"
        }
    }
}

public struct StackFrame: Sendable {
    /// The address used for symbol lookup: the context IP for frame 0, else the return address
    /// minus 1 (x86/amd64), 2 (arm) or 4 (arm64).
    public var instruction: UInt64
    public var trust: FrameTrust
    /// Registers known for this frame (the recovered ones for callers).
    public var context: CPUContext
    public var moduleIndex: Int?
    public var function: String?
    public var functionBase: UInt64?
    public var parameterSize: UInt32?
    public var file: String?
    public var line: UInt32?
    public var lineBase: UInt64?
    public var inlines: [InlineFrameInfo] = []
    /// Unloaded modules overlapping the address, when no loaded module contains it.
    public var unloadedModules: [(name: String, offsets: [UInt64])] = []
    /// Registers not recovered for this frame but still in Breakpad's register record, which
    /// copies the callee's record for every strategy but CFI. Its frame-pointer rules read them
    /// (only those registers are kept: `ContextCPU.registersReadFromRecord`).
    var stale: [String: UInt64] = [:]
    /// Known registers the output leaves out, as rust-minidump does.
    var unreportedRegisters: Set<String> = []

    /// The registers the JSON and human outputs print, in order.
    public var reportedRegisters: [(String, UInt64)] {
        unreportedRegisters.isEmpty ? context.orderedRegisters : context.orderedRegisters.filter { !unreportedRegisters.contains($0.0) }
    }

    /// A register as Breakpad's frame-pointer rules read it: recovered, else stale, else 0.
    func register(_ name: String) -> UInt64 { context[name] ?? stale[name] ?? 0 }

}

public struct ThreadState: Sendable {
    public var threadId: UInt32
    public var name: String?
    public var frames: [StackFrame]
    public var lastErrorValue: String?
}

public enum SymbolStatus: Sendable, Equatable {
    case notLookedUp, loaded, missing, corrupt
}

public struct ModuleState: Sendable {
    public var module: MinidumpModule
    public var symbolStatus: SymbolStatus = .notLookedUp
    public var symbolURL: String?
    public var certSubject: String?
    /// The debug id after symbol lookup (a code-id lookup can resolve a missing one).
    public var debugId: String
    public var debugFile: String
}

public struct CrashInfo: Sendable {
    public var reason: String?
    public var address: UInt64?
    public var crashingThread: Int?
    public var assertion: String?
    /// The crashing instruction's analysis (nil without an exception).
    public var analysis: CrashAnalysis?
}

public struct SystemInfoState: Sendable {
    public var os: String
    public var osVersion: String?
    public var cpuArch: String
    public var cpuInfo: String?
    public var cpuCount: Int
}

/// Everything the stackwalker learned from a dump: what `--json` and `--human` print.
public struct ProcessState: Sendable {
    public var pointerSize: Int
    public var systemInfo: SystemInfoState
    public var crash: CrashInfo
    public var hasException: Bool
    public var requestingThread: Int?
    public var dumpThreadId: UInt32?
    public var threads: [ThreadState]
    public var modules: [ModuleState]
    public var unloadedModules: [UnloadedModule]
    public var pid: UInt32?
    public var processUptime: UInt32?
    public var linuxMapsLineCount: Int?
    public var lsbRelease: [String: String]?
    public var macBootArgs: String?
    public var macCrashInfo: [MacCrashInfoRecord]?
    public var processLimits: [ProcessLimit]?
    public var softErrorsJSON: String?
    public var handles: [HandleDescriptor]?
    public var streams: [(type: UInt32, rva: UInt32)]
    public var modulesContainCertInfo: Bool
}
