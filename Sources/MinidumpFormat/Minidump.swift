import Foundation

/// A minidump file: header, stream directory and the decoded streams. Opening maps the file and
/// reads every stream it knows; the memory of threads and the memory lists stay in the mapping.
/// A stream that cannot be read is recorded in `streamErrors` (and the rest of the dump is still
/// usable), except for a broken header or directory, which fail `open`.
public final class Minidump: @unchecked Sendable {
    public let bytes: ByteView
    public let version: UInt32
    public let timeDateStamp: UInt32
    public let flags: UInt64
    public private(set) var directory: [(type: UInt32, size: UInt32, rva: UInt32)] = []

    public private(set) var systemInfo: SystemInfo?
    public private(set) var threads: [MinidumpThread] = []
    public private(set) var threadNames: [UInt32: String] = [:]
    public private(set) var modules: [MinidumpModule] = [] {
        didSet { sortedModules = modules.indices.sorted { modules[$0].baseAddress < modules[$1].baseAddress } }
    }
    /// Module indexes sorted by base address, for O(log n) address lookups.
    private var sortedModules: [Int] = []
    public private(set) var unloadedModules: [UnloadedModule] = []
    /// MemoryList and Memory64List regions, sorted by start address.
    public private(set) var memory: [MemoryRegion] = []
    public private(set) var exception: ExceptionInfo?
    public private(set) var miscInfo: MiscInfo?
    public private(set) var breakpadInfo: BreakpadInfo?
    public private(set) var assertion: AssertionInfo?
    public private(set) var memoryInfo: [MemoryInfo]?
    public private(set) var handles: [HandleDescriptor]?
    public private(set) var linuxLsbRelease: [String: String]?
    public private(set) var linuxMapsLineCount: Int?
    /// The mappings of `/proc/<pid>/maps`, sorted by start (lines that do not parse are skipped).
    public private(set) var linuxMaps: [LinuxMapping]?
    public private(set) var linuxProcStatusPid: UInt32?
    public private(set) var linuxCpuInfo: String?
    /// The crashed process's argv, environment and auxiliary vector (Breakpad's Linux streams).
    public private(set) var linuxCommandLine: [String]?
    public private(set) var linuxEnvironment: [String: String]?
    public private(set) var linuxAuxv: [(type: UInt64, value: UInt64)]?
    public private(set) var macBootArgs: String?
    public private(set) var linuxLimits: [ProcessLimit]?
    public private(set) var macCrashInfo: [MacCrashInfoRecord]?
    /// The JSON text of Mozilla's soft-errors stream.
    public private(set) var softErrorsJSON: String?
    public private(set) var crashpadAnnotations: [String: String]?
    /// Streams that were present but could not be decoded, with the reason.
    public private(set) var streamErrors: [MinidumpError] = []

    public static func open(path: String) throws(MinidumpError) -> Minidump {
        let file = try MappedDump(path: path)
        return try Minidump(bytes: ByteView(base: file.base, count: file.size, owner: file))
    }

    public static func parse(_ data: [UInt8]) throws(MinidumpError) -> Minidump {
        let owned = OwnedBytes(data)
        return try Minidump(bytes: ByteView(base: UnsafeRawPointer(owned.pointer), count: owned.count, owner: owned))
    }

    init(bytes: ByteView) throws(MinidumpError) {
        self.bytes = bytes
        guard bytes.count >= 32, (try? bytes.u32(0, "header")) == 0x504D_444D else { throw .notAMinidump }
        version = try bytes.u32(4, "header")
        let count = try bytes.u32(8, "header")
        let rva = try bytes.u32(12, "header")
        timeDateStamp = try bytes.u32(20, "header")
        flags = try bytes.u64(24, "header")
        // The directory must fit in the file; the count is capped by that, not trusted.
        guard bytes.contains(UInt64(rva), UInt64(count) * 12) else {
            throw .truncated(what: "stream directory", offset: UInt64(rva), size: UInt64(count) * 12)
        }
        for i in 0..<UInt64(count) {
            let at = UInt64(rva) + i * 12
            directory.append((try bytes.u32(at, "stream directory"), try bytes.u32(at + 4, "stream directory"),
                              try bytes.u32(at + 8, "stream directory")))
        }
        // SystemInfo first: module identifiers depend on the platform.
        if let e = directory.first(where: { $0.type == StreamType.systemInfo }) {
            do throws(MinidumpError) {
                systemInfo = try readSystemInfo(try bytes.slice(UInt64(e.rva), UInt64(e.size), "SystemInfo stream"))
            } catch {
                streamErrors.append(error)
            }
        }
        for entry in directory {
            let name = StreamType.describe(entry.type)?.name ?? String(format: "0x%08x", entry.type)
            decodeEntry(entry, name)
        }
    }

