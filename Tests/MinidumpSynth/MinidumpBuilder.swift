/// Writes minidumps for tests and benchmarks: system info, threads with CPU contexts for x86,
/// amd64, arm and arm64, stacks placed where real writers put them (inside the ThreadList, or
/// in a MemoryList or Memory64List with the thread descriptor's RVA left 0, as Windows'
/// `MiniDumpWriteDump` does), modules with CodeView records, an exception. Layouts follow
/// `../shared/reference/minidump.md` and the Windows SDK structures, sizes exactly as real
/// writers use them so other readers (Breakpad) accept the files too.
public struct MinidumpBuilder {
    public enum CPU: Sendable {
        case x86, amd64, arm, arm64

        public var pointerSize: Int { self == .x86 || self == .arm ? 4 : 8 }
        var architecture: UInt16 {
            switch self { case .x86: return 0; case .amd64: return 9; case .arm: return 5; case .arm64: return 12 }
        }
    }

    public enum OS: Sendable {
        case windows, linux, android, macOS, iOS
        var platformId: UInt32 {
            switch self {
            case .windows: return 2
            case .linux: return 0x8201
            case .android: return 0x8203
            case .macOS: return 0x8101
            case .iOS: return 0x8102
            }
        }
    }

    /// Where a thread's stack bytes are stored.
    public enum StackPlacement: Sendable {
        /// In the thread's own memory descriptor (Breakpad and Crashpad writers).
        case threadList
        /// In the MemoryList; the thread descriptor keeps start and size but has RVA 0.
        case memoryList
        /// In the Memory64List (full-memory Windows dumps); descriptor RVA 0.
        case memory64List
    }

    public struct Module {
        public var base: UInt64
        public var size: UInt32
        public var name: String
        /// The GUID of the RSDS record; the debug id is this GUID followed by the age.
        public var guid: [UInt8]
        public var age: UInt32 = 1

        /// The debug id readers derive from the record (`GUID` in Windows order, then the age).
        public var debugId: String {
            let d1 = UInt32(guid[0]) | UInt32(guid[1]) << 8 | UInt32(guid[2]) << 16 | UInt32(guid[3]) << 24
            let d2 = UInt16(guid[4]) | UInt16(guid[5]) << 8, d3 = UInt16(guid[6]) | UInt16(guid[7]) << 8
            func hex<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
                let s = String(v, radix: 16, uppercase: true)
                return String(repeating: "0", count: max(0, width - s.count)) + s
            }
            return hex(d1, 8) + hex(d2, 4) + hex(d3, 4) + guid[8..<16].map { hex($0, 2) }.joined() + String(age, radix: 16, uppercase: true)
        }

