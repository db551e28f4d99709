import Crypto
import Foundation
import JSONSupport
import SQLKit

public struct Account: Sendable, Equatable {
    public let id: Int64
    public let email: String
    public let name: String
    public let isSuperuser: Bool
    public let isActive: Bool
    public let permissions: Set<String>
}

public struct APIToken: Sendable, Equatable {
    public let id: Int64
    public let accountID: Int64
    /// The first characters, to tell tokens apart in lists; the rest is never stored.
    public let prefix: String
    public let notes: String
    public let permissions: Set<String>
    public let expiresAt: Int64
    public var createdAt: Int64 = 0
}

/// Accounts, permissions, groups, API tokens and the audit log.
extension MetadataStore {
    // MARK: - accounts and tokens

    @discardableResult
    public func createAccount(email: String, name: String = "", superuser: Bool = false) async throws -> Account {
        let now = clock()
        let id = try await database.write { db in
            try await db.raw("""
                INSERT INTO accounts (email, name, is_superuser, is_active, created_at)
                VALUES (\(bind: email.lowercased()), \(bind: name), \(bind: superuser ? 1 : 0), 1, \(bind: now)) RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
        }
        return Account(id: id, email: email.lowercased(), name: name, isSuperuser: superuser, isActive: true, permissions: [])
    }

    public func account(email: String) async throws -> Account? {
        let row = try await database.withConnection { db in
            try await db.raw("SELECT id FROM accounts WHERE email = \(bind: email.lowercased())").first()
        }
        guard let row else { return nil }
        return try await account(id: try row.decode(column: "id", as: Int64.self))
    }

    public func account(id: Int64) async throws -> Account? {
        try await database.withConnection { db -> Account? in
            guard let row = try await db.raw("SELECT id, email, name, is_superuser, is_active FROM accounts WHERE id = \(bind: id)").first() else { return nil }
            let permissions = try await db.raw("""
                SELECT permission FROM account_permissions WHERE account_id = \(bind: id)
                UNION SELECT gp.permission FROM account_groups ag JOIN group_permissions gp ON gp.group_id = ag.group_id
                WHERE ag.account_id = \(bind: id)
                """).all().map { try $0.decode(column: "permission", as: String.self) }
            return Account(id: id, email: try row.decode(column: "email", as: String.self), name: try row.decode(column: "name", as: String.self),
                           isSuperuser: try row.decode(column: "is_superuser", as: Int.self) != 0,
                           isActive: try row.decode(column: "is_active", as: Int.self) != 0, permissions: Set(permissions))
        }
    }

    public func grant(_ permission: String, to accountID: Int64, actor: String = "system") async throws {
        let now = clock()
        try await database.withTransaction { db in
            try await db.raw("""
                INSERT INTO account_permissions (account_id, permission) VALUES (\(bind: accountID), \(bind: permission)) ON CONFLICT DO NOTHING
                """).run()
            try await Self.audit(db, at: now, actor: actor, action: "grant", target: "account:\(accountID)", details: permission)
        }
    }

    /// Removes a permission; the account's tokens lose it too (token permissions are intersected
    /// with the account's at each use).
    public func revoke(_ permission: String, from accountID: Int64, actor: String = "system") async throws {
        let now = clock()
        try await database.withTransaction { db in
            try await db.raw("DELETE FROM account_permissions WHERE account_id = \(bind: accountID) AND permission = \(bind: permission)").run()
            try await Self.audit(db, at: now, actor: actor, action: "revoke", target: "account:\(accountID)", details: permission)
        }
    }

    // MARK: - groups

    public struct PermissionGroup: Sendable, Equatable {
        public let id: Int64
        public let name: String
        public let permissions: Set<String>
        public let members: [String]
    }

    /// Every group with its permissions and member emails.
    public func groups() async throws -> [PermissionGroup] {
        try await database.withConnection { db in
            var out: [PermissionGroup] = []
            for row in try await db.raw("SELECT id, name FROM permission_groups ORDER BY name").all() {
                let id = try row.decode(column: "id", as: Int64.self)
                let permissions = try await db.raw("SELECT permission FROM group_permissions WHERE group_id = \(bind: id)").all()
                    .map { try $0.decode(column: "permission", as: String.self) }
                let members = try await db.raw("""
                    SELECT a.email FROM account_groups ag JOIN accounts a ON a.id = ag.account_id WHERE ag.group_id = \(bind: id) ORDER BY a.email
                    """).all().map { try $0.decode(column: "email", as: String.self) }
                out.append(PermissionGroup(id: id, name: try row.decode(column: "name", as: String.self), permissions: Set(permissions), members: members))
            }
            return out
        }
    }

    /// Creates a group with `permissions` (or sets the permissions of an existing one).
    public func setGroup(_ name: String, permissions: Set<String>, actor: String = "system") async throws {
        let now = clock()
        try await database.write { db in
            try await db.raw("INSERT INTO permission_groups (name) VALUES (\(bind: name)) ON CONFLICT DO NOTHING").run()
            guard let row = try await db.raw("SELECT id FROM permission_groups WHERE name = \(bind: name)").first() else { return }
            let id = try row.decode(column: "id", as: Int64.self)
            try await db.raw("DELETE FROM group_permissions WHERE group_id = \(bind: id)").run()
            for p in permissions.sorted() {
                try await db.raw("INSERT INTO group_permissions (group_id, permission) VALUES (\(bind: id), \(bind: p))").run()
            }
            try await Self.audit(db, at: now, actor: actor, action: "group-set", target: "group:\(name)", details: permissions.sorted().joined(separator: ","))
        }
    }

    /// Adds an account to a group or removes it; false when the group does not exist. Removal
    /// takes the group's permissions away from the account's tokens too.
    @discardableResult
    public func setMembership(accountID: Int64, group: String, member: Bool, actor: String = "system", reason: String = "") async throws -> Bool {
        let now = clock()
        return try await database.write { db -> Bool in
            guard let row = try await db.raw("SELECT id FROM permission_groups WHERE name = \(bind: group)").first() else { return false }
            let id = try row.decode(column: "id", as: Int64.self)
            if member {
                try await db.raw("INSERT INTO account_groups (account_id, group_id) VALUES (\(bind: accountID), \(bind: id)) ON CONFLICT DO NOTHING").run()
            } else {
                try await db.raw("DELETE FROM account_groups WHERE account_id = \(bind: accountID) AND group_id = \(bind: id)").run()
            }
            try await Self.audit(db, at: now, actor: actor, action: member ? "group-add" : "group-remove", target: "account:\(accountID)",
                                 details: reason.isEmpty ? group : "\(group): \(reason)")
            return true
        }
    }

    static func audit(_ db: any SQLDatabase, at: Int64, actor: String, action: String, target: String, details: String) async throws {
        try await db.raw("""
            INSERT INTO audit_log (at, actor, action, target, details) VALUES (\(bind: at), \(bind: actor), \(bind: action), \(bind: target), \(bind: details))
            """).run()
    }

    public struct AuditEntry: Sendable, Equatable {
        public let at: Int64
        public let actor: String
        public let action: String
        public let target: String
        public let details: String
    }

    /// The newest audit entries first.
    public func auditLog(limit: Int = 100) async throws -> [AuditEntry] {
        try await database.withConnection { db in
            try await db.raw("SELECT at, actor, action, target, details FROM audit_log ORDER BY id DESC LIMIT \(bind: limit)").all()
        }.map { row in
            AuditEntry(at: try row.decode(column: "at", as: Int64.self), actor: try row.decode(column: "actor", as: String.self),
                       action: try row.decode(column: "action", as: String.self), target: try row.decode(column: "target", as: String.self),
                       details: try row.decode(column: "details", as: String.self))
        }
    }

    public func accounts() async throws -> [Account] {
        let ids = try await database.withConnection { db in
            try await db.raw("SELECT id FROM accounts ORDER BY email").all().map { try $0.decode(column: "id", as: Int64.self) }
        }
        var out: [Account] = []
        for id in ids { if let a = try await account(id: id) { out.append(a) } }
        return out
    }

    /// The tokens of an account (or of everyone), without their secret part.
    public func tokens(accountID: Int64? = nil) async throws -> [APIToken] {
        var query: SQLQueryString = "SELECT id, account_id, token_prefix, notes, permissions, expires_at, created_at FROM api_tokens"
        if let accountID { query += " WHERE account_id = \(bind: accountID)" }
        query += " ORDER BY id"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map(Self.decodeToken)
    }

    static func decodeToken(_ row: any SQLRow) throws -> APIToken {
        APIToken(id: try row.decode(column: "id", as: Int64.self), accountID: try row.decode(column: "account_id", as: Int64.self),
                 prefix: try row.decode(column: "token_prefix", as: String.self), notes: try row.decode(column: "notes", as: String.self),
                 permissions: Set(try row.decode(column: "permissions", as: String.self).split(separator: ",").map(String.init)),
                 expiresAt: try row.decode(column: "expires_at", as: Int64.self),
                 createdAt: (try? row.decode(column: "created_at", as: Int64.self)) ?? 0)
    }

    /// Moves a token's expiry to `days` from now; false when `accountID` has no such token.
    public func extendToken(id: Int64, accountID: Int64, days: Int, actor: String = "system") async throws -> Bool {
        let now = clock()
        let expires = now + Int64(days) * 86_400 * 1_000_000
        return try await database.withTransaction { db in
            guard try await db.raw("SELECT id FROM api_tokens WHERE id = \(bind: id) AND account_id = \(bind: accountID)").first() != nil else { return false }
            try await db.raw("UPDATE api_tokens SET expires_at = \(bind: expires) WHERE id = \(bind: id)").run()
            try await Self.audit(db, at: now, actor: actor, action: "token-extend", target: "account:\(accountID)", details: "token \(id) by \(days) days")
            return true
        }
    }

    /// Creates a token for `accountID` and returns its text, which exists only in this return
    /// value: the database keeps its SHA-256.
    /// The text is 32 hex digits (Crash Stats' format); a client may append `-label`, which is
    /// ignored when the token is used.
    public struct InvalidTokenPermissions: Error, CustomStringConvertible {
        public var description: String { "Invalid combination of permissions" }
    }

    public func createToken(accountID: Int64, permissions: Set<String>, notes: String = "", lifetime: Duration = .seconds(365 * 86_400),
                            actor: String = "system") async throws -> (String, APIToken) {
        // Tecken: a token uploads either regular or try symbols, which is how an upload knows
        // which it is.
        if permissions.contains("upload_symbols") && permissions.contains("upload_try_symbols") { throw InvalidTokenPermissions() }
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        let text = SigV4Signer.hex(bytes)
        let hash = Self.tokenHash(text)
        let now = clock()
        let expires = now + lifetime.components.seconds * 1_000_000
        let permissionList = permissions.sorted().joined(separator: ",")
        let id = try await database.withTransaction { db in
            let id = try await db.raw("""
                INSERT INTO api_tokens (account_id, token_hash, token_prefix, notes, permissions, created_at, expires_at)
                VALUES (\(bind: accountID), \(bind: hash), \(bind: String(text.prefix(8))), \(bind: notes), \(bind: permissionList), \(bind: now), \(bind: expires))
                RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
            try await Self.audit(db, at: now, actor: actor, action: "token-create", target: "account:\(accountID)",
                                 details: "token \(id) (\(text.prefix(8))…) permissions \(permissionList)")
            return id
        }
        return (text, APIToken(id: id, accountID: accountID, prefix: String(text.prefix(8)), notes: notes, permissions: permissions, expiresAt: expires))
    }

    /// The account and token for a presented token text, when it exists, has not expired and
    /// its account is active; records its use. The returned token's permissions are those it
    /// was given that its owner still holds (all of them for a superuser).
    public func authenticate(token presented: String) async throws -> (Account, APIToken)? {
        if case .valid(let account, let token) = try await checkToken(presented) { return (account, token) }
        return nil
    }

    public enum TokenCheck: Sendable {
        case valid(Account, APIToken)
        case unknown, expired, inactiveAccount
    }

    /// `authenticate`, saying why a token is refused (the API answers each case differently).
    public func checkToken(_ presented: String) async throws -> TokenCheck {
        guard presented.utf8.count <= 256 else { return .unknown }
        let text = presented.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !text.isEmpty else { return .unknown }
        let hash = Self.tokenHash(text)
        let now = clock()
        let row = try await database.withConnection { db in
            try await db.raw("""
                SELECT id, account_id, token_prefix, notes, permissions, expires_at FROM api_tokens WHERE token_hash = \(bind: hash)
                """).first()
        }
        guard let row else { return .unknown }
        let stored = try Self.decodeToken(row)
        guard stored.expiresAt > now else { return .expired }
        guard let account = try await account(id: stored.accountID), account.isActive else { return .inactiveAccount }
        let token = APIToken(id: stored.id, accountID: stored.accountID, prefix: stored.prefix, notes: stored.notes,
                             permissions: account.isSuperuser ? stored.permissions : stored.permissions.intersection(account.permissions),
                             expiresAt: stored.expiresAt)
        try await database.write { db in
            try await db.raw("UPDATE api_tokens SET last_used_at = \(bind: now) WHERE id = \(bind: token.id)").run()
        }
        return .valid(account, token)
    }

    /// Revokes a token; false when there is none with that id.
    @discardableResult
    public func deleteToken(id: Int64, actor: String = "system") async throws -> Bool {
        let now = clock()
        return try await database.withTransaction { db in
            guard let row = try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id) RETURNING account_id").first() else { return false }
            try await Self.audit(db, at: now, actor: actor, action: "token-revoke",
                                 target: "account:\(try row.decode(column: "account_id", as: Int64.self))", details: "token \(id)")
            return true
        }
    }

    static func tokenHash(_ text: String) -> String { SigV4Signer.sha256Hex(Data(text.utf8)) }
}
