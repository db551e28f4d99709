import CSystemShims
import Foundation
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Identifies the text a cached index was built from, so a changed source invalidates it.
public struct SourceFingerprint: Sendable, Equatable {
    public var size: UInt64
    public var modificationNanos: Int64

    public init(size: UInt64, modificationNanos: Int64) {
        self.size = size
        self.modificationNanos = modificationNanos
    }

    /// The size and modification time of the file at `path`, or nil if it cannot be read.
    public init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        size = UInt64(st.st_size)
        modificationNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }
}

/// Why an index file was not used. Every case means "rebuild it"; an index is never trusted blindly.
public enum SymbolIndexError: Error, Equatable, CustomStringConvertible {
    case io(String)
    case notAnIndex
    case versionMismatch(found: UInt32)
    case corrupt(String)
    case staleSource

    public var description: String {
        switch self {
        case .io(let m): return m
        case .notAnIndex: return "not a Postmortem symbol index"
        case .versionMismatch(let v): return "index version \(v), expected \(SymbolIndexFile.version)"
        case .corrupt(let m): return "corrupt index: \(m)"
        case .staleSource: return "index was built from a different version of the symbol file"
        }
    }
}

/// The compact on-disk form of a `SymbolTable`: a header, a section table and the record tables
/// exactly as they are in memory, so opening is `mmap` plus a checksum pass, and lookups read the
/// mapped pages in place.
///
/// Layout (little-endian):
/// ```
/// 0   magic "PMSYMIDX"          8   version u32        12  section count u32
/// 16  checksum u64 (of the section-table area and every section, chained)
/// 24  source size u64           32  source mtime ns i64 40  layout tag u32     44  reserved
/// 64  section table: {kind u32, stride u32, offset u64, length u64} × count
///     sections, each 8-byte aligned
/// ```
public enum SymbolIndexFile {
    /// 2: the checksum covers 4 MiB blocks (verified in parallel); version 1 files are rebuilt.
    public static let version: UInt32 = 2
    static let magic: [UInt8] = Array("PMSYMIDX".utf8)
    static let headerSize = 64
    static let sectionEntrySize = 24

    enum Kind: UInt32, CaseIterable {
        case metadata = 1, strings, files, origins, funcs, lines, inlines, publics, winFrameData, winFPO, cfiInit, cfiDelta
        var stride: Int {
            switch self {
            case .metadata, .strings: return 1
            case .files, .origins: return MemoryLayout<NamedEntry>.stride
            case .funcs: return MemoryLayout<FuncRecord>.stride
            case .lines: return MemoryLayout<LineRecord>.stride
            case .inlines: return MemoryLayout<InlineRecord>.stride
            case .publics: return MemoryLayout<PublicRecord>.stride
            case .winFrameData, .winFPO: return MemoryLayout<StackWinRecord>.stride
            case .cfiInit: return MemoryLayout<CFIInitRecord>.stride
            case .cfiDelta: return MemoryLayout<CFIDeltaRecord>.stride
            }
        }
    }

    /// A fingerprint of the record layouts; a build whose structs differ will not read old files.
    static var layoutTag: UInt32 {
        Kind.allCases.reduce(UInt32(17)) { $0 &* 31 &+ UInt32($1.stride) &+ $1.rawValue }
    }

    struct Metadata: Codable {
        var module: ModuleInfo
        var stats: ParseStatistics
    }

