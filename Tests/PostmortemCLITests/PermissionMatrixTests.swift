import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// Every route of `postmortem serve` × every kind of caller (anonymous, a token with no
/// permission, a token with each single permission, a token with all of them): the expected
/// status, and no protected value, raw dump, token or server path in any body the caller may not
/// see.
@Suite(.serialized) struct PermissionMatrixTests {
    let e2e = ProcessorEndToEndTests()

    static let permissions = ["view_pii", "view_rawdump", "reprocess_crashes", "run_custom_queries", "run_long_queries"]
    static let protectedURL = "https://secret.example/PROTECTED-URL-VALUE"
    static let protectedComment = "PROTECTED-COMMENT-VALUE"

    struct Caller {
        let name: String
        let token: String?
        let permissions: Set<String>
    }

    struct Route {
        let name: String
        let method: String
        let target: String
        var body: Data = Data()
        var contentType: String?
        /// The status for a caller holding these permissions.
        let status: @Sendable (Set<String>) -> Int
    }

    static func routes(_ id: String) -> [Route] {
        let open: @Sendable (Set<String>) -> Int = { _ in 200 }
        let symbolication = Data(#"{"memoryMap": [["xul.pdb", "44E4EC8C2F41492B9369D6B9A059577C2"]], "stacks": [[[0, 11723767]]]}"#.utf8)
        return [
            Route(name: "lbheartbeat", method: "GET", target: "/__lbheartbeat__", status: open),
            Route(name: "heartbeat", method: "GET", target: "/__heartbeat__", status: open),
            Route(name: "version", method: "GET", target: "/__version__", status: open),
            Route(name: "metrics", method: "GET", target: "/metrics", status: open),
            Route(name: "broken", method: "GET", target: "/__broken__", status: { _ in 500 }),
            Route(name: "submit", method: "POST", target: "/submit",
                  body: HostileRequestTests.multipart([("ProductName", "Firefox"), ("Version", "120.0")], dump: nil),
                  contentType: "multipart/form-data; boundary=hostile-boundary", status: open),
            Route(name: "symbolicate v5", method: "POST", target: "/symbolicate/v5", body: symbolication, contentType: "application/json", status: open),
            Route(name: "symbolicate v4", method: "POST", target: "/symbolicate/v4",
                  body: Data(#"{"version": 4, "memoryMap": [["xul.pdb", "44E4EC8C2F41492B9369D6B9A059577C2"]], "stacks": [[[0, 11723767]]]}"#.utf8),
                  contentType: "application/json", status: open),
            Route(name: "ProcessedCrash", method: "GET", target: "/api/ProcessedCrash/?crash_id=\(id)", status: open),
            Route(name: "RawCrash meta", method: "GET", target: "/api/RawCrash/?crash_id=\(id)", status: open),
            Route(name: "RawCrash raw", method: "GET", target: "/api/RawCrash/?crash_id=\(id)&format=raw", status: { $0.contains("view_rawdump") ? 200 : 403 }),
            Route(name: "RawCrash raw by name", method: "GET", target: "/api/RawCrash/?crash_id=\(id)&format=raw&name=upload_file_minidump",
                  status: { $0.contains("view_rawdump") ? 200 : 403 }),
            Route(name: "RawCrash raw, another blob", method: "GET", target: "/api/RawCrash/?crash_id=\(id)&format=raw&name=processed_crash",
                  status: { $0.contains("view_rawdump") ? 400 : 403 }),
            Route(name: "SuperSearch", method: "GET", target: "/api/SuperSearch/?_columns=uuid&_columns=url&_columns=user_comments&_facets=url&url=~PROTECTED",
                  status: open),
            Route(name: "SuperSearchUnredacted", method: "GET", target: "/api/SuperSearchUnredacted/?_columns=uuid&_columns=url&_facets=url",
                  status: { $0.contains("view_pii") ? 200 : 403 }),
            Route(name: "SuperSearchFields", method: "GET", target: "/api/SuperSearchFields/", status: open),
            Route(name: "Reprocessing", method: "POST", target: "/api/Reprocessing/", body: Data("crash_ids=\(id)".utf8),
                  contentType: "application/x-www-form-urlencoded", status: { $0.contains("reprocess_crashes") ? 200 : 403 }),
            Route(name: "CrashSignature", method: "POST", target: "/api/CrashSignature/",
                  body: Data(#"{"jobs": [{"os": "Linux", "crashing_thread": 0, "threads": [{"frames": [{"function": "f"}]}]}]}"#.utf8),
                  contentType: "application/json", status: open),
            Route(name: "SignatureFirstDate", method: "GET", target: "/api/SignatureFirstDate/?signatures=f", status: open),
            Route(name: "VersionString", method: "GET", target: "/api/VersionString/?product=Firefox&channel=beta&build_id=20240101000000", status: open),
            Route(name: "CrashVerify", method: "GET", target: "/api/CrashVerify/?crash_id=\(id)", status: open),
            Route(name: "MissingProcessedCrash", method: "GET", target: "/api/MissingProcessedCrash/", status: open),
            Route(name: "NoOp", method: "GET", target: "/api/NoOp/?product=Firefox", status: open),
            Route(name: "ProcessedCrash with bug links", method: "GET", target: "/api/ProcessedCrash/?crash_id=\(id)&_bug_links=1", status: open),
            Route(name: "Bugs", method: "GET", target: "/api/Bugs/?signatures=f", status: open),
            Route(name: "SignaturesByBugs", method: "GET", target: "/api/SignaturesByBugs/?bug_ids=1", status: open),
            Route(name: "unknown model", method: "GET", target: "/api/Nonsense/", status: { _ in 404 }),
            // The web pages read the same permissions (here through the Auth-Token header).
            Route(name: "report page", method: "GET", target: "/report/index/\(id)", status: open),
            Route(name: "home page", method: "GET", target: "/", status: open),
            Route(name: "product page", method: "GET", target: "/home/product/Firefox", status: { _ in 404 }),
            Route(name: "sign-in page", method: "GET", target: "/login/", status: open),
            Route(name: "profile page", method: "GET", target: "/profile/", status: { _ in 302 }),
            Route(name: "reprocess form without a session", method: "POST", target: "/report/reprocess/\(id)", body: Data("csrf_token=x".utf8),
                  contentType: "application/x-www-form-urlencoded", status: { _ in 403 }),
        ]
    }

    @Test func everyRouteForEveryCallerHasItsStatusAndLeaksNothing() async throws {
        let data = TestData.temporaryDirectory("matrix")
        defer { try? FileManager.default.removeItem(atPath: data) }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        // Accounts and tokens, made before serve starts (as `postmortem users`/`tokens` would).
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let metadata = try await MetadataStore.open(database)
        var callers = [Caller(name: "anonymous", token: nil, permissions: [])]
        for (name, permissions) in [("no permission", Set<String>())] + Self.permissions.map { ($0, Set([$0])) } + [("all", Set(Self.permissions))] {
            let account = try await metadata.createAccount(email: "\(name.replacingOccurrences(of: " ", with: "-"))@example.com")
            for p in permissions { try await metadata.grant(p, to: account.id) }
            let (token, _) = try await metadata.createToken(accountID: account.id, permissions: permissions)
            callers.append(Caller(name: name, token: token, permissions: permissions))
        }
        await database.shutdown()

        let server = try e2e.start(symbols: try TestData.path("symbolication/symbols"), data: data,
                                   extraEnvironment: ["POSTMORTEM_API_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "0",
                                                      "POSTMORTEM_API_RATE_LIMIT_AUTHENTICATED_PER_MINUTE": "0"])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        let dumpPath = try TestData.path("minidumps/linux-mini.dmp")
        let id = try await offPool {
            try e2e.submit(server, dump: dumpPath, annotations: ["ProductName=Firefox", "Version=120.0", "URL=\(Self.protectedURL)", "Comments=\(Self.protectedComment)"])
        }
        _ = try await e2e.processed(server, id)
        let dump = try Data(contentsOf: URL(fileURLWithPath: try TestData.path("minidumps/linux-mini.dmp")))

        var checked = 0
        for route in Self.routes(id) {
            for caller in callers {
                var head = "\(route.method) \(route.target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                if let token = caller.token { head += "Auth-Token: \(token)\r\n" }
                if let type = route.contentType { head += "Content-Type: \(type)\r\n" }
                if route.method == "POST" { head += "Content-Length: \(route.body.count)\r\n" }
                let response = try await RawHTTPConnection.exchange(port: port, Data((head + "\r\n").utf8) + route.body, timeout: .seconds(30))
                let where_ = "\(route.name) as \(caller.name)"
                #expect(RawHTTPConnection.status(of: response) == route.status(caller.permissions), "\(where_): \(String(decoding: response.prefix(400), as: UTF8.self))")
                let text = String(decoding: response, as: UTF8.self)
                if !caller.permissions.contains("view_pii") {
                    #expect(!text.contains("PROTECTED-URL-VALUE") && !text.contains(Self.protectedComment), "\(where_) leaks a protected value")
                }
                if !caller.permissions.contains("view_rawdump") {
                    #expect(response.firstRange(of: dump.prefix(64)) == nil, "\(where_) leaks the raw dump")
                }
                for other in callers where other.token != nil {
                    #expect(!text.contains(other.token!), "\(where_) shows a token")
                }
                #expect(!text.contains(data), "\(where_) shows the data directory")
                checked += 1
            }
        }
        #expect(checked == Self.routes(id).count * callers.count)
        // Holders of view_pii do see the protected values (the redaction is not just "drop everything").
        let all = try #require(callers.last?.token)
        let response = try await RawHTTPConnection.exchange(port: port, Data("GET /api/ProcessedCrash/?crash_id=\(id) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuth-Token: \(all)\r\n\r\n".utf8))
        #expect(String(decoding: response, as: UTF8.self).contains(Self.protectedComment))
    }
}
