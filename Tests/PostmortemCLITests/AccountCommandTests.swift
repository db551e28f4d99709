import Foundation
import Storage
import Testing
import TestSupport

/// `postmortem users` and `postmortem tokens`: accounts, permissions, tokens shown once and
/// stored hashed, every event in the audit log.
@Suite struct AccountCommandTests {
    func run(_ args: [String]) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), args)
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func usersTokensAndTheAuditLog() async throws {
        let data = TestData.temporaryDirectory("accounts")
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(try run(["users", "create", "dev@example.com", "--data", data]).1 == "created account 1 dev@example.com\n")
        #expect(try run(["users", "create", "dev@example.com", "--data", data]).0 == 1)
        #expect(try run(["users", "grant", "dev@example.com", "view_pii", "--data", data]).0 == 0)
        #expect(try run(["users", "grant", "dev@example.com", "no_such_permission", "--data", data]).0 == 2)
        let (status, token, _) = try run(["tokens", "create", "dev@example.com", "--permission", "view_pii", "--notes", "bot", "--data", data])
        #expect(status == 0)
        let text = token.trimmingCharacters(in: .newlines)
        #expect(text.count == 32 && text.allSatisfy(\.isHexDigit))
        // A permission the owner lacks cannot go on a token.
        let (refused, _, why) = try run(["tokens", "create", "dev@example.com", "--permission", "view_rawdump", "--data", data])
        #expect(refused == 1 && why.contains("does not have view_rawdump"))
        let list = try run(["tokens", "list", "dev@example.com", "--data", data]).1
        #expect(list.contains("\(text.prefix(8))…") && !list.contains(text) && list.contains("view_pii") && list.contains("bot"))

        // The token works (with a label), and not after its owner loses the permission.
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let store = try await MetadataStore.open(database)
        #expect(try await store.authenticate(token: text + "-ci")?.1.permissions == ["view_pii"])
        #expect(try run(["users", "revoke", "dev@example.com", "view_pii", "--data", data]).0 == 0)
        #expect(try await store.authenticate(token: text)?.1.permissions == [])
        await database.shutdown()

        #expect(try run(["tokens", "revoke", "1", "--data", data]).0 == 0)
        #expect(try run(["tokens", "revoke", "1", "--data", data]).0 == 1)
        let audit = try run(["tokens", "audit", "--data", data]).1.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(audit.map { $0[2] } == ["token-revoke", "revoke", "token-create", "grant"])
        #expect(audit.allSatisfy { $0[1].hasPrefix("cli:") })
    }
    @Test func groupsGivePermissionsAndTakeThemBack() async throws {
        let data = TestData.temporaryDirectory("groups")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let groups = try run(["groups", "list", "--data", data]).1
        #expect(groups.contains("Hackers\treprocess_crashes,run_long_queries,view_pii,view_rawdump\t"))
        #expect(groups.contains("Hackers Plus\treprocess_crashes,run_custom_queries,run_long_queries,view_pii,view_rawdump\t"))
        #expect(try run(["users", "create", "dev@example.com", "--data", data]).0 == 0)
        #expect(try run(["groups", "add", "dev@example.com", "Hackers", "--data", data]).0 == 0)
        #expect(try run(["groups", "add", "dev@example.com", "Nobody", "--data", data]).0 == 1)
        #expect(try run(["users", "list", "--data", data]).1.contains("reprocess_crashes,run_long_queries,view_pii,view_rawdump"))
        let token = try run(["tokens", "create", "dev@example.com", "--permission", "view_pii", "--data", data]).1.trimmingCharacters(in: .newlines)
        #expect(token.count == 32)

        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let store = try await MetadataStore.open(database)
        #expect(try await store.authenticate(token: token)?.1.permissions == ["view_pii"])
        #expect(try run(["groups", "remove", "dev@example.com", "Hackers", "--data", data]).0 == 0)
        #expect(try await store.authenticate(token: token)?.1.permissions == [])
        #expect(try run(["groups", "set", "Triage", "--permission", "reprocess_crashes", "--data", data]).0 == 0)
        #expect(try run(["groups", "set", "Bad", "--permission", "no_such_permission", "--data", data]).0 == 2)
        #expect(try await store.groups().first { $0.name == "Triage" }?.permissions == ["reprocess_crashes"])
        let actions = try await store.auditLog().map(\.action)
        #expect(actions.contains("group-add") && actions.contains("group-remove") && actions.contains("group-set"))
        await database.shutdown()
    }
}
