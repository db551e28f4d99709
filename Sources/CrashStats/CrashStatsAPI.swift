import CrashModel
import Foundation
import JSONSupport
import Signatures
import Storage

/// One API request, as the HTTP layer hands it over.
public struct APIRequest: Sendable {
    public var method: String
    /// The model name from `/api/<Name>/`.
    public var endpoint: String
    public var query: [(String, String)]
    public var form: [(String, String)]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: Data
    public var client: String

    public init(method: String, endpoint: String, query: [(String, String)] = [], form: [(String, String)] = [],
                headers: [String: String] = [:], body: Data = Data(), client: String = "") {
        self.method = method
        self.endpoint = endpoint
        self.query = query
        self.form = form
        self.headers = headers
        self.body = body
        self.client = client
    }

    /// All values of a parameter (query for GET, form for POST), in order.
    func values(_ name: String) -> [String] {
        (method == "POST" ? form : query).filter { $0.0 == name }.map(\.1)
    }

    func value(_ name: String) -> String? { values(name).first }
}

public struct APIResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: Data
    public var headers: [(String, String)]

    static func json(_ status: Int, _ value: JSONValue, pretty: Bool = false, headers: [(String, String)] = []) -> APIResponse {
        let text = pretty ? value.sortedSerialization(pretty: true) : value.serialized()
        return APIResponse(status: status, contentType: "application/json", body: Data(text.utf8), headers: headers)
    }

    static func error(_ status: Int, _ message: String) -> APIResponse { json(status, .object([("error", .string(message))])) }

    static func formErrors(_ errors: [(String, String)]) -> APIResponse {
        json(400, .object([("errors", .object(errors.map { ($0.0, .array([.string($0.1)])) }))]))
    }
}

/// The data permissions and API permissions of a caller.
public struct Caller: Sendable {
    public var permissions: Set<String>
    public var accountID: Int64?

    public static let anonymous = Caller(permissions: [], accountID: nil)

    /// `public`, plus `protected` with `view_pii` (`data-and-access.md` §2).
    var dataPermissions: Set<String> { permissions.contains("view_pii") ? ["public", "protected"] : ["public"] }
}

/// The Crash Stats API (`crash-stats-api.md`): token authentication, the models, their error
/// bodies, redaction by the crash schemas, rate limits and cache headers.
public struct CrashStatsAPI: Sendable {
    let blobs: any BlobStore
    let metadata: MetadataStore
    let queue: WorkQueue
    let signatures: SignatureGenerator
    let rawSchema: CrashSchema
    let processedSchema: CrashSchema
    let limiter: RateLimiter
    let search: SuperSearch
    /// The deployment's products (empty: any product is accepted).
    let products: ProductCatalog
    /// Where the public export goes, when it is on (`CrashVerify.telemetry_crash` looks there).
    let exportStore: (any BlobStore)?
    /// The site's public base URL (`crashstats.base_url`), for absolute links.
    let baseURL: String?

    public static let permissionNames = Dictionary(uniqueKeysWithValues: PermissionCatalog.all
        .filter { ["view_pii", "view_rawdump", "reprocess_crashes", "run_custom_queries", "run_long_queries"].contains($0.codename) }
        .map { ($0.codename, $0.name) })

    public init(blobs: any BlobStore, metadata: MetadataStore, queue: WorkQueue, signatures: SignatureGenerator,
                anonymousPerMinute: Int = 100, authenticatedPerMinute: Int = 1000,
                queryTimeout: Duration = .seconds(10), maxConcurrentSearches: Int = 4,
                schemas: CrashSchemas? = nil, products: ProductCatalog = ProductCatalog(products: []),
                exportStore: (any BlobStore)? = nil, baseURL: String? = nil,
                rateLimitClock: @escaping @Sendable () -> Date = { Date() }) throws {
        self.blobs = blobs
        self.metadata = metadata
        self.queue = queue
        self.signatures = signatures
        let schemas = try schemas ?? CrashSchemas.bundled()
        rawSchema = schemas.raw
        processedSchema = schemas.processed
        self.products = products
        self.exportStore = exportStore
        self.baseURL = baseURL
        limiter = RateLimiter(anonymousPerMinute: anonymousPerMinute, authenticatedPerMinute: authenticatedPerMinute, now: rateLimitClock)
        search = SuperSearch(metadata: metadata, schema: processedSchema, products: products, timeout: queryTimeout, maxConcurrent: maxConcurrentSearches)
    }

