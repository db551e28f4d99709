import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import ServiceSupport
import Storage

/// `/api/tokens/`: a signed-in user's API tokens — create one with a subset of their own
/// permissions, notes and an expiry; list; revoke. The key is shown once, on the page that
/// answers the creation (only its SHA-256 is stored).
///
/// The path is also Tecken's JSON token API (`SymbolServer`). Both live on one path in `serve`:
/// a request carrying a session cookie and no `Auth-Token` is a browser's and gets this page
/// (`browserTokenRequest`); the JSON API authenticates with `Auth-Token` only.
extension CrashStatsWeb {
    /// Tokens one account may hold: creation beyond this is refused with a message.
    static let maxTokensPerAccount = 100

    /// The token page's answer when `request` comes from a browser (a session cookie and no
    /// `Auth-Token`, or a plain GET asking for HTML), else nil: the JSON API takes it.
    public func browserTokenRequest(_ request: Request) async -> Response? {
        guard request.headers[HTTPField.Name("Auth-Token")!] == nil else { return nil }
        let hasSession = request.cookies[Self.sessionCookie] != nil
        switch request.method {
        case .get, .head:
            let accept = request.headers[.accept] ?? ""
            guard hasSession || accept.contains("text/html") else { return nil }
            return await tokensPage(request)
        case .post:
            guard hasSession else { return nil }
            return await createTokenFromPage(request)
        default:
            return nil
        }
    }

    func tokensPage(_ request: Request, status: HTTPResponse.Status = .ok, created: String? = nil, error: String? = nil,
                    notes: String = "") async -> Response {
        let visitor = await visitor(request)
        guard let account = visitor.account else { return Self.redirect("/login/?next=/api/tokens/") }
        let now = api.metadata.now
        let tokens = ((try? await api.metadata.tokens(accountID: account.id)) ?? []).sorted { $0.id > $1.id }
        let names = Dictionary(uniqueKeysWithValues: PermissionCatalog.all.map { ($0.codename, $0.name) })
        let rows: [[String: Any]] = tokens.map { t in
            ["id": t.id, "prefix": t.prefix, "notes": t.notes, "expires": ISOTime.string(Double(t.expiresAt) / 1_000_000, fraction: false),
             "expired": t.expiresAt <= now, "created": ISOTime.string(Double(t.createdAt) / 1_000_000, fraction: false),
             "permissions": t.permissions.sorted().map { names[$0] ?? $0 }.joined(separator: ", ")]
        }
        let grantable = PermissionCatalog.all.filter { visitor.caller.permissions.contains($0.codename) }
            .map { ["codename": $0.codename, "name": $0.name] }
        return page(status, "tokens", ["title": "API tokens", "tokens": rows, "hasTokens": !rows.isEmpty, "grantable": grantable,
                                       "hasGrantable": !grantable.isEmpty, "created": created ?? "", "hasCreated": created != nil,
                                       "error": error ?? "", "hasError": error != nil, "notes": notes,
                                       "csrf": visitor.csrf ?? ""], visitor: visitor)
    }

    /// The page's create form: permissions are codenames the signed-in user holds.
    func createTokenFromPage(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        guard let account = visitor.account else { return Self.redirect("/login/?next=/api/tokens/") }
        guard let buffer = try? await request.body.collect(upTo: 64 << 10) else {
            return errorPage(.contentTooLarge, "Too large", "The form is larger than 64 KiB.")
        }
        let form = FormEncoding.parse(String(buffer: buffer))
        func field(_ name: String) -> String? { form.first { $0.0 == name }?.1 }
        guard Self.tokensMatch(field("csrf_token"), visitor.csrf) else {
            return errorPage(.forbidden, "Forbidden", "The form expired; reload the page and try again.")
        }
        let notes = (field("notes") ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let requested = Set(form.filter { $0.0 == "permissions" }.map(\.1))
        if let unknown = requested.first(where: { PermissionCatalog.named($0) == nil }) {
            return await tokensPage(request, status: .badRequest, error: "\(unknown) is not a permission.", notes: notes)
        }
        if let lacking = requested.first(where: { !visitor.caller.permissions.contains($0) }) {
            return await tokensPage(request, status: .forbidden,
                                    error: "You cannot give a token \(PermissionCatalog.named(lacking)?.name ?? lacking): you do not have it.", notes: notes)
        }
        guard let days = Int(field("expires") ?? "365"), (1...3650).contains(days) else {
            return await tokensPage(request, status: .badRequest, error: "The expiry is a whole number of days from 1 to 3650.", notes: notes)
        }
        guard notes.utf8.count <= 1000 else {
            return await tokensPage(request, status: .badRequest, error: "Notes may have at most 1000 characters.", notes: String(notes.prefix(1000)))
        }
        guard ((try? await api.metadata.tokens(accountID: account.id)) ?? []).count < Self.maxTokensPerAccount else {
            return await tokensPage(request, status: .badRequest, error: "You have \(Self.maxTokensPerAccount) tokens; revoke some first.", notes: notes)
        }
        do {
            let (key, _) = try await api.metadata.createToken(accountID: account.id, permissions: requested, notes: notes,
                                                              lifetime: .seconds(Int64(days) * 86_400), actor: account.email)
            return await tokensPage(request, status: .created, created: key)
        } catch let invalid as MetadataStore.InvalidTokenPermissions {
            return await tokensPage(request, status: .badRequest, error: "\(invalid.description): a token uploads either symbols or try symbols.", notes: notes)
        } catch {
            return errorPage(.internalServerError, "Error", "The token could not be created; try again later.")
        }
    }

    /// The page's Revoke button: only the signed-in user's own tokens.
    func revokeTokenFromPage(_ request: Request, id raw: String) async -> Response {
        let visitor = await visitor(request)
        let fields = await Self.form(request)
        guard let account = visitor.account, Self.tokensMatch(fields["csrf_token"], visitor.csrf) else {
            return errorPage(.forbidden, "Forbidden", "Sign in to revoke tokens.")
        }
        guard let id = Int64(raw), ((try? await api.metadata.tokens(accountID: account.id)) ?? []).contains(where: { $0.id == id }),
              (try? await api.metadata.deleteToken(id: id, actor: account.email)) == true else {
            return errorPage(.notFound, "Not found", "You have no such token.")
        }
        return Self.redirect("/api/tokens/")
    }
}
