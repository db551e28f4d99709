import Crypto
import Foundation
import JSONSupport
import SQLKit

/// One row of the crash index: the searchable fields of a processed crash.
public struct CrashIndexRow: Sendable, Equatable {
    public var crashID: String
    /// Microseconds since 1970 (UTC).
    public var dateProcessed: Int64
    public var clientCrashDate: Int64?
    public var product: String?
    public var version: String?
    public var releaseChannel: String?
    public var platform: String?
    public var platformVersion: String?
    public var cpuArch: String?
    public var processType: String?
    public var signature: String?
    public var buildID: String?
    public var reason: String?
    public var uptime: Int64?
    public var installAge: Int64?
    /// Every searchable field, as a JSON object.
    public var document: JSONValue

    public init(crashID: String, dateProcessed: Int64, clientCrashDate: Int64? = nil, product: String? = nil, version: String? = nil,
                releaseChannel: String? = nil, platform: String? = nil, platformVersion: String? = nil, cpuArch: String? = nil,
                processType: String? = nil, signature: String? = nil, buildID: String? = nil, reason: String? = nil,
                uptime: Int64? = nil, installAge: Int64? = nil, document: JSONValue = .object([])) {
        self.crashID = crashID
        self.dateProcessed = dateProcessed
        self.clientCrashDate = clientCrashDate
        self.product = product
        self.version = version
        self.releaseChannel = releaseChannel
        self.platform = platform
        self.platformVersion = platformVersion
        self.cpuArch = cpuArch
        self.processType = processType
        self.signature = signature
        self.buildID = buildID
        self.reason = reason
        self.uptime = uptime
        self.installAge = installAge
        self.document = document
    }

    /// Longest value of a text column, in UTF-8 bytes: the covering index's columns together stay
    /// under PostgreSQL's B-tree entry limit (2704 bytes), whatever a client sent.
    public static let maxColumnBytes = 256
    public static let maxSignatureBytes = 1024

    /// The row as the index stores it: NUL characters removed everywhere (PostgreSQL's text and
    /// JSONB refuse them) and over-long text columns cut to `maxColumnBytes` (the document keeps
    /// the whole value).
    public func sanitizedForIndex() -> CrashIndexRow {
        var row = self
        func column(_ value: String?, _ limit: Int = Self.maxColumnBytes) -> String? {
            guard let value else { return nil }
            return Self.truncated(Self.removingNUL(value), toUTF8Bytes: limit)
        }
        row.crashID = Self.removingNUL(crashID)
        row.product = column(product)
        row.version = column(version)
        row.releaseChannel = column(releaseChannel)
        row.platform = column(platform)
        row.platformVersion = column(platformVersion)
        row.cpuArch = column(cpuArch)
        row.processType = column(processType)
        row.signature = column(signature, Self.maxSignatureBytes)
        row.buildID = column(buildID)
        row.reason = column(reason)
        row.document = Self.removingNUL(document)
        return row
    }

    static func removingNUL(_ s: String) -> String {
        s.utf8.contains(0) ? String(String.UnicodeScalarView(s.unicodeScalars.filter { $0 != "\u{0}" })) : s
    }

    static func removingNUL(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(removingNUL(s))
        case .array(let items): return .array(items.map(removingNUL))
        case .object(let pairs): return .object(pairs.map { (removingNUL($0.0), removingNUL($0.1)) })
        default: return value
        }
    }

    /// At most `limit` UTF-8 bytes, cut at a character boundary.
    static func truncated(_ s: String, toUTF8Bytes limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        var out = ""
        var used = 0
        for c in s {
            let n = c.utf8.count
            if used + n > limit { break }
            out.append(c)
            used += n
        }
        return out
    }
}

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

/// The metadata database: crash index, accounts and API tokens, symbol upload records (and the
/// work queue's tables, used through `WorkQueue`). One set of queries for SQLite and PostgreSQL.
public struct MetadataStore: Sendable {
    public let database: Database
    let clock: @Sendable () -> Int64
    /// The store's clock (microseconds since 1970): what it stamps records with.
    public var now: Int64 { clock() }

