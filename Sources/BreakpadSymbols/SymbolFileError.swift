/// Why a symbol file or an index could not be used.
public enum SymbolFileError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)
    case readFailed(path: String, errno: Int32)
    /// The first record is not `MODULE os arch id name`.
    case missingModuleRecord
    case tooLarge(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let e): return "cannot open \(path): \(String(cString: strerror(e)))"
        case .readFailed(let path, let e): return "cannot read \(path): \(String(cString: strerror(e)))"
        case .missingModuleRecord: return "not a Breakpad symbol file: the first record is not a valid MODULE line"
        case .tooLarge(let what): return "symbol file too large: \(what)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
