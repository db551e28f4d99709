import CrashModel
import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import Logging
import Mustache
import NIOCore
import ServiceSupport
import Storage
import Synchronization

/// Crash Stats in the browser: server-rendered pages (swift-mustache templates kept as files in
/// `Resources/templates`, one stylesheet, one small script) over the same data and permissions as
/// the API. Every value reaches HTML through the templates' escaping; every response carries a
/// Content-Security-Policy without inline script.
public struct CrashStatsWeb: Sendable {
    let api: CrashStatsAPI
    let templates: MustacheLibrary
    let featured: FeaturedVersions
    let siteName: String
    /// `file:line` links: a template with `{file}` and `{line}` (`web.source_link_template`),
    /// used for `http(s)` results only.
    let sourceLinkTemplate: String?
    let assets: [String: (contentType: String, body: ByteBuffer)]
    /// When each pending crash was last moved to the priority queue (at most once a minute).
    let prioritized = PendingCrashes()
    /// Cookies only over HTTPS (`web.secure_cookies`; browsers treat 127.0.0.1 as secure too).
    let secureCookies: Bool
    let loginLimiter: LoginLimiter
    /// `web.canonical_host` (`crash-stats.example.com`, or with a scheme): pages asked for under
    /// any other host name answer 301 there, path and query kept.
    let canonicalHost: String?
    /// The deployment's protected-data access policy, a text file (`web.protected_data_policy_file`).
    let protectedDataPolicyFile: String?
    /// The administration pages' access to the process (health checks, crash deletion).
    let admin: SiteAdminHooks
    /// OpenID Connect sign-in, when an issuer is configured (`web.oidc.*`).
    let openID: OpenIDClient?
    let logger = Logger(label: "postmortem.web")

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(api: CrashStatsAPI, siteName: String = "Postmortem Crash Stats", sourceLinkTemplate: String? = nil,
                secureCookies: Bool = true, loginAttemptsPerFiveMinutes: Int = 10, canonicalHost: String? = nil,
                protectedDataPolicyFile: String? = nil, openID: OpenIDSettings? = nil, admin: SiteAdminHooks = SiteAdminHooks()) throws {
        self.api = api
        self.admin = admin
        self.openID = openID.map(OpenIDClient.init(settings:))
        self.protectedDataPolicyFile = protectedDataPolicyFile?.nonEmpty
        self.canonicalHost = canonicalHost?.nonEmpty
        self.secureCookies = secureCookies
        loginLimiter = LoginLimiter(limit: loginAttemptsPerFiveMinutes)
        self.siteName = siteName
        self.sourceLinkTemplate = sourceLinkTemplate?.nonEmpty
        featured = FeaturedVersions(metadata: api.metadata)
        guard let templateDir = Bundle.module.url(forResource: "templates", withExtension: nil),
              let staticDir = Bundle.module.url(forResource: "static", withExtension: nil) else {
            throw SetupError(description: "the web templates are missing from the bundle")
        }
        var library = MustacheLibrary()
        for name in try FileManager.default.contentsOfDirectory(atPath: templateDir.path) where name.hasSuffix(".mustache") {
            let text = try String(contentsOf: templateDir.appendingPathComponent(name), encoding: .utf8)
            try library.register(text, named: String(name.dropLast(".mustache".count)))
        }
        templates = library
        var assets: [String: (String, ByteBuffer)] = [:]
        let types = ["css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml", "txt": "text/plain; charset=utf-8"]
        for name in try FileManager.default.contentsOfDirectory(atPath: staticDir.path) {
            let data = try Data(contentsOf: staticDir.appendingPathComponent(name))
            assets[name] = (types[(name as NSString).pathExtension] ?? "application/octet-stream", ByteBuffer(bytes: data))
        }
        self.assets = assets
    }

