import CrashStats
import Foundation
import JSONSupport
import JWTKit
import Testing
import TestSupport

/// The OpenID Connect client against an issuer made here (a real HTTP server on loopback serving
/// discovery, keys and a token endpoint) whose ID tokens are forged one way at a time: each must
/// be refused, and only the honest one signs the user in.
@Suite(.serialized) struct OpenIDConnectTests {
    struct Claims: JWTPayload {
        var iss: String
        var sub: String
        var aud: [String]
        var exp: Int
        var nonce: String?
        var email: String?
        var email_verified: Bool?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A fake issuer: files behind its routes, rewritten per case.
    final class Issuer: @unchecked Sendable {
        let directory = TestData.temporaryDirectory("oidc-issuer")
        let server: TestHTTPServer
        var base: String { server.baseURL }

        init(discoveryIssuer: ((String) -> String)? = nil) throws {
            server = try TestHTTPServer(routes: [
                "/.well-known/openid-configuration": .file(directory + "/discovery.json"),
                "/jwks": .file(directory + "/jwks.json"),
                "/token": .file(directory + "/token.json"),
            ])
            let base = server.baseURL
            try write("discovery.json", JSONValue.object([
                ("issuer", .string(discoveryIssuer?(base) ?? base)), ("authorization_endpoint", .string(base + "/authorize")),
                ("token_endpoint", .string(base + "/token")), ("jwks_uri", .string(base + "/jwks")),
            ]).serialized())
        }

        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
        }

