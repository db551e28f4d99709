import AsyncHTTPClient
import Foundation
import Hummingbird
import JSONSupport
import NIOCore
import NIOHTTP1
import ServiceSupport
import Storage
import SymbolServer
import Testing
import TestSupport

/// A symbol server over real HTTP on 127.0.0.1, on fresh embedded (files + SQLite) or scale-out
/// (moto S3 + PostgreSQL) storage, with an uploader account holding a regular-upload token and
/// a try-upload token.
final class SymbolServerHarness: @unchecked Sendable {
    let fixture: StorageFixture
    let server: SymbolServer
    let base: String
    let token: String
    let tryToken: String
    let account: Account
    let client: HTTPClient
    let temporaryDirectory: String
    private let running: RunningService
    private let storedLock = NSLock()
    private var storedRecords: [SymbolFileRecord] = []

    init(_ backend: Backend, configure: (inout SymbolServerSettings) -> Void = { _ in }) async throws {
        fixture = try await StorageFixture.make(backend)
        temporaryDirectory = TestData.temporaryDirectory("symbol-uploads")
        var settings = SymbolServerSettings(temporaryDirectory: temporaryDirectory)
        configure(&settings)
        let store = SymbolStore(blobs: fixture.blobs, metadata: fixture.metadata)
        nonisolated(unsafe) var sink: SymbolServerHarness?
        let server = SymbolServer(store: store, settings: settings) { records in sink?.noteStored(records) }
        self.server = server
        account = try await fixture.metadata.createAccount(email: "uploader@example.com")
        try await fixture.metadata.grant("upload_symbols", to: account.id)
        try await fixture.metadata.grant("upload_try_symbols", to: account.id)
        token = try await fixture.metadata.createToken(accountID: account.id, permissions: ["upload_symbols"]).0
        tryToken = try await fixture.metadata.createToken(accountID: account.id, permissions: ["upload_try_symbols"]).0
        running = await RunningService(HTTPService(name: "symbols-test", host: "127.0.0.1", port: 0, logger: RunningService.quietLogger) { router in
            SymbolServer.mount(server, on: router)
        })
        base = running.base
        // Redirects are checked by the tests, not followed; bodies arrive as sent (gzip too).
        client = HTTPClient(eventLoopGroupProvider: .singleton,
                            configuration: .init(redirectConfiguration: .disallow, decompression: .disabled))
        sink = self
    }

    func noteStored(_ records: [SymbolFileRecord]) { storedLock.withLock { storedRecords += records } }
    var stored: [SymbolFileRecord] { storedLock.withLock { storedRecords } }

    func close() async {
        try? await client.shutdown()
        await running.stop()
        await fixture.close()
        try? FileManager.default.removeItem(atPath: temporaryDirectory)
    }

    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let body: Data
        var json: JSONValue? { JSONValue.parse(body) }
        var error: String? { json?["error"]?.stringValue }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func send(_ method: HTTPMethod, _ pathOrURL: String, headers: [(String, String)] = [], body: Data? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: pathOrURL.hasPrefix("http") ? pathOrURL : base + pathOrURL)
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(data: body)) }
        let response = try await client.execute(request, timeout: .seconds(120))
        let collected = try await response.body.collect(upTo: 512 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(collected.readableBytesView))
    }

    /// POSTs `zip` as the first file part of a multipart body, with extra form fields.
    func upload(_ zip: Data, filename: String = "symbols.zip", token: String?, fields: [(String, String)] = [],
                fieldName: String = "file") async throws -> Answer {
        let boundary = "----pm-test-\(UUID().uuidString)"
        var body = Data()
        for (name, value) in fields {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8))
        }
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(fieldName)\"; filename=\"\(filename)\"\r\nContent-Type: application/zip\r\n\r\n".utf8))
        body.append(zip)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        var headers = [("Content-Type", "multipart/form-data; boundary=\(boundary)")]
        if let token { headers.append(("Auth-Token", token)) }
        return try await send(.POST, "/upload/", headers: headers, body: body)
    }

    /// Every key under the symbol prefixes of the store.
    func storedKeys() async throws -> [String] { try await fixture.blobs.list(prefix: "symbols/") }
}
