/// Stream type ids (`minidump.md` §2).
public enum StreamType {
    public static let unused: UInt32 = 0
    public static let threadList: UInt32 = 3
    public static let moduleList: UInt32 = 4
    public static let memoryList: UInt32 = 5
    public static let exception: UInt32 = 6
    public static let systemInfo: UInt32 = 7
    public static let memory64List: UInt32 = 9
    public static let handleData: UInt32 = 12
    public static let unloadedModuleList: UInt32 = 14
    public static let miscInfo: UInt32 = 15
    public static let memoryInfoList: UInt32 = 16
    public static let threadInfoList: UInt32 = 17
    public static let systemMemoryInfo: UInt32 = 21
    public static let processVmCounters: UInt32 = 22
    public static let threadNames: UInt32 = 24
    public static let breakpadInfo: UInt32 = 0x4767_0001
    public static let assertionInfo: UInt32 = 0x4767_0002
    public static let linuxCpuInfo: UInt32 = 0x4767_0003
    public static let linuxProcStatus: UInt32 = 0x4767_0004
    public static let linuxLsbRelease: UInt32 = 0x4767_0005
    public static let linuxCmdLine: UInt32 = 0x4767_0006
    public static let linuxEnviron: UInt32 = 0x4767_0007
    public static let linuxAuxv: UInt32 = 0x4767_0008
    public static let linuxMaps: UInt32 = 0x4767_0009
    public static let linuxDsoDebug: UInt32 = 0x4767_000A
    public static let crashpadInfo: UInt32 = 0x4350_0001
    public static let mozMacosCrashInfo: UInt32 = 0x4D7A_0001
    public static let mozMacosBootargs: UInt32 = 0x4D7A_0002
    public static let mozLinuxLimits: UInt32 = 0x4D7A_0003
    public static let mozSoftErrors: UInt32 = 0x4D7A_0004

    /// Name and vendor as rust-minidump prints them, for the streams it knows.
    public static func describe(_ type: UInt32) -> (name: String, vendor: String)? {
        let official: [UInt32: String] = [
            0: "UnusedStream", 1: "ReservedStream0", 2: "ReservedStream1", 3: "ThreadListStream", 4: "ModuleListStream",
            5: "MemoryListStream", 6: "ExceptionStream", 7: "SystemInfoStream", 8: "ThreadExListStream",
            9: "Memory64ListStream", 10: "CommentStreamA", 11: "CommentStreamW", 12: "HandleDataStream",
            13: "FunctionTableStream", 14: "UnloadedModuleListStream", 15: "MiscInfoStream", 16: "MemoryInfoListStream",
            17: "ThreadInfoListStream", 18: "HandleOperationListStream", 19: "TokenStream", 20: "JavaScriptDataStream",
            21: "SystemMemoryInfoStream", 22: "ProcessVmCountersStream", 23: "IptTraceStream", 24: "ThreadNamesStream",
        ]
        if let n = official[type] { return (n, "Official") }
        let google: [UInt32: String] = [
            0x4767_0001: "BreakpadInfoStream", 0x4767_0002: "AssertionInfoStream", 0x4767_0003: "LinuxCpuInfo",
            0x4767_0004: "LinuxProcStatus", 0x4767_0005: "LinuxLsbRelease", 0x4767_0006: "LinuxCmdLine",
            0x4767_0007: "LinuxEnviron", 0x4767_0008: "LinuxAuxv", 0x4767_0009: "LinuxMaps", 0x4767_000A: "LinuxDsoDebug",
            0x4350_0001: "CrashpadInfoStream",
        ]
        if let n = google[type] { return (n, type >> 16 == 0x4350 ? "Crashpad Extension" : "Google Extension") }
        let mozilla: [UInt32: String] = [
            0x4D7A_0001: "MozMacosCrashInfoStream", 0x4D7A_0002: "MozMacosBootargsStream",
            0x4D7A_0003: "MozLinuxLimits", 0x4D7A_0004: "MozSoftErrors",
        ]
        if let n = mozilla[type] { return (n, "Mozilla Extension") }
        return nil
    }
}