    /// The caller an `Auth-Token` makes (anonymous without one, or for one that does not
    /// authenticate): the web pages use the API's permissions exactly.
    func caller(token: String?) async -> Caller {
        guard let token, case .valid(_, let t)? = try? await metadata.checkToken(token) else { return .anonymous }
        return Caller(permissions: t.permissions, accountID: t.accountID)
    }

    /// A request on behalf of a caller already known (the web pages, or `handle` once the token
    /// and rate limits are checked): routing errors become their responses here.
    func handle(_ request: APIRequest, caller: Caller, pretty: Bool = false) async -> APIResponse {
        do {
            return try await route(request, caller: caller, pretty: pretty)
        } catch let e as APIFailure {
            return e.response
        } catch {
            return .error(500, "Internal error: \(type(of: error))")
        }
    }

    public func handle(_ request: APIRequest) async -> APIResponse {
        var caller = Caller.anonymous
        if let token = request.headers["auth-token"] {
            do {
                var refusal: APIResponse?
                switch try await metadata.checkToken(token) {
                case .valid(_, let t): caller = Caller(permissions: t.permissions, accountID: t.accountID)
                case .unknown: refusal = .error(403, "API Token not matched")
                case .expired: refusal = .error(403, "API Token found but expired")
                case .inactiveAccount: refusal = .error(403, "User of API token not active")
                }
                // A token that does not authenticate counts against its address's anonymous
                // budget: guessing tokens is rate-limited like any anonymous request.
                if let refusal {
                    return limiter.allow(client: "ip:\(request.client)", authenticated: false) ? refusal : Self.tooManyRequests
                }
            } catch {
                return .error(500, "token check failed")
            }
        }
        guard limiter.allow(client: caller.accountID.map { "account:\($0)" } ?? "ip:\(request.client)", authenticated: caller.accountID != nil) else {
            return Self.tooManyRequests
        }
        return await handle(request, caller: caller, pretty: request.query.contains { $0 == ("pretty", "print") })
    }

    struct APIFailure: Error { let response: APIResponse }

    static let tooManyRequests = APIResponse(status: 429, contentType: "text/plain", body: Data("Too Many Requests".utf8), headers: [])

    /// Models with their methods and cache time (seconds).
    static let models: [String: (methods: Set<String>, cache: Int)] = [
        "RawCrash": (["GET"], 0), "ProcessedCrash": (["GET"], 0), "SuperSearch": (["GET"], 300), "SuperSearchUnredacted": (["GET"], 300),
        "SuperSearchFields": (["GET"], 300), "Reprocessing": (["POST"], 0), "CrashSignature": (["POST"], 0),
        "SignatureFirstDate": (["GET"], 300), "VersionString": (["GET"], 300), "CrashVerify": (["GET"], 0), "NoOp": (["GET"], 300),
        "MissingProcessedCrash": (["GET"], 0), "Bugs": (["GET", "POST"], 300), "SignaturesByBugs": (["GET"], 300),
    ]

