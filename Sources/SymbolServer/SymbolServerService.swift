import CSystemShims
import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import NIOCore
import ServiceSupport
import Storage

/// Settings of the symbol server (`symbols.*` keys, docs/configuration.md).
public struct SymbolServerSettings: Sendable {
    /// Upload bodies larger than this are refused with 413 (Tecken's proxy allows about 2 GB).
    public var maxUploadSize: Int64 = 2 << 30
    /// Upload bodies and archives are spooled here while they are read.
    public var temporaryDirectory: String
    /// Hosts an upload by URL may download from (the URL's and every redirect's host).
    public var allowedDownloadHosts: [String] = []
    /// Upload by URL over plain `http://` (for a build network without TLS; off by default).
    public var allowInsecureDownloads = false
    public var archiveLimits = UploadArchive.Limits()
    /// The name reported as an upload's `bucket`.
    public var bucketName = "symbols"
    /// Lifetime of the presigned URLs an S3-backed server redirects downloads to.
    public var redirectExpiry = 300
    /// A public base URL in front of the bucket (a CDN): downloads redirect to `<base>/<key>`
    /// instead of a presigned URL.
    public var publicBaseURL: String?
    /// Uploads kept: try uploads 30 days, regular ones 2 years (Tecken's `clearuploads`).
    public var tryRetention: Duration = .seconds(30 * 86_400)
    public var regularRetention: Duration = .seconds(730 * 86_400)
    /// Signs the embedded store's upload-v2 PUT URLs.
    public var putSigner = PutURLSigner()

    public init(temporaryDirectory: String) { self.temporaryDirectory = temporaryDirectory }
}

/// Tecken's HTTP API (`symbols-server.md`): upload (v1), auth info, download with the code-id
/// redirect, syminfo, the upload listings and statistics — and the missing-symbols report.
public struct SymbolServer: Sendable {
    public let store: SymbolStore
    public let uploader: SymbolUploader
    public let settings: SymbolServerSettings
    var metadata: MetadataStore { store.metadata }

    public init(store: SymbolStore, settings: SymbolServerSettings, onStored: @escaping @Sendable ([SymbolFileRecord]) async -> Void = { _ in }) {
        self.store = store
        self.settings = settings
        uploader = SymbolUploader(store: store, bucketName: settings.bucketName, onStored: onStored)
    }

    /// A web page sharing a path with the token API: it answers the requests it recognizes as a
    /// browser's (nil lets the API answer). `serve` passes Crash Stats' token page.
    public typealias BrowserPage = @Sendable (Request) async -> Response?

    public static func mount(_ server: SymbolServer, on router: ServiceRouter, tokenPage: BrowserPage? = nil) {
        router.post("/upload") { request, context in try await server.upload(request, context: context) }
        for method in [HTTPRequest.Method.get, .put, .delete, .patch] {
            router.on("/upload", method: method) { request, _ in
                HTTPService.json(.methodNotAllowed, errorBody("Method Not Allowed (\(request.method.rawValue)): \(request.uri.path)"),
                                 headers: [.allow: "POST"])
            }
        }
        router.post("/upload/auth_info") { request, _ in try await server.authInfo(request) }
        router.post("/upload/v2") { request, _ in try await server.uploadV2(request) }
        router.put("/upload/v2/put/:token") { request, context in try await server.putV2(request, context: context) }
        router.post("/upload/v2/:id/complete") { request, context in try await server.completeV2(request, context: context) }
        router.get("/api/syminfo/:file/:id") { request, context in try await server.syminfo(request, context: context) }
        router.get("/api/uploads") { request, _ in try await server.listUploads(request) }
        router.get("/api/uploads/upload/:id") { request, context in try await server.showUpload(request, context: context) }
        router.get("/api/uploads/files") { request, _ in try await server.listFiles(request) }
        router.get("/api/uploads/files/file/:id") { request, context in try await server.showFile(request, context: context) }
        router.get("/api/stats") { request, _ in try await server.stats(request) }
        router.get("/api/missingsymbols") { request, _ in try await server.missingSymbols(request, csv: false) }
        router.get("/api/missingsymbols.csv") { request, _ in try await server.missingSymbols(request, csv: true) }
        router.get("/missingsymbols.csv") { request, _ in try await server.missingSymbols(request, csv: true) }
        mountTokenAPI(server, on: router, browserPage: tokenPage)
        router.add(middleware: SymbolDownloadMiddleware(server: server))
    }