        func publish(_ key: ES256PrivateKey, kid: String) throws {
            let (x, y) = try #require(key.publicKey.parameters)
            try write("jwks.json", #"{"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "\#(kid)", "x": "\#(x)", "y": "\#(y)"}]}"#)
        }

        func answer(idToken: String) throws {
            try write("token.json", JSONValue.object([("id_token", .string(idToken)), ("token_type", .string("Bearer"))]).serialized())
        }

        deinit {
            server.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static func settings(_ issuer: String) -> OpenIDSettings {
        OpenIDSettings(issuer: issuer, clientID: "postmortem", clientSecret: "secret", redirectURL: "http://127.0.0.1/oidc/callback/")
    }

    func sign(_ claims: Claims, with key: ES256PrivateKey, kid: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    @Test func onlyAnHonestIDTokenSignsIn() async throws {
        let issuer = try Issuer()
        let key = ES256PrivateKey()
        try issuer.publish(key, kid: "k1")
        let client = OpenIDClient(settings: Self.settings(issuer.base))
        let (url, pending) = try await client.start(redirectURI: "http://127.0.0.1/oidc/callback/", next: "/profile/")
        #expect(url.hasPrefix(issuer.base + "/authorize?response_type=code&client_id=postmortem&redirect_uri=http%3A%2F%2F127.0.0.1%2Foidc%2Fcallback%2F"))
        #expect(url.contains("state=\(pending.state)") && url.contains("nonce=\(pending.nonce)") && url.contains("code_challenge_method=S256"))
        #expect(OpenIDClient.PendingSignIn(cookieValue: pending.cookieValue) == pending)
        #expect(OpenIDClient.PendingSignIn(cookieValue: "a.b") == nil && OpenIDClient.PendingSignIn(cookieValue: "..x.") == nil)

        let now = Int(Date().timeIntervalSince1970)
        let honest = Claims(iss: issuer.base, sub: "u1", aud: ["postmortem"], exp: now + 300, nonce: pending.nonce, email: "Dev@Example.com")
        func attempt(_ token: String) async -> Result<OpenIDIdentity, OpenIDError> {
            do {
                try issuer.answer(idToken: token)
                return .success(try await client.finish(code: "c", pending: pending, redirectURI: "http://127.0.0.1/oidc/callback/"))
            } catch let error as OpenIDError {
                return .failure(error)
            } catch {
                return .failure(OpenIDError("\(error)"))
            }
        }
        func refused(_ token: String, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) async {
            switch await attempt(token) {
            case .success(let identity): Issue.record("accepted a forged token: \(identity)", sourceLocation: sourceLocation)
            case .failure(let error): #expect(error.description.contains(reason), "\(error)", sourceLocation: sourceLocation)
            }
        }

        let identity = try await attempt(try await sign(honest, with: key, kid: "k1")).get()
        #expect(identity.subject == "u1" && identity.email == "dev@example.com" && identity.name == "")
        var c = honest
        c.aud = ["someone-else"]
        await refused(try await sign(c, with: key, kid: "k1"), "not valid")
        c = honest; c.aud = ["postmortem", "someone-else"]
        await refused(try await sign(c, with: key, kid: "k1"), "not valid")
        c = honest; c.iss = "http://evil.example"
        await refused(try await sign(c, with: key, kid: "k1"), "issuer is http://evil.example")
        c = honest; c.exp = now - 10
        await refused(try await sign(c, with: key, kid: "k1"), "not valid")
        c = honest; c.nonce = "replayed"
        await refused(try await sign(c, with: key, kid: "k1"), "nonce does not match")
        c = honest; c.nonce = nil
        await refused(try await sign(c, with: key, kid: "k1"), "nonce does not match")
        c = honest; c.email_verified = false
        await refused(try await sign(c, with: key, kid: "k1"), "did not say the user's email")
        // Another key under the issuer's key id; a key id the issuer never published.
        await refused(try await sign(honest, with: ES256PrivateKey(), kid: "k1"), "not valid")
        await refused(try await sign(honest, with: ES256PrivateKey(), kid: "k2"), "not valid")
        // No signature at all, and a symmetric one: algorithms the client never accepts.
        let payload = Data(JSONValue.object([("iss", .string(issuer.base)), ("sub", .string("u1")), ("aud", .string("postmortem")),
                                              ("exp", .int(Int64(now + 300))), ("nonce", .string(pending.nonce)), ("email", .string("a@b.c"))]).serialized().utf8)
        func part(_ d: Data) -> String { d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "") }
        await refused(part(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + part(payload) + ".", "algorithm \"none\" is not accepted")
        let hmac = JWTKeyCollection()
        await hmac.add(hmac: HMACKey(from: String(repeating: "k", count: 64)), digestAlgorithm: .sha256, kid: "k1")
        await refused(try await hmac.sign(honest, kid: "k1"), "algorithm \"HS256\" is not accepted")
        await refused("not a token", "not a JWT")
        await refused(String(repeating: "a", count: 70_000), "too large")
        // The issuer's own refusal.
        try issuer.write("token.json", #"{"error": "invalid_grant", "error_description": "code expired"}"#)
        do {
            _ = try await client.finish(code: "c", pending: pending, redirectURI: "http://127.0.0.1/oidc/callback/")
            Issue.record("accepted a refused code")
        } catch {
            #expect("\(error)".contains("the issuer") )
        }
    }

    @Test func theUserStatusEndpointSaysWhoIsDisabled() async throws {
        let dir = TestData.temporaryDirectory("oidc-status")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let answers = ["blocked": #"{"user_id": "a", "blocked": true}"#, "keycloak": #"{"id": "b", "enabled": false}"#,
                       "scim": #"{"active": false}"#, "fine": #"{"enabled": true, "blocked": false}"#, "silent": #"{"email": "x@y"}"#,
                       "garbage": "not json"]
        var routes: [String: TestHTTPServer.Response] = ["/users/missing": .status(404)]
        for (name, body) in answers {
            try Data(body.utf8).write(to: URL(fileURLWithPath: dir + "/" + name))
            routes["/users/\(name)"] = .file(dir + "/" + name)
        }
        let server = try TestHTTPServer(routes: routes)
        defer { server.shutdown() }
        let client = OpenIDClient(settings: OpenIDSettings(issuer: "https://issuer.example", clientID: "c", clientSecret: "s",
                                                           userStatusURL: server.baseURL + "/users/{sub}"))
        #expect(try await client.isDisabled(subject: "blocked") == true)
        #expect(try await client.isDisabled(subject: "keycloak") == true)
        #expect(try await client.isDisabled(subject: "scim") == true)
        #expect(try await client.isDisabled(subject: "fine") == false)
        #expect(try await client.isDisabled(subject: "silent") == nil)
        await #expect(throws: OpenIDError.self) { _ = try await client.isDisabled(subject: "garbage") }
        await #expect(throws: OpenIDError.self) { _ = try await client.isDisabled(subject: "missing") }
        let unconfigured = OpenIDClient(settings: OpenIDSettings(issuer: "https://issuer.example", clientID: "c", clientSecret: "s"))
        #expect(try await unconfigured.isDisabled(subject: "blocked") == nil)
    }

    @Test func aDiscoveryDocumentForAnotherIssuerIsRefused() async throws {
        let issuer = try Issuer(discoveryIssuer: { _ in "https://accounts.example.com" })
        try issuer.publish(ES256PrivateKey(), kid: "k1")
        let client = OpenIDClient(settings: Self.settings(issuer.base))
        await #expect(throws: OpenIDError.self) { _ = try await client.start(redirectURI: "http://127.0.0.1/cb", next: "/") }
        let gone = try TestHTTPServer(routes: [:])
        gone.shutdown()
        let unreachable = OpenIDClient(settings: Self.settings(gone.baseURL))
        let started = ContinuousClock.now
        do {
            _ = try await unreachable.start(redirectURI: "http://127.0.0.1/cb", next: "/")
            Issue.record("an unreachable issuer started a sign-in")
        } catch {
            #expect("\(error)".contains("could not be reached"))
        }
        // A refused connection is not retried until the request's 10 s run out.
        #expect(ContinuousClock.now - started < .seconds(8), "an unreachable issuer took \(ContinuousClock.now - started)")
    }
}
