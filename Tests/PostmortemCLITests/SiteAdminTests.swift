import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// `/siteadmin/` against `serve`: every page in headless Chromium for a superuser, an
/// administrator putting a user in Hackers (the user's token then reads protected fields) and
/// taking them out again, 403 for everyone else on every route, and a failing scheduled job on
/// the site-status page, `/monitoring/cron/` and `/__heartbeat__`.
@Suite(.serialized) struct SiteAdminTests {
    let e2e = ProcessorEndToEndTests()
    static let password = "correct horse battery staple"
    static let protectedValue = "PROTECTED-ADMIN-VALUE"
    static let pages = ["/siteadmin/", "/siteadmin/users/", "/siteadmin/groups/", "/siteadmin/tokens/", "/siteadmin/uploads/",
                        "/siteadmin/crashes/", "/siteadmin/auditlog/", "/siteadmin/protected-users/"]

    func cli(_ arguments: [String], stdin: String = "") throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), arguments, stdin: Data(stdin.utf8))
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func request(_ port: Int, _ method: String, _ target: String, cookie: String = "", form: String? = nil) async throws -> (status: Int?, text: String) {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if !cookie.isEmpty { head += "Cookie: \(cookie)\r\n" }
        if let form { head += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n" }
        let response = try await RawHTTPConnection.exchange(port: port, Data((head + "\r\n" + (form ?? "")).utf8), timeout: .seconds(30))
        return (RawHTTPConnection.status(of: response), String(decoding: response, as: UTF8.self))
    }

    /// Signs in with a password over raw HTTP; the session cookie.
    func signIn(_ port: Int, _ email: String) async throws -> String {
        let page = try await request(port, "GET", "/login/")
        let csrf = try #require(page.text.components(separatedBy: "pm_login_csrf=").dropFirst().first?.prefix { $0 != ";" })
        let form = "csrf_token=\(csrf)&email=\(email.replacingOccurrences(of: "@", with: "%40"))&password=correct+horse+battery+staple"
        let answer = try await request(port, "POST", "/login/", cookie: "pm_login_csrf=\(csrf)", form: form)
        let session = try #require(answer.text.components(separatedBy: "pm_session=").dropFirst().first?.prefix { $0 != ";" }, "\(answer.text.prefix(500))")
        return "pm_session=\(session)"
    }

    func csrf(of page: String) -> String {
        String(page.components(separatedBy: "name=\"csrf_token\" value=\"").dropFirst().first?.prefix { $0 != "\"" } ?? "")
    }

    @Test func administratorsRunTheSiteAndNobodyElseCan() async throws {
        let data = TestData.temporaryDirectory("siteadmin")
        defer { try? FileManager.default.removeItem(atPath: data) }
        for (email, superuser) in [("admin@example.com", true), ("plain@example.com", false), ("target@example.com", false)] {
            let (status, _, err) = try cli(["users", "create", "--data", data, email, "--password-stdin"] + (superuser ? ["--superuser"] : []),
                                           stdin: Self.password + "\n")
            #expect(status == 0, "\(err)")
        }
        #expect(try cli(["groups", "set", "--data", data, "Hackers", "--permission", "view_pii", "--permission", "view_rawdump",
                          "--permission", "reprocess_crashes", "--permission", "run_long_queries"]).0 == 0)
        // The target's token asks for view_pii, which the account holds only while in Hackers.
        #expect(try cli(["groups", "add", "--data", data, "target@example.com", "Hackers"]).0 == 0)
        let (tokenStatus, tokenOut, tokenErr) = try cli(["tokens", "create", "--data", data, "target@example.com", "--permission", "view_pii"])
        #expect(tokenStatus == 0, "\(tokenErr)")
        let token = tokenOut.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli(["groups", "remove", "--data", data, "target@example.com", "Hackers"]).0 == 0)

        let server = try e2e.start(symbols: nil, data: data)
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        let dump = try TestData.path("minidumps/linux-mini.dmp")
        let id = try await offPool {
            try e2e.submit(server, dump: dump, annotations: ["ProductName=Firefox", "Version=120.0", "URL=https://\(Self.protectedValue)/"])
        }
        _ = try await e2e.processed(server, id)
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let metadata = try await MetadataStore.open(database)
        let target = try #require(try await metadata.account(email: "target@example.com"))
        let check = "/api/ProcessedCrash/?crash_id=\(id)"
        func apiSees() async throws -> Bool {
            let r = try await RawHTTPConnection.exchange(port: port, Data("GET \(check) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuth-Token: \(token)\r\nConnection: close\r\n\r\n".utf8))
            return String(decoding: r, as: UTF8.self).contains(Self.protectedValue)
        }
        #expect(try await apiSees() == false, "out of Hackers, the token reads no protected field")

        // Everyone but a superuser: 403 on every route, pages and actions alike.
        let plain = try await signIn(port, "plain@example.com")
        let actions = ["/siteadmin/users/\(target.id)/groups/", "/siteadmin/users/\(target.id)/active/", "/siteadmin/users/\(target.id)/exception/",
                       "/siteadmin/tokens/1/revoke/", "/siteadmin/groups/", "/siteadmin/crashes/\(id)/reprocess/", "/siteadmin/crashes/\(id)/delete/", "/siteadmin/deadletters/1/requeue/"]
        for cookie in ["", plain] {
            for page in Self.pages + ["/siteadmin/users/\(target.id)/", "/siteadmin/crashes/?id=\(id)"] {
                #expect(try await request(port, "GET", page, cookie: cookie).status == 403, "\(page) for \(cookie.isEmpty ? "anonymous" : "a signed-in user")")
            }
            for action in actions {
                #expect(try await request(port, "POST", action, cookie: cookie, form: "csrf_token=x&group=Hackers&member=1&active=0").status == 403, "\(action)")
            }
        }
        #expect(try await apiSees() == false)
        // A superuser's form without its CSRF token changes nothing.
        let admin = try await signIn(port, "admin@example.com")
        #expect(try await request(port, "POST", "/siteadmin/users/\(target.id)/groups/", cookie: admin, form: "group=Hackers&member=1").status == 403)
        #expect(try await apiSees() == false)

        // The browser: every page, then Hackers added and removed with the user page's buttons.
        let python = try #require(findExecutable("python3"), "python3 is required")
        let shots = (ProcessInfo.processInfo.environment["POSTMORTEM_SCREENSHOTS"] ?? TestData.packageRoot + "/.build/screenshots") + "/siteadmin"
        let userPage = "/siteadmin/users/\(target.id)/"
        let paths = Self.pages.filter { $0 != "/siteadmin/protected-users/" } + [
            "/siteadmin/crashes/?id=\(id)", "/siteadmin/auditlog/?actor=cli%3Aroot",
            userPage + "#click=button[aria-label='Add to Hackers']", "/siteadmin/protected-users/",
            userPage + "#click=button[aria-label='Remove from Hackers']", "/siteadmin/auditlog/?actor=admin%40example.com",
        ]
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/browser_pages.py", server.base, shots] + paths,
                                                environment: ["LOGIN_EMAIL": "admin@example.com", "LOGIN_PASSWORD": Self.password,
                                                              "CHECK_TOKEN": token, "TOKEN_CHECK_PATH": check], timeout: .seconds(300))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(1500))")
        let result = JSONValue.parse(out) ?? .null
        let loaded = result["pages"]?.arrayValue ?? []
        #expect(loaded.count == paths.count)
        for p in loaded {
            #expect(p["console_errors"] == .array([]), "\(p["path"]?.stringValue ?? ""): \(p["console_errors"]?.serialized() ?? "")")
            #expect(p["title"]?.stringValue?.hasPrefix("Site administration") == true, "\(p["path"]?.stringValue ?? ""): \(p["title"]?.serialized() ?? "")")
        }
        func text(_ path: String) -> String { loaded.first { $0["path"]?.stringValue == path }?["text"]?.stringValue ?? "" }
        let status0 = text("/siteadmin/")
        for expected in ["Scheduled jobs", "audit", "symbol_cleanup", "Queues", "reprocessing", "Migrations", "access audit and job runs", "crashes"] {
            #expect(status0.contains(expected), "site status lacks \(expected): \(status0.prefix(1500))")
        }
        #expect(text("/siteadmin/users/").contains("target@example.com") && text("/siteadmin/users/").contains("superuser"))
        #expect(text("/siteadmin/groups/").contains("Hackers") && text("/siteadmin/groups/").contains("View Personal Identifiable Information"))
        #expect(text("/siteadmin/tokens/").contains("target@example.com") && !text("/siteadmin/tokens/").contains(token))
        #expect(text("/siteadmin/crashes/?id=\(id)").contains("not processed") == false && text("/siteadmin/crashes/?id=\(id)").contains("Delete with its files"))
        #expect(text("/siteadmin/auditlog/?actor=cli%3Aroot").contains("group-remove") || text("/siteadmin/auditlog/?actor=cli%3Aroot").contains("entries"))
        let clicks = result["clicks"]?.arrayValue ?? []
        #expect(clicks.count == 2, "\(result.serialized().prefix(2000))")
        #expect(clicks.first?["text"]?.stringValue?.contains("Remove") == true && clicks.first?["check"]?["body"]?.stringValue?.contains(Self.protectedValue) == true,
                "added to Hackers by the administrator, the user's next API call sees protected fields")
        #expect(text("/siteadmin/protected-users/").contains("target@example.com"))
        #expect(clicks.last?["check"]?["body"]?.stringValue?.contains(Self.protectedValue) == false, "removed, the token loses them at once")
        let audit = text("/siteadmin/auditlog/?actor=admin%40example.com")
        #expect(audit.contains("group-add") && audit.contains("group-remove") && audit.contains("account:\(target.id)"))

        // Actions over HTTP with the administrator's CSRF token: exception, deactivation, crash
        // reprocess and delete, each audited.
        let user = try await request(port, "GET", userPage, cookie: admin)
        let token2 = csrf(of: user.text)
        #expect(try await request(port, "POST", userPage + "exception/", cookie: admin, form: "csrf_token=\(token2)&notes=contractor&days=30").status == 302)
        #expect(try await metadata.policyExceptions()[target.id]?.notes == "contractor")
        #expect(try await request(port, "POST", "/siteadmin/groups/", cookie: admin, form: "csrf_token=\(token2)&name=Triage&perm_reprocess_crashes=1").status == 302)
        #expect(try await metadata.groups().first { $0.name == "Triage" }?.permissions == ["reprocess_crashes"])
        #expect(try await request(port, "POST", "/siteadmin/groups/", cookie: admin, form: "csrf_token=\(token2)&name=").status == 400)
        #expect(try await request(port, "POST", userPage + "active/", cookie: admin, form: "csrf_token=\(token2)&active=0&reason=left").status == 302)
        #expect(try await metadata.account(id: target.id)?.isActive == false)
        let refused = try await RawHTTPConnection.exchange(port: port, Data("GET \(check) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuth-Token: \(token)\r\nConnection: close\r\n\r\n".utf8))
        #expect(RawHTTPConnection.status(of: refused) == 403, "a deactivated user's token stops working at once")
        #expect(try await request(port, "POST", "/siteadmin/crashes/\(id)/reprocess/", cookie: admin, form: "csrf_token=\(token2)").status == 302)
        _ = try await e2e.processed(server, id, historyAtLeast: 1)
        #expect(try await request(port, "POST", "/siteadmin/crashes/\(id)/delete/", cookie: admin, form: "csrf_token=\(token2)").status == 302)
        #expect(try await server.blobs.get(BlobKeys.rawCrash(id)) == nil)
        #expect(try await server.blobs.get(BlobKeys.processedCrash(id)) == nil)
        #expect(try await metadata.crash(id) == nil)
        #expect(try await request(port, "GET", "/report/index/\(id)").status == 404)
        let actions2 = try await metadata.auditLog(actor: "admin@example.com", target: nil, action: nil, from: nil, to: nil).map(\.action)
        for expected in ["exception-grant", "group-set", "deactivate", "crash-reprocess", "crash-delete"] { #expect(actions2.contains(expected), "\(actions2)") }
        await database.shutdown()
    }

    @Test func aFailingJobShowsOnTheStatusPageAndTheHeartbeat() async throws {
        let data = TestData.temporaryDirectory("siteadmin-jobs")
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(try cli(["users", "create", "--data", data, "admin@example.com", "--password-stdin", "--superuser"], stdin: Self.password + "\n").0 == 0)
        let exportDir = data + "/export-target"
        // No workers: the dead letter made below stays put until the page requeues it.
        let server = try e2e.start(symbols: nil, data: data, extraEnvironment: [
            "POSTMORTEM_EXPORT_ENABLED": "true", "POSTMORTEM_EXPORT_TO": exportDir, "POSTMORTEM_JOBS_EXPORT_INTERVAL_SECONDS": "1",
            "POSTMORTEM_PROCESSOR_WORKERS": "0",
        ])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        #expect(try await request(port, "GET", "/__heartbeat__").status == 200)
        // The export target becomes a file: every export run from now on fails.
        try FileManager.default.removeItem(atPath: exportDir)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: exportDir))
        // Until a failed export run is recorded and the heartbeat says so (on a loaded machine the
        // first run after the change may come late: overdue alone is not the failure looked for).
        var heartbeat = (status: Int?.none, text: "")
        var cron = (status: Int?.none, text: "")
        var cronBody: JSONValue?
        for _ in 0..<150 {
            heartbeat = try await request(port, "GET", "/__heartbeat__")
            cron = try await request(port, "GET", "/monitoring/cron/")
            cronBody = JSONValue.parse(Data((cron.text.components(separatedBy: "\r\n\r\n").dropFirst().first ?? "").utf8))
            if heartbeat.status == 500, cronBody?["jobs"]?["export"]?["last_run"]?["ok"] == .bool(false) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let heartbeatBody = JSONValue.parse(Data((heartbeat.text.components(separatedBy: "\r\n\r\n").dropFirst().first ?? "").utf8))
        #expect(heartbeat.status == 500 && heartbeatBody?["checks"]?["scheduled_jobs"] == .string("error"), "\(heartbeat.text.suffix(600))")
        #expect(heartbeatBody?["checks"]?["database"] == .string("ok"), "only the jobs fail")
        #expect(cron.status == 500 && cronBody?["jobs"]?["export"]?["overdue"] == .bool(true), "\(cron.text.suffix(800))")
        #expect(cronBody?["jobs"]?["export"]?["last_run"]?["ok"] == .bool(false))
        #expect(cronBody?["jobs"]?["audit"]?["overdue"] == .bool(false))
        #expect(!cron.text.contains(exportDir), "error texts stay off the public endpoint")
        let admin = try await signIn(port, "admin@example.com")
        let page = try await request(port, "GET", "/siteadmin/", cookie: admin)
        #expect(page.status == 200)
        let jobs = page.text.components(separatedBy: "id=\"job-runs\"").dropFirst().first ?? ""
        #expect(jobs.contains("<tr class=\"failed\"><td>export</td>") && jobs.contains("failed") && jobs.contains("Not a directory"), "\(jobs.prefix(1500))")

        // A dead letter on the status page, requeued by its button's form.
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let queue = WorkQueue(database: database)
        let crash = CrashID.make(throttleDigit: 0, date: Date())
        try await queue.enqueue(QueueItem(crashID: crash))
        let lease = try #require(try await queue.lease().first)
        try await queue.fail(lease, error: "stackwalk exploded", retry: false)
        let withDead = try await request(port, "GET", "/siteadmin/", cookie: admin)
        #expect(withDead.text.contains("stackwalk exploded") && withDead.text.contains(crash))
        let deadID = try #require(try await queue.deadLetters().first?.id)
        #expect(try await request(port, "POST", "/siteadmin/deadletters/\(deadID)/requeue/", cookie: admin, form: "csrf_token=\(csrf(of: withDead.text))").status == 302)
        #expect(try await queue.deadLetters().isEmpty)
        #expect(try await queue.counts()[.standard]?.ready == 1)
        #expect(try await request(port, "POST", "/siteadmin/deadletters/\(deadID)/requeue/", cookie: admin, form: "csrf_token=\(csrf(of: withDead.text))").status == 404)
        await database.shutdown()
    }
}
