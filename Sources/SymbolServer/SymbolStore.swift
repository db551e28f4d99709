import BreakpadSymbols
import CompressNIO
import Crypto
import Foundation
import NIOCore
import NIOPosix
import Storage
import SymbolSources

/// The symbol files of the symbol server, in the blob store every service shares: regular
/// uploads under `symbols/v1/<debug_file>/<id>/<file>`, try uploads under `symbols/try/v1/…`
/// (Tecken's `v1/…` and `try/v1/…`, under a prefix so they never meet crash keys). `.sym` files
/// are stored gzip-compressed; what each key holds (size, original size and MD5) is recorded in
/// the database, which makes the skip check the same on both stores.
public struct SymbolStore: Sendable {
    public let blobs: any BlobStore
    public let metadata: MetadataStore
    /// File extensions stored gzip-compressed (Tecken's default: `sym`).
    public var compressedExtensions: Set<String> = ["sym"]
    /// The largest `.sym` read back for the processor and symbolication (after decompression).
    public var maxSymbolFileSize = 4 << 30
    let lookups: LookupCache

    /// Threads for hashing, compressing and extracting uploads (CPU-bound work).
    public static let cpu: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(2, ProcessInfo.processInfo.activeProcessorCount))
        pool.start()
        return pool
    }()

    public static let regularPrefix = "symbols/v1/"
    public static let tryPrefix = "symbols/try/v1/"

    public init(blobs: any BlobStore, metadata: MetadataStore, lookupCacheTTL: Duration = .seconds(600)) {
        self.blobs = blobs
        self.metadata = metadata
        lookups = LookupCache(ttl: lookupCacheTTL)
    }

    /// The blob key of `<debug_file>/<id>/<file>`.
    public static func key(_ name: String, isTry: Bool) -> String { (isTry ? tryPrefix : regularPrefix) + name }

    /// A blob key as Tecken names it in its API (`v1/…`, `try/v1/…`, without the store prefix).
    public static func bucketKey(_ key: String) -> String { key.hasPrefix("symbols/") ? String(key.dropFirst("symbols/".count)) : key }

    func isCompressed(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return compressedExtensions.contains(String(name[name.index(after: dot)...]))
    }

    public enum StoreOutcome: Sendable, Equatable {
        case stored(SymbolFileRecord)
        case skipped
    }

    /// Stores one archive member (`<debug_file>/<id>/<file>`) unless the same content is already
    /// there: `.sym` files compressed, with their header recorded; other files as they are.
    public func store(name: String, data: Data, uploadID: Int64?, isTry: Bool) async throws -> StoreOutcome {
        guard let stored = try await write(name: name, data: data, uploadID: uploadID, isTry: isTry) else { return .skipped }
        try await metadata.recordSymbolFiles([stored])
        return .stored(stored.file)
    }

    /// A stored object and its file record, to be recorded with `MetadataStore.recordSymbolFiles`.
    public typealias StoredFile = (object: SymbolObjectInfo, file: SymbolFileRecord)

    /// Stores the bytes unless the same content is there (nil); the caller records the result,
    /// an upload in batches (one database sync per batch instead of two per file).
    public func write(name: String, data: Data, uploadID: Int64?, isTry: Bool) async throws -> StoredFile? {
        let key = Self.key(name, isTry: isTry)
        try BlobKey.validate(key)
        let compressed = isCompressed(name)
        // Hashing and compressing run on their own threads, not the concurrency pool other
        // requests need.
        let md5 = try await Self.cpu.runIfActive { Self.md5Hex(data) }
        if try await holds(name: name, isTry: isTry, originalSize: Int64(data.count), md5: md5) { return nil }
        let body = compressed ? try await Self.cpu.runIfActive { try Self.gzip(data) } : data
        // Tecken's object headers: a bucket (or CDN) serving the object directly sends these.
        try await blobs.put(key, body, headers: compressed
            ? [("Content-Encoding", "gzip"), ("Content-Type", "text/plain"), ("Cache-Control", "no-transform")]
            : [("Content-Type", key.hasSuffix(".sym") ? "text/plain" : "application/octet-stream")])
        return describe(key: key, storedSize: Int64(body.count), original: data, md5: md5, compressed: compressed, uploadID: uploadID)
    }

    /// Whether the store has this content under `name`: for compressed files the same original
    /// size and MD5 (and the object is there), for others an object of the same size (Tecken's
    /// rules).
    public func holds(name: String, isTry: Bool, originalSize: Int64, md5: String) async throws -> Bool {
        let key = Self.key(name, isTry: isTry)
        guard let storedSize = try await blobs.size(key) else { return false }
        if isCompressed(name) {
            guard let existing = try await metadata.symbolObject(key: key) else { return false }
            return existing.originalSize == originalSize && existing.originalMD5 == md5 && Int64(storedSize) == existing.size
        }
        return Int64(storedSize) == originalSize
    }

    /// Records what now lies under `key`: the object's metadata and the file record, with the
    /// `.sym` header's ids.
    func record(key: String, storedSize: Int64, original: Data, md5: String, compressed: Bool, uploadID: Int64?) async throws -> SymbolFileRecord {
        let stored = describe(key: key, storedSize: storedSize, original: original, md5: md5, compressed: compressed, uploadID: uploadID)
        try await metadata.recordSymbolFiles([stored])
        return stored.file
    }

    func describe(key: String, storedSize: Int64, original: Data, md5: String, compressed: Bool, uploadID: Int64?) -> StoredFile {
        var record = SymbolFileRecord(uploadID: uploadID, key: key, isTry: key.hasPrefix(Self.tryPrefix), size: storedSize, compressed: compressed)
        if compressed, let header = SymbolFileHeader.read(original) {
            record.debugFilename = header.debugFile
            record.debugId = header.debugId
            // `INFO CODE_ID <id>` without a file (Linux, Android): the code file is the debug
            // file, which is how stackwalkers name such modules.
            record.codeFile = header.codeFile ?? (header.codeId == nil ? nil : header.debugFile)
            record.codeId = header.codeId
            record.generator = header.generator
        }
        return (SymbolObjectInfo(key: key, size: storedSize, originalSize: Int64(original.count), originalMD5: md5, compressed: compressed), record)
    }

    /// Where a download finds `<debug_file>/<id>/<file>`: regular storage first, then try
    /// storage when asked. Nil when neither has it.
    public func locate(debugFile: String, debugId: String, file: String, includeTry: Bool) async throws -> Located? {
        let name = "\(debugFile)/\(debugId)/\(file)"
        for isTry in includeTry ? [false, true] : [false] {
            let key = Self.key(name, isTry: isTry)
            guard (try? BlobKey.validate(key)) != nil else { return nil }
            if let size = try await blobs.size(key) {
                let info = try await metadata.symbolObject(key: key)
                return Located(key: key, size: size, compressed: info?.compressed ?? isCompressed(file))
            }
        }
        return nil
    }

    public struct Located: Sendable, Equatable {
        public let key: String
        public let size: Int
        public let compressed: Bool
    }

    /// Tecken's code-id lookup: the newest file record naming `file`/`id` as its debug or code
    /// file and id. Answers (found or not) are cached for the lookup TTL unless `refresh`.
    public func lookup(file: String, id: String, includeTry: Bool, refresh: Bool = false) async throws -> SymbolFileRecord? {
        let cacheKey = "\(includeTry ? "t" : "r")/\(file)/\(id.uppercased())"
        if !refresh, let cached = lookups.get(cacheKey) { return cached.record }
        let record = try await metadata.latestSymbolFile(file: file, id: id, includeTry: includeTry)
        lookups.set(cacheKey, record)
        return record
    }

    /// Drops cached lookups (an upload stored new files).
    public func invalidateLookups() { lookups.removeAll() }

    static func md5Hex(_ data: Data) -> String {
        Insecure.MD5.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Level 4: 2.6× faster than zlib's default level 6 on `.sym` text for files 7 % larger
    /// (docs/benchmarks.md); compression is most of an upload's CPU time.
    static func gzip(_ data: Data) throws -> Data {
        var input = ByteBuffer(data: data)
        let output = try input.compress(with: .gzip(configuration: .init(compressionLevel: 4)))
        return Data(output.readableBytesView)
    }

    static func gunzip(_ data: Data, limit: Int) throws -> Data {
        var input = ByteBuffer(data: data)
        let output = try input.decompress(with: .gzip(), maxSize: limit)
        return Data(output.readableBytesView)
    }
}