    /// The data of the first stream of `type`, or nil.
    public func stream(_ type: UInt32) -> ByteView? {
        guard let e = directory.first(where: { $0.type == type }) else { return nil }
        return try? bytes.slice(UInt64(e.rva), UInt64(e.size), "stream")
    }

    private func decodeEntry(_ e: (type: UInt32, size: UInt32, rva: UInt32), _ name: String) {
        let view: ByteView
        do { view = try bytes.slice(UInt64(e.rva), UInt64(e.size), "\(name) stream") } catch {
            if e.type != StreamType.unused { streamErrors.append(error) }
            return
        }
        do throws(MinidumpError) {
            switch e.type {
            case StreamType.threadList: threads = try readThreads(view)
            case StreamType.threadNames: threadNames = try readThreadNames(view)
            case StreamType.moduleList: modules = try readModules(view)
            case StreamType.unloadedModuleList: unloadedModules = try readUnloadedModules(view)
            case StreamType.memoryList: memory = (memory + (try readMemoryList(view))).sorted { $0.start < $1.start }
            case StreamType.memory64List: memory = (memory + (try readMemory64List(view))).sorted { $0.start < $1.start }
            case StreamType.exception: exception = try readException(view)
            case StreamType.miscInfo: miscInfo = try readMiscInfo(view)
            case StreamType.breakpadInfo: breakpadInfo = try readBreakpadInfo(view)
            case StreamType.assertionInfo: assertion = try readAssertion(view)
            case StreamType.memoryInfoList: memoryInfo = try readMemoryInfo(view)
            case StreamType.handleData: handles = try readHandles(view)
            case StreamType.linuxLsbRelease: linuxLsbRelease = parseKeyValues(text(view))
            case StreamType.linuxMaps:
                let lines = text(view).split(separator: "\n", omittingEmptySubsequences: true)
                linuxMapsLineCount = lines.count
                linuxMaps = lines.compactMap(LinuxMapping.init(line:)).sorted { $0.start < $1.start }
            case StreamType.linuxProcStatus: linuxProcStatusPid = procStatusPid(text(view))
            case StreamType.linuxCpuInfo: linuxCpuInfo = text(view)
            case StreamType.linuxCmdLine: linuxCommandLine = nulSeparated(view)
            case StreamType.linuxEnviron:
                var env: [String: String] = [:]
                for entry in nulSeparated(view) {
                    guard let eq = entry.firstIndex(of: "=") else { continue }
                    env[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
                }
                linuxEnvironment = env
            case StreamType.linuxAuxv: linuxAuxv = try readAuxv(view)
            case StreamType.mozMacosBootargs: macBootArgs = try readBootArgs(view)
            case StreamType.mozLinuxLimits: linuxLimits = parseLimits(text(view))
            case StreamType.mozMacosCrashInfo: macCrashInfo = try readMacCrashInfo(view)
            case StreamType.mozSoftErrors: softErrorsJSON = text(view)
            case StreamType.crashpadInfo: crashpadAnnotations = try? readCrashpadAnnotations(view)
            default: break
            }
        } catch {
            streamErrors.append(error)
        }
    }

    // MARK: strings

    /// A MINIDUMP_STRING (u32 byte length, UTF-16LE), decoded lossily.
    public func utf16String(at rva: UInt64, _ what: String) throws(MinidumpError) -> String {
        let length = try bytes.u32(rva, what)
        let units = Int(min(UInt64(length), UInt64(bytes.count))) / 2
        guard bytes.contains(rva + 4, UInt64(units) * 2) else { throw .truncated(what: what, offset: rva + 4, size: UInt64(units) * 2) }
        var u: [UInt16] = []
        u.reserveCapacity(units)
        for i in 0..<units { u.append(try bytes.u16(rva + 4 + UInt64(i) * 2, what)) }
        if let nul = u.firstIndex(of: 0) { u.removeSubrange(nul...) }
        return String(decoding: u, as: UTF16.self)
    }

    /// A Breakpad/Crashpad UTF-8 string (u32 length, bytes).
    func utf8String(at rva: UInt64, _ what: String) throws(MinidumpError) -> String {
        let length = try bytes.u32(rva, what)
        let view = try bytes.slice(rva + 4, UInt64(length), what)
        var b = view.bytes
        if let nul = b.firstIndex(of: 0) { b.removeSubrange(nul...) }
        return String(decoding: b, as: UTF8.self)
    }

    private func text(_ view: ByteView) -> String {
        var b = view.bytes
        while b.last == 0 { b.removeLast() }
        return String(decoding: b, as: UTF8.self)
    }

    // MARK: list helpers

    /// Entry count of a `count u32` list, allowing the 4-byte padding some 64-bit writers add.
    private func listLayout(_ view: ByteView, entrySize: UInt64, _ name: String) throws(MinidumpError) -> (count: UInt64, first: UInt64) {
        let count = UInt64(try view.u32(0, "\(name) count"))
        let size = UInt64(view.count)
        if 4 + count * entrySize <= size, size != 8 + count * entrySize { return (count, 4) }
        if 8 + count * entrySize <= size { return (count, 8) }
        throw .badStream(stream: name, reason: "\(count) entries of \(entrySize) bytes do not fit in \(size) bytes")
    }

    private func location(_ view: ByteView, _ at: UInt64, _ what: String) throws(MinidumpError) -> ByteView? {
        let size = try view.u32(at, what)
        let rva = try view.u32(at + 4, what)
        guard size > 0 else { return nil }
        return try? bytes.slice(UInt64(rva), UInt64(size), what)
    }

    // MARK: streams

    private func readSystemInfo(_ v: ByteView) throws(MinidumpError) -> SystemInfo {
        let arch = try v.u16(0, "SystemInfo")
        let csdRVA = try v.u32(24, "SystemInfo")
        var csd: String?
        if csdRVA != 0, let s = try? utf16String(at: UInt64(csdRVA), "SystemInfo CSD version"), !s.isEmpty { csd = s }
        var vendor: String?
        var versionInfo: UInt32 = 0, features: UInt32 = 0
        if arch == 0 || arch == 9 || arch == 10, v.count >= 56 {
            var b: [UInt8] = []
            for i in 0..<12 { b.append(try v.u8(32 + UInt64(i), "SystemInfo vendor")) }
            let s = String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
            vendor = s.isEmpty ? nil : s
            versionInfo = try v.u32(44, "SystemInfo")
            features = try v.u32(48, "SystemInfo")
        }
        return SystemInfo(processorArchitecture: arch, processorLevel: try v.u16(2, "SystemInfo"),
                          processorRevision: try v.u16(4, "SystemInfo"), numberOfProcessors: try v.u8(6, "SystemInfo"),
                          productType: try v.u8(7, "SystemInfo"), majorVersion: try v.u32(8, "SystemInfo"),
                          minorVersion: try v.u32(12, "SystemInfo"), buildNumber: try v.u32(16, "SystemInfo"),
                          platformId: try v.u32(20, "SystemInfo"), csdVersion: csd, suiteMask: try v.u16(28, "SystemInfo"),
                          cpuVendor: vendor, cpuVersionInformation: versionInfo, cpuFeatureInformation: features)
    }

    private func readThreads(_ v: ByteView) throws(MinidumpError) -> [MinidumpThread] {
        let (count, first) = try listLayout(v, entrySize: 48, "ThreadList")
        var out: [MinidumpThread] = []
        for i in 0..<count {
            let at = first + i * 48
            let stackStart = try v.u64(at + 24, "ThreadList")
            // Writers such as MiniDumpWriteDump leave the RVA 0 when the stack lives in the
            // MemoryList or Memory64List; such a descriptor (or an empty or wrapping one) is no
            // stack, and the walker looks the start address up in the memory lists instead.
            let stackSize = try v.u32(at + 32, "ThreadList"), stackRVA = try v.u32(at + 36, "ThreadList")
            let usable = stackRVA != 0 && stackSize != 0 && stackStart <= UInt64.max - UInt64(stackSize)
            let stackBytes = usable ? try location(v, at + 32, "thread stack") : nil
            out.append(MinidumpThread(
                threadId: try v.u32(at, "ThreadList"), suspendCount: try v.u32(at + 4, "ThreadList"),
                priorityClass: try v.u32(at + 8, "ThreadList"), priority: try v.u32(at + 12, "ThreadList"),
                teb: try v.u64(at + 16, "ThreadList"), stackStart: stackStart,
                stack: stackBytes.map { MemoryRegion(start: stackStart, bytes: $0) },
                contextBytes: try location(v, at + 40, "thread context")))
        }
        return out
    }

    private func readThreadNames(_ v: ByteView) throws(MinidumpError) -> [UInt32: String] {
        let count = UInt64(try v.u32(0, "ThreadNames"))
        guard 4 + count * 12 <= UInt64(v.count) else { throw .badStream(stream: "ThreadNames", reason: "\(count) entries do not fit") }
        var out: [UInt32: String] = [:]
        for i in 0..<count {
            let id = try v.u32(4 + i * 12, "ThreadNames")
            let rva = try v.u64(8 + i * 12, "ThreadNames")
            out[id] = try? utf16String(at: rva, "thread name")
        }
        return out
    }

    private func readModules(_ v: ByteView) throws(MinidumpError) -> [MinidumpModule] {
        let (count, first) = try listLayout(v, entrySize: 108, "ModuleList")
        let apple = systemInfo?.isApple ?? false
        var out: [MinidumpModule] = []
        for i in 0..<count {
            let at = first + i * 108
            let nameRVA = try v.u32(at + 20, "ModuleList")
            let name = (try? utf16String(at: UInt64(nameRVA), "module name")) ?? ""
            let cv = try location(v, at + 76, "module CodeView record")
            var module = MinidumpModule(
                baseAddress: try v.u64(at, "ModuleList"), size: try v.u32(at + 8, "ModuleList"),
                checksum: try v.u32(at + 12, "ModuleList"), timeDateStamp: try v.u32(at + 16, "ModuleList"),
                name: name,
                versionInfo: FixedFileInfo(signature: try v.u32(at + 24, "ModuleList"),
                                           fileVersionHigh: try v.u32(at + 32, "ModuleList"),
                                           fileVersionLow: try v.u32(at + 36, "ModuleList")),
                codeView: cv.flatMap { try? readCodeView($0) })
            module.isApplePlatform = apple
            out.append(module)
        }
        return out
    }

    private func readCodeView(_ v: ByteView) throws(MinidumpError) -> CodeViewRecord {
        let signature = try v.u32(0, "CodeView record")
        func cString(from: UInt64) -> String {
            guard from < UInt64(v.count), let rest = try? v.slice(from, UInt64(v.count) - from, "") else { return "" }
            return String(decoding: rest.bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch signature {
        case 0x5344_5352: // RSDS
            let guid = try v.slice(4, 16, "CodeView GUID").bytes
            return .pdb70(guid: guid, age: try v.u32(20, "CodeView age"), file: cString(from: 24))
        case 0x3031_424E: // NB10
            return .pdb20(signature: try v.u32(8, "CodeView"), age: try v.u32(12, "CodeView"), file: cString(from: 16))
        case 0x4270_454C: // BpEL
            return .elf(buildId: try v.slice(4, UInt64(v.count) - 4, "build id").bytes)
        default:
            return .other(signature: signature)
        }
    }

    private func readUnloadedModules(_ v: ByteView) throws(MinidumpError) -> [UnloadedModule] {
        let headerSize = UInt64(try v.u32(0, "UnloadedModuleList"))
        let entrySize = UInt64(try v.u32(4, "UnloadedModuleList"))
        let count = UInt64(try v.u32(8, "UnloadedModuleList"))
        guard entrySize >= 24, headerSize + count * entrySize <= UInt64(v.count) else {
            throw .badStream(stream: "UnloadedModuleList", reason: "\(count) entries of \(entrySize) bytes do not fit")
        }
        var out: [UnloadedModule] = []
        for i in 0..<count {
            let at = headerSize + i * entrySize
            out.append(UnloadedModule(
                baseAddress: try v.u64(at, "UnloadedModuleList"), size: try v.u32(at + 8, "UnloadedModuleList"),
                checksum: try v.u32(at + 12, "UnloadedModuleList"), timeDateStamp: try v.u32(at + 16, "UnloadedModuleList"),
                name: (try? utf16String(at: UInt64(try v.u32(at + 20, "UnloadedModuleList")), "unloaded module name")) ?? ""))
        }
        return out
    }

    private func readMemoryList(_ v: ByteView) throws(MinidumpError) -> [MemoryRegion] {
        let (count, first) = try listLayout(v, entrySize: 16, "MemoryList")
        var out: [MemoryRegion] = []
        for i in 0..<count {
            let at = first + i * 16
            if let b = try location(v, at + 8, "memory range") {
                out.append(MemoryRegion(start: try v.u64(at, "MemoryList"), bytes: b))
            }
        }
        return out
    }

    private func readMemory64List(_ v: ByteView) throws(MinidumpError) -> [MemoryRegion] {
        let count = try v.u64(0, "Memory64List")
        var rva = try v.u64(8, "Memory64List")
        guard count <= (UInt64(v.count) - 16) / 16 else { throw .badStream(stream: "Memory64List", reason: "\(count) entries do not fit") }
        var out: [MemoryRegion] = []
        for i in 0..<count {
            let start = try v.u64(16 + i * 16, "Memory64List")
            let size = try v.u64(24 + i * 16, "Memory64List")
            if let b = try? bytes.slice(rva, size, "memory64 range") { out.append(MemoryRegion(start: start, bytes: b)) }
            rva &+= size
        }
        return out
    }

    private func readException(_ v: ByteView) throws(MinidumpError) -> ExceptionInfo {
        let n = min(try v.u32(32, "Exception"), 15)
        var params: [UInt64] = []
        for i in 0..<UInt64(n) { params.append(try v.u64(40 + i * 8, "Exception")) }
        return ExceptionInfo(threadId: try v.u32(0, "Exception"), code: try v.u32(8, "Exception"), flags: try v.u32(12, "Exception"),
                             record: try v.u64(16, "Exception"), address: try v.u64(24, "Exception"), parameters: params,
                             contextBytes: try location(v, 160, "exception context"))
    }

    /// MINIDUMP_MISC_INFO versions 1–5, told apart by `size_of_info` (24, 44, 232, 832, 1364)
    /// and their fields by the `flags1` bits.
    private func readMiscInfo(_ v: ByteView) throws(MinidumpError) -> MiscInfo {
        let size = try v.u32(0, "MiscInfo")
        let flags = try v.u32(4, "MiscInfo")
        var info = MiscInfo(sizeOfInfo: size, flags1: flags)
        let available = UInt64(min(size, UInt32(v.count)))
        func field(_ at: UInt64, _ bit: UInt32) throws(MinidumpError) -> UInt32? {
            guard flags & bit != 0, at + 4 <= available else { return nil }
            return try v.u32(at, "MiscInfo")
        }
        info.processId = try field(8, 0x1)
        info.processCreateTime = try field(12, 0x2)
        info.processUserTime = try field(16, 0x2)
        info.processKernelTime = try field(20, 0x2)
        if size >= 44 {
            info.processorMaxMhz = try field(24, 0x4)
            info.processorCurrentMhz = try field(28, 0x4)
            info.processorMhzLimit = try field(32, 0x4)
        }
        if size >= 232 {
            info.processIntegrityLevel = try field(44, 0x10)
            info.processExecuteFlags = try field(48, 0x20)
            info.protectedProcess = try field(52, 0x80)
            info.timeZoneId = try field(56, 0x40)
        }
        if size >= 832, flags & 0x100 != 0, available >= 832 {
            func wide(_ at: UInt64, _ count: Int) throws(MinidumpError) -> String {
                var u: [UInt16] = []
                for i in 0..<UInt64(count) {
                    let c = try v.u16(at + i * 2, "MiscInfo build string")
                    if c == 0 { break }
                    u.append(c)
                }
                return String(decoding: u, as: UTF16.self)
            }
            info.buildString = try wide(232, 260)
            info.debugBuildString = try wide(752, 40)
        }
        if size >= 1364 { info.processCookie = try field(1360, 0x400) }
        return info
    }

    private func readBreakpadInfo(_ v: ByteView) throws(MinidumpError) -> BreakpadInfo {
        let validity = try v.u32(0, "BreakpadInfo")
        return BreakpadInfo(dumpThreadId: validity & 1 != 0 ? try v.u32(4, "BreakpadInfo") : nil,
                            requestingThreadId: validity & 2 != 0 ? try v.u32(8, "BreakpadInfo") : nil)
    }

    private func readAssertion(_ v: ByteView) throws(MinidumpError) -> AssertionInfo {
        func field(_ at: UInt64) throws(MinidumpError) -> String {
            var u: [UInt16] = []
            for i in 0..<UInt64(128) {
                let c = try v.u16(at + i * 2, "AssertionInfo")
                if c == 0 { break }
                u.append(c)
            }
            return String(decoding: u, as: UTF16.self)
        }
        return AssertionInfo(expression: try field(0), function: try field(256), file: try field(512),
                             line: try v.u32(768, "AssertionInfo"), type: try v.u32(772, "AssertionInfo"))
    }

    private func readMemoryInfo(_ v: ByteView) throws(MinidumpError) -> [MemoryInfo] {
        let headerSize = UInt64(try v.u32(0, "MemoryInfoList"))
        let entrySize = UInt64(try v.u32(4, "MemoryInfoList"))
        let count = try v.u64(8, "MemoryInfoList")
        guard entrySize >= 48, headerSize <= UInt64(v.count), count <= (UInt64(v.count) - headerSize) / entrySize else {
            throw .badStream(stream: "MemoryInfoList", reason: "\(count) entries of \(entrySize) bytes do not fit")
        }
        var out: [MemoryInfo] = []
        for i in 0..<count {
            let at = headerSize + i * entrySize
            out.append(MemoryInfo(baseAddress: try v.u64(at, "MemoryInfoList"), allocationBase: try v.u64(at + 8, "MemoryInfoList"),
                                  allocationProtection: try v.u32(at + 16, "MemoryInfoList"), regionSize: try v.u64(at + 24, "MemoryInfoList"),
                                  state: try v.u32(at + 32, "MemoryInfoList"), protection: try v.u32(at + 36, "MemoryInfoList"),
                                  type: try v.u32(at + 40, "MemoryInfoList")))
        }
        return out
    }

    private func readHandles(_ v: ByteView) throws(MinidumpError) -> [HandleDescriptor] {
        let headerSize = UInt64(try v.u32(0, "HandleData"))
        let entrySize = UInt64(try v.u32(4, "HandleData"))
        let count = UInt64(try v.u32(8, "HandleData"))
        guard entrySize >= 32, headerSize <= UInt64(v.count), count <= (UInt64(v.count) - headerSize) / entrySize else {
            throw .badStream(stream: "HandleData", reason: "\(count) entries of \(entrySize) bytes do not fit")
        }
        var out: [HandleDescriptor] = []
        for i in 0..<count {
            let at = headerSize + i * entrySize
            let typeRVA = try v.u32(at + 8, "HandleData"), objectRVA = try v.u32(at + 12, "HandleData")
            out.append(HandleDescriptor(handle: try v.u64(at, "HandleData"),
                                        typeName: typeRVA == 0 ? nil : try? utf16String(at: UInt64(typeRVA), "handle type"),
                                        objectName: objectRVA == 0 ? nil : try? utf16String(at: UInt64(objectRVA), "handle object")))
        }
        return out
    }

    private func readBootArgs(_ v: ByteView) throws(MinidumpError) -> String? {
        let rva = try v.u64(4, "MozMacosBootargs")
        return rva == 0 ? nil : try? utf16String(at: UInt64(rva), "boot args")
    }

    /// Header `stream_type, record_count, record_start_size` and 20 location descriptors; each
    /// record has u64 fields (stream type, version, then thread and dialog mode from v4, abort
    /// cause from v5) and, from `record_start_size` on, NUL-terminated strings (module, message,
    /// signature, backtrace, message2; at most 8 KiB each).
    private func readMacCrashInfo(_ v: ByteView) throws(MinidumpError) -> [MacCrashInfoRecord] {
        let count = UInt64(try v.u32(4, "MozMacosCrashInfo"))
        let start = UInt64(try v.u32(8, "MozMacosCrashInfo"))
        guard count <= 20 else { throw .badStream(stream: "MozMacosCrashInfo", reason: "\(count) records (at most 20)") }
        var out: [MacCrashInfoRecord] = []
        for i in 0..<count {
            guard let record = try location(v, 12 + i * 8, "mac crash info record") else { continue }
            let version = try record.u64(8, "mac crash info record")
            var r = MacCrashInfoRecord(version: version)
            if version >= 4 {
                r.thread = try record.u64(16, "mac crash info record")
                r.dialogMode = try record.u64(24, "mac crash info record")
            }
            if version >= 5 { r.abortCause = try record.u64(32, "mac crash info record") }
            if version >= 4, start < UInt64(record.count) {
                var strings: [String?] = []
                var bytes = try record.slice(start, UInt64(record.count) - start, "mac crash info strings").bytes[...]
                for _ in 0..<5 {
                    let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
                    guard end - bytes.startIndex <= 8192 else {
                        throw .badStream(stream: "MozMacosCrashInfo", reason: "string longer than 8192 bytes")
                    }
                    let s = String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
                    strings.append(s.isEmpty ? nil : s)
                    bytes = end < bytes.endIndex ? bytes[(end + 1)...] : bytes[bytes.endIndex...]
                }
                (r.module, r.message, r.signatureString, r.backtrace, r.message2) = (strings[0], strings[1], strings[2], strings[3], strings[4])
            }
            out.append(r)
        }
        return out
    }

    /// `/proc/self/limits`: a header line, then fixed columns (name 26, soft 21, hard 21, units).
    private func parseLimits(_ text: String) -> [ProcessLimit] {
        var out: [ProcessLimit] = []
        for line in text.split(separator: "\n").dropFirst() {
            let chars = Array(line)
            func column(_ from: Int, _ to: Int) -> String {
                guard from < chars.count else { return "" }
                return String(chars[from..<min(to, chars.count)]).trimmingCharacters(in: .whitespaces)
            }
            let name = column(0, 26)
            guard !name.isEmpty else { continue }
            out.append(ProcessLimit(name: name, soft: column(26, 47), hard: column(47, 68), unit: column(68, chars.count)))
        }
        return out
    }

    private func readCrashpadAnnotations(_ v: ByteView) throws(MinidumpError) -> [String: String] {
        guard let dict = try location(v, 36, "Crashpad simple annotations") else { return [:] }
        let count = UInt64(try dict.u32(0, "Crashpad annotations"))
        guard 4 + count * 8 <= UInt64(dict.count) else { throw .badStream(stream: "CrashpadInfo", reason: "annotation count") }
        var out: [String: String] = [:]
        for i in 0..<count {
            let key = try utf8String(at: UInt64(try dict.u32(4 + i * 8, "annotation")), "annotation key")
            out[key] = try utf8String(at: UInt64(try dict.u32(8 + i * 8, "annotation")), "annotation value")
        }
        return out
    }

    private func nulSeparated(_ view: ByteView) -> [String] {
        view.bytes.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }

    /// (type, value) pairs of the pointer width of the dump's CPU, up to AT_NULL.
    private func readAuxv(_ v: ByteView) throws(MinidumpError) -> [(type: UInt64, value: UInt64)] {
        let wide = ContextCPU(architecture: systemInfo?.processorArchitecture ?? 9).pointerSize == 8
        let entry: UInt64 = wide ? 16 : 8
        var out: [(type: UInt64, value: UInt64)] = []
        var at: UInt64 = 0
        while at + entry <= UInt64(v.count) {
            let type = wide ? try v.u64(at, "LinuxAuxv") : UInt64(try v.u32(at, "LinuxAuxv"))
            let value = wide ? try v.u64(at + 8, "LinuxAuxv") : UInt64(try v.u32(at + 4, "LinuxAuxv"))
            if type == 0 { break }
            out.append((type, value))
            at += entry
        }
        return out
    }

    private func parseKeyValues(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            out[String(line[..<eq])] = value
        }
        return out
    }

    private func procStatusPid(_ text: String) -> UInt32? {
        for line in text.split(separator: "\n") where line.hasPrefix("Pid:") {
            return UInt32(line.dropFirst(4).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    // MARK: memory

    /// The memory region containing `address`.
    public func memoryRegion(containing address: UInt64) -> MemoryRegion? {
        guard let i = lastIndex(startingAtOrBelow: address, count: memory.count, start: { memory[$0].start }),
              memory[i].contains(address) else { return nil }
        return memory[i]
    }

    /// The module whose [base, end) contains `address` (the lowest-based one if ranges overlap).
    public func module(containing address: UInt64) -> (index: Int, module: MinidumpModule)? {
        let order = sortedModules
        guard let last = lastIndex(startingAtOrBelow: address, count: order.count, start: { modules[order[$0]].baseAddress }) else {
            return nil
        }
        var i = last
        while i >= 0 {
            let m = modules[order[i]]
            if address < m.endAddress { return (order[i], m) }
            // Ranges normally do not overlap; look a little further back in case they do.
            if last - i > 3 { break }
            i -= 1
        }
        return nil
    }
}