    func route(_ r: APIRequest, caller: Caller, pretty: Bool) async throws -> APIResponse {
        guard let model = Self.models[r.endpoint] else { return .error(404, "No service called '\(r.endpoint)'") }
        guard model.methods.contains(r.method) || (r.method == "HEAD" && model.methods.contains("GET")) else { return .error(405, "Method not allowed") }
        var response: APIResponse
        switch r.endpoint {
        case "RawCrash": response = try await rawCrash(r, caller, pretty)
        case "ProcessedCrash": response = try await processedCrash(r, caller, pretty)
        case "Reprocessing": response = try await reprocessing(r, caller)
        case "CrashSignature": response = crashSignature(r, pretty)
        case "VersionString": response = try await versionString(r, pretty)
        case "SignatureFirstDate": response = try await signatureFirstDate(r, pretty)
        case "CrashVerify": response = try await crashVerify(r, pretty)
        case "MissingProcessedCrash": response = try await missingProcessedCrash(r, pretty)
        case "NoOp": response = try noOp(r)
        case "Bugs": response = try await bugs(r, pretty)
        case "SignaturesByBugs": response = try await signaturesByBugs(r, pretty)
        case "SuperSearchFields": response = superSearchFields(pretty)
        case "SuperSearch", "SuperSearchUnredacted":
            response = try await search.run(r, caller: caller, unredacted: r.endpoint == "SuperSearchUnredacted", pretty: pretty)
        default: response = .error(404, "No service called '\(r.endpoint)'")
        }
        if response.status == 200, !response.headers.contains(where: { $0.0.lowercased() == "cache-control" }) {
            response.headers.append(("Cache-Control", model.cache > 0 ? "private, max-age=\(model.cache)" : "private, max-age=0"))
        }
        return response
    }

    // MARK: - models

    func crashID(_ r: APIRequest) throws -> String {
        guard let raw = r.value("crash_id"), !raw.isEmpty else { throw APIFailure(response: .formErrors([("crash_id", "This field is required.")])) }
        let id = CrashID.normalize(raw)
        guard CrashID.isValid(id) else { throw APIFailure(response: .error(400, "Bad request: BadArgumentError: Crash id '\(raw)' is not valid.")) }
        return id
    }

    func rawCrash(_ r: APIRequest, _ caller: Caller, _ pretty: Bool) async throws -> APIResponse {
        let id = try crashID(r)
        let format = r.value("format") ?? "meta"
        guard format == "meta" || format == "raw" else { return .formErrors([("format", "Select a valid choice. \(format) is not one of the available choices.")]) }
        if format == "raw" {
            guard caller.permissions.contains("view_rawdump") else { return .error(403, "Binary response requires permissions: View Raw Dumps") }
            var name = r.value("name") ?? ""
            if name.isEmpty || name == "upload_file_minidump" { name = "dump" }
            guard !name.contains("/"), (try? BlobKey.validate("v1/\(name)/\(id)")) != nil,
                  !["raw_crash", "dump_names", "processed_crash"].contains(name) else {
                return .error(400, "Bad request: BadArgumentError: Dump name '\(name)' is not valid.")
            }
            // Only a dump this crash has: its dump_names list decides, never the key syntax alone
            // (`Processed_crash`, another crash's files and the like are not dumps).
            let stored = name == "dump" ? "upload_file_minidump" : name
            guard let listed = try await blobs.get(BlobKeys.dumpNames(id)), case .array(let names)? = JSONValue.parse(listed),
                  names.contains(.string(stored)) else {
                return .error(404, "Not found: CrashIDNotFound \(id)")
            }
            guard let data = try await blobs.get(BlobKeys.dump(id, name: stored)) else {
                return .error(404, "Not found: CrashIDNotFound \(id)")
            }
            let filename = name == "dump" ? "\(id).dmp" : name == "memory_report" ? "memory_report.json.gz" : "\(id)-\(name).dmp"
            return APIResponse(status: 200, contentType: "application/octet-stream", body: data,
                               headers: [("Content-Disposition", "attachment; filename=\"\(filename)\"")])
        }
        guard let data = try await blobs.get(BlobKeys.rawCrash(id, date: CrashID.date(of: id))), let document = JSONValue.parse(data) else {
            return .error(404, "Not found: CrashIDNotFound \(id)")
        }
        let visible = caller.permissions.contains("view_pii") ? document : rawSchema.reduce(document, permissions: caller.dataPermissions)
        return .json(200, visible, pretty: pretty)
    }