/// The processor and the symbolication service read uploaded symbols straight from the store.
extension SymbolStore: SymbolObjectSource {
    public var description: String { "symbol store (\(blobs.description))" }

    public func symbolFile(file: String, id: String, name: String) async throws -> Data? {
        var located = try await locate(debugFile: file, debugId: id.uppercased(), file: name, includeTry: false)
        if located == nil, id != id.uppercased() { located = try await locate(debugFile: file, debugId: id, file: name, includeTry: false) }
        if located == nil, name.hasSuffix(".sym"), id.count < 33,
           let record = try await lookup(file: file, id: id, includeTry: false),
           let debugFile = record.debugFilename, let debugId = record.debugId {
            located = try await locate(debugFile: debugFile, debugId: debugId, file: name, includeTry: false)
        }
        guard let located, let data = try await blobs.get(located.key) else { return nil }
        if data.starts(with: [0x1F, 0x8B]) { return try Self.gunzip(data, limit: maxSymbolFileSize) }
        return data
    }
}

/// Code-id lookups, positive and negative, remembered for a while (Tecken: 600 s).
final class LookupCache: @unchecked Sendable {
    struct Entry { let record: SymbolFileRecord?; let until: ContinuousClock.Instant }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    let ttl: Duration
    let maxEntries = 100_000

    init(ttl: Duration) { self.ttl = ttl }

    func get(_ key: String) -> Entry? {
        lock.withLock {
            guard let e = entries[key] else { return nil }
            if e.until < ContinuousClock().now { entries[key] = nil; return nil }
            return e
        }
    }

    func set(_ key: String, _ record: SymbolFileRecord?) {
        guard ttl > .zero else { return }
        lock.withLock {
            if entries.count >= maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(record: record, until: ContinuousClock().now + ttl)
        }
    }

    func removeAll() { lock.withLock { entries.removeAll() } }
}