    /// The checksum of an index: `checksum64` of each 4 MiB block of the header and of every
    /// section, in order, each seeded with its position, then `checksum64` of those sums. The
    /// blocks are independent, so a large index is checked on every core (opening it is on the
    /// path of the first frame that needs its symbols).
    static func blockChecksum(_ header: UnsafeRawBufferPointer, _ sections: [UnsafeRawBufferPointer]) -> UInt64 {
        let block = 4 << 20
        var blocks: [UnsafeRawBufferPointer] = [header]
        for s in sections {
            if s.isEmpty { blocks.append(s); continue }
            var at = 0
            while at < s.count {
                blocks.append(UnsafeRawBufferPointer(rebasing: s[at..<min(s.count, at + block)]))
                at += block
            }
        }
        var sums = [UInt64](repeating: 0, count: blocks.count)
        sums.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out, blocks = blocks
            if blocks.count > 2 {
                DispatchQueue.concurrentPerform(iterations: blocks.count) { i in out[i] = checksum64(blocks[i], seed: UInt64(i)) }
            } else {
                for i in blocks.indices { out[i] = checksum64(blocks[i], seed: UInt64(i)) }
            }
        }
        return sums.withUnsafeBytes { checksum64($0, seed: 0) }
    }

    // MARK: writing

    /// Writes `table` to `path` atomically (temporary file, then rename). `sourceURL` records where
    /// a downloaded file came from (as `INFO URL` would).
    public static func write(_ table: SymbolTable, to path: String, source: SourceFingerprint? = nil,
                             sourceURL: String? = nil) throws(SymbolIndexError) {
        var module = table.module
        if let sourceURL { module.url = sourceURL }
        let metadata: [UInt8]
        do { metadata = Array(try JSONEncoder().encode(Metadata(module: module, stats: table.stats))) }
        catch { throw .io("cannot encode index metadata: \(error)") }
        let s = table.s
        let metaCopy = UnsafeMutableRawBufferPointer.allocate(byteCount: metadata.count, alignment: 8)
        defer { metaCopy.deallocate() }
        metadata.withUnsafeBytes { metaCopy.copyMemory(from: $0) }
        let parts: [(Kind, UnsafeRawBufferPointer)] = [
            (.metadata, UnsafeRawBufferPointer(metaCopy)), (.strings, s.strings),
            (.files, UnsafeRawBufferPointer(s.files)), (.origins, UnsafeRawBufferPointer(s.origins)),
            (.funcs, UnsafeRawBufferPointer(s.funcs)), (.lines, UnsafeRawBufferPointer(s.lines)),
            (.inlines, UnsafeRawBufferPointer(s.inlines)), (.publics, UnsafeRawBufferPointer(s.publics)),
            (.winFrameData, UnsafeRawBufferPointer(s.winFrameData)), (.winFPO, UnsafeRawBufferPointer(s.winFPO)),
            (.cfiInit, UnsafeRawBufferPointer(s.cfiInit)), (.cfiDelta, UnsafeRawBufferPointer(s.cfiDelta)),
        ]
        let tableEnd = headerSize + parts.count * sectionEntrySize
        var header = [UInt8](repeating: 0, count: tableEnd)
        var offset = align8(tableEnd)
        var layout: [(offset: Int, length: Int)] = []
        for (i, (kind, bytes)) in parts.enumerated() {
            let e = headerSize + i * sectionEntrySize
            put(&header, e, UInt32(kind.rawValue))
            put(&header, e + 4, UInt32(kind.stride))
            put(&header, e + 8, UInt64(offset))
            put(&header, e + 16, UInt64(bytes.count))
            layout.append((offset, bytes.count))
            offset = align8(offset + bytes.count)
        }
        header.replaceSubrange(0..<8, with: magic)
        put(&header, 8, version)
        put(&header, 12, UInt32(parts.count))
        put(&header, 24, source?.size ?? 0)
        put(&header, 32, UInt64(bitPattern: source?.modificationNanos ?? 0))
        put(&header, 40, layoutTag)
        let sum = header.withUnsafeBytes { h in blockChecksum(UnsafeRawBufferPointer(rebasing: h[24...]), parts.map(\.1)) }
        put(&header, 16, sum)

        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .io("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = header.withUnsafeBytes { writeAll(fd, $0) }
        var position = tableEnd
        let zeros = [UInt8](repeating: 0, count: 8)
        for (i, (_, bytes)) in parts.enumerated() where ok {
            let pad = layout[i].offset - position
            if pad > 0 { ok = zeros.withUnsafeBytes { writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[0..<pad])) } }
            ok = ok && writeAll(fd, bytes)
            position = layout[i].offset + layout[i].length
        }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(tmp)
            throw .io("cannot write \(path): \(message)")
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool { pm_write_all(fd, bytes.baseAddress, bytes.count) == 0 }

    private static func align8(_ x: Int) -> Int { (x + 7) & ~7 }

    private static func put<T: FixedWidthInteger>(_ b: inout [UInt8], _ at: Int, _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { for (i, byte) in $0.enumerated() { b[at + i] = byte } }
    }

    // MARK: reading

    /// Maps the index at `path`; with `source`, also checks it was built from that file version.
    public static func open(_ path: String, source: SourceFingerprint? = nil) throws(SymbolIndexError) -> SymbolTable {
        let file = try MappedFile(path: path)
        let (metadata, sourceSize, sourceTime) = try file.validate()
        if let source, source.size != sourceSize || source.modificationNanos != sourceTime { throw .staleSource }
        return SymbolTable(module: metadata.module, stats: metadata.stats, storage: .mapped(file), sections: file.sections)
    }
}