        /// The debug file name symbol files use (the code file's base name).
        public var debugFile: String {
            String(name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last ?? Substring(name))
        }
    }

    public struct Thread {
        public var id: UInt32
        /// Registers by the stackwalker's names (`eip`, `rsp`, `x19`, `fp`, `lr`, `pc`, …).
        public var registers: [String: UInt64]
        public var stack: SyntheticStack?
        public var placement: StackPlacement = .threadList
    }

    public var cpu: CPU
    public var os: OS
    public private(set) var modules: [Module] = []
    public var threads: [Thread] = []
    /// Other memory (heap, code bytes) for the MemoryList.
    public var memory: [(base: UInt64, bytes: [UInt8])] = []
    /// The crashing thread, exception code and address; its context is the thread's registers.
    public var exception: (threadId: UInt32, code: UInt32, address: UInt64)?
    public var timeDateStamp: UInt32 = 0x6000_0000

    public init(cpu: CPU, os: OS) {
        self.cpu = cpu
        self.os = os
    }

    /// Adds a module whose debug id is derived from its index, so each is distinct.
    @discardableResult
    public mutating func addModule(base: UInt64, size: UInt32, name: String) -> Module {
        let n = UInt8(truncatingIfNeeded: modules.count + 1)
        let m = Module(base: base, size: size, name: name, guid: [n, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, n])
        modules.append(m)
        return m
    }

    public mutating func addThread(id: UInt32, registers: [String: UInt64], stack: SyntheticStack?, placement: StackPlacement = .threadList) {
        threads.append(Thread(id: id, registers: registers, stack: stack, placement: placement))
    }

    /// The `MODULE` line a symbol file for `module` starts with.
    public func moduleLine(_ module: Module) -> String {
        let os: String
        switch self.os { case .windows: os = "windows"; case .linux, .android: os = "Linux"; case .macOS, .iOS: os = "mac" }
        let arch: String
        switch cpu { case .x86: arch = "x86"; case .amd64: arch = "x86_64"; case .arm: arch = "arm"; case .arm64: arch = "arm64" }
        return "MODULE \(os) \(arch) \(module.debugId) \(module.debugFile)"
    }

    // MARK: writing

    public func build() -> [UInt8] {
        var w = Writer()
        // Header, directory placeholder.
        var streams: [(type: UInt32, body: [UInt8])] = []
        w.bytes = [UInt8](repeating: 0, count: 32)

        // Data blobs first, then the streams that point at them.
        let csdRVA = w.append(string: "")
        var contextLocations: [(size: UInt32, rva: UInt32)] = []
        for t in threads {
            let c = context(t.registers)
            contextLocations.append((UInt32(c.count), w.append(c, align: 16)))
        }
        var stackLocations: [(start: UInt64, size: UInt32, rva: UInt32)] = []
        var memoryList: [(start: UInt64, size: UInt32, rva: UInt32)] = []
        var memory64: [(start: UInt64, bytes: [UInt8])] = []
        for t in threads {
            guard let s = t.stack else { stackLocations.append((0, 0, 0)); continue }
            let bytes = s.finished()
            switch t.placement {
            case .threadList:
                stackLocations.append((s.base, UInt32(bytes.count), w.append(bytes, align: 16)))
            case .memoryList:
                memoryList.append((s.base, UInt32(bytes.count), w.append(bytes, align: 16)))
                stackLocations.append((s.base, UInt32(bytes.count), 0))
            case .memory64List:
                memory64.append((s.base, bytes))
                stackLocations.append((s.base, UInt32(bytes.count), 0))
            }
        }
        for m in memory { memoryList.append((m.base, UInt32(m.bytes.count), w.append(m.bytes, align: 16))) }
        var moduleRecords: [(nameRVA: UInt32, cv: (size: UInt32, rva: UInt32))] = []
        for m in modules {
            let nameRVA = w.append(string: m.name)
            let cv = le(UInt32(0x5344_5352)) + m.guid + le(m.age) + Array(m.debugFile.utf8) + [0]
            moduleRecords.append((nameRVA, (UInt32(cv.count), w.append(cv, align: 4))))
        }

        // SystemInfo (56 bytes).
        var sys = le(cpu.architecture) + le(UInt16(6)) + le(UInt16(0x0d08)) + [UInt8(2), UInt8(1)]
        sys += le(UInt32(10)) + le(UInt32(0)) + le(UInt32(19041)) + le(os.platformId) + le(csdRVA) + le(UInt16(0)) + le(UInt16(0))
        if cpu == .x86 {
            sys += Array("GenuineIntel".utf8) + le(UInt32(0x000906EA)) + le(UInt32(0xBFEBFBFF)) + le(UInt32(0))
        } else {
            // OtherCpuInfo.ProcessorFeatures: bits, not text (readers must not take it for a vendor).
            sys += le(UInt64(0x0000_0001_2FFF_FFFF)) + le(UInt64(0)) + [UInt8](repeating: 0, count: 8)
        }
        streams.append((7, sys))

        // ThreadList.
        var tl = le(UInt32(threads.count))
        for (i, t) in threads.enumerated() {
            tl += le(t.id) + le(UInt32(0)) + le(UInt32(0x20)) + le(UInt32(0)) + le(UInt64(0))
            tl += le(stackLocations[i].start) + le(stackLocations[i].size) + le(stackLocations[i].rva)
            tl += le(contextLocations[i].size) + le(contextLocations[i].rva)
        }
        streams.append((3, tl))

        // ModuleList (108 bytes per module).
        var ml = le(UInt32(modules.count))
        for (i, m) in modules.enumerated() {
            var r = le(m.base) + le(m.size) + le(UInt32(0)) + le(UInt32(0x5000_0000)) + le(moduleRecords[i].nameRVA)
            r += le(UInt32(0xFEEF_04BD)) + [UInt8](repeating: 0, count: 48)  // VS_FIXEDFILEINFO
            r += le(moduleRecords[i].cv.size) + le(moduleRecords[i].cv.rva) + le(UInt64(0)) + [UInt8](repeating: 0, count: 16)
            ml += r
        }
        streams.append((4, ml))

        if !memoryList.isEmpty {
            var body = le(UInt32(memoryList.count))
            for r in memoryList { body += le(r.start) + le(r.size) + le(r.rva) }
            streams.append((5, body))
        }
        if let e = exception, let index = threads.firstIndex(where: { $0.id == e.threadId }) {
            var body = le(e.threadId) + le(UInt32(0)) + le(e.code) + le(UInt32(0)) + le(UInt64(0)) + le(e.address)
            body += le(UInt32(2)) + le(UInt32(0)) + le(UInt64(1)) + le(e.address) + [UInt8](repeating: 0, count: 13 * 8)
            body += le(contextLocations[index].size) + le(contextLocations[index].rva)
            streams.append((6, body))
        }

        // Memory64List: its data must be contiguous, so it goes last.
        var memory64Stream: [UInt8]?
        if !memory64.isEmpty {
            memory64Stream = le(UInt64(memory64.count)) + le(UInt64(0))
            for r in memory64 { memory64Stream! += le(r.start) + le(UInt64(r.bytes.count)) }
        }

        // Streams, then the directory.
        var directory: [(UInt32, UInt32, UInt32)] = []
        for s in streams { directory.append((s.type, UInt32(s.body.count), w.append(s.body, align: 4))) }
        var memory64StreamRVA: UInt32 = 0
        if let m = memory64Stream { memory64StreamRVA = w.append(m, align: 8); directory.append((9, UInt32(m.count), memory64StreamRVA)) }
        var dir: [UInt8] = []
        for d in directory { dir += le(d.0) + le(d.1) + le(d.2) }
        let dirRVA = w.append(dir, align: 4)
        if memory64Stream != nil {
            w.align(16)
            let base = UInt64(w.bytes.count)
            w.put(le(base), at: Int(memory64StreamRVA) + 8)
            for r in memory64 { w.bytes += r.bytes }
        }
        let header = le(UInt32(0x504D_444D)) + le(UInt32(0xA793)) + le(UInt32(directory.count)) + le(dirRVA)
            + le(UInt32(0)) + le(timeDateStamp) + le(UInt64(0))
        w.put(header, at: 0)
        return w.bytes
    }

    /// A CPU context of the exact size real writers use, registers by the stackwalker's names.
    func context(_ r: [String: UInt64]) -> [UInt8] {
        var c: [UInt8]
        func put32(_ off: Int, _ v: UInt64) { for i in 0..<4 { c[off + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        func put64(_ off: Int, _ v: UInt64) { for i in 0..<8 { c[off + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        switch cpu {
        case .x86:  // CONTEXT (x86), 716 bytes
            c = [UInt8](repeating: 0, count: 716)
            put32(0, 0x0001_003F)
            for (name, off) in [("edi", 156), ("esi", 160), ("ebx", 164), ("edx", 168), ("ecx", 172), ("eax", 176),
                                ("ebp", 180), ("eip", 184), ("eflags", 192), ("esp", 196)] {
                put32(off, r[name] ?? 0)
            }
            put32(188, 0x1B)  // cs
            put32(200, 0x23)  // ss
        case .amd64:  // CONTEXT (AMD64), 1232 bytes
            c = [UInt8](repeating: 0, count: 1232)
            put32(48, 0x0010_001F)
            put32(68, r["eflags"] ?? 0x246)
            let names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] + (8...15).map { "r\($0)" } + ["rip"]
            for (i, name) in names.enumerated() { put64(120 + i * 8, r[name] ?? 0) }
        case .arm:  // MDRawContextARM, 368 bytes
            c = [UInt8](repeating: 0, count: 368)
            put32(0, 0x4000_0006)
            for i in 0..<16 {
                let name: String
                switch i { case 11: name = "fp"; case 13: name = "sp"; case 14: name = "lr"; case 15: name = "pc"; default: name = "r\(i)" }
                put32(4 + i * 4, r[name] ?? r["r\(i)"] ?? 0)
            }
        case .arm64:  // ARM64_NT_CONTEXT, 912 bytes
            c = [UInt8](repeating: 0, count: 912)
            put32(0, 0x0040_0002)
            for i in 0..<31 {
                let name = i == 29 ? "fp" : i == 30 ? "lr" : "x\(i)"
                put64(8 + i * 8, r[name] ?? r["x\(i)"] ?? 0)
            }
            put64(256, r["sp"] ?? 0)
            put64(264, r["pc"] ?? 0)
        }
        return c
    }
}

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Appends blobs and hands back their RVAs.
struct Writer {
    var bytes: [UInt8] = []

    mutating func align(_ n: Int) {
        while bytes.count % n != 0 { bytes.append(0) }
    }

    mutating func append(_ b: [UInt8], align n: Int) -> UInt32 {
        align(n)
        let rva = UInt32(bytes.count)
        bytes += b
        return rva
    }

    /// A MINIDUMP_STRING: byte length, UTF-16LE, then a terminating NUL.
    mutating func append(string: String) -> UInt32 {
        let units = Array(string.utf16)
        return append(le(UInt32(units.count * 2)) + units.flatMap { le($0) } + [0, 0], align: 4)
    }

    mutating func put(_ b: [UInt8], at offset: Int) {
        for (i, v) in b.enumerated() { bytes[offset + i] = v }
    }
}
