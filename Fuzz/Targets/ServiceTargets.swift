// Targets for what services read from clients: `.sym` files, crash submissions (multipart,
// gzip), Super Search parameters, symbolication requests and crash annotations in the processor.
// Each goes through the public entry point the service itself uses, on real temporary storage.
import CrashModel
import BreakpadSymbols
import Collector
import CrashStats
import Foundation
import JSONSupport
import Logging
import NIOCore
import Processor
import ServiceSupport
import Signatures
import Stackwalker
import Storage
import SymbolServer
import SymbolSources
import Symbolication

/// The fuzz targets: each takes one input and sends it where untrusted bytes enter Postmortem.
/// libFuzzer drives them from `Fuzz/` (coverage-guided, long runs); the test suite drives them
/// with mutations of `Fuzz/Corpus` (the short run CI does). A trap, an overflow or a sanitizer
/// report is a finding; a documented error answer is not.
public enum FuzzTargets {
    public static let names = ["minidump", "sym", "submission", "supersearch", "symbolication", "processor", "symbolupload", "elf", "macho"]

    /// Runs one input through `target`; false for an unknown target name.
    public static func run(_ target: String, _ bytes: [UInt8]) async -> Bool {
        switch target {
        case "minidump": await minidump(bytes)
        case "sym": symbolFile(bytes)
        case "submission": await submission(bytes)
        case "supersearch": await superSearch(bytes)
        case "symbolication": await symbolication(bytes)
        case "processor": await processor(bytes)
        case "symbolupload": symbolUpload(bytes)
        case "elf": elf(bytes)
        case "macho": macho(bytes)
        default: return false
        }
        return true
    }

    /// `.sym` text: parsed, then every kind of lookup on what was parsed.
    static func symbolFile(_ bytes: [UInt8]) {
        guard let table = try? SymbolFileParser().parse(bytes) else { return }
        for address: UInt64 in [0, 1, 0x1000, 0xffff_ffff, .max] {
            _ = table.lookup(address)
            _ = table.cfiRules(at: address)
            _ = table.stackWin(at: address)
            _ = table.parameterSize(at: address)
        }
    }

    /// A submission body under the boundary `fuzz`; the first byte chooses gzip (odd) and the
    /// chunk size the body arrives in.
    static func submission(_ bytes: [UInt8]) async {
        guard let first = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        let chunkSize = max(1, Int(first >> 1) * 97)
        var chunks: [ByteBuffer] = []
        var start = 0
        while start < body.count {
            let end = min(body.count, start + chunkSize)
            chunks.append(ByteBuffer(bytes: body[start..<end]))
            start = end
        }
        var headers = [("Content-Type", "multipart/form-data; boundary=fuzz"), ("Content-Length", String(body.count))]
        if first & 1 == 1 { headers.append(("Content-Encoding", "gzip")) }
        _ = await FuzzWorld.collector.handle(Submission(headers: headers, query: [("product", "Fuzz")], body: Chunks(chunks: chunks)))
    }

    /// The input as a query string (form-encoded), to Super Search and the other GET models;
    /// the first byte picks the model.
    static func superSearch(_ bytes: [UInt8]) async {
        guard let world = try? await FuzzWorld.storage.value else { preconditionFailure("fuzz set-up failed") }
        let query = FormEncoding.parse(String(decoding: bytes, as: UTF8.self))
        let models = ["SuperSearch", "SuperSearchUnredacted", "MissingProcessedCrash", "SignatureFirstDate", "VersionString", "RawCrash"]
        let endpoint = models[Int(bytes.first ?? 0) % models.count]
        _ = await world.api.handle(APIRequest(method: "GET", endpoint: endpoint, query: query, client: "fuzz"))
    }

    /// A `/symbolicate/v5` (even first byte) or v4 body.
    static func symbolication(_ bytes: [UInt8]) async {
        let version: SymbolicationAPIVersion = (bytes.first ?? 0) & 1 == 0 ? .v5 : .v4
        _ = await FuzzWorld.symbolicator.symbolicate(body: Data(bytes), version: version)
    }

    /// The input as the annotations of a stored raw crash (a JSON object; anything else becomes
    /// the value of one annotation), processed by the default ruleset without dumps.
    static func processor(_ bytes: [UInt8]) async {
        guard let world = try? await FuzzWorld.storage.value else { preconditionFailure("fuzz set-up failed") }
        var annotations: [(String, JSONValue)]
        if case .object(let pairs)? = JSONValue.parse(Data(bytes)) {
            annotations = pairs
        } else {
            annotations = [("ProductName", .string("Firefox")), ("MozCrashReason", .string(String(decoding: bytes, as: UTF8.self)))]
        }
        let id = "de1bb258-cbbf-4589-a673-34f800261128"
        annotations.append(("uuid", .string(id)))
        let raw = Data(JSONValue.object(annotations).serialized().utf8)
        try? await world.blobs.put(BlobKeys.rawCrash(id, date: "20261128"), raw)
        _ = try? await world.processor.process(id)
    }
}