    func processedCrash(_ r: APIRequest, _ caller: Caller, _ pretty: Bool) async throws -> APIResponse {
        let id = try crashID(r)
        guard let data = try await blobs.get(BlobKeys.processedCrash(id)), let document = JSONValue.parse(data) else {
            return .error(404, "Not found: CrashIDNotFound \(id)")
        }
        var visible = caller.permissions.contains("view_pii") ? document : processedSchema.reduce(document, permissions: caller.dataPermissions)
        if let flag = r.value("_bug_links"), ["1", "true"].contains(flag), case .object(var pairs) = visible {
            // The product's "create a bug" links, filled from what this caller may see (the web
            // pages' Bugzilla tab reads them here).
            let reportURL = siteURL(host: r.headers["host"]) + "/report/index/" + id
            let links = products.product(named: visible["product"]?.stringValue ?? "")?.bugLinks ?? []
            pairs.append(("_bug_links", .array(links.map { link in
                .object([("text", .string(link.text)),
                         ("url", .string(BugLinks.createBugURL(template: link.url, processed: visible, reportURL: reportURL)))])
            })))
            visible = .object(pairs)
        }
        return .json(200, visible, pretty: pretty)
    }

    /// The site's base URL for absolute links: `crashstats.base_url`, else the request's host.
    func siteURL(host requestHost: String?) -> String {
        if let configured = baseURL, !configured.isEmpty { return configured.hasSuffix("/") ? String(configured.dropLast()) : configured }
        let host = requestHost.flatMap { h in h.allSatisfy { $0.isLetter || $0.isNumber || ".:-[]".contains($0) } ? h : nil } ?? "localhost"
        return "http://" + host
    }

    func bugs(_ r: APIRequest, _ pretty: Bool) async throws -> APIResponse {
        let signatures = r.values("signatures").filter { !$0.isEmpty }
        guard !signatures.isEmpty else { return .formErrors([("signatures", "This field is required.")]) }
        guard signatures.count <= 1_000 else { return .error(400, "Bad request: BadArgumentError: Too many signatures.") }
        let hits = try await metadata.bugs(forSignatures: signatures)
        return .json(200, .object([("hits", .array(hits.map { .object([("id", .int($0.bugID)), ("signature", .string($0.signature))]) })),
                                   ("total", .int(Int64(hits.count)))]), pretty: pretty)
    }

    func signaturesByBugs(_ r: APIRequest, _ pretty: Bool) async throws -> APIResponse {
        let texts = r.values("bug_ids").filter { !$0.isEmpty }
        guard !texts.isEmpty else { return .formErrors([("bug_ids", "This field is required.")]) }
        guard texts.count <= 1_000 else { return .error(400, "Bad request: BadArgumentError: Too many bug ids.") }
        var ids: [Int64] = []
        for t in texts {
            guard t.allSatisfy(\.isASCII), t.allSatisfy(\.isNumber), let n = Int64(t) else { return .formErrors([("bug_ids", "Enter a whole number.")]) }
            ids.append(n)
        }
        let hits = try await metadata.signatures(forBugs: ids)
        return .json(200, .object([("hits", .array(hits.map { .object([("id", .int($0.bugID)), ("signature", .string($0.signature))]) })),
                                   ("total", .int(Int64(hits.count)))]), pretty: pretty)
    }

    func reprocessing(_ r: APIRequest, _ caller: Caller) async throws -> APIResponse {
        guard caller.permissions.contains("reprocess_crashes") else { return .error(403, "Use of this endpoint requires the 'Reprocess Crashes' permission") }
        let entries = r.values("crash_ids")
        guard !entries.isEmpty else { return .formErrors([("crash_ids", "This field is required.")]) }
        guard entries.count <= 10_000 else { return .error(400, "Bad request: BadArgumentError: Too many crash ids.") }
        var items: [QueueItem] = []
        for entry in entries {
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let id = CrashID.normalize(parts[0])
            guard CrashID.isValid(id) else { return .error(400, "Bad request: BadArgumentError: Crash id '\(parts[0])' is not valid.") }
            let ruleset = parts.count > 1 ? parts[1] : "default"
            guard ["default", "regenerate_signature"].contains(ruleset) else {
                return .error(400, "Bad request: BadArgumentError: Ruleset '\(ruleset)' is not valid.")
            }
            items.append(QueueItem(crashID: id, ruleset: ruleset == "default" ? nil : ruleset))
        }
        try await queue.enqueue(items, queue: .reprocessing)
        return .json(200, .null)
    }

