import CrashModel
import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import ServiceSupport
import Storage

/// What the administration pages need beyond the API: the process's health checks, the crash
/// deletion of the retention job, and which groups hold protected data.
public struct SiteAdminHooks: Sendable {
    public var healthChecks: [HealthCheck]
    public var deleteCrash: (@Sendable (String) async throws -> (files: Int, rows: Int))?
    public var protectedGroups: [String]

    public init(healthChecks: [HealthCheck] = [], deleteCrash: (@Sendable (String) async throws -> (files: Int, rows: Int))? = nil,
                protectedGroups: [String] = ["Hackers", "Hackers Plus"]) {
        self.healthChecks = healthChecks
        self.deleteCrash = deleteCrash
        self.protectedGroups = protectedGroups
    }
}

/// `/siteadmin/`: the pages that run the site, for superusers only (everyone else gets 403 on
/// every route). Every change is a CSRF-checked POST and an audit-log entry by the administrator.
extension CrashStatsWeb {
    static func time(_ micros: Int64?) -> String {
        micros.map { String(ISOTime.string(Double($0) / 1_000_000, fraction: false).prefix(19)).replacingOccurrences(of: "T", with: " ") } ?? ""
    }

    static func mountSiteAdmin(_ web: CrashStatsWeb, get: (String, @escaping @Sendable (Request, ServiceRequestContext) async -> Response) -> Void,
                               post: (String, @escaping @Sendable (Request, ServiceRequestContext) async -> Response) -> Void) {
        func page(_ path: String, _ handler: @escaping @Sendable (CrashStatsWeb, Request, Visitor, Account, ServiceRequestContext) async -> Response) {
            get(path) { request, context in
                let visitor = await web.visitor(request)
                guard let admin = visitor.account, admin.isSuperuser else { return web.adminRefusal(visitor) }
                return await handler(web, request, visitor, admin, context)
            }
        }
        func action(_ path: String, _ handler: @escaping @Sendable (CrashStatsWeb, [String: String], Account, ServiceRequestContext) async -> Response) {
            post(path) { request, context in
                let visitor = await web.visitor(request)
                guard let admin = visitor.account, admin.isSuperuser else { return web.adminRefusal(visitor) }
                let fields = await Self.form(request)
                guard Self.tokensMatch(fields["csrf_token"], visitor.csrf) else {
                    return web.errorPage(.forbidden, "Forbidden", "The form expired; reload the page and try again.")
                }
                return await handler(web, fields, admin, context)
            }
        }
        page("/siteadmin") { web, _, visitor, _, _ in await web.siteStatus(visitor) }
        page("/siteadmin/users") { web, request, visitor, _, _ in await web.adminUsers(request, visitor) }
        page("/siteadmin/users/:id") { web, _, visitor, _, context in await web.adminUser(context.parameters.get("id") ?? "", visitor) }
        page("/siteadmin/groups") { web, _, visitor, _, _ in await web.adminGroups(visitor) }
        page("/siteadmin/tokens") { web, _, visitor, _, _ in await web.adminTokens(visitor) }
        page("/siteadmin/uploads") { web, request, visitor, _, _ in await web.adminUploads(request, visitor) }
        page("/siteadmin/crashes") { web, request, visitor, _, _ in await web.adminCrashes(request, visitor) }
        page("/siteadmin/auditlog") { web, request, visitor, _, _ in await web.adminAuditLog(request, visitor) }
        page("/siteadmin/protected-users") { web, _, visitor, _, _ in await web.adminProtectedUsers(visitor) }
        action("/siteadmin/users/:id/groups") { web, fields, admin, context in
            await web.changeMembership(context.parameters.get("id") ?? "", fields, admin)
        }
        action("/siteadmin/users/:id/active") { web, fields, admin, context in
            await web.changeActive(context.parameters.get("id") ?? "", fields, admin)
        }
        action("/siteadmin/users/:id/exception") { web, fields, admin, context in
            await web.changeException(context.parameters.get("id") ?? "", fields, admin)
        }
        action("/siteadmin/groups") { web, fields, admin, _ in await web.setGroup(fields, admin) }
        action("/siteadmin/tokens/:id/revoke") { web, _, admin, context in
            guard let id = context.parameters.get("id").flatMap(Int64.init), (try? await web.api.metadata.deleteToken(id: id, actor: admin.email)) == true else {
                return web.errorPage(.notFound, "Not found", "There is no such token.")
            }
            return Self.redirect("/siteadmin/tokens/")
        }
        action("/siteadmin/crashes/:id/reprocess") { web, _, admin, context in await web.adminReprocess(context.parameters.get("id") ?? "", admin) }
        action("/siteadmin/crashes/:id/delete") { web, _, admin, context in await web.adminDelete(context.parameters.get("id") ?? "", admin) }
        action("/siteadmin/deadletters/:id/requeue") { web, _, admin, context in
            guard let id = context.parameters.get("id").flatMap(Int64.init), (try? await web.api.queue.requeue(deadLetter: id)) == true else {
                return web.errorPage(.notFound, "Not found", "There is no such dead letter.")
            }
            try? await web.api.metadata.recordAudit(actor: admin.email, action: "deadletter-requeue", target: "deadletter:\(id)", details: "")
            return Self.redirect("/siteadmin/#queues")
        }
    }

