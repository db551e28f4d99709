/// Why a minidump, or one of its streams, could not be read. Every read is bounds-checked, so a
/// corrupt dump ends in one of these, naming the stream, instead of a trap.
public enum MinidumpError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)
    case notAMinidump
    case truncated(what: String, offset: UInt64, size: UInt64)
    case badStream(stream: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let e): return "cannot open \(path): \(String(cString: strerror(e)))"
        case .notAMinidump: return "not a minidump (no MDMP signature)"
        case .truncated(let what, let offset, let size):
            return "\(what): \(size) bytes at offset \(offset) are outside the file"
        case .badStream(let stream, let reason): return "\(stream) stream: \(reason)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
