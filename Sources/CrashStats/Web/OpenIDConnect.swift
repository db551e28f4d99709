import AsyncHTTPClient
import CrashModel
import Crypto
import Foundation
import JSONSupport
import JWTKit
import NIOCore
import Synchronization

/// OpenID Connect sign-in (the authorization code flow with PKCE, `client_secret_basic`) against
/// one configured issuer (`web.oidc.*`). The ID token comes straight from the issuer's token
/// endpoint and is still checked in full: signature against the issuer's JWKS (asymmetric
/// algorithms only), `iss`, `aud`, `exp`, `nonce`.
public struct OpenIDSettings: Sendable {
    /// The issuer URL exactly as its discovery document names it (`<issuer>/.well-known/openid-configuration`).
    public var issuer: String
    public var clientID: String
    public var clientSecret: String
    /// Where the issuer sends the browser back; empty: `<crashstats.base_url>/oidc/callback/`,
    /// else the request's host.
    public var redirectURL: String
    /// The button's text: "Sign in with <displayName>".
    public var displayName: String
    /// Whether a first sign-in creates the account (with no permissions); else only accounts that
    /// exist may sign in.
    public var createAccounts: Bool
    /// Where the issuer says whether a user is disabled (no standard exists: Auth0's management
    /// API, Keycloak's admin API, SCIM): a URL with `{sub}`, answered with JSON that has
    /// `blocked`, `enabled` or `active`. Empty: the audit does not ask.
    public var userStatusURL: String
    /// A bearer token for `userStatusURL`.
    public var userStatusToken: String

    public init(issuer: String, clientID: String, clientSecret: String, redirectURL: String = "", displayName: String = "single sign-on",
                createAccounts: Bool = true, userStatusURL: String = "", userStatusToken: String = "") {
        self.userStatusURL = userStatusURL
        self.userStatusToken = userStatusToken
        self.issuer = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURL = redirectURL
        self.displayName = displayName
        self.createAccounts = createAccounts
    }
}

/// What a sign-in proved: who the issuer says the user is.
public struct OpenIDIdentity: Sendable, Equatable {
    public let subject: String
    public let email: String
    public let name: String
}

public struct OpenIDError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The claims of an ID token this client reads; `verify` checks the time claims, the audience
/// is checked by jwt-kit's identity-token verification and the issuer and nonce by `OpenIDClient`.
struct IDTokenClaims: JWTIdentityToken {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var nonce: String?
    var email: String?
    var emailVerified: BoolClaim?
    var name: String?

    var audience: AudienceClaim { aud }

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, nonce, email, name
        case emailVerified = "email_verified"
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

public final class OpenIDClient: Sendable {
    public let settings: OpenIDSettings
    /// The discovery document's endpoints, and the issuer's keys.
    struct Provider: Sendable {
        let authorizationEndpoint: String
        let tokenEndpoint: String
        let userinfoEndpoint: String?
        let jwksURI: String
        let keys: JWTKeyCollection
        let fetched: ContinuousClock.Instant
    }
    private let provider = Mutex<Provider?>(nil)
    /// Documents from the issuer are small; anything larger is refused.
    static let maxDocument = 1 << 20
    static let allowedAlgorithms: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

    public init(settings: OpenIDSettings) {
        self.settings = settings
    }

    // MARK: - the flow

    /// A new sign-in: the values kept in the browser's cookie until the issuer sends it back.
    public struct PendingSignIn: Sendable, Equatable {
        public let state: String
        public let nonce: String
        public let verifier: String
        public let next: String

        /// The cookie's value: four fields separated by `.` (`next` base64url-encoded).
        public var cookieValue: String { [state, nonce, verifier, Data(next.utf8).base64URLEncodedString()].joined(separator: ".") }

        public init(state: String, nonce: String, verifier: String, next: String) {
            (self.state, self.nonce, self.verifier, self.next) = (state, nonce, verifier, next)
        }

        public init?(cookieValue: String) {
            let parts = cookieValue.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4, parts[0...2].allSatisfy({ !$0.isEmpty && $0.utf8.count <= 128 }),
                  let next = Data(base64URLEncoded: parts[3]) else { return nil }
            self.init(state: parts[0], nonce: parts[1], verifier: parts[2], next: String(decoding: next, as: UTF8.self))
        }
    }

