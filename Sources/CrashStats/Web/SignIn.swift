import CrashModel
import Foundation
import JSONSupport
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import NIOCore
import NIOPosix
import ServiceSupport
import Storage
import Synchronization

/// Local passwords: bcrypt (hummingbird-auth's HummingbirdBcrypt), computed off the request's
/// thread since one hash takes a quarter of a second by design.
public enum Passwords {
    public static let cost: UInt8 = 12

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// bcrypt reads at most 72 bytes: longer passwords are refused rather than silently cut.
    public static func validate(_ password: String) throws {
        guard password.utf8.count >= 10 else { throw Invalid(description: "a password needs at least 10 characters") }
        guard password.utf8.count <= 72 else { throw Invalid(description: "a password may have at most 72 bytes") }
    }

    public static func hash(_ password: String) async throws -> String {
        try validate(password)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public static func verify(_ password: String, hash: String) async -> Bool {
        guard password.utf8.count <= 72 else { return false }
        return (try? await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }) ?? false
    }
}

/// Who is reading a page: a signed-in account (session cookie), the holder of an API token
/// (`Auth-Token` header, for scripts), or anonymous.
struct Visitor: Sendable {
    var caller: Caller
    var account: Account?
    /// The session's CSRF token: forms exist only for signed-in visitors.
    var csrf: String?

    static let anonymous = Visitor(caller: .anonymous, account: nil, csrf: nil)
}

/// Sign-in attempts per client address and per account email over the last 5 minutes (a sliding
/// window: no boundary at which the count starts again). Memory is bounded: at most `maxKeys`
/// keys are tracked, expired ones are dropped first.
final class LoginLimiter: Sendable {
    let limit: Int
    static let window: Double = 300, maxKeys = 50_000
    private let attempts = Mutex<[String: [Double]]>([:])

    init(limit: Int) { self.limit = limit }

    func allow(_ keys: [String], now: Date = Date()) -> Bool {
        let t = now.timeIntervalSince1970, cutoff = t - Self.window
        return attempts.withLock { attempts in
            if attempts.count >= Self.maxKeys {
                attempts = attempts.filter { $0.value.last.map { $0 > cutoff } ?? false }
                if attempts.count >= Self.maxKeys { attempts.removeAll() }
            }
            var ok = true
            for key in keys {
                var times = attempts[key, default: []].filter { $0 > cutoff }
                // Keep at most limit + 1 times: enough to know the limit is passed.
                if times.count > limit { times.removeFirst(times.count - limit) }
                times.append(t)
                attempts[key] = times
                if times.count > limit { ok = false }
            }
            return ok
        }
    }
}

extension CrashStatsWeb {
    static let sessionCookie = "pm_session"
    static let loginCSRFCookie = "pm_login_csrf"

    func visitor(_ request: Request) async -> Visitor {
        if let token = request.cookies[Self.sessionCookie]?.value, let session = try? await api.metadata.session(token: token) {
            let permissions = session.account.isSuperuser ? Set(PermissionCatalog.all.map(\.codename)) : session.account.permissions
            return Visitor(caller: Caller(permissions: permissions, accountID: session.account.id), account: session.account, csrf: session.csrfToken)
        }
        if let token = request.headers[HTTPField.Name("Auth-Token")!] {
            return Visitor(caller: await api.caller(token: token), account: nil, csrf: nil)
        }
        return .anonymous
    }

    /// The form fields of a POST (at most 64 KiB).
    static func form(_ request: Request) async -> [String: String] {
        guard let buffer = try? await request.body.collect(upTo: 64 << 10) else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in FormEncoding.parse(String(buffer: buffer)) where out[k] == nil { out[k] = v }
        return out
    }

