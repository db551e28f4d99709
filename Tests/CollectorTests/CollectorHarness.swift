import CrashModel
import AsyncHTTPClient
import Collector
import CompressNIO
import Foundation
import Hummingbird
import JSONSupport
import NIOCore
import ServiceSupport
import Storage
import Testing
import TestSupport

/// A collector served over real HTTP on 127.0.0.1, on filesystem blobs and SQLite in a fresh
/// directory.
final class CollectorHarness: @unchecked Sendable {
    let directory: String
    let blobs: FileBlobStore
    let database: Database
    let metadata: MetadataStore
    let queue: WorkQueue
    let base: String
    private let server: RunningService

    init(configuration: CollectorConfiguration = CollectorConfiguration(), throttler: Throttler? = nil,
         blobStore: (any BlobStore)? = nil) async throws {
        directory = TestData.temporaryDirectory("collector")
        blobs = try FileBlobStore(root: URL(fileURLWithPath: directory + "/blobs"))
        database = try await Database.open(url: "sqlite://\(directory)/pm.sqlite", poolSize: 4)
        metadata = try await MetadataStore.open(database)
        queue = WorkQueue(database: database)
        let defaultThrottler = try configuration.throttler()
        let collector = Collector(configuration: configuration, throttler: throttler ?? defaultThrottler,
                                  blobs: blobStore ?? blobs, queue: queue, metadata: metadata)
        server = await RunningService(HTTPService(name: "collector-test", host: "127.0.0.1", port: 0, logger: RunningService.quietLogger) { router in
            CollectorService.mount(collector, on: router)
        })
        base = server.base
    }

    func close() async {
        await server.stop()
        await database.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    struct Answer {
        let status: Int
        let body: String
        let contentType: String
    }

    enum Framing { case contentLength, chunked, none }

    /// POSTs `body` to /submit with the given headers.
    func post(_ body: ByteBuffer, headers: [(String, String)], framing: Framing = .contentLength, query: String = "") async throws -> Answer {
        var request = HTTPClientRequest(url: base + "/submit" + query)
        request.method = .POST
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        switch framing {
        case .contentLength:
            request.body = .bytes(body)
        case .chunked:
            let pieces = stride(from: 0, to: body.readableBytes, by: 1000).map { body.getSlice(at: $0, length: min(1000, body.readableBytes - $0))! }
            request.body = .stream(Pieces(pieces: pieces), length: .unknown)
        case .none:
            break
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), body: String(buffer: text), contentType: response.headers.first(name: "content-type") ?? "")
    }

    /// The stored raw crash, dump names and dumps of a crash id.
    func stored(_ id: String) async throws -> (raw: JSONValue, dumpNames: [String], dumps: [String: Data])? {
        guard let raw = try await blobs.get(BlobKeys.rawCrash(id, date: CrashID.date(of: id))) else { return nil }
        let namesData = try #require(try await blobs.get(BlobKeys.dumpNames(id)))
        guard case .array(let items)? = JSONValue.parse(namesData) else { return nil }
        let names = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        var dumps: [String: Data] = [:]
        for name in names { dumps[name] = try await blobs.get(BlobKeys.dump(id, name: name)) }
        return (try #require(JSONValue.parse(raw)), names, dumps)
    }
}

struct Pieces: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let pieces: [ByteBuffer]
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: ArraySlice<ByteBuffer>
        mutating func next() async -> ByteBuffer? { rest.popFirst() }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: pieces[...]) }
}

/// Builds multipart bodies part by part, including broken ones.
struct MultipartBody {
    var boundary = "01659896d5dc42cabd7f3d8a3dcdd3bb"
    var bytes = ByteBuffer()

    mutating func field(_ name: String, _ value: String, contentType: String? = "text/plain; charset=utf-8") {
        bytes.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n")
        if let contentType { bytes.writeString("Content-Type: \(contentType)\r\n") }
        bytes.writeString("\r\n\(value)\r\n")
    }

    mutating func file(_ name: String, _ data: [UInt8], filename: String = "file.dump", contentType: String = "application/octet-stream") {
        bytes.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(contentType)\r\n\r\n")
        bytes.writeBytes(data)
        bytes.writeString("\r\n")
    }

    func finished() -> ByteBuffer {
        var b = bytes
        b.writeString("--\(boundary)--\r\n")
        return b
    }

    var headers: [(String, String)] { [("Content-Type", "multipart/form-data; boundary=\(boundary)")] }

    static func gzip(_ buffer: ByteBuffer) throws -> ByteBuffer {
        var b = buffer
        return try b.compress(with: .gzip())
    }
}