    /// The issuer's authorization URL for a new sign-in, and what to remember of it.
    public func start(redirectURI: String, next: String) async throws -> (url: String, pending: PendingSignIn) {
        let provider = try await self.provider()
        let pending = PendingSignIn(state: Self.random(), nonce: Self.random(), verifier: Self.random() + Self.random(), next: next)
        let challenge = Data(SHA256.hash(data: Data(pending.verifier.utf8))).base64URLEncodedString()
        let query = CrashStatsWeb.queryString([
            ("response_type", "code"), ("client_id", settings.clientID), ("redirect_uri", redirectURI), ("scope", "openid email profile"),
            ("state", pending.state), ("nonce", pending.nonce), ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ])
        let separator = provider.authorizationEndpoint.contains("?") ? "&" : "?"
        return (provider.authorizationEndpoint + separator + query, pending)
    }

    /// The callback: trades the code for tokens and returns the verified identity.
    public func finish(code: String, pending: PendingSignIn, redirectURI: String) async throws -> OpenIDIdentity {
        let provider = try await self.provider()
        var request = HTTPClientRequest(url: provider.tokenEndpoint)
        request.method = .POST
        let credentials = Data("\(Self.formComponent(settings.clientID)):\(Self.formComponent(settings.clientSecret))".utf8).base64EncodedString()
        request.headers.add(name: "Authorization", value: "Basic \(credentials)")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(string: CrashStatsWeb.queryString([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", pending.verifier),
        ])))
        let (status, body) = try await Self.fetch(request)
        guard let doc = JSONValue.parse(body) else { throw OpenIDError("the issuer's token answer is not JSON (HTTP \(status))") }
        guard status == 200, let idToken = doc["id_token"]?.stringValue else {
            let reason = doc["error_description"]?.stringValue ?? doc["error"]?.stringValue ?? "HTTP \(status)"
            throw OpenIDError("the issuer refused the code: \(reason.prefix(200))")
        }
        var identity = try await verify(idToken: idToken, nonce: pending.nonce, provider: provider)
        // An issuer may keep the email for the userinfo endpoint.
        if identity.email.isEmpty, let userinfo = provider.userinfoEndpoint, let access = doc["access_token"]?.stringValue {
            var request = HTTPClientRequest(url: userinfo)
            request.headers.add(name: "Authorization", value: "Bearer \(access)")
            request.headers.add(name: "Accept", value: "application/json")
            let (status, body) = try await Self.fetch(request)
            if status == 200, let info = JSONValue.parse(body), info["sub"]?.stringValue == identity.subject,
               info["email_verified"] != .bool(false), let email = info["email"]?.stringValue {
                identity = OpenIDIdentity(subject: identity.subject, email: email, name: identity.name.isEmpty ? info["name"]?.stringValue ?? "" : identity.name)
            }
        }
        guard !identity.email.isEmpty else { throw OpenIDError("the issuer did not say the user's email") }
        return identity
    }

    /// Checks an ID token: an allowed algorithm, a signature by one of the issuer's keys (the
    /// key set is fetched again once when the token names a key it lacks), then the claims.
    func verify(idToken: String, nonce: String, provider: Provider) async throws -> OpenIDIdentity {
        guard idToken.utf8.count <= 64 << 10 else { throw OpenIDError("the ID token is too large") }
        let header = try Self.header(of: idToken)
        guard let alg = header["alg"]?.stringValue, Self.allowedAlgorithms.contains(alg) else {
            throw OpenIDError("the ID token's algorithm \(header["alg"]?.serialized() ?? "none") is not accepted")
        }
        var keys = provider.keys
        if let kid = header["kid"]?.stringValue, (try? await keys.getKey(for: JWKIdentifier(string: kid), alg: alg)) == nil {
            keys = try await self.provider(refresh: true).keys
        }
        let claims: IDTokenClaims
        do {
            claims = try await keys.verify(idToken, as: IDTokenClaims.self, expectedAudience: settings.clientID)
        } catch {
            throw OpenIDError("the ID token is not valid: \(error)")
        }
        guard claims.iss.value == settings.issuer else { throw OpenIDError("the ID token's issuer is \(claims.iss.value), not \(settings.issuer)") }
        guard let presented = claims.nonce, Self.constantTimeEqual(presented, nonce) else { throw OpenIDError("the ID token's nonce does not match") }
        let email = claims.emailVerified?.value == false ? "" : (claims.email ?? "")
        return OpenIDIdentity(subject: claims.sub.value, email: email.lowercased(), name: claims.name ?? "")
    }

    // MARK: - user status

