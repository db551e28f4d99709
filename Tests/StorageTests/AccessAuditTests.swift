import Foundation
import Storage
import Testing
import TestSupport

/// The protected-data audit on both backends, with the store's clock moved by hand: every rule
/// that removes a member, every case that keeps one, the dry run, the audit log, and tokens
/// losing the permissions at once.
@Suite struct AccessAuditTests {
    static let day: Int64 = 86_400

    @Test(arguments: Backend.allCases)
    func everyRuleRemovesAndEveryExceptionKeeps(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        let m = f.metadata
        try await m.setGroup("Hackers", permissions: ["view_pii", "view_rawdump", "reprocess_crashes", "run_long_queries"])
        try await m.setGroup("Hackers Plus", permissions: ["view_pii", "view_rawdump", "reprocess_crashes", "run_long_queries", "run_custom_queries"])
        try await m.setGroup("Staff", permissions: ["reprocess_crashes"])
        var ids: [String: Int64] = [:]
        for email in ["inactive@example.com", "outsider@other.org", "partner@other.org", "lapsed@other.org", "dormant@example.com",
                      "tokened@example.com", "fresh@example.com", "never@example.com", "staff@other.org"] {
            let a = try await m.createAccount(email: email)
            ids[email] = a.id
            try await m.setMembership(accountID: a.id, group: email.hasPrefix("staff") ? "Staff" : "Hackers", member: true)
        }
        try await m.setMembership(accountID: ids["outsider@other.org"]!, group: "Hackers Plus", member: true)
        // Sign-ins now (366 days before the audit), exceptions, tokens.
        for email in ["outsider@other.org", "partner@other.org", "lapsed@other.org", "dormant@example.com", "tokened@example.com", "fresh@example.com"] {
            _ = try await m.createSession(accountID: ids[email]!)
        }
        try await m.setPolicyException(accountID: ids["partner@other.org"]!, grantedBy: "admin@example.com", notes: "contractor", expiresAt: nil)
        try await m.setPolicyException(accountID: ids["lapsed@other.org"]!, grantedBy: "admin@example.com", notes: "short visit",
                                       expiresAt: m.now + 10 * Self.day * 1_000_000)
        _ = try await m.createToken(accountID: ids["tokened@example.com"]!, permissions: ["view_pii"], lifetime: .seconds(800 * Self.day))
        let (outsiderToken, _) = try await m.createToken(accountID: ids["outsider@other.org"]!, permissions: ["view_pii"], lifetime: .seconds(800 * Self.day))
        try await m.setActive(accountID: ids["inactive@example.com"]!, active: false, actor: "admin@example.com", reason: "left")

        f.clock.advance(seconds: 366 * Self.day)
        _ = try await m.createSession(accountID: ids["fresh@example.com"]!)
        // The partner and the lapsed visitor signed in lately: only their exceptions decide.
        _ = try await m.createSession(accountID: ids["partner@other.org"]!)
        _ = try await m.createSession(accountID: ids["lapsed@other.org"]!)
        #expect(try await m.authenticate(token: outsiderToken)?.1.permissions.contains("view_pii") == true)

        let audit = AccessAudit(metadata: m, settings: .init(employeeDomains: ["example.com"], inactiveDays: 365))
        let expected: Set<String> = [
            "inactive@example.com Hackers: the account is inactive",
            "outsider@other.org Hackers: other.org is not an employee domain and there is no policy exception",
            "outsider@other.org Hackers Plus: other.org is not an employee domain and there is no policy exception",
            "lapsed@other.org Hackers: other.org is not an employee domain and the policy exception has expired",
            "dormant@example.com Hackers: last sign-in more than 365 days ago and no unexpired API token",
            "never@example.com Hackers: never signed in in 365 days and no unexpired API token",
        ]
        func described(_ removals: [AccessAudit.Removal]) -> Set<String> { Set(removals.map { "\($0.email) \($0.group): \($0.reason)" }) }

        // The dry run reports and changes nothing.
        let before = try await m.groups()
        let logBefore = try await m.auditLog(limit: 1000).count
        #expect(described(try await audit.run(dryRun: true)) == expected)
        #expect(try await m.groups() == before)
        #expect(try await m.auditLog(limit: 1000).count == logBefore)
        #expect(try await m.authenticate(token: outsiderToken)?.1.permissions.contains("view_pii") == true)

        // The real run removes exactly those, logs each by auditgroups, and the outsider's token
        // loses view_pii at once.
        #expect(described(try await audit.run(dryRun: false)) == expected)
        let hackers = try #require(try await m.groups().first { $0.name == "Hackers" })
        #expect(Set(hackers.members) == ["partner@other.org", "tokened@example.com", "fresh@example.com"])
        #expect(try await m.groups().first { $0.name == "Hackers Plus" }?.members == [])
        #expect(try await m.groups().first { $0.name == "Staff" }?.members == ["staff@other.org"], "other groups are not audited")
        let entries = try await m.auditLog(actor: AccessAudit.actor, target: nil, action: "group-remove", from: nil, to: nil)
        #expect(entries.count == expected.count)
        #expect(entries.contains { $0.target == "account:\(ids["dormant@example.com"]!)" && $0.details == "Hackers: last sign-in more than 365 days ago and no unexpired API token" })
        #expect(try await m.authenticate(token: outsiderToken)?.1.permissions.contains("view_pii") == false)
        // Nothing left to do.
        #expect(try await audit.run(dryRun: false).isEmpty)
        // Without employee domains the domain rule is off.
        try await m.setMembership(accountID: ids["outsider@other.org"]!, group: "Hackers", member: true)
        #expect(try await AccessAudit(metadata: m, settings: .init()).run(dryRun: true).isEmpty)
        await f.close()
    }

