import Foundation
import SQLKit

/// Who may see protected data, and the records an administrator reads: policy exceptions,
/// deactivation, the account overview, the filtered audit log, the protected-data users list.
extension MetadataStore {
    /// An audit-log entry for an action recorded nowhere else (an administrator's reprocess,
    /// deletion or requeue).
    public func recordAudit(actor: String, action: String, target: String, details: String) async throws {
        let now = clock()
        try await database.write { db in try await Self.audit(db, at: now, actor: actor, action: action, target: target, details: details) }
    }

    public struct PolicyException: Sendable, Equatable {
        public let accountID: Int64
        public let grantedBy: String
        public let grantedAt: Int64
        public let notes: String
        /// Microseconds; nil: no end.
        public let expiresAt: Int64?

        public func isLive(at now: Int64) -> Bool { expiresAt.map { $0 > now } ?? true }
    }

    /// Records (or replaces) an account's policy exception.
    public func setPolicyException(accountID: Int64, grantedBy: String, notes: String, expiresAt: Int64?) async throws {
        let now = clock()
        try await database.withTransaction { db in
            try await db.raw("DELETE FROM policy_exceptions WHERE account_id = \(bind: accountID)").run()
            try await db.raw("""
                INSERT INTO policy_exceptions (account_id, granted_by, granted_at, notes, expires_at)
                VALUES (\(bind: accountID), \(bind: grantedBy), \(bind: now), \(bind: notes), \(bind: expiresAt))
                """).run()
            try await Self.audit(db, at: now, actor: grantedBy, action: "exception-grant", target: "account:\(accountID)",
                                 details: (expiresAt.map { "until \($0 / 1_000_000) " } ?? "") + notes)
        }
    }

    /// Removes an account's policy exception; false when it had none.
    @discardableResult
    public func removePolicyException(accountID: Int64, actor: String) async throws -> Bool {
        let now = clock()
        return try await database.withTransaction { db in
            guard try await db.raw("DELETE FROM policy_exceptions WHERE account_id = \(bind: accountID) RETURNING account_id").first() != nil else {
                return false
            }
            try await Self.audit(db, at: now, actor: actor, action: "exception-remove", target: "account:\(accountID)", details: "")
            return true
        }
    }

    public func policyExceptions() async throws -> [Int64: PolicyException] {
        let rows = try await database.withConnection { db in
            try await db.raw("SELECT account_id, granted_by, granted_at, notes, expires_at FROM policy_exceptions").all()
        }
        var out: [Int64: PolicyException] = [:]
        for row in rows {
            let e = PolicyException(accountID: try row.decode(column: "account_id", as: Int64.self), grantedBy: try row.decode(column: "granted_by", as: String.self),
                                    grantedAt: try row.decode(column: "granted_at", as: Int64.self), notes: try row.decode(column: "notes", as: String.self),
                                    expiresAt: try row.decode(column: "expires_at", as: Int64?.self))
            out[e.accountID] = e
        }
        return out
    }

    /// Deactivates or reactivates an account; deactivation ends its sessions at once (its
    /// tokens are refused from then on: token checks read `is_active`). False: no such account.
    @discardableResult
    public func setActive(accountID: Int64, active: Bool, actor: String, reason: String = "") async throws -> Bool {
        let now = clock()
        return try await database.withTransaction { db in
            guard try await db.raw("UPDATE accounts SET is_active = \(bind: active ? 1 : 0) WHERE id = \(bind: accountID) RETURNING id").first() != nil else {
                return false
            }
            if !active { try await db.raw("DELETE FROM web_sessions WHERE account_id = \(bind: accountID)").run() }
            try await Self.audit(db, at: now, actor: actor, action: active ? "reactivate" : "deactivate", target: "account:\(accountID)", details: reason)
            return true
        }
    }

    /// Records the OpenID Connect subject an account signed in as.
    public func setOpenIDSubject(_ subject: String, accountID: Int64) async throws {
        try await database.write { db in
            try await db.raw("UPDATE accounts SET oidc_subject = \(bind: String(subject.prefix(255))) WHERE id = \(bind: accountID)").run()
        }
    }

    /// One account as the administration pages list it.
    public struct AccountOverview: Sendable {
        public let account: Account
        public let createdAt: Int64
        public let lastLogin: Int64?
        public let groups: [String]
        public let tokens: Int
        /// Tokens not yet expired.
        public let liveTokens: Int
        public let exception: PolicyException?
        /// The OpenID Connect subject the account last signed in as.
        public let openIDSubject: String?
    }