    /// Opens the store and applies pending migrations.
    public static func open(_ database: Database, clock: @escaping @Sendable () -> Int64 = WorkQueue.systemClock) async throws -> MetadataStore {
        _ = try await Migrations.apply(database, now: clock())
        return MetadataStore(database: database, clock: clock)
    }

    public func schemaVersion() async throws -> Int {
        try await database.withConnection { db in
            try await db.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decode(column: "v", as: Int?.self) ?? 0
        }
    }

    // MARK: - crash index

    /// Inserts or replaces the row of `row.crashID` (reprocessing replaces).
    public func index(_ row: CrashIndexRow) async throws {
        try await index([row])
    }

    /// Inserts or replaces rows, in one transaction per 500 rows (bulk loads and imports).
    public func index(_ rows: [CrashIndexRow]) async throws {
        for start in stride(from: 0, to: rows.count, by: 500) {
            let chunk = rows[start..<min(rows.count, start + 500)]
            var query: SQLQueryString = """
                INSERT INTO crashes (crash_id, date_processed, client_crash_date, product, version, release_channel, platform,
                    platform_version, cpu_arch, process_type, signature, build_id, reason, uptime, install_age, document)
                VALUES 
                """
            for (i, original) in chunk.enumerated() {
                let row = original.sanitizedForIndex()
                let json = row.document.serialized()
                let jsonValue: SQLQueryString = database.kind == .postgres ? "CAST(\(bind: json) AS JSONB)" : "\(bind: json)"
                if i > 0 { query += ", " }
                query += """
                    (\(bind: row.crashID), \(bind: row.dateProcessed), \(bind: row.clientCrashDate), \(bind: row.product),
                    \(bind: row.version), \(bind: row.releaseChannel), \(bind: row.platform), \(bind: row.platformVersion),
                    \(bind: row.cpuArch), \(bind: row.processType), \(bind: row.signature), \(bind: row.buildID), \(bind: row.reason),
                    \(bind: row.uptime), \(bind: row.installAge), \(jsonValue))
                    """
            }
            query += """
                 ON CONFLICT (crash_id) DO UPDATE SET date_processed = excluded.date_processed,
                    client_crash_date = excluded.client_crash_date, product = excluded.product, version = excluded.version,
                    release_channel = excluded.release_channel, platform = excluded.platform,
                    platform_version = excluded.platform_version, cpu_arch = excluded.cpu_arch,
                    process_type = excluded.process_type, signature = excluded.signature, build_id = excluded.build_id,
                    reason = excluded.reason, uptime = excluded.uptime, install_age = excluded.install_age,
                    document = excluded.document
                """
            let q = query
            try await database.write { db in try await db.raw(q).run() }
        }
    }

    public func crash(_ crashID: String) async throws -> CrashIndexRow? {
        try await database.withConnection { db in
            try await db.raw("\(unsafeRaw: Self.selectCrash) WHERE crash_id = \(bind: crashID)").first()
        }.map(Self.decodeCrash)
    }

    /// Crashes in `[from, to)` (microseconds), newest first, optionally with an exact product
    /// and a signature prefix (a byte-order range scan on the signature index).
    public func crashes(from: Int64, to: Int64, product: String? = nil, signaturePrefix: String? = nil, limit: Int = 100) async throws -> [CrashIndexRow] {
        var query: SQLQueryString = "\(unsafeRaw: Self.selectCrash) WHERE date_processed >= \(bind: from) AND date_processed < \(bind: to)"
        if let product { query += " AND product = \(bind: product)" }
        if let signaturePrefix, !signaturePrefix.isEmpty {
            query += " AND signature >= \(bind: signaturePrefix)"
            if let upper = Self.prefixUpperBound(signaturePrefix) { query += " AND signature < \(bind: upper)" }
        }
        query += " ORDER BY date_processed DESC, crash_id LIMIT \(bind: limit)"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map(Self.decodeCrash)
    }