    /// The security headers of every page: no inline script or style, no framing, no sniffing.
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "strict-origin-when-cross-origin"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
    ]

    func page(_ status: HTTPResponse.Status, _ template: String, _ values: [String: Any], visitor: Visitor = .anonymous) -> Response {
        var context = values
        context["site"] = siteName
        if let account = visitor.account {
            context["signedIn"] = true
            context["userEmail"] = account.email
            context["sessionCSRF"] = visitor.csrf ?? ""
            context["visitorIsSuperuser"] = account.isSuperuser
        }
        let html = templates.render(context, withTemplate: template) ?? "<!DOCTYPE html><title>Error</title><p>The page could not be rendered.</p>"
        var fields = HTTPFields()
        fields[.contentType] = "text/html; charset=utf-8"
        fields[.cacheControl] = "private, no-store"
        for (name, value) in Self.securityHeaders { fields[name] = value }
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func errorPage(_ status: HTTPResponse.Status, _ heading: String, _ message: String) -> Response {
        page(status, "error", ["title": heading, "heading": heading, "message": message])
    }

    func asset(_ name: String) -> Response {
        guard let a = assets[name] else { return errorPage(.notFound, "Not found", "There is no such file.") }
        var fields = HTTPFields()
        fields[.contentType] = a.contentType
        fields[.cacheControl] = "public, max-age=3600"
        for (name, value) in Self.securityHeaders { fields[name] = value }
        return Response(status: .ok, headers: fields, body: .init(byteBuffer: a.body))
    }

    static func redirect(_ location: String, permanent: Bool = false) -> Response {
        var fields = HTTPFields()
        fields[.location] = location
        return Response(status: permanent ? .movedPermanently : .found, headers: fields)
    }

    /// Mounts the pages, their assets, `robots.txt` and the icon. With a canonical host, every
    /// page route first sends other host names there (the operational endpoints are not pages).
    /// `tokenPageRoutes` false leaves `GET`/`POST /api/tokens/` to the JSON token API mounted
    /// beside it, which hands browsers to `browserTokenRequest` (`serve`).
    public static func mount(_ web: CrashStatsWeb, on router: ServiceRouter, tokenPageRoutes: Bool = true) {
        func get(_ path: String, _ handler: @escaping @Sendable (Request, ServiceRequestContext) async -> Response) {
            router.get(RouterPath(path)) { request, context in
                if let redirect = web.canonicalRedirect(request) { return redirect }
                return await handler(request, context)
            }
        }
        func post(_ path: String, _ handler: @escaping @Sendable (Request, ServiceRequestContext) async -> Response) {
            router.post(RouterPath(path)) { request, context in
                if let redirect = web.canonicalRedirect(request) { return redirect }
                return await handler(request, context)
            }
        }
        get("/") { request, _ in await web.home(request) }
        get("/home/product/:product") { request, context in await web.productHome(request, product: context.parameters.get("product") ?? "") }
        get("/report/index/:id") { request, context in await web.report(request, id: context.parameters.get("id") ?? "") }
        // The header's crash-id form (older links).
        get("/report/index") { request, _ in
            let id = FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "id" }?.1 ?? ""
            let normalized = CrashID.normalize(id.trimmingCharacters(in: .whitespaces))
            guard CrashID.isValid(normalized) else { return web.errorPage(.notFound, "Crash not found", "That is not a crash id.") }
            return Self.redirect("/report/index/\(normalized)")
        }
        get("/topcrashers") { request, _ in await web.topCrashers(request) }
        get("/search") { request, _ in await web.search(request) }
        get("/signature") { request, _ in await web.signatureReport(request) }
        get("/search/quick") { request, _ in web.quickSearch(request) }
        get("/documentation") { request, _ in await web.documentationIndex(request) }
        get("/documentation/supersearch") { request, _ in await web.superSearchGuide(request) }
        get("/documentation/protected_data_access") { request, _ in await web.protectedDataPolicy(request) }
        get("/about/throttling") { request, _ in await web.throttling(request) }
        get("/api") { request, _ in await web.apiDocumentation(request) }
        get("/documentation/datadictionary") { request, _ in await web.dataDictionary(request) }
        get("/documentation/datadictionary/dataset/:dataset/field/:field") { request, context in
            await web.dataField(request, dataset: context.parameters.get("dataset") ?? "", field: context.parameters.get("field") ?? "")
        }
        get("/login") { request, _ in await web.loginPage(request) }
        post("/login") { request, context in await web.login(request, context: context) }
        post("/logout") { request, _ in await web.logout(request) }
        get("/oidc/authenticate") { request, _ in await web.openIDStart(request) }
        get("/oidc/callback") { request, context in await web.openIDCallback(request, context: context) }
        get("/profile") { request, _ in await web.profile(request) }
        if tokenPageRoutes {
            get("/api/tokens") { request, _ in await web.tokensPage(request) }
            post("/api/tokens") { request, _ in await web.createTokenFromPage(request) }
        }
        post("/api/tokens/delete/:id") { request, context in await web.revokeTokenFromPage(request, id: context.parameters.get("id") ?? "") }
        post("/report/reprocess/:id") { request, context in await web.reprocess(request, id: context.parameters.get("id") ?? "") }
        mountSiteAdmin(web, get: get, post: post)
        get("/static/:file") { _, context in web.asset(context.parameters.get("file") ?? "") }
        get("/robots.txt") { _, _ in web.asset("robots.txt") }
        get("/favicon.ico") { _, _ in web.asset("favicon.svg") }
    }

    /// Renders a page as an anonymous reader would get it, without HTTP: the page benchmark
    /// (`search-bench`) times server work this way. `target` is a path with its query.
    public func render(_ target: String) async -> (status: Int, html: String) {
        let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: target), body: .init(buffer: ByteBuffer()))
        let path = request.uri.path
        let response: Response
        if path.hasPrefix("/report/index/") {
            response = await report(request, id: String(path.dropFirst("/report/index/".count)))
        } else if path.hasPrefix("/topcrashers") {
            response = await topCrashers(request)
        } else if path.hasPrefix("/signature") {
            response = await signatureReport(request)
        } else if path.hasPrefix("/search") {
            response = await search(request)
        } else {
            response = errorPage(.notFound, "Not found", "render() serves the report, top crashers, signature and search pages.")
        }
        let body = response.body
        let writer = CollectingWriter()
        try? await body.write(writer)
        return (Int(response.status.code), writer.text)
    }

    /// A 301 to the canonical host for a request that named another, else nil.
    func canonicalRedirect(_ request: Request) -> Response? {
        guard let canonical = canonicalHost else { return nil }
        let (scheme, host) = canonical.contains("://")
            ? (String(canonical.prefix { $0 != ":" }), String(canonical.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first ?? ""))
            : ("https", canonical)
        let asked = (request.head.authority ?? "").lowercased()
        guard !host.isEmpty, asked != host.lowercased() else { return nil }
        return Self.redirect("\(scheme)://\(host)\(request.uri.path)\(request.uri.query.map { "?" + $0 } ?? "")", permanent: true)
    }

    // MARK: - home pages

    func home(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        var products: [[String: Any]] = []
        for p in api.products.products {
            let versions = await featured.versions(for: p)
            products.append(["name": p.name, "nameURL": Self.pathComponent(p.name), "description": p.description,
                             "versions": versions, "hasVersions": !versions.isEmpty])
        }
        return page(.ok, "home", ["title": "Products", "products": products], visitor: visitor)
    }

    func productHome(_ request: Request, product name: String) async -> Response {
        guard let product = api.products.product(named: name) else {
            return errorPage(.notFound, "Unknown product", "There is no product called \(name).")
        }
        let visitor = await visitor(request)
        let caller = visitor.caller
        var versions: [[String: Any]] = []
        for version in await featured.versions(for: product) {
            // The week's top signatures of the version: Super Search's own facet, with the
            // caller's permissions.
            let search = await api.handle(APIRequest(method: "GET", endpoint: "SuperSearch",
                                                     query: [("product", product.name), ("version", version), ("_facets", "signature"),
                                                             ("_facets_size", "10"), ("_results_number", "0")], client: "web"),
                                          caller: caller)
            guard search.status == 200, let doc = JSONValue.parse(search.body) else { continue }
            let signatures = (doc["facets"]?["signature"]?.arrayValue ?? []).map { bucket -> [String: Any] in
                ["term": bucket["term"]?.stringValue ?? "", "count": bucket["count"]?.intValue ?? 0]
            }
            // Top-crasher links for every process type.
            let topCrashers = ["any", "parent", "content", "gpu"].map { type -> [String: Any] in
                var q = [("product", product.name), ("version", version)]
                if type != "any" { q.append(("process_type", type)) }
                return ["label": type == "any" ? "all" : type, "url": "/topcrashers/?" + Self.queryString(q)]
            }
            versions.append(["version": version, "count": doc["total"]?.intValue ?? 0, "signatures": signatures, "topCrashers": topCrashers])
        }
        let links = product.productHomeLinks.filter { Self.isWebURL($0.url) }.map { ["text": $0.text, "url": $0.url] }
        return page(.ok, "product", ["title": product.name, "name": product.name, "description": product.description,
                                     "versions": versions, "links": links, "hasLinks": !links.isEmpty], visitor: visitor)
    }

    // MARK: - helpers

    /// What a page says when the Super Search request behind it failed: the API's `error`, or
    /// its form errors as `field: message`.
    static func failureMessage(_ answer: APIResponse) -> String {
        let body = JSONValue.parse(answer.body)
        if let error = body?["error"]?.stringValue { return error }
        if case .object(let pairs)? = body?["errors"] {
            return pairs.map { "\($0.0): \($0.1.arrayValue?.compactMap(\.stringValue).joined(separator: " ") ?? "")" }.joined(separator: "; ")
        }
        return "The search failed."
    }

    /// The page's status for a failed search: 504 when it ran out of time, else 400.
    static func failureStatus(_ answer: APIResponse) -> HTTPResponse.Status { answer.status == 504 ? .gatewayTimeout : .badRequest }

    /// Only `http(s)` URLs become links (a configured or computed URL is never `javascript:`).
    static func isWebURL(_ s: String) -> Bool {
        let lower = s.lowercased()
        return lower.hasPrefix("https://") || lower.hasPrefix("http://")
    }

    static func pathComponent(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? s
    }
}

/// When each pending crash was last moved to the priority queue.
final class PendingCrashes: Sendable {
    let last = Mutex<[String: ContinuousClock.Instant]>([:])

    /// Whether `id` is due for the priority queue now (once a minute at most); remembers it.
    func due(_ id: String, now: ContinuousClock.Instant = .now) -> Bool {
        last.withLock { last in
            if let t = last[id], now - t < .seconds(60) { return false }
            if last.count > 10_000 { last.removeAll() }
            last[id] = now
            return true
        }
    }
}

/// Collects a response body (for `render`).
final class CollectingWriter: ResponseBodyWriter, @unchecked Sendable {
    var text = ""
    func write(_ buffer: ByteBuffer) async throws { text += String(buffer: buffer) }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
