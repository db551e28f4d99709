import Foundation

/// Durable storage of crash files, processed crashes and symbols under string keys
/// (`v1/raw_crash/20261129/<id>`, `v1/dump/<id>`, …; see docs/architecture.md). Two backends share
/// this interface and one test suite: the filesystem (embedded default) and S3-compatible object
/// storage (scale-out).
public protocol BlobStore: Sendable {
    /// Stores `data` under `key`, replacing what was there. When this returns, the object is
    /// durable; a reader never sees a partial object under `key`.
    func put(_ key: String, _ data: Data) async throws
    /// The object under `key`, nil when there is none.
    func get(_ key: String) async throws -> Data?
    /// The size of the object under `key`, nil when there is none.
    func size(_ key: String) async throws -> Int?
    /// Removes the object under `key`; removing a missing object is not an error.
    func delete(_ key: String) async throws
    /// Every key that starts with `prefix`, in byte order.
    func list(prefix: String) async throws -> [String]
    /// Throws when the store cannot be used (for `/__heartbeat__`).
    func check() async throws
    /// A short description for logs and the heartbeat ("filesystem /data/blobs", "s3 bucket x").
    var description: String { get }
    /// Stores several objects; the last becomes visible only after all the others are durable
    /// (a crash's raw crash, whose presence means the crash is complete). When this returns,
    /// all are durable.
    func putAll(_ items: [(String, Data)]) async throws
    /// `put`, with HTTP headers the object is served with where the store serves objects itself
    /// (S3: `Content-Encoding`, `Content-Type`, `Cache-Control`). Other stores ignore them.
    func put(_ key: String, _ data: Data, headers: [(String, String)]) async throws
}

extension BlobStore {
    public func put(_ key: String, _ data: Data, headers: [(String, String)]) async throws { try await put(key, data) }
}

extension BlobStore {
    /// Every key checked first, then all but the last in parallel, then the last.
    public func putAll(_ items: [(String, Data)]) async throws {
        for (key, _) in items { try BlobKey.validate(key) }
        guard let last = items.last else { return }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (key, data) in items.dropLast() { group.addTask { try await self.put(key, data) } }
            try await group.waitForAll()
        }
        try await put(last.0, last.1)
    }
}

public enum BlobStoreError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalidKey(String, reason: String)
    case io(key: String, operation: String, errno: Int32)
    case tooLarge(key: String, size: Int, limit: Int)
    case s3(operation: String, status: Int, code: String, message: String)
    case transport(operation: String, message: String)

    public var description: String {
        switch self {
        case .invalidKey(let key, let reason): return "invalid blob key \"\(key)\": \(reason)"
        case .io(let key, let operation, let code): return "\(operation) \(key): \(String(cString: strerror(code)))"
        case .tooLarge(let key, let size, let limit): return "\(key): \(size) bytes is over the limit of \(limit)"
        case .s3(let operation, let status, let code, let message):
            return "S3 \(operation): HTTP \(status)\(code.isEmpty ? "" : " \(code)")\(message.isEmpty ? "" : ": \(message)")"
        case .transport(let operation, let message): return "S3 \(operation): \(message)"
        }
    }
}

/// The rules every key follows, whatever the backend: relative, `/`-separated, no empty, `.` or
/// `..` components, no component starting with `.` (the filesystem store's temporary files),
/// printable ASCII without `\`, at most 1024 bytes. Names from requests and archives become keys
/// only through this check, so none can escape the store's root.
public enum BlobKey {
    public static let maximumLength = 1024

    public static func validate(_ key: String) throws(BlobStoreError) {
        let utf8 = key.utf8
        guard !utf8.isEmpty else { throw .invalidKey(key, reason: "empty") }
        guard utf8.count <= maximumLength else { throw .invalidKey(key, reason: "longer than \(maximumLength) bytes") }
        for b in utf8 where b < 0x20 || b >= 0x7F || b == UInt8(ascii: "\\") {
            throw .invalidKey(key, reason: "only printable ASCII without backslashes is allowed")
        }
        for component in key.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { throw .invalidKey(key, reason: "empty path component") }
            if component.first == "." { throw .invalidKey(key, reason: "a path component starts with \".\"") }
        }
    }

    /// A prefix for listing: like a key, but it may be empty or end with `/`.
    public static func validatePrefix(_ prefix: String) throws(BlobStoreError) {
        if prefix.isEmpty { return }
        var trimmed = Substring(prefix)
        if trimmed.last == "/" { trimmed = trimmed.dropLast() }
        try validate(String(trimmed))
    }
}