    func adminRefusal(_ visitor: Visitor) -> Response {
        errorPage(.forbidden, "Forbidden", visitor.account == nil
                  ? "The site administration is for superusers; sign in first."
                  : "The site administration is for superusers.")
    }

    func adminPage(_ template: String, _ title: String, _ values: [String: Any], _ visitor: Visitor, status: HTTPResponse.Status = .ok) -> Response {
        var context = values
        context["title"] = "Site administration: \(title)"
        context["heading"] = title
        context["csrf"] = visitor.csrf ?? ""
        return page(status, template, context, visitor: visitor)
    }

    // MARK: - site status

    func siteStatus(_ visitor: Visitor) async -> Response {
        let m = api.metadata
        let health = await HealthCheck.report(admin.healthChecks)
        let checks = (health.body["checks"].flatMap { if case .object(let p) = $0 { p } else { nil } } ?? []).map { name, status in
            ["name": name, "ok": status.stringValue == "ok", "message": health.failures.first { $0.name == name }?.message ?? ""]
        }
        let counts = (try? await api.queue.counts()) ?? [:]
        let queues = QueueName.allCases.map { q -> [String: Any] in
            let c = counts[q] ?? .init()
            return ["name": q.rawValue, "ready": c.ready, "leased": c.leased, "dead": c.deadLetters]
        }
        let deadLetters = ((try? await api.queue.deadLetters(limit: 50)) ?? []).map { d -> [String: Any] in
            ["id": d.id, "queue": d.queue.rawValue, "crashID": d.item.crashID, "attempts": d.attempts, "error": d.lastError ?? "", "failedAt": Self.time(d.failedAt)]
        }
        // The latest run of every job any process recorded, failures first.
        var latest: [String: MetadataStore.JobRun] = [:]
        for run in (try? await m.jobRuns(limit: 500)) ?? [] where latest[run.job] == nil { latest[run.job] = run }
        var jobs: [[String: Any]] = []
        for (name, run) in latest.sorted(by: { ($0.value.ok == false ? 0 : 1, $0.key) < ($1.value.ok == false ? 0 : 1, $1.key) }) {
            let success = try? await m.lastSuccess(of: name)
            jobs.append(["name": name, "started": Self.time(run.startedAt), "finished": Self.time(run.finishedAt),
                         "result": run.ok.map { $0 ? "ok" : "failed" } ?? "running", "failed": run.ok == false,
                         "summary": run.summary, "lastSuccess": Self.time(success ?? nil)])
        }
        let migrations = ((try? await m.appliedMigrations()) ?? []).map { ["version": $0.version, "name": $0.name, "applied": Self.time($0.appliedAt)] }
        let tables = ((try? await m.tableCounts()) ?? []).map { ["table": $0.table, "rows": $0.rows] }
        let version = JSONValue.parse(Data(HTTPService.versionDocument(service: "webapp").utf8))
        return adminPage("siteadmin_status", "Site status", [
            "version": version?["version"]?.stringValue ?? "", "commit": version?["commit"]?.stringValue ?? "",
            "database": api.metadata.database.kind == .sqlite ? "SQLite" : "PostgreSQL", "blobs": api.blobs.description,
            "healthy": health.ok, "checks": checks, "queues": queues, "deadLetters": deadLetters, "hasDeadLetters": !deadLetters.isEmpty,
            "jobs": jobs, "hasJobs": !jobs.isEmpty, "migrations": migrations, "tables": tables,
        ], visitor)
    }

    // MARK: - users, groups, tokens