    static func errorBody(_ message: String) -> String { JSONValue.object([("error", .string(message))]).serialized() }

    static func error(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        HTTPService.json(status, errorBody(message), headers: headers)
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        HTTPService.json(status, value.serialized(), headers: [.vary: "Auth-Token"])
    }

    // MARK: - authentication

    enum Authentication {
        case authenticated(Account, APIToken)
        case refused(String)
    }

    /// `symbols-server.md` §1: the `Auth-Token` header (anything after the first `-` is a label).
    func authenticate(_ request: Request) async throws -> Authentication {
        guard let header = request.headers[HTTPField.Name("Auth-Token")!], !header.isEmpty else {
            return .refused("This requires an Auth-Token to authenticate the request")
        }
        switch try await metadata.checkToken(header) {
        case .valid(let account, let token): return .authenticated(account, token)
        case .unknown: return .refused("API Token not matched")
        case .expired: return .refused("API Token found but expired")
        case .inactiveAccount: return .refused("API Token matched but user not active")
        }
    }

    /// A 403 after the whole body was read, so a client streaming a large upload sees the
    /// answer instead of a reset connection.
    func refuse(_ request: Request, _ message: String) async -> Response {
        var remaining = settings.maxUploadSize
        do {
            for try await chunk in request.body {
                remaining -= Int64(chunk.readableBytes)
                if remaining < 0 { break }
            }
        } catch {}
        return Self.error(.forbidden, message)
    }

    enum Authorization {
        case allowed(Account, APIToken)
        case refused(Response)
    }

    /// A caller whose token holds one of `permissions` (or, with `orSuperuser`, whose account is
    /// a superuser); everyone else gets the 403 after their body was read.
    func authorize(_ request: Request, anyOf permissions: Set<String>, orSuperuser: Bool = false) async throws -> Authorization {
        switch try await authenticate(request) {
        case .refused(let message): return .refused(await refuse(request, message))
        case .authenticated(let account, let token):
            guard !token.permissions.isDisjoint(with: permissions) || (orSuperuser && account.isSuperuser) else {
                return .refused(await refuse(request, "Forbidden"))
            }
            return .allowed(account, token)
        }
    }

    static let uploadPermissions: Set<String> = ["upload_symbols", "upload_try_symbols"]

    // MARK: - upload