public struct SystemInfo: Sendable, Equatable {
    public var processorArchitecture: UInt16
    public var processorLevel: UInt16
    public var processorRevision: UInt16
    public var numberOfProcessors: UInt8
    public var productType: UInt8
    public var majorVersion: UInt32
    public var minorVersion: UInt32
    public var buildNumber: UInt32
    public var platformId: UInt32
    public var csdVersion: String?
    public var suiteMask: UInt16
    /// x86/amd64: the CPUID vendor string (`GenuineIntel`); nil when empty or not x86.
    public var cpuVendor: String?
    public var cpuVersionInformation: UInt32
    public var cpuFeatureInformation: UInt32
}

extension SystemInfo {
    /// Win32s, Windows, Windows NT or Windows CE.
    public var isWindows: Bool { platformId <= 3 }
    /// macOS or iOS.
    public var isApple: Bool { platformId == 0x8101 || platformId == 0x8102 }
}

public struct FixedFileInfo: Sendable, Equatable {
    public var signature: UInt32
    public var fileVersionHigh: UInt32
    public var fileVersionLow: UInt32

    /// `a.b.c.d` when the signature is valid (0xFEEF04BD).
    public var version: String? {
        guard signature == 0xFEEF_04BD else { return nil }
        return "\(fileVersionHigh >> 16).\(fileVersionHigh & 0xFFFF).\(fileVersionLow >> 16).\(fileVersionLow & 0xFFFF)"
    }
}

public enum CodeViewRecord: Sendable, Equatable {
    case pdb70(guid: [UInt8], age: UInt32, file: String)
    case pdb20(signature: UInt32, age: UInt32, file: String)
    case elf(buildId: [UInt8])
    case other(signature: UInt32)
}

public struct MinidumpModule: Sendable, Equatable {
    public var baseAddress: UInt64
    public var size: UInt32
    public var checksum: UInt32
    public var timeDateStamp: UInt32
    /// The code file as recorded (full path).
    public var name: String
    public var versionInfo: FixedFileInfo
    public var codeView: CodeViewRecord?
    /// Set for macOS/iOS dumps, whose RSDS-shaped records carry the Mach-O UUID.
    public var isApplePlatform = false

    public var endAddress: UInt64 { baseAddress &+ UInt64(size) }

    /// Debug id: GUID + age for PDB 7.0 and Mach-O, signature + age for PDB 2.0, the
    /// GUID-shaped first 16 bytes of an ELF build id (age 0). Empty when there is none.
    public var debugId: String {
        switch codeView {
        case .pdb70(let guid, let age, _):
            if guid.allSatisfy({ $0 == 0 }) { return "" }
            return DebugIdentifier.guidString(guid) + String(age, radix: 16, uppercase: true)
        case .pdb20(let signature, let age, _):
            return hex8(signature) + String(age, radix: 16, uppercase: true)
        case .elf(let buildId):
            if buildId.allSatisfy({ $0 == 0 }) || buildId.isEmpty { return "" }
            return DebugIdentifier.fromBuildId(buildId)
        default: return ""
        }
    }

    /// Basename of the debug file (the PDB, or the code file for ELF/Mach-O).
    public var debugFile: String {
        switch codeView {
        case .pdb70(_, _, let file), .pdb20(_, _, let file): return baseName(file)
        case .elf: return baseName(name)
        default: return ""
        }
    }

    /// Code id, lowercase: ELF build id hex; Mach-O UUID; PE timestamp + image size.
    public var codeId: String {
        switch codeView {
        case .elf(let buildId):
            return buildId.map { hex2($0) }.joined()
        case .pdb70(let guid, _, _) where isApplePlatform:
            return DebugIdentifier.guidString(guid).lowercased()
        default:
            if timeDateStamp == 0 && size == 0 { return "" }
            return (hex8(timeDateStamp) + String(size, radix: 16)).lowercased()
        }
    }