    /// Counts per value of `column` in `[from, to)`, largest first (the facet query shape).
    public func facet(_ column: CrashColumn, from: Int64, to: Int64, limit: Int = 50) async throws -> [(String?, Int)] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT \(unsafeRaw: column.rawValue) AS term, COUNT(*) AS n FROM crashes
                WHERE date_processed >= \(bind: from) AND date_processed < \(bind: to)
                GROUP BY \(unsafeRaw: column.rawValue) ORDER BY n DESC, term LIMIT \(bind: limit)
                """).all()
        }.map { (try $0.decode(column: "term", as: String?.self), Int(try $0.decode(column: "n", as: Int64.self))) }
    }

    /// Removes index rows processed before `cutoff`; returns how many.
    public func deleteCrashes(processedBefore cutoff: Int64) async throws -> Int {
        try await database.write { db in
            try await db.raw("DELETE FROM crashes WHERE date_processed < \(bind: cutoff) RETURNING crash_id").all().count
        }
    }

    /// Columns that may be faceted (never interpolated from user text).
    public enum CrashColumn: String, Sendable, CaseIterable {
        case product, version, releaseChannel = "release_channel", platform, platformVersion = "platform_version",
             cpuArch = "cpu_arch", processType = "process_type", signature, buildID = "build_id", reason
    }

    static let selectCrash = """
        SELECT crash_id, date_processed, client_crash_date, product, version, release_channel, platform, platform_version,
            cpu_arch, process_type, signature, build_id, reason, uptime, install_age, CAST(document AS TEXT) AS document FROM crashes
        """

    static func decodeCrash(_ row: any SQLRow) throws -> CrashIndexRow {
        CrashIndexRow(
            crashID: try row.decode(column: "crash_id", as: String.self),
            dateProcessed: try row.decode(column: "date_processed", as: Int64.self),
            clientCrashDate: try row.decode(column: "client_crash_date", as: Int64?.self),
            product: try row.decode(column: "product", as: String?.self),
            version: try row.decode(column: "version", as: String?.self),
            releaseChannel: try row.decode(column: "release_channel", as: String?.self),
            platform: try row.decode(column: "platform", as: String?.self),
            platformVersion: try row.decode(column: "platform_version", as: String?.self),
            cpuArch: try row.decode(column: "cpu_arch", as: String?.self),
            processType: try row.decode(column: "process_type", as: String?.self),
            signature: try row.decode(column: "signature", as: String?.self),
            buildID: try row.decode(column: "build_id", as: String?.self),
            reason: try row.decode(column: "reason", as: String?.self),
            uptime: try row.decode(column: "uptime", as: Int64?.self),
            installAge: try row.decode(column: "install_age", as: Int64?.self),
            document: JSONValue.parse(Data(try row.decode(column: "document", as: String.self).utf8)) ?? .object([]))
    }

    /// The smallest string greater than every string starting with `prefix` (byte order), nil
    /// when there is none (the prefix is all 0xFF bytes, impossible in UTF-8 text).
    static func prefixUpperBound(_ prefix: String) -> String? {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0x7F { bytes[bytes.count - 1] = last + 1; return String(decoding: bytes, as: UTF8.self) }
            bytes.removeLast()
        }
        return nil
    }

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
    public func setMembership(accountID: Int64, group: String, member: Bool, actor: String = "system") async throws -> Bool {
        let now = clock()
        return try await database.write { db -> Bool in
            guard let row = try await db.raw("SELECT id FROM permission_groups WHERE name = \(bind: group)").first() else { return false }
            let id = try row.decode(column: "id", as: Int64.self)
            if member {
                try await db.raw("INSERT INTO account_groups (account_id, group_id) VALUES (\(bind: accountID), \(bind: id)) ON CONFLICT DO NOTHING").run()
            } else {
                try await db.raw("DELETE FROM account_groups WHERE account_id = \(bind: accountID) AND group_id = \(bind: id)").run()
            }
            try await Self.audit(db, at: now, actor: actor, action: member ? "group-add" : "group-remove", target: "account:\(accountID)", details: group)
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

    // MARK: - search

    /// Rows of a read-only query built by the search layer (binds only, no user text as SQL).
    /// Runs a search query. With `timeout`, PostgreSQL cancels it then (`statement_timeout`);
    /// on SQLite the caller binds `regexDeadline(timeout)` into its `pm_regexp` calls, the one
    /// thing there whose cost a request controls. Past the limit: `QueryTimedOut`.
    public func search(_ query: SQLQueryString, timeout: Duration? = nil) async throws -> [any SQLRow] {
        do {
            if let timeout, database.kind == .postgres {
                let (seconds, attoseconds) = timeout.components
                let ms = max(1, min(Int64(86_400_000), seconds.multipliedReportingOverflow(by: 1000).partialValue + attoseconds / 1_000_000_000_000_000))
                return try await database.withTransaction { db in
                    try await db.raw("SET LOCAL statement_timeout = \(unsafeRaw: String(ms))").run()
                    return try await db.raw(query).all()
                }
            }
            return try await database.withConnection { db in try await db.raw(query).all() }
        } catch {
            throw Database.isTimeout(error) ? QueryTimedOut() : error
        }
    }

    /// The value to bind as `pm_regexp`'s third argument so matching stops `timeout` from now.
    public static func regexDeadline(_ timeout: Duration) -> Int64 {
        let (seconds, attoseconds) = timeout.components
        return RegexMatch.nowMilliseconds() + min(Int64(86_400_000), max(0, seconds) * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// The SQL text and bound values of a query, as the database would receive it (Super
    /// Search's `_return_query`).
    public func describe(_ query: SQLQueryString) async throws -> (sql: String, binds: [String]) {
        try await database.withConnection { db in
            var serializer = SQLSerializer(database: db)
            query.serialize(to: &serializer)
            return (serializer.sql, serializer.binds.map { String(describing: $0) })
        }
    }

    /// The first time each signature was seen in the index, with the build of that crash.
    public func signatureFirstDates(_ signatures: [String]) async throws -> [(signature: String, firstDate: Int64, firstBuild: String?)] {
        // One index seek per signature on (signature, date_processed), on one connection: a single
        // grouped query would read every row of each signature (millions for a top crasher).
        try await database.withConnection { db in
            var out: [(String, Int64, String?)] = []
            for signature in signatures {
                let row = try await db.raw("""
                    SELECT date_processed, build_id FROM crashes WHERE signature = \(bind: signature)
                    ORDER BY date_processed, crash_id LIMIT 1
                    """).first()
                if let row {
                    out.append((signature, try row.decode(column: "date_processed", as: Int64.self), try row.decode(column: "build_id", as: String?.self)))
                }
            }
            return out
        }
    }

    // MARK: - product versions

    /// Records that `buildID` of `product` on `channel` is `version` (idempotent).
    public func addProductVersion(product: String, channel: String, buildID: String, version: String) async throws {
        let now = clock()
        try await database.write { db in
            try await db.raw("""
                INSERT INTO product_versions (product, release_channel, build_id, version_string, created_at)
                VALUES (\(bind: product), \(bind: channel), \(bind: buildID), \(bind: version), \(bind: now))
                ON CONFLICT DO NOTHING
                """).run()
        }
    }

    /// The version strings of a build, as the VersionString API answers: on beta and aurora, if
    /// any candidate is a beta (`b`), release candidates (`rc`) are dropped; otherwise only
    /// release candidates are kept. Sorted, highest first.
    public func versionStrings(product: String, channel: String, buildID: String) async throws -> [String] {
        let rows = try await database.withConnection { db in
            try await db.raw("""
                SELECT version_string FROM product_versions
                WHERE product = \(bind: product) AND release_channel = \(bind: channel) AND build_id = \(bind: buildID)
                """).all()
        }
        var versions = try rows.map { try $0.decode(column: "version_string", as: String.self) }
        if ["beta", "aurora"].contains(channel.lowercased()) {
            if versions.contains(where: { $0.contains("b") }) { versions.removeAll { $0.contains("rc") } }
            else { versions = versions.filter { $0.contains("rc") } }
        }
        return versions.sorted { $0.compare($1, options: .numeric) == .orderedDescending }
    }

    /// All recorded builds, newest first.
    public func productVersions(product: String? = nil, limit: Int = 100) async throws -> [(product: String, channel: String, buildID: String, version: String)] {
        var query: SQLQueryString = "SELECT product, release_channel, build_id, version_string FROM product_versions"
        if let product { query += " WHERE product = \(bind: product)" }
        query += " ORDER BY build_id DESC, version_string DESC LIMIT \(bind: limit)"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map { row in
            (try row.decode(column: "product", as: String.self), try row.decode(column: "release_channel", as: String.self),
             try row.decode(column: "build_id", as: String.self), try row.decode(column: "version_string", as: String.self))
        }
    }

    // MARK: - collector payload statistics

    public struct PayloadRecord: Sendable {
        public var size: Int
        public var uncompressedSize: Int
        public var compressed: Bool
        public var outcome: String
        public init(size: Int, uncompressedSize: Int, compressed: Bool, outcome: String) {
            self.size = size
            self.uncompressedSize = uncompressedSize
            self.compressed = compressed
            self.outcome = outcome
        }
    }

    public func recordPayloads(_ records: [PayloadRecord]) async throws {
        guard !records.isEmpty else { return }
        let now = clock()
        try await database.write { db in
            for chunk in stride(from: 0, to: records.count, by: 200) {
                var query: SQLQueryString = "INSERT INTO collector_payloads (received_at, payload_size, uncompressed_size, compressed, outcome) VALUES "
                for (n, r) in records[chunk..<min(records.count, chunk + 200)].enumerated() {
                    if n > 0 { query += ", " }
                    query += "(\(bind: now), \(bind: Int64(r.size)), \(bind: Int64(r.uncompressedSize)), \(bind: r.compressed ? 1 : 0), \(bind: r.outcome))"
                }
                try await db.raw(query).run()
            }
        }
    }

    public func recordPayload(size: Int, uncompressedSize: Int, compressed: Bool, outcome: String) async throws {
        try await recordPayloads([PayloadRecord(size: size, uncompressedSize: uncompressedSize, compressed: compressed, outcome: outcome)])
    }

    public struct SizeStatistics: Sendable, Equatable {
        public var count = 0
        public var median = 0
        public var mean = 0.0
        public var p95 = 0
        public var max = 0
    }

    /// Payload sizes received since `since` (microseconds): as received and after decompression.
    public func payloadStatistics(since: Int64) async throws -> (received: SizeStatistics, uncompressed: SizeStatistics, compressedShare: Double) {
        try await database.withConnection { db in
            func stats(_ column: String) async throws -> SizeStatistics {
                guard let row = try await db.raw("""
                    SELECT COUNT(*) AS n, CAST(AVG(\(unsafeRaw: column)) AS DOUBLE PRECISION) AS mean, MAX(\(unsafeRaw: column)) AS largest
                    FROM collector_payloads WHERE received_at >= \(bind: since)
                    """).first() else { return SizeStatistics() }
                let n = Int(try row.decode(column: "n", as: Int64.self))
                guard n > 0 else { return SizeStatistics() }
                func at(_ fraction: Double) async throws -> Int {
                    let offset = Swift.min(n - 1, Swift.max(0, Int((Double(n) * fraction).rounded(.up)) - 1))
                    let r = try await db.raw("""
                        SELECT \(unsafeRaw: column) AS v FROM collector_payloads WHERE received_at >= \(bind: since)
                        ORDER BY \(unsafeRaw: column) LIMIT 1 OFFSET \(bind: offset)
                        """).first()
                    return Int(try r?.decode(column: "v", as: Int64.self) ?? 0)
                }
                return SizeStatistics(count: n, median: try await at(0.5), mean: try row.decode(column: "mean", as: Double?.self) ?? 0,
                                      p95: try await at(0.95), max: Int(try row.decode(column: "largest", as: Int64?.self) ?? 0))
            }
            let received = try await stats("payload_size")
            let uncompressed = try await stats("uncompressed_size")
            let compressed = try await db.raw("""
                SELECT COUNT(*) AS n FROM collector_payloads WHERE received_at >= \(bind: since) AND compressed = 1
                """).first()?.decode(column: "n", as: Int64.self) ?? 0
            return (received, uncompressed, received.count == 0 ? 0 : Double(compressed) / Double(received.count))
        }
    }

    public func deletePayloadRecords(before cutoff: Int64) async throws {
        try await database.write { db in
            try await db.raw("DELETE FROM collector_payloads WHERE received_at < \(bind: cutoff)").run()
        }
    }

    // MARK: - late symbols

    public struct MissingModule: Sendable, Equatable, Hashable {
        public var debugFile: String
        public var debugId: String
        public var codeFile: String
        public var codeId: String
        public var checks: Int
        public init(debugFile: String, debugId: String, codeFile: String = "", codeId: String = "", checks: Int = 0) {
            self.debugFile = debugFile
            self.debugId = debugId
            self.codeFile = codeFile
            self.codeId = codeId
            self.checks = checks
        }
    }

    /// Records which modules of a crash lacked symbols (replacing what an earlier run recorded).
    public func recordMissingSymbols(crashID: String, modules: [MissingModule], firstCheckAfter: Duration) async throws {
        let now = clock()
        let next = now + firstCheckAfter.components.seconds * 1_000_000
        // Module names come from the dump: no NUL reaches PostgreSQL's text columns.
        let modules = modules.map { m in
            MissingModule(debugFile: CrashIndexRow.removingNUL(m.debugFile), debugId: CrashIndexRow.removingNUL(m.debugId),
                          codeFile: CrashIndexRow.removingNUL(m.codeFile), codeId: CrashIndexRow.removingNUL(m.codeId), checks: m.checks)
        }
        try await database.withTransaction { db in
            let previous = try await db.raw("SELECT debug_file, debug_id FROM missing_symbol_crashes WHERE crash_id = \(bind: crashID)").all()
            try await db.raw("DELETE FROM missing_symbol_crashes WHERE crash_id = \(bind: crashID)").run()
            for m in modules {
                try await db.raw("""
                    INSERT INTO missing_symbols (debug_file, debug_id, code_file, code_id, first_seen, next_check, checks, last_seen)
                    VALUES (\(bind: m.debugFile), \(bind: m.debugId), \(bind: m.codeFile), \(bind: m.codeId), \(bind: now), \(bind: next), 0, \(bind: now))
                    ON CONFLICT (debug_file, debug_id) DO UPDATE SET last_seen = excluded.last_seen,
                    next_check = CASE WHEN missing_symbols.next_check < excluded.next_check THEN missing_symbols.next_check ELSE excluded.next_check END
                    """).run()
                try await db.raw("""
                    INSERT INTO missing_symbol_crashes (debug_file, debug_id, crash_id, processed_at)
                    VALUES (\(bind: m.debugFile), \(bind: m.debugId), \(bind: crashID), \(bind: now)) ON CONFLICT DO NOTHING
                    """).run()
            }
            // Modules this crash needed before and no longer does (it found their symbols):
            // forgotten when no other crash waits for them and no download asked for them.
            for row in previous {
                let file = try row.decode(column: "debug_file", as: String.self), id = try row.decode(column: "debug_id", as: String.self)
                try await db.raw("""
                    DELETE FROM missing_symbols WHERE debug_file = \(bind: file) AND debug_id = \(bind: id) AND download_misses = 0
                    AND NOT EXISTS (SELECT 1 FROM missing_symbol_crashes c WHERE c.debug_file = \(bind: file) AND c.debug_id = \(bind: id))
                    """).run()
            }
        }
    }

    /// Modules waiting for symbols: those due for a check (`dueOnly`), or all, most recent first.
    public func missingModules(dueOnly: Bool, limit: Int) async throws -> [MissingModule] {
        let now = clock()
        var query: SQLQueryString = "SELECT debug_file, debug_id, code_file, code_id, checks FROM missing_symbols"
        if dueOnly { query += " WHERE next_check <= \(bind: now)" }
        query += " ORDER BY first_seen DESC LIMIT \(bind: limit)"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map { row in
            MissingModule(debugFile: try row.decode(column: "debug_file", as: String.self), debugId: try row.decode(column: "debug_id", as: String.self),
                          codeFile: try row.decode(column: "code_file", as: String.self), codeId: try row.decode(column: "code_id", as: String.self),
                          checks: try row.decode(column: "checks", as: Int.self))
        }
    }

    public func rescheduleMissingModule(_ m: MissingModule, after delay: Duration) async throws {
        let next = clock() + delay.components.seconds * 1_000_000
        try await database.write { db in
            try await db.raw("""
                UPDATE missing_symbols SET next_check = \(bind: next), checks = checks + 1
                WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)
                """).run()
        }
    }

    /// The module has symbols now: forgets it and returns the crashes it affected that were
    /// processed since `since` (microseconds), at most `limit`.
    public func resolveMissingModule(_ m: MissingModule, since: Int64, limit: Int) async throws -> [String] {
        try await database.withTransaction { db in
            let rows = try await db.raw("""
                SELECT crash_id FROM missing_symbol_crashes WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)
                AND processed_at >= \(bind: since) ORDER BY processed_at DESC LIMIT \(bind: limit)
                """).all()
            try await db.raw("DELETE FROM missing_symbol_crashes WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)").run()
            try await db.raw("DELETE FROM missing_symbols WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)").run()
            return try rows.map { try $0.decode(column: "crash_id", as: String.self) }
        }
    }

    // MARK: - missing processed crashes

    /// Which of `ids` have a crash index row (the processor writes it last).
    public func indexedCrashIDs(_ ids: [String]) async throws -> Set<String> {
        var found = Set<String>()
        var start = 0
        while start < ids.count {
            let batch = Array(ids[start..<min(ids.count, start + 500)])
            start += batch.count
            let rows = try await database.withConnection { db in
                try await db.raw("SELECT crash_id FROM crashes WHERE crash_id IN (\(binds: batch))").all()
            }
            for row in rows { found.insert(try row.decode(column: "crash_id", as: String.self)) }
        }
        return found
    }

    /// Records crashes the republish job queued again (an id already recorded keeps its date).
    public func recordMissingProcessedCrashes(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        let now = clock()
        try await database.withTransaction { db in
            for id in ids {
                try await db.raw("""
                    INSERT INTO missing_processed_crashes (crash_id, created) VALUES (\(bind: id), \(bind: now)) ON CONFLICT (crash_id) DO NOTHING
                    """).run()
            }
        }
    }

    public struct MissingProcessedCrash: Sendable, Equatable {
        public var crashID: String
        public var isProcessed: Bool
        /// Microseconds since 1970.
        public var created: Int64
    }

    /// The recorded crashes, newest first, with whether each has been processed since; and
    /// how many there are in all.
    public func missingProcessedCrashes(limit: Int, offset: Int) async throws -> (rows: [MissingProcessedCrash], count: Int) {
        try await database.withConnection { db in
            let total = try await db.raw("SELECT COUNT(*) AS n FROM missing_processed_crashes").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await db.raw("""
                SELECT m.crash_id, m.created, CASE WHEN c.crash_id IS NULL THEN 0 ELSE 1 END AS processed
                FROM missing_processed_crashes m LEFT JOIN crashes c ON c.crash_id = m.crash_id
                ORDER BY m.created DESC, m.crash_id LIMIT \(bind: limit) OFFSET \(bind: offset)
                """).all()
            return (try rows.map { row in
                MissingProcessedCrash(crashID: try row.decode(column: "crash_id", as: String.self),
                                      isProcessed: try row.decode(column: "processed", as: Int.self) == 1,
                                      created: try row.decode(column: "created", as: Int64.self))
            }, total)
        }
    }

    // MARK: - processing claims

    /// Claims the processing of `crashID` for `lease` under `token`: true when no other run
    /// holds an unexpired claim.
    public func claimProcessing(_ crashID: String, token: String, lease: Duration) async throws -> Bool {
        let now = clock()
        let expires = now + max(1, lease.components.seconds) * 1_000_000
        return try await database.write { db in
            try await db.raw("""
                INSERT INTO processing_claims (crash_id, token, expires_at) VALUES (\(bind: crashID), \(bind: token), \(bind: expires))
                ON CONFLICT (crash_id) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
                WHERE processing_claims.expires_at < \(bind: now)
                RETURNING token
                """).first() != nil
        }
    }

    /// Gives a claim back (only the run holding it can).
    public func releaseProcessing(_ crashID: String, token: String) async throws {
        try await database.write { db in
            try await db.raw("DELETE FROM processing_claims WHERE crash_id = \(bind: crashID) AND token = \(bind: token)").run()
        }
    }
}