    /// Accounts whose email contains `search` (all when empty), by email, at most `limit`.
    public func accountOverviews(search: String = "", limit: Int = 200) async throws -> [AccountOverview] {
        let pattern = "%" + search.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        let ids = try await database.withConnection { db in
            try await db.raw("""
                SELECT id FROM accounts WHERE email LIKE \(bind: pattern) ESCAPE '\\' ORDER BY email LIMIT \(bind: max(1, min(limit, 1000)))
                """).all().map { try $0.decode(column: "id", as: Int64.self) }
        }
        let exceptions = try await policyExceptions()
        var out: [AccountOverview] = []
        for id in ids { if let o = try await accountOverview(id: id, exceptions: exceptions) { out.append(o) } }
        return out
    }

    /// The accounts in any of `groups`, by email (the audit reads every member, however many).
    public func memberOverviews(of groups: [String]) async throws -> [AccountOverview] {
        guard !groups.isEmpty else { return [] }
        let ids = try await database.withConnection { db in
            try await db.raw("""
                SELECT DISTINCT a.id, a.email FROM accounts a JOIN account_groups ag ON ag.account_id = a.id
                JOIN permission_groups g ON g.id = ag.group_id WHERE g.name IN (\(binds: groups)) ORDER BY a.email
                """).all().map { try $0.decode(column: "id", as: Int64.self) }
        }
        let exceptions = try await policyExceptions()
        var out: [AccountOverview] = []
        for id in ids { if let o = try await accountOverview(id: id, exceptions: exceptions) { out.append(o) } }
        return out
    }

    public func accountOverview(id: Int64, exceptions: [Int64: PolicyException]? = nil) async throws -> AccountOverview? {
        let now = clock()
        guard let account = try await account(id: id) else { return nil }
        let (times, groups, tokenExpiries) = try await database.withConnection { db in
            (try await db.raw("SELECT created_at, last_login, oidc_subject FROM accounts WHERE id = \(bind: id)").first(),
             try await db.raw("""
                SELECT g.name FROM account_groups ag JOIN permission_groups g ON g.id = ag.group_id WHERE ag.account_id = \(bind: id) ORDER BY g.name
                """).all().map { try $0.decode(column: "name", as: String.self) },
             try await db.raw("SELECT expires_at FROM api_tokens WHERE account_id = \(bind: id)").all().map { try $0.decode(column: "expires_at", as: Int64.self) })
        }
        guard let times else { return nil }
        let exception: PolicyException?
        if let exceptions { exception = exceptions[id] } else { exception = try await policyExceptions()[id] }
        return AccountOverview(account: account, createdAt: try times.decode(column: "created_at", as: Int64.self),
                               lastLogin: try times.decode(column: "last_login", as: Int64?.self), groups: groups, tokens: tokenExpiries.count,
                               liveTokens: tokenExpiries.filter { $0 > now }.count, exception: exception,
                               openIDSubject: try times.decode(column: "oidc_subject", as: String?.self))
    }

    /// The audit log, newest first, narrowed by actor, target and action (exact) and a time range.
    public func auditLog(actor: String?, target: String?, action: String?, from: Int64?, to: Int64?, limit: Int = 200) async throws -> [AuditEntry] {
        var query: SQLQueryString = "SELECT at, actor, action, target, details FROM audit_log WHERE 1 = 1"
        if let actor, !actor.isEmpty { query += " AND actor = \(bind: actor)" }
        if let target, !target.isEmpty { query += " AND target = \(bind: target)" }
        if let action, !action.isEmpty { query += " AND action = \(bind: action)" }
        if let from { query += " AND at >= \(bind: from)" }
        if let to { query += " AND at < \(bind: to)" }
        query += " ORDER BY id DESC LIMIT \(bind: max(1, min(limit, 1000)))"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map { row in
            AuditEntry(at: try row.decode(column: "at", as: Int64.self), actor: try row.decode(column: "actor", as: String.self),
                       action: try row.decode(column: "action", as: String.self), target: try row.decode(column: "target", as: String.self),
                       details: try row.decode(column: "details", as: String.self))
        }
    }