    public var codeFile: String { baseName(name) }
}

public struct UnloadedModule: Sendable, Equatable {
    public var baseAddress: UInt64
    public var size: UInt32
    public var checksum: UInt32
    public var timeDateStamp: UInt32
    public var name: String
    public var endAddress: UInt64 { baseAddress &+ UInt64(size) }
    public var codeId: String { (hex8(timeDateStamp) + String(size, radix: 16)).lowercased() }
}

public struct MinidumpThread: Sendable {
    public var threadId: UInt32
    public var suspendCount: UInt32
    public var priorityClass: UInt32
    public var priority: UInt32
    public var teb: UInt64
    public var stackStart: UInt64
    /// The thread's stack memory, if inside the file.
    public var stack: MemoryRegion?
    /// The raw CPU context bytes, if inside the file.
    public var contextBytes: ByteView?
}

public struct ExceptionInfo: Sendable {
    public var threadId: UInt32
    public var code: UInt32
    public var flags: UInt32
    public var record: UInt64
    public var address: UInt64
    public var parameters: [UInt64]
    public var contextBytes: ByteView?
}

public struct MiscInfo: Sendable, Equatable {
    public var sizeOfInfo: UInt32
    public var flags1: UInt32
    public var processId: UInt32?
    public var processCreateTime: UInt32?
    public var processUserTime: UInt32?
    public var processKernelTime: UInt32?
    /// Version 2 (flags1 0x4): processor power information.
    public var processorMaxMhz: UInt32?
    public var processorCurrentMhz: UInt32?
    public var processorMhzLimit: UInt32?
    /// Version 3: integrity level (0x10), execute flags (0x20), protected process (0x80), time zone (0x40).
    public var processIntegrityLevel: UInt32?
    public var processExecuteFlags: UInt32?
    public var protectedProcess: UInt32?
    public var timeZoneId: UInt32?
    /// Version 4 (flags1 0x100): the OS build strings.
    public var buildString: String?
    public var debugBuildString: String?
    /// Version 5 (flags1 0x400): the process cookie.
    public var processCookie: UInt32?
}

public struct BreakpadInfo: Sendable, Equatable {
    public var dumpThreadId: UInt32?
    public var requestingThreadId: UInt32?
}

public struct AssertionInfo: Sendable, Equatable {
    public var expression: String
    public var function: String
    public var file: String
    public var line: UInt32
    public var type: UInt32
}

public struct HandleDescriptor: Sendable, Equatable {
    public var handle: UInt64
    public var typeName: String?
    public var objectName: String?
}

public struct MemoryInfo: Sendable, Equatable {
    public var baseAddress: UInt64
    public var allocationBase: UInt64
    public var allocationProtection: UInt32
    public var regionSize: UInt64
    public var state: UInt32
    public var protection: UInt32
    public var type: UInt32
}

/// Of `count` items sorted by start address, the index of the last one that starts at or below
/// `address` (binary search), or nil when every item starts above it.
public func lastIndex(startingAtOrBelow address: UInt64, count: Int, start: (Int) -> UInt64) -> Int? {
    var lo = 0, hi = count
    while lo < hi {
        let mid = (lo + hi) / 2
        if start(mid) <= address { lo = mid + 1 } else { hi = mid }
    }
    return lo > 0 ? lo - 1 : nil
}