    func crashSignature(_ r: APIRequest, _ pretty: Bool) -> APIResponse {
        let cors = [("Access-Control-Allow-Origin", "*")]
        guard r.body.count <= 10 << 20, let body = JSONValue.parse(r.body), case .array(let jobs)? = body["jobs"], !jobs.isEmpty else {
            var e = APIResponse.error(400, "no jobs specified")
            e.headers = cors
            return e
        }
        guard jobs.count <= 1_000 else {
            var e = APIResponse.error(400, "too many jobs (at most 1000)")
            e.headers = cors
            return e
        }
        let debug = r.headers["debug"] == "1"
        let results: [JSONValue] = jobs.map { job in
            let result = signatures.generate(SignatureGenerator.crashData(from: job))
            var members: [(String, JSONValue)] = [("signature", .string(result.signature)), ("notes", .array(result.notes.map { .string($0) })),
                                                  ("extra", .object([("proto_signature", .string(result.protoSignature)),
                                                                     ("normalized_frames", .array((result.normalizedFrames ?? []).map { .string($0) }))]))]
            if debug { members.append(("debug_log", .array(result.debugLog.map { .string($0) }))) }
            return .object(members)
        }
        return .json(200, .object([("results", .array(results))]), pretty: pretty, headers: cors)
    }

    func versionString(_ r: APIRequest, _ pretty: Bool) async throws -> APIResponse {
        var missing: [(String, String)] = []
        for p in ["product", "channel", "build_id"] where (r.value(p) ?? "").isEmpty { missing.append((p, "This field is required.")) }
        guard missing.isEmpty else { return .formErrors(missing) }
        let versions = try await metadata.versionStrings(product: r.value("product")!, channel: r.value("channel")!, buildID: r.value("build_id")!)
        return .json(200, .object([("hits", .array(versions.map { .object([("version_string", .string($0))]) })), ("total", .int(Int64(versions.count)))]),
                     pretty: pretty)
    }

    func signatureFirstDate(_ r: APIRequest, _ pretty: Bool) async throws -> APIResponse {
        let names = r.values("signatures").filter { !$0.isEmpty }
        guard !names.isEmpty else { return .formErrors([("signatures", "This field is required.")]) }
        guard names.count <= 1_000 else { return .error(400, "Bad request: BadArgumentError: Too many signatures.") }
        let firsts = try await metadata.signatureFirstDates(names)
        let hits: [JSONValue] = firsts.map { f in
            .object([("signature", .string(f.signature)), ("first_date", .string(ISOTime.string(Double(f.firstDate) / 1_000_000))),
                     ("first_build", .string(f.firstBuild ?? ""))])
        }
        return .json(200, .object([("hits", .array(hits)), ("total", .int(Int64(hits.count)))]), pretty: pretty)
    }

    /// The crashes the republish job found stored but never processed, newest first, 1000 per
    /// page, in Django REST framework's page shape.
    func missingProcessedCrash(_ r: APIRequest, _ pretty: Bool) async throws -> APIResponse {
        let pageSize = 1000
        let pageText = r.value("page") ?? "1"
        guard let page = Int(pageText), page >= 1, page <= 1_000_000 else { return .error(400, "invalid page number") }
        let (rows, count) = try await metadata.missingProcessedCrashes(limit: pageSize, offset: (page - 1) * pageSize)
        guard page == 1 || !rows.isEmpty else { return .error(400, "invalid page number") }
        func link(_ n: Int) -> JSONValue { .string("/api/MissingProcessedCrash/?page=\(n)") }
        return .json(200, .object([
            ("count", .int(Int64(count))),
            ("next", (page - 1) * pageSize + rows.count < count ? link(page + 1) : .null),
            ("previous", page > 1 ? link(page - 1) : .null),
            ("results", .array(rows.map { row in
                .object([("crash_id", .string(row.crashID)), ("is_processed", .bool(row.isProcessed)),
                         ("created", .string(ISOTime.string(Double(row.created) / 1_000_000)))])
            })),
        ]), pretty: pretty)
    }