    /// Whether the issuer reports `subject` disabled: `blocked: true`, `enabled: false` or
    /// `active: false` in its answer; nil when no status URL is configured or the answer says
    /// neither. Errors (unreachable, not 200) are thrown: the audit then changes nothing.
    public func isDisabled(subject: String) async throws -> Bool? {
        guard !settings.userStatusURL.isEmpty else { return nil }
        let url = settings.userStatusURL.replacingOccurrences(of: "{sub}", with: BugLinks.quotePlus(subject).replacingOccurrences(of: "+", with: "%20"))
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        if !settings.userStatusToken.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(settings.userStatusToken)") }
        let (status, body) = try await Self.fetch(request)
        guard status == 200, let doc = JSONValue.parse(body) else { throw OpenIDError("the user status of \(subject) could not be read (HTTP \(status))") }
        if doc["blocked"] == .bool(true) || doc["enabled"] == .bool(false) || doc["active"] == .bool(false) { return true }
        if doc["blocked"] == .bool(false) || doc["enabled"] == .bool(true) || doc["active"] == .bool(true) { return false }
        return nil
    }

    // MARK: - the issuer's documents

    /// The discovery document and keys, fetched at first use and again after an hour (or when
    /// `refresh`, at most once a minute).
    func provider(refresh: Bool = false) async throws -> Provider {
        let now = ContinuousClock.now
        if let cached = provider.withLock({ $0 }), now - cached.fetched < (refresh ? .seconds(60) : .seconds(3600)) { return cached }
        let (status, body) = try await Self.fetch(HTTPClientRequest(url: settings.issuer + "/.well-known/openid-configuration"))
        guard status == 200, let doc = JSONValue.parse(body) else { throw OpenIDError("the issuer's discovery document could not be read (HTTP \(status))") }
        guard doc["issuer"]?.stringValue == settings.issuer else {
            throw OpenIDError("the discovery document names issuer \(doc["issuer"]?.stringValue ?? "none"), not \(settings.issuer)")
        }
        guard let authorization = doc["authorization_endpoint"]?.stringValue, let token = doc["token_endpoint"]?.stringValue,
              let jwksURI = doc["jwks_uri"]?.stringValue, [authorization, token, jwksURI].allSatisfy(Self.isHTTP) else {
            throw OpenIDError("the discovery document lacks authorization_endpoint, token_endpoint or jwks_uri")
        }
        let (jwksStatus, jwks) = try await Self.fetch(HTTPClientRequest(url: jwksURI))
        guard jwksStatus == 200 else { throw OpenIDError("the issuer's keys could not be read (HTTP \(jwksStatus))") }
        let keys = JWTKeyCollection()
        do {
            try await keys.add(jwksJSON: String(decoding: jwks, as: UTF8.self))
        } catch {
            throw OpenIDError("the issuer's key set is not valid: \(error)")
        }
        let fresh = Provider(authorizationEndpoint: authorization, tokenEndpoint: token,
                             userinfoEndpoint: doc["userinfo_endpoint"]?.stringValue.flatMap { Self.isHTTP($0) ? $0 : nil },
                             jwksURI: jwksURI, keys: keys, fetched: now)
        provider.withLock { $0 = fresh }
        return fresh
    }

    /// The issuer's client: a refused or unanswered connection fails at once (3 s to connect,
    /// no retry), not after the whole 10 s of the request, so a sign-in page with an issuer down
    /// answers quickly. Lives as long as the process, as `HTTPClient.shared` does.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(3), read: .seconds(10))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    static func fetch(_ request: HTTPClientRequest) async throws -> (Int, Data) {
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            return (Int(response.status.code), Data(buffer: try await response.body.collect(upTo: maxDocument)))
        } catch let error as OpenIDError {
            throw error
        } catch {
            throw OpenIDError("the issuer could not be reached: \(error)")
        }
    }

    static func header(of token: String) throws -> JSONValue {
        guard let first = token.split(separator: ".", maxSplits: 1).first, let data = Data(base64URLEncoded: String(first)),
              let header = JSONValue.parse(data) else { throw OpenIDError("the ID token is not a JWT") }
        return header
    }

    static func isHTTP(_ url: String) -> Bool { url.lowercased().hasPrefix("https://") || url.lowercased().hasPrefix("http://") }

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64URLEncodedString()
    }

    /// RFC 6749 §2.3.1: client credentials are form-encoded before Basic encoding.
    static func formComponent(_ s: String) -> String { BugLinks.quotePlus(s) }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && zip(a.utf8, b.utf8).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension Data {
    init?(base64URLEncoded s: String) {
        guard s.utf8.count <= 1 << 20 else { return nil }
        var text = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
        self.init(base64Encoded: text)
    }

    func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