/// One line of Linux's `/proc/<pid>/maps`: `start-end perms offset dev inode [path]`.
public struct LinuxMapping: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public var readable: Bool
    public var writable: Bool
    public var executable: Bool

    public init(start: UInt64, end: UInt64, readable: Bool, writable: Bool, executable: Bool) {
        (self.start, self.end, self.readable, self.writable, self.executable) = (start, end, readable, writable, executable)
    }

    /// Nil for a line that is not a mapping (no range, end before start, short permissions).
    public init?(line: Substring) {
        let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard fields.count >= 2 else { return nil }
        let range = fields[0].split(separator: "-")
        let perms = Array(fields[1].utf8)
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16), start < end,
              perms.count >= 3 else { return nil }
        self.init(start: start, end: end, readable: perms[0] == UInt8(ascii: "r"), writable: perms[1] == UInt8(ascii: "w"),
                  executable: perms[2] == UInt8(ascii: "x"))
    }
}

/// Bytes of the process's memory captured at `start`.
public struct MemoryRegion: Sendable {
    public var start: UInt64
    public var bytes: ByteView
    public var end: UInt64 { start &+ UInt64(bytes.count) }

    public func contains(_ address: UInt64, size: Int = 1) -> Bool {
        address >= start && address &- start <= UInt64(bytes.count) && UInt64(size) <= UInt64(bytes.count) - (address &- start)
    }

    /// Up to `maxCount` bytes from `address` to the end of the region (empty outside it).
    public func bytes(at address: UInt64, maxCount: Int) -> [UInt8] {
        guard contains(address) else { return [] }
        let offset = address - start
        let n = min(UInt64(max(0, maxCount)), UInt64(bytes.count) - offset)
        return (try? bytes.slice(offset, n, "memory").bytes) ?? []
    }

    /// A little-endian word of 4 or 8 bytes at `address`, or nil outside the region.
    public func word(at address: UInt64, size: Int) -> UInt64? {
        guard contains(address, size: size) else { return nil }
        let o = address - start
        return size == 4 ? (try? bytes.u32(o, "")).map(UInt64.init) : try? bytes.u64(o, "")
    }
}

func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}

func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16)
    return s.count == 1 ? "0" + s : s
}

/// The last component of a Unix or Windows path.
public func baseName(_ path: String) -> String {
    guard let i = path.lastIndex(where: { $0 == "/" || $0 == "\\" }) else { return path }
    return String(path[path.index(after: i)...])
}

public enum DebugIdentifier {
    /// `%08X%04X%04X` of the little-endian GUID fields, then data4 as 16 hex digits.
    public static func guidString(_ g: [UInt8]) -> String {
        guard g.count >= 16 else { return "" }
        let d1 = UInt32(g[0]) | UInt32(g[1]) << 8 | UInt32(g[2]) << 16 | UInt32(g[3]) << 24
        let d2 = UInt16(g[4]) | UInt16(g[5]) << 8
        let d3 = UInt16(g[6]) | UInt16(g[7]) << 8
        func h4(_ v: UInt16) -> String { let s = String(v, radix: 16, uppercase: true); return String(repeating: "0", count: 4 - s.count) + s }
        return hex8(d1) + h4(d2) + h4(d3) + g[8..<16].map { hex2($0).uppercased() }.joined()
    }

    /// An ELF build id as a debug id: its first 16 bytes (zero-padded) read as a GUID, age 0.
    public static func fromBuildId(_ id: [UInt8]) -> String {
        var g = Array(id.prefix(16))
        while g.count < 16 { g.append(0) }
        return guidString(g) + "0"
    }
}

/// One record of Mozilla's macOS `__crash_info` stream (`crashreporter_annotations_t`).
public struct MacCrashInfoRecord: Sendable, Equatable {
    public var version: UInt64
    /// Version 4 and later.
    public var thread: UInt64?
    public var dialogMode: UInt64?
    /// Version 5 and later.
    public var abortCause: UInt64?
    public var module: String?
    public var message: String?
    public var signatureString: String?
    public var backtrace: String?
    public var message2: String?
}

/// One line of `/proc/self/limits` (Mozilla's Linux limits stream).
public struct ProcessLimit: Sendable, Equatable {
    public var name: String
    public var soft: String
    public var hard: String
    public var unit: String
}
