#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds-checked little-endian reads over the bytes of a dump (memory-mapped or in memory).
public struct ByteView: @unchecked Sendable {
    let base: UnsafeRawPointer?
    public let count: Int
    /// Keeps the underlying storage alive.
    let owner: AnyObject?

    init(base: UnsafeRawPointer?, count: Int, owner: AnyObject?) {
        self.base = base
        self.count = count
        self.owner = owner
    }

    @inline(__always)
    func contains(_ offset: UInt64, _ size: UInt64) -> Bool {
        offset <= UInt64(count) && size <= UInt64(count) - offset
    }

    @inline(__always)
    func read<T: FixedWidthInteger>(_ offset: UInt64, as: T.Type, _ what: @autoclosure () -> String) throws(MinidumpError) -> T {
        let size = UInt64(MemoryLayout<T>.size)
        guard let base, contains(offset, size) else { throw .truncated(what: what(), offset: offset, size: size) }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: Int(offset), as: T.self))
    }

    func u8(_ o: UInt64, _ what: @autoclosure () -> String) throws(MinidumpError) -> UInt8 { try read(o, as: UInt8.self, what()) }
    func u16(_ o: UInt64, _ what: @autoclosure () -> String) throws(MinidumpError) -> UInt16 { try read(o, as: UInt16.self, what()) }
    func u32(_ o: UInt64, _ what: @autoclosure () -> String) throws(MinidumpError) -> UInt32 { try read(o, as: UInt32.self, what()) }
    func u64(_ o: UInt64, _ what: @autoclosure () -> String) throws(MinidumpError) -> UInt64 { try read(o, as: UInt64.self, what()) }

    /// A sub-range; throws when it is not inside the view.
    func slice(_ offset: UInt64, _ size: UInt64, _ what: @autoclosure () -> String) throws(MinidumpError) -> ByteView {
        guard contains(offset, size) else { throw .truncated(what: what(), offset: offset, size: size) }
        return ByteView(base: base.map { $0 + Int(offset) }, count: Int(size), owner: owner)
    }

    public var bytes: [UInt8] {
        guard let base, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

/// A read-only mapping of a dump file, unmapped with its last user.
final class MappedDump: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let size: Int

    init(path: String) throws(MinidumpError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, errno: errno) }
        size = Int(st.st_size)
        if size == 0 { base = nil; return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .cannotOpen(path: path, errno: errno)
        }
        base = UnsafeRawPointer(p)
    }

    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) } }
}

/// Owns a copy of in-memory dump bytes.
final class OwnedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int
    init(_ bytes: [UInt8]) {
        count = bytes.count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 16)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { pointer.copyMemory(from: b, byteCount: bytes.count) } }
    }
    deinit { pointer.deallocate() }
}