    func upload(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let account: Account, token: APIToken
        switch try await authorize(request, anyOf: Self.uploadPermissions) {
        case .refused(let response): return response
        case .allowed(let a, let t): (account, token) = (a, t)
        }
        if let length = request.headers[.contentLength].flatMap({ Int64($0) }), length > settings.maxUploadSize {
            return Self.error(.contentTooLarge, "Upload too large (\(length) bytes; the limit is \(settings.maxUploadSize))")
        }
        let clock = ContinuousClock(), started = clock.now
        try FileManager.default.createDirectory(atPath: settings.temporaryDirectory, withIntermediateDirectories: true)
        let spool = TemporaryFile(directory: settings.temporaryDirectory, suffix: ".body")
        defer { spool.remove() }
        let bodySize: Int64
        do {
            bodySize = try await spool.write(request.body, limit: settings.maxUploadSize)
        } catch let tooLarge as TemporaryFile.TooLarge {
            return Self.error(.contentTooLarge, "Upload too large (the limit is \(tooLarge.limit) bytes)")
        }
        let contentType = request.headers[.contentType] ?? ""
        let (type, parameters) = HeaderValue.parse(contentType)
        var form: [(String, String)] = []
        var archiveFile: TemporaryFile?
        var filename = ""
        defer { archiveFile?.remove() }
        if type == "multipart/form-data", let boundary = parameters["boundary"], !boundary.isEmpty {
            let data = try Data(contentsOf: URL(fileURLWithPath: spool.path), options: .alwaysMapped)
            let parts: [MultipartPart]
            do {
                parts = try data.withUnsafeBytes { raw throws(MultipartError) in
                    try MultipartParser(boundary: boundary, maxPartSize: Int(clamping: settings.maxUploadSize), maxParts: 100).parse(raw)
                }
            } catch {
                return Self.error(.badRequest, "Malformed multipart body: \(error)")
            }
            for part in parts {
                if let name = part.filename, archiveFile == nil {
                    filename = name
                    let file = TemporaryFile(directory: settings.temporaryDirectory, suffix: ".zip")
                    archiveFile = file
                    try data[part.range].write(to: URL(fileURLWithPath: file.path))
                } else if part.filename == nil, let name = part.name, part.range.count <= 64 << 10 {
                    form.append((name, String(decoding: data[part.range], as: UTF8.self)))
                }
            }
        } else if type == "application/x-www-form-urlencoded", bodySize <= 64 << 10 {
            form = FormEncoding.parse(String(decoding: try Data(contentsOf: URL(fileURLWithPath: spool.path)), as: UTF8.self))
        }
        let isTry = form.contains { $0.0 == "try" } || !token.permissions.contains("upload_symbols")
        var size = bodySize
        var downloadURL: String?, redirects: [String] = []
        if archiveFile != nil {
            let ext = (filename as NSString).pathExtension.lowercased()
            guard ext == "zip" else { return Self.error(.badRequest, "Unrecognized archive file extension \".\(ext)\"") }
            size = Int64(try FileManager.default.attributesOfItem(atPath: archiveFile!.path)[.size] as? Int ?? 0)
        } else if let url = form.first(where: { $0.0 == "url" })?.1, !url.isEmpty {
            let fetcher = UploadByURL(allowedHosts: settings.allowedDownloadHosts, allowInsecure: settings.allowInsecureDownloads,
                                      maxSize: settings.maxUploadSize)
            let file = TemporaryFile(directory: settings.temporaryDirectory, suffix: ".zip")
            archiveFile = file
            switch await fetcher.download(url, to: file) {
            case .failure(let failure): return Self.error(failure.status, failure.message)
            case .success(let fetched):
                (size, redirects, filename) = (fetched.size, fetched.redirects, fetched.filename)
                downloadURL = url
            }
        } else {
            return Self.error(.badRequest, "Must be multipart form data with at least one file")
        }
        let received = clock.now
        let archive: UploadArchive
        let extracted = settings.temporaryDirectory + "/upload-\(UUID().uuidString).members"
        defer { try? FileManager.default.removeItem(atPath: extracted) }
        do {
            archive = try UploadArchive(url: URL(fileURLWithPath: archiveFile!.path), limits: settings.archiveLimits)
            try FileManager.default.createDirectory(atPath: extracted, withIntermediateDirectories: false)
            // Every member is inflated and checked before anything is stored.
            try await SymbolStore.cpu.runIfActive { [archive] in
                do { try archive.extractAll(into: extracted, workers: ProcessInfo.processInfo.activeProcessorCount) } catch { throw error }
            }
        } catch let rejection as UploadArchive.Rejection {
            return Self.error(.badRequest, rejection.message)
        }
        let verified = clock.now
        let record: SymbolUploadRecord
        do {
            record = try await uploader.upload(archive, extracted: extracted, filename: filename, size: size, accountID: account.id, isTry: isTry,
                                               downloadURL: downloadURL, redirectURLs: redirects)
        } catch let error as BlobStoreError {
            if case .invalidKey(let key, let reason) = error { return Self.error(.badRequest, "Unusable file name \(key): \(reason)") }
            throw error
        }
        func seconds(_ d: Duration) -> String { String(format: "%.2f", d.inSecondsDouble) }
        context.logger.info("symbol upload", metadata: [
            "upload": "\(record.id)", "user": "\(account.email)", "files": "\(record.files.count)", "skipped": "\(record.skippedKeys.count)",
            "try": "\(isTry)", "bytes": "\(size)", "receive_s": "\(seconds(received - started))", "verify_s": "\(seconds(verified - received))",
            "store_s": "\(seconds(clock.now - verified))",
        ])
        return Self.json(.created, .object([("upload", Self.uploadJSON(record))]))
    }

    static func time(_ micros: Int64?) -> JSONValue {
        guard let micros else { return .null }
        return .string(ISOTime.string(Date(timeIntervalSince1970: Double(micros) / 1_000_000)))
    }

