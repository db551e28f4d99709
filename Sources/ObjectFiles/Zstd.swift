#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// zstd-compressed debug sections (`ELFCOMPRESS_ZSTD`, what `-gz=zstd` and newer toolchains
/// write), decoded by the system's libzstd loaded at first use: every Debian and Ubuntu has
/// libzstd1 (apt itself needs it), but no listed Swift package decodes zstd, and linking it would
/// need its headers on every build machine. Without the library such sections are reported as
/// not supported, as before.
enum Zstd {
    private typealias Decompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    private typealias IsError = @convention(c) (Int) -> UInt32

    private struct Library {
        let decompress: Decompress
        let isError: IsError
    }

    private static let library: Library? = {
        for name in ["libzstd.so.1", "libzstd.so", "libzstd.1.dylib", "libzstd.dylib"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let d = dlsym(handle, "ZSTD_decompress"), let e = dlsym(handle, "ZSTD_isError") else { continue }
            return Library(decompress: unsafeBitCast(d, to: Decompress.self), isError: unsafeBitCast(e, to: IsError.self))
        }
        return nil
    }()

    static var isAvailable: Bool { library != nil }

    /// zstd's densest encoding (a run-length block: 4 bytes for 128 KiB) bounds what a
    /// compressed size can honestly claim.
    static let maxRatio: UInt64 = 1 << 15

    /// The decompressed bytes of the zstd frames in `data[start...]`, which must come to exactly `size`.
    static func decompress(_ data: ObjectBytes, from start: Int, size: UInt64, what: String) throws(ObjectFileError) -> ObjectBytes {
        guard let library else {
            throw .notSupported("section \(what) is compressed with zstd, and the system's libzstd (libzstd.so.1) is not installed")
        }
        guard start <= data.count else { throw .truncated(what: "compressed section \(what)", offset: UInt64(start), size: 0) }
        let compressed = UInt64(data.count - start)
        guard size <= ELFFile.maxSectionSize, size <= compressed &* maxRatio &+ 4096, let capacity = Int(exactly: size) else {
            throw .malformed("section \(what) claims \(size) bytes uncompressed from \(compressed)")
        }
        // The output memory is only touched as zstd writes it: a lie about the size fails
        // before it costs memory.
        return try ObjectBytes.filling(capacity) { (output: UnsafeMutableRawBufferPointer) throws(ObjectFileError) -> Int in
            let result = data.withUnsafeBytes { input in
                library.decompress(output.baseAddress, capacity, input.baseAddress.map { $0 + start }, input.count - start)
            }
            guard library.isError(result) == 0 else { throw .malformed("section \(what) does not decompress (zstd error \(-result))") }
            guard result == capacity else {
                throw .malformed("section \(what) decompresses to \(result) bytes, not the \(size) its header says")
            }
            return result
        }
    }
}
