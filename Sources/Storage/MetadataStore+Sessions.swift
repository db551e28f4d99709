import Crypto
import Foundation
import SQLKit

/// Web sign-in: local password hashes and server-side sessions. The session cookie carries a
/// random token; only its SHA-256 is stored, with the session's CSRF token and expiry.
extension MetadataStore {
    public struct WebSession: Sendable {
        public let account: Account
        /// The token every form of this session must carry.
        public let csrfToken: String
        public let expiresAt: Int64
    }

    /// Stores a password hash (bcrypt, computed by the caller) for an account.
    public func setPasswordHash(_ hash: String?, accountID: Int64, actor: String = "system") async throws {
        let now = clock()
        try await database.withTransaction { db in
            try await db.raw("UPDATE accounts SET password_hash = \(bind: hash) WHERE id = \(bind: accountID)").run()
            try await Self.audit(db, at: now, actor: actor, action: hash == nil ? "password-remove" : "password-set",
                                 target: "account:\(accountID)", details: "")
            // A new password ends the account's other sessions.
            try await db.raw("DELETE FROM web_sessions WHERE account_id = \(bind: accountID)").run()
        }
    }

    /// The account of `email` with its password hash (nil hash: no local password).
    public func passwordHash(email: String) async throws -> (Account, String?)? {
        let row = try await database.withConnection { db in
            try await db.raw("SELECT id, password_hash FROM accounts WHERE email = \(bind: email.lowercased())").first()
        }
        guard let row, let account = try await account(id: try row.decode(column: "id", as: Int64.self)) else { return nil }
        return (account, try row.decode(column: "password_hash", as: String?.self))
    }

    /// Starts a session: returns the cookie token (shown once) and records the login.
    public func createSession(accountID: Int64, lifetime: Duration = .seconds(14 * 86_400)) async throws -> (token: String, csrf: String) {
        let token = Self.randomToken(), csrf = Self.randomToken()
        let now = clock()
        let expires = now + lifetime.components.seconds * 1_000_000
        try await database.withTransaction { db in
            try await db.raw("""
                INSERT INTO web_sessions (token_hash, account_id, csrf_token, created_at, expires_at)
                VALUES (\(bind: Self.tokenHash(token)), \(bind: accountID), \(bind: csrf), \(bind: now), \(bind: expires))
                """).run()
            try await db.raw("UPDATE accounts SET last_login = \(bind: now) WHERE id = \(bind: accountID)").run()
        }
        return (token, csrf)
    }

    /// The session of a cookie token: unexpired, its account active.
    public func session(token: String) async throws -> WebSession? {
        guard !token.isEmpty, token.utf8.count <= 128 else { return nil }
        let row = try await database.withConnection { db in
            try await db.raw("""
                SELECT account_id, csrf_token, expires_at FROM web_sessions
                WHERE token_hash = \(bind: Self.tokenHash(token)) AND expires_at > \(bind: clock())
                """).first()
        }
        guard let row, let account = try await account(id: try row.decode(column: "account_id", as: Int64.self)), account.isActive else { return nil }
        return WebSession(account: account, csrfToken: try row.decode(column: "csrf_token", as: String.self),
                          expiresAt: try row.decode(column: "expires_at", as: Int64.self))
    }

    public func deleteSession(token: String) async throws {
        try await database.write { db in
            try await db.raw("DELETE FROM web_sessions WHERE token_hash = \(bind: Self.tokenHash(token))").run()
        }
    }

    /// The time of the account's last sign-in (microseconds), nil when it never signed in.
    public func lastLogin(accountID: Int64) async throws -> Int64? {
        try await database.withConnection { db in
            try await db.raw("SELECT last_login FROM accounts WHERE id = \(bind: accountID)").first()?.decode(column: "last_login", as: Int64?.self)
        }
    }

    /// Removes sessions that expired before `cutoff`; returns how many (retention).
    public func deleteExpiredSessions(before cutoff: Int64, dryRun: Bool) async throws -> Int {
        try await database.write { db in
            if dryRun {
                return try await db.raw("SELECT COUNT(*) AS n FROM web_sessions WHERE expires_at < \(bind: cutoff)").first()?.decode(column: "n", as: Int.self) ?? 0
            }
            return try await db.raw("DELETE FROM web_sessions WHERE expires_at < \(bind: cutoff) RETURNING account_id").all().count
        }
    }

    /// 32 random bytes as URL-safe text.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