    /// Constant-time comparison of a presented CSRF token with the expected one.
    static func tokensMatch(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b, !a.isEmpty, a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// A path on this site to return to after sign-in (never another site: `//x` and `/\x` are refused).
    static func localPath(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"), next.utf8.count <= 2000,
              next.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { return "/" }
        return next
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; HttpOnly; SameSite=Lax; Max-Age=\(maxAge)" + (secureCookies ? "; Secure" : "")
    }

    func loginPage(_ request: Request, status: HTTPResponse.Status = .ok, error: String? = nil, email: String = "") async -> Response {
        let csrf = MetadataStore.randomToken()
        let next = Self.localPath(FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "next" }?.1)
        var response = page(status, "login", ["title": "Sign in", "csrf": csrf, "next": next, "error": error ?? "", "hasError": error != nil,
                                              "email": email, "openID": openID.map { ["name": $0.settings.displayName] } ?? false,
                                              "openIDStart": "/oidc/authenticate/?" + Self.queryString([("next", next)])], visitor: .anonymous)
        response.headers[HTTPField.Name.setCookie] = cookie(Self.loginCSRFCookie, csrf, maxAge: 3600)
        return response
    }

    func login(_ request: Request, context: ServiceRequestContext) async -> Response {
        let fields = await Self.form(request)
        guard Self.tokensMatch(fields["csrf_token"], request.cookies[Self.loginCSRFCookie]?.value) else {
            return errorPage(.forbidden, "Forbidden", "The form expired; reload the sign-in page and try again.")
        }
        let email = (fields["email"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        guard loginLimiter.allow(["ip:\(context.clientAddress)", "email:\(email)"]) else {
            return await loginPage(request, status: .tooManyRequests, error: "Too many sign-in attempts; wait a few minutes.", email: email)
        }
        let password = fields["password"] ?? ""
        guard let (account, hash) = try? await api.metadata.passwordHash(email: email), let hash, account.isActive,
              await Passwords.verify(password, hash: hash) else {
            return await loginPage(request, status: .unauthorized, error: "The email or password is not right.", email: email)
        }
        guard let (token, _) = try? await api.metadata.createSession(accountID: account.id) else {
            return errorPage(.internalServerError, "Error", "The session could not be started; try again later.")
        }
        var response = Self.redirect(Self.localPath(fields["next"]))
        response.headers[HTTPField.Name.setCookie] = cookie(Self.sessionCookie, token, maxAge: 14 * 86_400)
        return response
    }

    func logout(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        let fields = await Self.form(request)
        guard visitor.account != nil, Self.tokensMatch(fields["csrf_token"], visitor.csrf), let token = request.cookies[Self.sessionCookie]?.value else {
            return Self.redirect("/")
        }
        try? await api.metadata.deleteSession(token: token)
        var response = Self.redirect("/")
        response.headers[HTTPField.Name.setCookie] = cookie(Self.sessionCookie, "", maxAge: 0)
        return response
    }

    func profile(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        guard let account = visitor.account else { return Self.redirect("/login/?next=/profile/") }
        let groups = ((try? await api.metadata.groups()) ?? []).filter { $0.members.contains(account.email) }.map(\.name).sorted()
        let names = Dictionary(uniqueKeysWithValues: PermissionCatalog.all.map { ($0.codename, $0.name) })
        let permissions = visitor.caller.permissions.sorted().map { ["codename": $0, "name": names[$0] ?? $0] }
        let lastLogin = (try? await api.metadata.lastLogin(accountID: account.id)).flatMap { $0 }.map { ISOTime.string(Double($0) / 1_000_000) } ?? ""
        return page(.ok, "profile", ["title": "Your profile", "email": account.email, "superuser": account.isSuperuser,
                                     "permissions": permissions, "hasPermissions": !permissions.isEmpty, "groups": groups,
                                     "hasGroups": !groups.isEmpty, "lastLogin": lastLogin], visitor: visitor)
    }

    /// The report page's Reprocess button (`reprocess_crashes`, a signed-in form).
    func reprocess(_ request: Request, id raw: String) async -> Response {
        let visitor = await visitor(request)
        let id = CrashID.normalize(raw)
        let fields = await Self.form(request)
        guard CrashID.isValid(id) else { return errorPage(.notFound, "Crash not found", "That is not a crash id.") }
        guard visitor.account != nil, Self.tokensMatch(fields["csrf_token"], visitor.csrf) else {
            return errorPage(.forbidden, "Forbidden", "Sign in to reprocess crashes.")
        }
        guard visitor.caller.permissions.contains("reprocess_crashes") else {
            return errorPage(.forbidden, "Forbidden", "Reprocessing needs the Reprocess Crashes permission.")
        }
        do {
            try await api.queue.enqueue([QueueItem(crashID: id)], queue: .reprocessing)
        } catch {
            return errorPage(.internalServerError, "Error", "The crash could not be queued; try again later.")
        }
        return Self.redirect("/report/index/\(id)?reprocessing=1#debug")
    }
}

// MARK: - OpenID Connect

extension CrashStatsWeb {
    static let openIDCookie = "pm_oidc"

    /// Where the issuer returns the browser: `web.oidc.redirect_url`, else under
    /// `crashstats.base_url`, else under the host the request named.
    func openIDRedirectURI(_ request: Request, _ client: OpenIDClient) -> String {
        if !client.settings.redirectURL.isEmpty { return client.settings.redirectURL }
        return api.siteURL(host: request.head.authority) + "/oidc/callback/"
    }

    /// `/oidc/authenticate/?next=`: to the issuer, with state, nonce and PKCE verifier kept in a
    /// short-lived cookie.
    func openIDStart(_ request: Request) async -> Response {
        guard let client = openID else { return errorPage(.notFound, "Not found", "Single sign-on is not configured on this site.") }
        let next = Self.localPath(FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "next" }?.1)
        do {
            let (url, pending) = try await client.start(redirectURI: openIDRedirectURI(request, client), next: next)
            var response = Self.redirect(url)
            response.headers[HTTPField.Name.setCookie] = cookie(Self.openIDCookie, pending.cookieValue, maxAge: 600)
            return response
        } catch {
            logger.warning("openid connect start failed", metadata: ["error": "\(error)"])
            return errorPage(.badGateway, "Sign-in unavailable", "The sign-in service could not be reached: \(error)")
        }
    }

    /// `/oidc/callback/?code=&state=`: the state must be this browser's; the code is traded for
    /// a verified identity; the account (created on first sign-in when allowed) gets a session.
    func openIDCallback(_ request: Request, context: ServiceRequestContext) async -> Response {
        guard let client = openID else { return errorPage(.notFound, "Not found", "Single sign-on is not configured on this site.") }
        let query = FormEncoding.parse(request.uri.query ?? "")
        func parameter(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
        guard let pending = request.cookies[Self.openIDCookie].flatMap({ OpenIDClient.PendingSignIn(cookieValue: $0.value) }),
              Self.tokensMatch(parameter("state"), pending.state) else {
            return errorPage(.forbidden, "Sign-in expired", "This sign-in was not started here or took too long; sign in again.")
        }
        if let error = parameter("error") {
            let detail = parameter("error_description") ?? error
            return errorPage(.forbidden, "Sign-in refused", "The sign-in service said: \(detail.prefix(300))")
        }
        guard let code = parameter("code"), !code.isEmpty, code.utf8.count <= 4096 else {
            return errorPage(.badRequest, "Sign-in failed", "The sign-in service sent no code.")
        }
        guard loginLimiter.allow(["ip:\(context.clientAddress)"]) else {
            return errorPage(.tooManyRequests, "Too many sign-ins", "Too many sign-in attempts; wait a few minutes.")
        }
        let identity: OpenIDIdentity
        do {
            identity = try await client.finish(code: code, pending: pending, redirectURI: openIDRedirectURI(request, client))
        } catch {
            logger.warning("openid connect sign-in failed", metadata: ["error": "\(error)"])
            return errorPage(.forbidden, "Sign-in failed", "\(error)")
        }
        do {
            var account = try await api.metadata.account(email: identity.email)
            if account == nil, client.settings.createAccounts {
                account = try await api.metadata.createAccount(email: identity.email, name: identity.name)
            }
            guard let account else {
                return errorPage(.forbidden, "No account", "There is no account for \(identity.email) on this site; ask an administrator.")
            }
            guard account.isActive else { return errorPage(.forbidden, "Account disabled", "The account \(identity.email) is disabled.") }
            try await api.metadata.setOpenIDSubject(identity.subject, accountID: account.id)
            let (token, _) = try await api.metadata.createSession(accountID: account.id)
            var response = Self.redirect(Self.localPath(pending.next))
            response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.sessionCookie, token, maxAge: 14 * 86_400)))
            response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.openIDCookie, "", maxAge: 0)))
            return response
        } catch {
            return errorPage(.internalServerError, "Error", "The session could not be started; try again later.")
        }
    }
}