    func crashVerify(_ r: APIRequest, _ pretty: Bool) async throws -> APIResponse {
        let raw = r.value("crash_id") ?? ""
        let id = CrashID.normalize(raw)
        guard CrashID.isValid(id) else { return .error(400, "unknown crash id") }
        let hasRaw = try await blobs.size(BlobKeys.rawCrash(id, date: CrashID.date(of: id))) != nil
        let hasProcessed = try await blobs.size(BlobKeys.processedCrash(id)) != nil
        let indexed = try await metadata.crash(id) != nil
        let exported = try await exportStore?.size(BlobKeys.exportedCrash(id)) != nil
        return .json(200, .object([("uuid", .string(id)), ("raw_crash", .bool(hasRaw)), ("processed_crash", .bool(hasProcessed)),
                                   ("elasticsearch_crash", .bool(indexed)), ("telemetry_crash", .bool(exported))]), pretty: pretty)
    }

    func noOp(_ r: APIRequest) throws -> APIResponse {
        guard let product = r.value("product"), !product.isEmpty else { return .formErrors([("product", "This field is required.")]) }
        if product == "bad" { return .error(400, "Bad request: BadArgumentError: Bad product") }
        return .json(200, .object([("hits", .array([])), ("total", .int(0))]))
    }

    func superSearchFields(_ pretty: Bool) -> APIResponse {
        .json(200, .object(search.fields.map { f in
            (f.name, .object([
                ("name", .string(f.name)), ("namespace", .string("processed_crash")), ("in_database_name", .string(f.name)),
                ("query_type", .string(f.type.rawValue)), ("data_validation_type", .string(f.type.validationType)),
                ("operators", .array(f.type.operators.map { .string($0) })),
                ("form_field_choices", .array(f.name == "product" ? products.names.map { .string($0) } : [])),
                ("permissions_needed", .array(f.permissions.contains("protected") ? [.string("crashstats.view_pii")] : [])),
                ("webapp_permissions_needed", .array(f.permissions.contains("protected") ? [.string("crashstats.view_pii")] : [])),
                ("is_exposed", .bool(true)), ("is_returned", .bool(true)), ("has_full_version", .bool(f.type == .string)),
                ("storage_mapping", .object([("type", .string(f.type.storageType))])),
                ("description", .string(f.description)),
            ]))
        }), pretty: pretty)
    }
}

/// Requests per minute per client (fixed one-minute windows).
final class RateLimiter: @unchecked Sendable {
    let anonymousPerMinute: Int
    let authenticatedPerMinute: Int
    private let lock = NSLock()
    private var window = 0
    private var counts: [String: Int] = [:]
    /// The time the minute windows are cut from (tests pin it).
    let now: @Sendable () -> Date

    init(anonymousPerMinute: Int, authenticatedPerMinute: Int, now: @escaping @Sendable () -> Date = { Date() }) {
        self.anonymousPerMinute = anonymousPerMinute
        self.authenticatedPerMinute = authenticatedPerMinute
        self.now = now
    }

    func allow(client: String, authenticated: Bool) -> Bool {
        let limit = authenticated ? authenticatedPerMinute : anonymousPerMinute
        guard limit > 0 else { return true }
        let minute = Int(now().timeIntervalSince1970 / 60)
        lock.lock(); defer { lock.unlock() }
        if minute != window { window = minute; counts.removeAll(keepingCapacity: true) }
        let n = counts[client, default: 0] + 1
        counts[client] = n
        return n <= limit
    }
}