extension FuzzTargets {
    /// A symbol upload archive: validated as the symbol server validates it, every member read
    /// (within the limits) and its `.sym` header parsed; the member names also go through the
    /// download-path and source-path rules.
    static func symbolUpload(_ bytes: [UInt8]) {
        var limits = UploadArchive.Limits()
        limits.maxUncompressedBytes = 64 << 20
        if let archive = try? UploadArchive(data: Data(bytes), limits: limits) {
            _ = archive.contentHash
            for member in archive.members {
                guard let data = try? archive.contents(of: member) else { continue }
                _ = SymbolFileHeader.read(data)
                _ = SymbolPath("/" + member.name)
                _ = SourcePath.clean(member.name)
            }
        }
        let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
        _ = SymbolPath(text)
        _ = SourcePath.clean(text)
    }
}

/// What the targets share, made once per process.
enum FuzzWorld {
    struct Storage: Sendable {
        let api: CrashStatsAPI
        let processor: CrashProcessor
        let blobs: FileBlobStore
    }

    static let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The collector on blobs that are thrown away: its writes cost nothing over millions of inputs.
    static let collector: Collector = {
        var configuration = CollectorConfiguration()
        configuration.saveAttempts = 1
        return Collector(configuration: configuration, throttler: .standard(products: [], roll: { 0 }), blobs: DiscardingBlobStore(),
                         queue: nil, metadata: nil, logger: quiet)
    }()

    /// The Crash Stats API and the processor on a temporary SQLite database holding a few crashes.
    static let storage = Task { () throws -> Storage in
        let dir = NSTemporaryDirectory() + "postmortem-fuzz-\(getpid())"
        let blobs = try FileBlobStore(root: URL(fileURLWithPath: dir + "/blobs"))
        let database = try await Database.open(url: "sqlite://\(dir)/pm.sqlite", poolSize: 2)
        let metadata = try await MetadataStore.open(database)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var rows: [CrashIndexRow] = []
        for n in 0..<20 {
            let document = JSONValue.object([("url", .string("https://example.com/\(n)")), ("uptime", .int(Int64(n * 10)))])
            rows.append(CrashIndexRow(crashID: String(format: "de1bb258-cbbf-4589-a673-%06d261128", n), dateProcessed: now - Int64(n) * 3_600_000_000,
                                      product: n % 2 == 0 ? "Firefox" : "Fenix", version: "12\(n % 3).0",
                                      platform: n % 2 == 0 ? "Linux" : "Windows NT", signature: "sig\(n % 5)", uptime: Int64(n * 10),
                                      document: document))
        }
        try await metadata.index(rows)
        let generator = SignatureGenerator(lists: try SignatureLists.bundled())
        let api = try CrashStatsAPI(blobs: blobs, metadata: metadata, queue: WorkQueue(database: database), signatures: generator,
                                    anonymousPerMinute: 0, authenticatedPerMinute: 0, queryTimeout: .seconds(2))
        let processor = try CrashProcessor(blobs: blobs, metadata: metadata, walker: Stackwalker(supplier: nil), signatures: generator,
                                       stackwalkTimeLimit: .seconds(5), logger: quiet)
        return Storage(api: api, processor: processor, blobs: blobs)
    }

    /// Symbolication over the shared test symbols when they are beside the package.
    static let symbolicator: Symbolicator = {
        let tree = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/testdata/symbolication/symbols").standardized.path
        let configuration = SymbolSourcesConfiguration(symbolPaths: FileManager.default.fileExists(atPath: tree) ? [tree] : [],
                                                       cacheDirectory: NSTemporaryDirectory() + "postmortem-fuzz-cache-\(getpid())")
        return Symbolicator(supplier: SymbolSupplier(configuration: configuration))
    }()
}

/// Blobs that are thrown away.
struct DiscardingBlobStore: BlobStore {
    func put(_ key: String, _ data: Data) async throws {}
    func get(_ key: String) async throws -> Data? { nil }
    func size(_ key: String) async throws -> Int? { nil }
    func delete(_ key: String) async throws {}
    func list(prefix: String) async throws -> [String] { [] }
    func check() async throws {}
    var description: String { "discarding" }
}

struct Chunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: ArraySlice<ByteBuffer>
        mutating func next() async -> ByteBuffer? { rest.popFirst() }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: chunks[...]) }
}
