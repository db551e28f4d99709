#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an object file (ELF, Mach-O) or its debug information could not be read.
public enum ObjectFileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, errno: Int32)
    case truncated(what: String, offset: UInt64, size: UInt64)
    case notSupported(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let e): "cannot open \(path): \(String(cString: strerror(e)))"
        case .truncated(let what, let offset, let size): "\(what): \(size) bytes at offset \(offset) run past the end of the data"
        case .notSupported(let s): "not supported: \(s)"
        case .malformed(let s): "malformed: \(s)"
        }
    }
}

/// Bounds-checked reads over an object file's bytes (memory-mapped, or owned), in either byte
/// order. Every read says what it reads, so a truncated file names the structure that ran out.
public struct ObjectBytes: @unchecked Sendable {
    let base: UnsafeRawPointer?
    public let count: Int
    public var bigEndian = false
    /// Keeps the mapping or the owned copy alive.
    let owner: AnyObject?

    init(base: UnsafeRawPointer?, count: Int, owner: AnyObject?, bigEndian: Bool = false) {
        self.base = base
        self.count = count
        self.owner = owner
        self.bigEndian = bigEndian
    }

    /// A copy of `bytes` (decompressed sections, tests).
    public init(_ bytes: [UInt8]) {
        let storage = OwnedBuffer(bytes)
        self.init(base: UnsafeRawPointer(storage.pointer), count: bytes.count, owner: storage)
    }

    /// The file mapped read-only.
    public static func map(path: String) throws(ObjectFileError) -> ObjectBytes {
        let mapping = try FileMapping(path: path)
        return ObjectBytes(base: mapping.base, count: mapping.size, owner: mapping)
    }

    @inline(__always)
    public func contains(_ offset: UInt64, _ size: UInt64) -> Bool {
        offset <= UInt64(count) && size <= UInt64(count) - offset
    }

    @inline(__always)
    public func read<T: FixedWidthInteger>(_ offset: UInt64, as: T.Type, _ what: @autoclosure () -> String) throws(ObjectFileError) -> T {
        let size = UInt64(MemoryLayout<T>.size)
        guard let base, contains(offset, size) else { throw .truncated(what: what(), offset: offset, size: size) }
        let raw = base.loadUnaligned(fromByteOffset: Int(offset), as: T.self)
        return bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
    }

    public func u8(_ o: UInt64, _ what: @autoclosure () -> String) throws(ObjectFileError) -> UInt8 { try read(o, as: UInt8.self, what()) }
    public func u16(_ o: UInt64, _ what: @autoclosure () -> String) throws(ObjectFileError) -> UInt16 { try read(o, as: UInt16.self, what()) }
    public func u32(_ o: UInt64, _ what: @autoclosure () -> String) throws(ObjectFileError) -> UInt32 { try read(o, as: UInt32.self, what()) }
    public func u64(_ o: UInt64, _ what: @autoclosure () -> String) throws(ObjectFileError) -> UInt64 { try read(o, as: UInt64.self, what()) }

    /// A 4- or 8-byte word.
    public func word(_ o: UInt64, is64: Bool, _ what: @autoclosure () -> String) throws(ObjectFileError) -> UInt64 {
        is64 ? try u64(o, what()) : UInt64(try u32(o, what()))
    }

    /// A sub-range; throws when it is not inside these bytes.
    public func slice(_ offset: UInt64, _ size: UInt64, _ what: @autoclosure () -> String) throws(ObjectFileError) -> ObjectBytes {
        guard contains(offset, size) else { throw .truncated(what: what(), offset: offset, size: size) }
        return ObjectBytes(base: base.map { $0 + Int(offset) }, count: Int(size), owner: owner, bigEndian: bigEndian)
    }

    /// The NUL-terminated string at `offset` (to the end when there is no NUL), at most `limit` bytes.
    public func cString(_ offset: UInt64, limit: Int = 1 << 16) -> String? {
        guard let base, offset < UInt64(count) else { return nil }
        let start = base + Int(offset)
        let available = min(count - Int(offset), limit)
        let buffer = UnsafeRawBufferPointer(start: start, count: available)
        let end = buffer.firstIndex(of: 0) ?? available
        return String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<end]), as: UTF8.self)
    }

    /// The length of the NUL-terminated string at `offset` (to the end when there is no NUL).
    public func cStringLength(_ offset: UInt64) -> Int? {
        guard let base, offset < UInt64(count) else { return nil }
        let available = count - Int(offset)
        guard let nul = memchr(base + Int(offset), 0, available) else { return available }
        return UnsafeRawPointer(nul) - (base + Int(offset))
    }

    /// Lets the system take back the memory of these bytes when they are a file mapping (they
    /// are read again from the file if touched later): a large debug file's sections need not
    /// stay resident once read.
    public func dropResidentPages() { dropResidentPages(0..<UInt64(count)) }

    /// The same for the whole pages inside `range` (clamped to these bytes).
    public func dropResidentPages(_ range: Range<UInt64>) {
        guard let base, owner is FileMapping, range.lowerBound < UInt64(count) else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let from = Int(range.lowerBound), to = Int(min(range.upperBound, UInt64(count)))
        let start = (Int(bitPattern: base) + from + page - 1) / page * page
        let end = (Int(bitPattern: base) + to) / page * page
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, MADV_DONTNEED)
    }

    public var bytes: [UInt8] {
        guard let base, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

/// A read-only mapping of a file, unmapped with its last user.
final class FileMapping: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let size: Int

    init(path: String) throws(ObjectFileError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notSupported("\(path) is not a regular file") }
        size = Int(st.st_size)
        if size == 0 { base = nil; return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { throw .cannotOpen(path: path, errno: errno) }
        base = UnsafeRawPointer(p)
    }

    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) } }
}

final class OwnedBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(_ bytes: [UInt8]) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 16)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { pointer.copyMemory(from: b, byteCount: bytes.count) } }
    }
    /// Takes over memory from `UnsafeMutableRawPointer.allocate(byteCount:alignment: 16)`.
    init(adopting pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}

extension ObjectBytes {
    /// `count` bytes written by `fill` into fresh memory, which is not touched beforehand: a
    /// large claimed size costs address space, not memory, until it is written. `fill` returns
    /// how many bytes it wrote (at most `count`).
    static func filling(_ count: Int, _ fill: (UnsafeMutableRawBufferPointer) throws(ObjectFileError) -> Int) throws(ObjectFileError) -> ObjectBytes {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, count), alignment: 16)
        let storage = OwnedBuffer(adopting: pointer)
        let written = try fill(UnsafeMutableRawBufferPointer(start: pointer, count: count))
        return ObjectBytes(base: UnsafeRawPointer(pointer), count: min(written, count), owner: storage)
    }
}