/// A read-only memory mapping of an index file, unmapped when the last table using it goes away.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int
    private(set) var sections: Sections

    init(path: String) throws(SymbolIndexError) {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io("cannot stat \(path)") }
        size = Int(st.st_size)
        guard size >= SymbolIndexFile.headerSize else { throw .notAnIndex }
        // The checksum reads every page at once, so map them all now (one call instead of a
        // page fault per 64 KiB).
        #if os(Linux)
        let populate = MAP_POPULATE
        #else
        let populate: Int32 = 0
        #endif
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE | populate, fd, 0), p != MAP_FAILED else {
            throw .io("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        sections = Sections(strings: empty, files: .init(start: nil, count: 0), origins: .init(start: nil, count: 0),
                            funcs: .init(start: nil, count: 0), lines: .init(start: nil, count: 0),
                            inlines: .init(start: nil, count: 0), publics: .init(start: nil, count: 0),
                            winFrameData: .init(start: nil, count: 0), winFPO: .init(start: nil, count: 0),
                            cfiInit: .init(start: nil, count: 0), cfiDelta: .init(start: nil, count: 0))
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    private func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    private func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

    /// Checks magic, version, layout, section bounds and checksum; fills `sections`.
    func validate() throws(SymbolIndexError) -> (SymbolIndexFile.Metadata, UInt64, Int64) {
        guard UnsafeRawBufferPointer(start: base, count: 8).elementsEqual(SymbolIndexFile.magic) else { throw .notAnIndex }
        let version = u32(8)
        guard version == SymbolIndexFile.version else { throw .versionMismatch(found: version) }
        guard u32(40) == SymbolIndexFile.layoutTag else { throw .versionMismatch(found: version) }
        let count = Int(u32(12))
        guard count == SymbolIndexFile.Kind.allCases.count else { throw .corrupt("section count \(count)") }
        let tableEnd = SymbolIndexFile.headerSize + count * SymbolIndexFile.sectionEntrySize
        guard tableEnd <= size else { throw .corrupt("truncated section table") }
        var ranges: [SymbolIndexFile.Kind: UnsafeRawBufferPointer] = [:]
        var ordered: [UnsafeRawBufferPointer] = []
        for i in 0..<count {
            let e = SymbolIndexFile.headerSize + i * SymbolIndexFile.sectionEntrySize
            guard let kind = SymbolIndexFile.Kind(rawValue: u32(e)), ranges[kind] == nil else { throw .corrupt("bad section kind") }
            guard Int(u32(e + 4)) == kind.stride else { throw .corrupt("record size mismatch in \(kind)") }
            let offset = u64(e + 8), length = u64(e + 16)
            guard offset >= UInt64(tableEnd), offset % 8 == 0, length <= UInt64(size), offset <= UInt64(size) - length,
                  length % UInt64(kind.stride) == 0 else { throw .corrupt("section \(kind) out of bounds") }
            let bytes = UnsafeRawBufferPointer(start: base + Int(offset), count: Int(length))
            ordered.append(bytes)
            ranges[kind] = bytes
        }
        let sum = SymbolIndexFile.blockChecksum(UnsafeRawBufferPointer(start: base + 24, count: tableEnd - 24), ordered)
        guard sum == u64(16) else { throw .corrupt("checksum mismatch") }
        func table<T>(_ kind: SymbolIndexFile.Kind, _: T.Type) -> UnsafeBufferPointer<T> {
            let r = ranges[kind]!
            return UnsafeBufferPointer(start: r.baseAddress?.assumingMemoryBound(to: T.self), count: r.count / MemoryLayout<T>.stride)
        }
        sections = Sections(
            strings: ranges[.strings]!, files: table(.files, NamedEntry.self), origins: table(.origins, NamedEntry.self),
            funcs: table(.funcs, FuncRecord.self), lines: table(.lines, LineRecord.self),
            inlines: table(.inlines, InlineRecord.self), publics: table(.publics, PublicRecord.self),
            winFrameData: table(.winFrameData, StackWinRecord.self), winFPO: table(.winFPO, StackWinRecord.self),
            cfiInit: table(.cfiInit, CFIInitRecord.self), cfiDelta: table(.cfiDelta, CFIDeltaRecord.self))
        let metadata: SymbolIndexFile.Metadata
        do { metadata = try JSONDecoder().decode(SymbolIndexFile.Metadata.self, from: Data(ranges[.metadata]!)) }
        catch { throw .corrupt("unreadable metadata") }
        return (metadata, u64(24), Int64(bitPattern: u64(32)))
    }
}

extension SymbolTable {
    /// Loads the symbol file at `path` through an index cache at `indexPath`: a valid index for
    /// this exact file is mapped; otherwise the text is parsed and a fresh index written.
    public static func load(symbolFile path: String, indexPath: String) throws(SymbolFileError) -> (table: SymbolTable, fromIndex: Bool) {
        do {
            return try load(source: path, indexPath: indexPath) { try SymbolFileParser().parse(path: path) }
        } catch let error as SymbolFileError {
            throw error
        } catch {
            throw .readFailed(path: path, errno: EIO) // the parser throws nothing else
        }
    }

    /// The table of the file at `path` (a `.sym`, or a native debug file read by `build`): from
    /// its index when the index was written for this very file (size and modification time),
    /// else built and its index written for next time.
    public static func load(source path: String, indexPath: String, build: () throws -> SymbolTable) throws -> (table: SymbolTable, fromIndex: Bool) {
        let fingerprint = SourceFingerprint(path: path)
        if let fingerprint, let table = try? SymbolIndexFile.open(indexPath, source: fingerprint) {
            return (table, true)
        }
        let table = try build()
        try? SymbolIndexFile.write(table, to: indexPath, source: fingerprint)
        return (table, false)
    }
}