    /// Emails of the active members of `groups` (the protected-data users list), sorted.
    public func activeMembers(of groups: [String]) async throws -> [String] {
        guard !groups.isEmpty else { return [] }
        return try await database.withConnection { db in
            try await db.raw("""
                SELECT DISTINCT a.email FROM accounts a JOIN account_groups ag ON ag.account_id = a.id
                JOIN permission_groups g ON g.id = ag.group_id WHERE a.is_active = 1 AND g.name IN (\(binds: groups)) ORDER BY a.email
                """).all().map { try $0.decode(column: "email", as: String.self) }
        }
    }

    /// Row counts of the main tables (the site status page).
    public func tableCounts() async throws -> [(table: String, rows: Int64)] {
        let tables = ["crashes", "accounts", "api_tokens", "permission_groups", "web_sessions", "symbol_uploads", "symbol_files",
                      "missing_symbols", "bug_associations", "audit_log", "job_runs", "queue_messages", "dead_letters"]
        return try await database.withConnection { db in
            var out: [(String, Int64)] = []
            for table in tables {
                // A table a migration has not made yet counts as absent, not as an error.
                guard let n = try? await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first()?.decode(column: "n", as: Int64.self) else { continue }
                out.append((table, n))
            }
            return out
        }
    }

    /// The migrations applied, newest first.
    public func appliedMigrations() async throws -> [(version: Int, name: String, appliedAt: Int64)] {
        try await database.withConnection { db in
            try await db.raw("SELECT version, name, applied_at FROM schema_migrations ORDER BY version DESC").all().map {
                (try $0.decode(column: "version", as: Int.self), try $0.decode(column: "name", as: String.self), try $0.decode(column: "applied_at", as: Int64.self))
            }
        }
    }

    // MARK: - scheduled job runs

    public struct JobRun: Sendable, Equatable {
        public let id: Int64
        public let job: String
        public let startedAt: Int64
        public let finishedAt: Int64?
        /// nil while running (or when the process died during the run).
        public let ok: Bool?
        public let summary: String
    }

    /// Records the start of a run; returns its id for `finishJobRun`.
    public func startJobRun(_ job: String) async throws -> Int64 {
        let now = clock()
        return try await database.write { db in
            try await db.raw("INSERT INTO job_runs (job, started_at) VALUES (\(bind: job), \(bind: now)) RETURNING id").first()!.decode(column: "id", as: Int64.self)
        }
    }

    /// Records how a run ended, and keeps the job's latest 200 runs.
    public func finishJobRun(_ id: Int64, ok: Bool, summary: String) async throws {
        let now = clock()
        try await database.write { db in
            try await db.raw("UPDATE job_runs SET finished_at = \(bind: now), ok = \(bind: ok ? 1 : 0), summary = \(bind: String(summary.prefix(2000))) WHERE id = \(bind: id)").run()
            guard let job = try await db.raw("SELECT job FROM job_runs WHERE id = \(bind: id)").first()?.decode(column: "job", as: String.self),
                  let oldest = try await db.raw("SELECT id FROM job_runs WHERE job = \(bind: job) ORDER BY id DESC LIMIT 1 OFFSET 199").first()?
                    .decode(column: "id", as: Int64.self) else { return }
            try await db.raw("DELETE FROM job_runs WHERE job = \(bind: job) AND id < \(bind: oldest)").run()
        }
    }

    /// The latest runs of `job` (of every job when nil), newest first.
    public func jobRuns(_ job: String? = nil, limit: Int = 50) async throws -> [JobRun] {
        var query: SQLQueryString = "SELECT id, job, started_at, finished_at, ok, summary FROM job_runs"
        if let job { query += " WHERE job = \(bind: job)" }
        query += " ORDER BY id DESC LIMIT \(bind: max(1, min(limit, 1000)))"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map { row in
            JobRun(id: try row.decode(column: "id", as: Int64.self), job: try row.decode(column: "job", as: String.self),
                   startedAt: try row.decode(column: "started_at", as: Int64.self), finishedAt: try row.decode(column: "finished_at", as: Int64?.self),
                   ok: try row.decode(column: "ok", as: Int?.self).map { $0 != 0 }, summary: try row.decode(column: "summary", as: String.self))
        }
    }

    /// When `job` last succeeded (microseconds), nil when it never did.
    public func lastSuccess(of job: String) async throws -> Int64? {
        try await database.withConnection { db in
            try await db.raw("SELECT MAX(started_at) AS t FROM job_runs WHERE job = \(bind: job) AND ok = 1").first()?.decode(column: "t", as: Int64?.self)
        }
    }
}
