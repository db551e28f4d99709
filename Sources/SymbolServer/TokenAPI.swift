import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import NIOCore
import ServiceSupport
import Storage

/// Tecken's token API (`symbols-server.md` §6) on the account model Crash Stats uses: the same
/// accounts, tokens, permissions and audit log. Needs `manage_tokens`. Tokens are stored hashed,
/// so a list shows each token's first characters, and the whole key is in the creation answer
/// only (Tecken shows keys in its list; here they cannot be read back). In `serve` the same path
/// is Crash Stats' token page for browsers (`browserPage`); the API answers `Auth-Token` callers.
extension SymbolServer {
    static func mountTokenAPI(_ server: SymbolServer, on router: ServiceRouter, browserPage: BrowserPage?) {
        router.get("/api/tokens") { request, _ in
            if let page = await browserPage?(request) { return page }
            return try await server.listTokens(request)
        }
        router.post("/api/tokens") { request, _ in
            if let page = await browserPage?(request) { return page }
            return try await server.createToken(request)
        }
        router.post("/api/tokens/token/:id/extend") { request, context in try await server.extendToken(request, context: context) }
        router.delete("/api/tokens/token/:id") { request, context in try await server.deleteToken(request, context: context) }
    }

    /// The account behind a token that may manage tokens, or the refusal.
    func tokenManager(_ request: Request) async throws -> Authorization {
        try await authorize(request, anyOf: ["manage_tokens"], orSuperuser: true)
    }

    static func permissionJSON(_ p: PermissionCatalog.Permission) -> JSONValue { .object([("id", .int(Int64(p.id))), ("name", .string(p.name))]) }

    func listTokens(_ request: Request) async throws -> Response {
        let account: Account
        switch try await tokenManager(request) { case .refused(let r): return r; case .allowed(let a, _): account = a }
        let state = FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "state" }?.1 ?? "active"
        let now = metadata.now
        let all = try await metadata.tokens(accountID: account.id).sorted { $0.id > $1.id }
        let shown = all.filter { state == "all" || (state == "expired" ? $0.expiresAt <= now : $0.expiresAt > now) }
        let expired = all.filter { $0.expiresAt <= now }.count
        let grantable = PermissionCatalog.all.filter { account.isSuperuser || account.permissions.contains($0.codename) }
        return Self.json(.ok, .object([
            ("tokens", .array(shown.map { t in
                .object([
                    ("id", .int(t.id)), ("expires_at", Self.time(t.expiresAt)), ("is_expired", .bool(t.expiresAt <= now)),
                    ("key", .string(t.prefix + "…")),
                    ("permissions", .array(t.permissions.sorted().compactMap(PermissionCatalog.named).map(Self.permissionJSON))),
                    ("notes", .string(t.notes)), ("created_at", Self.time(t.createdAt)),
                ])
            })),
            ("permissions", .array(grantable.map(Self.permissionJSON))),
            ("totals", .object([("all", .int(Int64(all.count))), ("active", .int(Int64(all.count - expired))), ("expired", .int(Int64(expired)))])),
        ]))
    }

    static func formErrors(_ errors: [(String, String)]) -> Response {
        json(.badRequest, .object([("errors", .object(errors.map { ($0.0, .array([.string($0.1)])) }))]))
    }

    /// The form of a POST: urlencoded bodies up to 64 KiB.
    func form(_ request: Request) async throws -> [(String, String)] {
        let body = try await request.body.collect(upTo: 64 << 10)
        return FormEncoding.parse(String(decoding: body.readableBytesView, as: UTF8.self))
    }

    func createToken(_ request: Request) async throws -> Response {
        let account: Account
        switch try await tokenManager(request) { case .refused(let r): return r; case .allowed(let a, _): account = a }
        let form: [(String, String)]
        do { form = try await self.form(request) } catch { return Self.error(.contentTooLarge, "form larger than 64 KiB") }
        func field(_ name: String) -> String? { form.first { $0.0 == name }?.1 }
        var errors: [(String, String)] = []
        var permissions: [PermissionCatalog.Permission] = []
        for part in (field("permissions") ?? "").split(separator: ",") {
            guard let id = Int(part.trimmingCharacters(in: .whitespaces)), let p = PermissionCatalog.withID(id) else {
                errors.append(("permissions", "Select a valid choice. \(part) is not one of the available choices."))
                continue
            }
            permissions.append(p)
        }
        if permissions.isEmpty && errors.isEmpty { errors.append(("permissions", "This field is required.")) }
        let days = field("expires").map { Int($0) } ?? 365
        if days == nil || !(1...3650).contains(days!) { errors.append(("expires", "Enter a whole number of days from 1 to 3650.")) }
        let notes = field("notes") ?? ""
        if notes.utf8.count > 1000 { errors.append(("notes", "Ensure this value has at most 1000 characters.")) }
        if !errors.isEmpty { return Self.formErrors(errors) }
        if let lacking = permissions.first(where: { !account.isSuperuser && !account.permissions.contains($0.codename) }) {
            return Self.error(.forbidden, "\(lacking.name) not a valid permission")
        }
        do {
            let (key, _) = try await metadata.createToken(accountID: account.id, permissions: Set(permissions.map(\.codename)), notes: notes,
                                                          lifetime: .seconds(Int64(days!) * 86_400), actor: account.email)
            return Self.json(.created, .object([("ok", .bool(true)), ("key", .string(key))]))
        } catch let invalid as MetadataStore.InvalidTokenPermissions {
            return Self.formErrors([("permissions", invalid.description)])
        }
    }

    func extendToken(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let account: Account
        switch try await tokenManager(request) { case .refused(let r): return r; case .allowed(let a, _): account = a }
        let form = (try? await self.form(request)) ?? []
        let days = Int(form.first { $0.0 == "days" }?.1 ?? "365") ?? -1
        guard (1...3650).contains(days) else { return Self.formErrors([("days", "Enter a whole number of days from 1 to 3650.")]) }
        guard let id = context.parameters.get("id").flatMap(Int64.init),
              try await metadata.extendToken(id: id, accountID: account.id, days: days, actor: account.email) else {
            return Self.error(.notFound, "Not Found")
        }
        return Self.json(.ok, .object([("ok", .bool(true))]))
    }

    func deleteToken(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        let account: Account
        switch try await tokenManager(request) { case .refused(let r): return r; case .allowed(let a, _): account = a }
        guard let id = context.parameters.get("id").flatMap(Int64.init),
              try await metadata.tokens(accountID: account.id).contains(where: { $0.id == id }),
              try await metadata.deleteToken(id: id, actor: account.email) else {
            return Self.error(.notFound, "Not Found")
        }
        return Self.json(.ok, .object([("ok", .bool(true))]))
    }
}