    func userRow(_ o: MetadataStore.AccountOverview, now: Int64) -> [String: Any] {
        ["id": o.account.id, "email": o.account.email, "name": o.account.name, "active": o.account.isActive, "superuser": o.account.isSuperuser,
         "groups": o.groups.joined(separator: ", "), "lastLogin": Self.time(o.lastLogin), "created": Self.time(o.createdAt),
         "tokens": o.tokens, "liveTokens": o.liveTokens,
         "exception": o.exception.map { e in (e.isLive(at: now) ? "yes" : "expired") + (e.expiresAt.map { " (until \(Self.time($0)))" } ?? "") } ?? ""]
    }

    func adminUsers(_ request: Request, _ visitor: Visitor) async -> Response {
        let search = String((FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "q" }?.1 ?? "").prefix(200))
        let now = api.metadata.now
        let users = ((try? await api.metadata.accountOverviews(search: search, limit: 200)) ?? []).map { userRow($0, now: now) }
        return adminPage("siteadmin_users", "Users", ["q": search, "users": users, "count": users.count], visitor)
    }

    func adminUser(_ raw: String, _ visitor: Visitor, notice: String? = nil) async -> Response {
        guard let id = Int64(raw), let o = try? await api.metadata.accountOverview(id: id) else {
            return errorPage(.notFound, "Not found", "There is no such user.")
        }
        let now = api.metadata.now
        let groups = ((try? await api.metadata.groups()) ?? []).map { g in ["name": g.name, "member": o.groups.contains(g.name)] }
        let tokens = ((try? await api.metadata.tokens(accountID: id)) ?? []).map { t -> [String: Any] in
            ["id": t.id, "prefix": t.prefix, "permissions": t.permissions.sorted().joined(separator: ", "), "expires": Self.time(t.expiresAt),
             "expired": t.expiresAt <= now, "notes": t.notes]
        }
        let log = ((try? await api.metadata.auditLog(actor: nil, target: "account:\(id)", action: nil, from: nil, to: nil, limit: 50)) ?? []).map(auditRow)
        var values = userRow(o, now: now)
        values["permissions"] = o.account.permissions.sorted().joined(separator: ", ")
        values["groupChoices"] = groups
        values["userTokens"] = tokens
        values["log"] = log
        values["notice"] = notice ?? ""
        values["exceptionNotes"] = o.exception?.notes ?? ""
        values["exceptionBy"] = o.exception?.grantedBy ?? ""
        values["hasException"] = o.exception != nil
        return adminPage("siteadmin_user", o.account.email, values, visitor)
    }

    func changeMembership(_ raw: String, _ fields: [String: String], _ admin: Account) async -> Response {
        guard let id = Int64(raw), let group = fields["group"], (try? await api.metadata.account(id: id)) != nil,
              let changed = try? await api.metadata.setMembership(accountID: id, group: group, member: fields["member"] == "1", actor: admin.email),
              changed else {
            return errorPage(.notFound, "Not found", "There is no such user or group.")
        }
        return Self.redirect("/siteadmin/users/\(id)/")
    }

    func changeActive(_ raw: String, _ fields: [String: String], _ admin: Account) async -> Response {
        guard let id = Int64(raw), id != admin.id || fields["active"] == "1" else {
            return errorPage(.badRequest, "Not allowed", "You cannot deactivate your own account here.")
        }
        let reason = String((fields["reason"] ?? "").prefix(500))
        guard (try? await api.metadata.setActive(accountID: id, active: fields["active"] == "1", actor: admin.email, reason: reason)) == true else {
            return errorPage(.notFound, "Not found", "There is no such user.")
        }
        return Self.redirect("/siteadmin/users/\(id)/")
    }

    func changeException(_ raw: String, _ fields: [String: String], _ admin: Account) async -> Response {
        guard let id = Int64(raw), (try? await api.metadata.account(id: id)) != nil else { return errorPage(.notFound, "Not found", "There is no such user.") }
        if fields["remove"] == "1" {
            _ = try? await api.metadata.removePolicyException(accountID: id, actor: admin.email)
        } else {
            let days = (fields["days"] ?? "").isEmpty ? nil : Int(fields["days"] ?? "")
            if let days, !(1...36_500).contains(days) { return errorPage(.badRequest, "Bad request", "Days are 1 to 36500, or empty for no end.") }
            if days == nil, !(fields["days"] ?? "").isEmpty { return errorPage(.badRequest, "Bad request", "Days are a whole number.") }
            let expires = days.map { api.metadata.now + Int64($0) * 86_400 * 1_000_000 }
            do {
                try await api.metadata.setPolicyException(accountID: id, grantedBy: admin.email, notes: String((fields["notes"] ?? "").prefix(1000)), expiresAt: expires)
            } catch {
                return errorPage(.internalServerError, "Error", "The exception could not be recorded.")
            }
        }
        return Self.redirect("/siteadmin/users/\(id)/")
    }

    func adminGroups(_ visitor: Visitor, status: HTTPResponse.Status = .ok, error: String? = nil) async -> Response {
        let groups = ((try? await api.metadata.groups()) ?? []).map { g -> [String: Any] in
            ["name": g.name, "members": g.members.count, "protected": admin.protectedGroups.contains(g.name),
             "choices": PermissionCatalog.all.map { ["codename": $0.codename, "name": $0.name, "held": g.permissions.contains($0.codename)] }]
        }
        return adminPage("siteadmin_groups", "Groups", ["groups": groups, "error": error ?? "",
                                                        "permissionChoices": PermissionCatalog.all.map { ["codename": $0.codename, "name": $0.name] }],
                         visitor, status: status)
    }

    /// Creates a group or replaces its permissions (checkboxes `perm_<codename>`); members of a
    /// group losing a permission lose it on their tokens at once.
    func setGroup(_ fields: [String: String], _ admin: Account) async -> Response {
        let name = (fields["name"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.utf8.count <= 80, name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            return errorPage(.badRequest, "Bad request", "A group name has 1 to 80 printable characters.")
        }
        let permissions = Set(PermissionCatalog.all.map(\.codename).filter { fields["perm_\($0)"] == "1" })
        do {
            try await api.metadata.setGroup(name, permissions: permissions, actor: admin.email)
        } catch {
            return errorPage(.internalServerError, "Error", "The group could not be saved.")
        }
        return Self.redirect("/siteadmin/groups/")
    }

    func adminTokens(_ visitor: Visitor) async -> Response {
        let now = api.metadata.now
        let owners = Dictionary(((try? await api.metadata.accounts()) ?? []).map { ($0.id, $0.email) }, uniquingKeysWith: { a, _ in a })
        let tokens = ((try? await api.metadata.tokens()) ?? []).sorted { $0.id > $1.id }.prefix(1000).map { t -> [String: Any] in
            ["id": t.id, "prefix": t.prefix, "owner": owners[t.accountID] ?? "?", "ownerID": t.accountID,
             "permissions": t.permissions.sorted().joined(separator: ", "), "expires": Self.time(t.expiresAt), "expired": t.expiresAt <= now, "notes": t.notes]
        }
        return adminPage("siteadmin_tokens", "API tokens", ["tokens": Array(tokens)], visitor)
    }

    // MARK: - uploads, crashes, audit log, protected users

    func adminUploads(_ request: Request, _ visitor: Visitor) async -> Response {
        let q = FormEncoding.parse(request.uri.query ?? "")
        func value(_ name: String) -> String { String((q.first { $0.0 == name }?.1 ?? "").prefix(200)) }
        let user = value("user"), size = value("size"), key = value("key")
        let days = Int(value("days")).map { min(max($0, 1), 3650) }
        var created: [RecordFilter] = []
        if let days { created.append(RecordFilter.parse(">=" + String(api.metadata.now - Int64(days) * 86_400 * 1_000_000))) }
        let uploads = (try? await api.metadata.symbolUploads(user: user.isEmpty ? nil : RecordFilter.parse(user), size: size.isEmpty ? [] : [RecordFilter.parse(size)],
                                                              createdAt: created, limit: 100))
        let files = (try? await api.metadata.symbolFiles(keyContains: key.isEmpty ? [] : [RecordFilter.parse(key)], limit: 100))
        return adminPage("siteadmin_uploads", "Symbol uploads", [
            "user": user, "size": size, "days": days.map(String.init) ?? "", "key": key, "totalUploads": uploads?.total ?? 0, "totalFiles": files?.total ?? 0,
            "uploads": (uploads?.records ?? []).map { u -> [String: Any] in
                ["id": u.id, "user": u.user ?? "", "filename": u.filename, "size": u.size, "try": u.isTry, "files": u.files.count,
                 "skipped": u.skippedKeys.count, "created": Self.time(u.createdAt), "completed": Self.time(u.completedAt)]
            },
            "files": (files?.records ?? []).map { f -> [String: Any] in
                ["key": f.key, "size": f.size, "try": f.isTry, "debugId": f.debugId ?? "", "codeId": f.codeId ?? "", "created": Self.time(f.createdAt)]
            },
        ], visitor)
    }

    func adminCrashes(_ request: Request, _ visitor: Visitor, notice: String? = nil) async -> Response {
        let raw = (FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "id" }?.1 ?? "").trimmingCharacters(in: .whitespaces)
        var values: [String: Any] = ["id": raw, "notice": notice ?? ""]
        if !raw.isEmpty {
            let id = CrashID.normalize(raw)
            guard CrashID.isValid(id) else {
                values["error"] = "That is not a crash id."
                return adminPage("siteadmin_crashes", "Crashes", values, visitor, status: .badRequest)
            }
            let raw = (try? await api.blobs.size(BlobKeys.rawCrash(id))) ?? nil
            let processed = (try? await api.blobs.size(BlobKeys.processedCrash(id))) ?? nil
            let row = (try? await api.metadata.crash(id)) ?? nil
            values["crash"] = ["uuid": id, "raw": raw.map { "\($0) bytes" } ?? "missing", "processed": processed.map { "\($0) bytes" } ?? "not processed",
                               "indexed": Self.time(row?.dateProcessed), "signature": row?.signature ?? "",
                               "exists": raw != nil || processed != nil]
        }
        return adminPage("siteadmin_crashes", "Crashes", values, visitor)
    }

    func adminReprocess(_ raw: String, _ admin: Account) async -> Response {
        let id = CrashID.normalize(raw)
        guard CrashID.isValid(id), (try? await api.blobs.size(BlobKeys.rawCrash(id))) != nil else {
            return errorPage(.notFound, "Not found", "There is no such crash.")
        }
        do {
            try await api.queue.enqueue([QueueItem(crashID: id)], queue: .reprocessing)
            try await api.metadata.recordAudit(actor: admin.email, action: "crash-reprocess", target: "crash:\(id)", details: "")
        } catch {
            return errorPage(.internalServerError, "Error", "The crash could not be queued.")
        }
        return Self.redirect("/siteadmin/crashes/?id=\(id)")
    }

    func adminDelete(_ raw: String, _ admin: Account) async -> Response {
        let id = CrashID.normalize(raw)
        guard CrashID.isValid(id) else { return errorPage(.notFound, "Not found", "That is not a crash id.") }
        guard let delete = self.admin.deleteCrash else { return errorPage(.notImplemented, "Not available", "This process cannot delete crashes.") }
        do {
            let (files, rows) = try await delete(id)
            guard files + rows > 0 else { return errorPage(.notFound, "Not found", "There is no such crash.") }
            try await api.metadata.recordAudit(actor: admin.email, action: "crash-delete", target: "crash:\(id)", details: "\(files) files, \(rows) rows")
        } catch {
            logger.error("crash deletion failed", metadata: ["crash_id": "\(id)", "error": "\(error)"])
            return errorPage(.internalServerError, "Error", "The crash could not be deleted completely; try again.")
        }
        return Self.redirect("/siteadmin/crashes/?id=\(id)")
    }

    func auditRow(_ e: MetadataStore.AuditEntry) -> [String: Any] {
        ["at": Self.time(e.at), "actor": e.actor, "action": e.action, "target": e.target, "details": e.details]
    }

    func adminAuditLog(_ request: Request, _ visitor: Visitor) async -> Response {
        let q = FormEncoding.parse(request.uri.query ?? "")
        func value(_ name: String) -> String { String((q.first { $0.0 == name }?.1 ?? "").prefix(200)) }
        let date = value("date")
        var from: Int64?, to: Int64?
        if !date.isEmpty {
            guard let start = ISOTime.parse(date + "T00:00:00Z") else {
                return adminPage("siteadmin_auditlog", "Audit log", ["error": "The date is YYYY-MM-DD."], visitor, status: .badRequest)
            }
            from = Int64(start * 1_000_000)
            to = from! + 86_400 * 1_000_000
        }
        let entries = ((try? await api.metadata.auditLog(actor: value("actor"), target: value("target"), action: value("action"), from: from, to: to,
                                                          limit: 500)) ?? []).map(auditRow)
        return adminPage("siteadmin_auditlog", "Audit log", ["actor": value("actor"), "target": value("target"), "action": value("action"),
                                                              "date": date, "entries": entries, "count": entries.count], visitor)
    }

    func adminProtectedUsers(_ visitor: Visitor) async -> Response {
        let emails = (try? await api.metadata.activeMembers(of: admin.protectedGroups)) ?? []
        return adminPage("siteadmin_protected", "Protected-data users", ["emails": emails, "count": emails.count,
                                                                         "groups": admin.protectedGroups.joined(separator: ", ")], visitor)
    }
}