    @Test func usersTheIssuerDisabledAreDeactivated() async throws {
        let f = try await StorageFixture.make(.embedded)
        let m = f.metadata
        try await m.setGroup("Hackers", permissions: ["view_pii"])
        var ids: [String: Int64] = [:]
        for (email, subject) in [("gone@example.com", "sub-disabled"), ("here@example.com", "sub-enabled"), ("unsure@example.com", "sub-error"),
                                 ("local@example.com", nil)] as [(String, String?)] {
            let a = try await m.createAccount(email: email)
            ids[email] = a.id
            try await m.setMembership(accountID: a.id, group: "Hackers", member: true)
            _ = try await m.createSession(accountID: a.id)
            if let subject { try await m.setOpenIDSubject(subject, accountID: a.id) }
        }
        struct Unreachable: Error {}
        let audit = AccessAudit(metadata: m, settings: .init(), issuerDisabled: { subject in
            switch subject {
            case "sub-disabled": return true
            case "sub-enabled": return false
            default: throw Unreachable()
            }
        })
        let dry = try await audit.run(dryRun: true)
        #expect(dry.map(\.email) == ["gone@example.com"] && dry.first?.reason == "the identity provider reports the account disabled")
        #expect(try await m.account(id: ids["gone@example.com"]!)?.isActive == true, "a dry run deactivates nobody")
        #expect(try await audit.run(dryRun: false).map(\.email) == ["gone@example.com"])
        #expect(try await m.account(id: ids["gone@example.com"]!)?.isActive == false)
        #expect(try await m.groups().first?.members == ["here@example.com", "local@example.com", "unsure@example.com"],
                "an issuer that cannot answer changes nothing")
        let log = try await m.auditLog(actor: AccessAudit.actor, target: "account:\(ids["gone@example.com"]!)", action: nil, from: nil, to: nil)
        #expect(Set(log.map(\.action)) == ["deactivate", "group-remove"])
        await f.close()
    }

    @Test(arguments: Backend.allCases)
    func deactivationEndsSessionsAndTokensAtOnce(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        let m = f.metadata
        let a = try await m.createAccount(email: "leaver@example.com")
        try await m.grant("view_pii", to: a.id)
        let (session, _) = try await m.createSession(accountID: a.id)
        let (token, _) = try await m.createToken(accountID: a.id, permissions: ["view_pii"])
        #expect(try await m.session(token: session) != nil)
        #expect(try await m.authenticate(token: token) != nil)
        #expect(try await m.setActive(accountID: a.id, active: false, actor: "admin@example.com", reason: "left the company"))
        #expect(try await m.session(token: session) == nil)
        #expect(try await m.authenticate(token: token) == nil)
        #expect(try await m.setActive(accountID: a.id, active: true, actor: "admin@example.com"))
        #expect(try await m.session(token: session) == nil, "a reactivated account signs in again")
        #expect(try await m.authenticate(token: token) != nil)
        #expect(try await m.setActive(accountID: 999_999, active: false, actor: "x") == false)
        let log = try await m.auditLog(actor: "admin@example.com", target: "account:\(a.id)", action: nil, from: nil, to: nil)
        #expect(log.map(\.action) == ["reactivate", "deactivate"] && log.last?.details == "left the company")
        // Exceptions: recorded, replaced, removed.
        try await m.setPolicyException(accountID: a.id, grantedBy: "admin@example.com", notes: "one", expiresAt: nil)
        try await m.setPolicyException(accountID: a.id, grantedBy: "admin@example.com", notes: "two", expiresAt: m.now + 1)
        #expect(try await m.policyExceptions()[a.id]?.notes == "two")
        #expect(try await m.removePolicyException(accountID: a.id, actor: "admin@example.com"))
        #expect(try await m.removePolicyException(accountID: a.id, actor: "admin@example.com") == false)
        #expect(try await m.policyExceptions().isEmpty)
        await f.close()
    }

    @Test(arguments: Backend.allCases)
    func jobRunsAreRecordedAndKeptBounded(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        let m = f.metadata
        for i in 0..<205 {
            let id = try await m.startJobRun("export")
            f.clock.advance(seconds: 1)
            try await m.finishJobRun(id, ok: i % 2 == 0, summary: "run \(i)")
        }
        let runs = try await m.jobRuns("export", limit: 1000)
        #expect(runs.count == 200 && runs.first?.summary == "run 204" && runs.first?.ok == true)
        #expect(try await m.lastSuccess(of: "export") == runs.first?.startedAt)
        #expect(try await m.lastSuccess(of: "audit") == nil)
        await f.close()
    }
}