    static func uploadJSON(_ u: SymbolUploadRecord) -> JSONValue {
        .object([
            ("id", .int(Int64(u.id))), ("size", .int(Int64(u.size))), ("filename", .string(u.filename)), ("bucket", .string(u.bucket)),
            ("download_url", u.downloadURL.map(JSONValue.string) ?? .null), ("try_symbols", .bool(u.isTry)),
            ("redirect_urls", .array(u.redirectURLs.map(JSONValue.string))), ("completed_at", time(u.completedAt)), ("created_at", time(u.createdAt)),
            ("user", u.user.map(JSONValue.string) ?? .null), ("content_hash", .string(u.contentHash)),
            ("skipped_keys", .array(u.skippedKeys.map(JSONValue.string))), ("ignored_keys", .array(u.ignoredKeys.map(JSONValue.string))),
            ("files", .array(u.files.map { .string(SymbolStore.bucketKey($0)) })),
        ])
    }

    static func fileJSON(_ f: SymbolFileRecord, bucket: String) -> JSONValue {
        func opt(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        return .object([
            ("id", .int(Int64(f.id))), ("upload", f.uploadID.map { .int(Int64($0)) } ?? .null), ("key", .string(SymbolStore.bucketKey(f.key))),
            ("bucket_name", .string(bucket)), ("size", .int(Int64(f.size))), ("compressed", .bool(f.compressed)), ("try_symbols", .bool(f.isTry)),
            ("debug_filename", opt(f.debugFilename)), ("debug_id", opt(f.debugId)), ("code_file", opt(f.codeFile)), ("code_id", opt(f.codeId)),
            ("generator", opt(f.generator)), ("created_at", time(f.createdAt)), ("completed_at", time(f.createdAt)),
        ])
    }

    func authInfo(_ request: Request) async throws -> Response {
        switch try await authenticate(request) {
        case .refused(let message): return await refuse(request, message)
        case .authenticated(let account, let token):
            return Self.json(.ok, .object([
                ("email", .string(account.email)), ("user_id", .int(Int64(account.id))),
                ("try_symbols", .bool(!token.permissions.contains("upload_symbols"))),
                ("token_expires_at", .int(Int64(token.expiresAt / 1_000_000))), ("upload_api_version", .int(1)),
            ]))
        }
    }

    // MARK: - syminfo

    func syminfo(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let cors: HTTPFields = [.accessControlAllowOrigin: "*", .accessControlAllowMethods: "GET"]
        let file = context.parameters.get("file") ?? "", id = context.parameters.get("id") ?? ""
        let refresh = (request.uri.query ?? "").contains("_refresh")
        guard !file.isEmpty, !id.isEmpty, let record = try await store.lookup(file: file, id: id, includeTry: false, refresh: refresh),
              let debugFile = record.debugFilename, let debugId = record.debugId else {
            return Self.error(.notFound, "Code file / id Not Found", headers: cors)
        }
        let name = record.key.split(separator: "/").last.map(String.init) ?? ""
        let host = request.head.authority ?? "localhost"
        return HTTPService.json(.ok, JSONValue.object([
            ("debug_filename", .string(debugFile)), ("debug_id", .string(debugId)),
            ("code_file", record.codeFile.map(JSONValue.string) ?? .null), ("code_id", record.codeId.map(JSONValue.string) ?? .null),
            ("generator", record.generator.map(JSONValue.string) ?? .null),
            ("url", .string("http://\(host)/\(debugFile)/\(debugId)/\(name)")),
        ]).serialized(), headers: cors)
    }

    // MARK: - listings

    /// The caller of a listing: authenticated, and whether they see everyone's uploads.
    func listingCaller(_ request: Request) async throws -> (account: Account, all: Bool)? {
        guard case .authenticated(let account, let token) = try await authenticate(request) else { return nil }
        return (account, account.isSuperuser || token.permissions.contains("view_all_uploads"))
    }

    static func query(_ request: Request) -> [(String, String)] { FormEncoding.parse(request.uri.query ?? "") }

    static func page(_ query: [(String, String)]) -> Int { max(1, min(10_000, Int(query.first { $0.0 == "page" }?.1 ?? "") ?? 1)) }

    static func dateFilters(_ values: [String]) -> [RecordFilter] {
        values.map(RecordFilter.parse).map { f in
            var f = f
            if Int64(f.value) == nil, let seconds = ISOTime.parse(f.value) ?? ISOTime.parse(f.value + "T00:00:00Z") {
                f.value = String(Int64(seconds * 1_000_000))
            }
            return f
        }
    }

    func listUploads(_ request: Request) async throws -> Response {
        guard let caller = try await listingCaller(request) else { return Self.error(.forbidden, "This requires an Auth-Token to authenticate the request") }
        let q = Self.query(request)
        func all(_ name: String) -> [String] { q.filter { $0.0 == name }.map(\.1).filter { !$0.isEmpty } }
        let page = Self.page(q), perPage = 20
        let sort = q.first { $0.0 == "sort" }?.1 ?? "created_at"
        let reverse = (q.first { $0.0 == "reverse" }?.1 ?? "true") != "false"
        let (records, total) = try await metadata.symbolUploads(
            accountID: caller.all ? nil : caller.account.id, user: all("user").first.map(RecordFilter.parse),
            size: all("size").map(RecordFilter.parse), createdAt: Self.dateFilters(all("created_at")),
            completedAt: Self.dateFilters(all("completed_at")), sortBy: sort, descending: reverse, limit: perPage, offset: (page - 1) * perPage)
        return Self.json(.ok, .object([
            ("uploads", .array(records.map(Self.uploadJSON))), ("total", .int(Int64(total))),
            ("batch_size", .int(Int64(perPage))), ("can_view_all", .bool(caller.all)),
        ]))
    }

    func showUpload(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let caller = try await listingCaller(request) else { return Self.error(.forbidden, "This requires an Auth-Token to authenticate the request") }
        guard let id = context.parameters.get("id").flatMap(Int64.init), let upload = try await metadata.symbolUpload(id: id),
              caller.all || upload.accountID == caller.account.id else {
            return Self.error(.notFound, "Not Found")
        }
        let files = try await metadata.symbolFiles(uploadID: id)
        let related = try await metadata.relatedSymbolUploads(upload)
        var json = Self.uploadJSON(upload)
        if case .object(var pairs) = json {
            pairs.append(("file_uploads", .array(files.map { Self.fileJSON($0, bucket: upload.bucket) })))
            pairs.append(("related", .array(related.filter { caller.all || $0.accountID == caller.account.id }.map(Self.uploadJSON))))
            json = .object(pairs)
        }
        return Self.json(.ok, .object([("upload", json)]))
    }

    func listFiles(_ request: Request) async throws -> Response {
        guard let caller = try await listingCaller(request) else { return Self.error(.forbidden, "This requires an Auth-Token to authenticate the request") }
        guard caller.all else { return Self.error(.forbidden, "Forbidden") }
        let q = Self.query(request)
        func all(_ name: String) -> [String] { q.filter { $0.0 == name }.map(\.1).filter { !$0.isEmpty } }
        let page = Self.page(q), perPage = 40
        let keys = all("key").flatMap { $0.split(separator: " ").map { RecordFilter.parse(String($0)) } }
        let type = q.first { $0.0 == "upload_type" }?.1
        let (records, total) = try await metadata.symbolFiles(
            keyContains: keys, size: all("size").map(RecordFilter.parse), bucket: all("bucket_name").first.map(RecordFilter.parse),
            isTry: type == "try" ? true : type == "regular" ? false : nil, limit: perPage, offset: (page - 1) * perPage)
        return Self.json(.ok, .object([
            ("files", .array(records.map { Self.fileJSON($0, bucket: settings.bucketName) })), ("total", .int(Int64(total))),
            ("batch_size", .int(Int64(perPage))),
        ]))
    }

    func showFile(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let caller = try await listingCaller(request) else { return Self.error(.forbidden, "This requires an Auth-Token to authenticate the request") }
        guard let id = context.parameters.get("id").flatMap(Int64.init), let file = try await metadata.symbolFile(id: id) else {
            return Self.error(.notFound, "Not Found")
        }
        if !caller.all {
            guard let uploadID = file.uploadID, let upload = try await metadata.symbolUpload(id: uploadID), upload.accountID == caller.account.id else {
                return Self.error(.notFound, "Not Found")
            }
        }
        return Self.json(.ok, .object([("file", Self.fileJSON(file, bucket: settings.bucketName))]))
    }

    func stats(_ request: Request) async throws -> Response {
        guard let caller = try await listingCaller(request) else { return Self.error(.forbidden, "This requires an Auth-Token to authenticate the request") }
        let now = metadata.now
        let day: Int64 = 86_400 * 1_000_000
        let startOfToday = now - now % day
        let account = caller.all ? nil : caller.account.id
        var periods: [(String, JSONValue)] = []
        for (name, from, to) in [("today", startOfToday, now + 1), ("yesterday", startOfToday - day, startOfToday), ("last_30_days", now - 30 * day, now + 1)] {
            let t = try await metadata.symbolUploadTotals(from: from, to: to, accountID: account)
            periods.append((name, .object([("count", .int(Int64(t.uploads))), ("total_size", .int(Int64(t.bytes))),
                                           ("files", .int(Int64(t.files)))])))
        }
        periods.insert(("all_uploads", .bool(caller.all)), at: 0)
        return Self.json(.ok, .object([("stats", .object([("uploads", .object(periods))]))]))
    }

    // MARK: - missing symbols

    /// Modules crashes of the last `days` (default 7, at most 90) needed and no store had.
    func missingSymbols(_ request: Request, csv: Bool) async throws -> Response {
        let q = Self.query(request)
        let days = max(1, min(90, Int(q.first { $0.0 == "days" }?.1 ?? "") ?? 7))
        let limit = max(1, min(10_000, Int(q.first { $0.0 == "limit" }?.1 ?? "") ?? 1000))
        let since = metadata.now - Int64(days) * 86_400 * 1_000_000
        let entries = try await metadata.missingSymbolsReport(since: since, limit: limit)
        if csv {
            var out = "debug_file,debug_id,code_file,code_id,crashes,download_misses,first_seen,last_seen\r\n"
            for e in entries {
                out += [e.module.debugFile, e.module.debugId, e.module.codeFile, e.module.codeId, String(e.crashes), String(e.downloadMisses),
                        Self.isoTime(e.firstSeen), Self.isoTime(e.lastSeen)].map(Self.csvField).joined(separator: ",") + "\r\n"
            }
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: out)))
        }
        return Self.json(.ok, .object([
            ("days", .int(Int64(days))), ("total", .int(Int64(entries.count))),
            ("hits", .array(entries.map { e in
                .object([("debug_file", .string(e.module.debugFile)), ("debug_id", .string(e.module.debugId)),
                         ("code_file", .string(e.module.codeFile)), ("code_id", .string(e.module.codeId)),
                         ("crashes", .int(Int64(e.crashes))), ("download_misses", .int(Int64(e.downloadMisses))),
                         ("first_seen", .string(Self.isoTime(e.firstSeen))), ("last_seen", .string(Self.isoTime(e.lastSeen)))])
            })),
        ]))
    }

    static func isoTime(_ micros: Int64) -> String { ISOTime.string(Date(timeIntervalSince1970: Double(micros) / 1_000_000)) }

    /// RFC 4180 quoting; a leading `= + - @` is prefixed with `'` so a spreadsheet never runs a
    /// module name as a formula.
    static func csvField(_ s: String) -> String {
        var s = s
        if let first = s.first, "=+-@".contains(first) { s = "'" + s }
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// A file under the symbol server's temporary directory, removed when done (and by the cleanup
/// job if the process died first).
struct TemporaryFile: Sendable {
    let path: String

    init(directory: String, suffix: String) {
        path = "\(directory)/upload-\(UUID().uuidString)\(suffix)"
    }

    struct TooLarge: Error { let limit: Int64 }

    /// Writes an async sequence of buffers to the file, refusing more than `limit` bytes.
    func write<S: AsyncSequence>(_ body: S, limit: Int64) async throws -> Int64 where S.Element == ByteBuffer {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        var total: Int64 = 0
        for try await chunk in body {
            total += Int64(chunk.readableBytes)
            if total > limit { throw TooLarge(limit: limit) }
            let written = chunk.withUnsafeReadableBytes { pm_write_all(fd, $0.baseAddress, $0.count) }
            if written != 0 { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        }
        return total
    }

    func remove() { unlink(path) }
}
