import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// The web pages in a real browser (headless Chromium driven by PyPI selenium) against `serve`
/// filled by `postmortem submit` with the real test dumps: every page loads without console
/// errors, key content is there, the report's tabs switch by mouse and keyboard, a crash not yet
/// processed gets the pending page and is processed, hostile annotations and a hostile signature
/// execute nothing, and nothing protected reaches an anonymous reader. Screenshots go to
/// `.build/screenshots` (`POSTMORTEM_SCREENSHOTS` overrides).
@Suite(.serialized) struct WebPagesTests {
    let e2e = ProcessorEndToEndTests()
    static let script = #"<script>window.__pwned=1</script>"#
    static let image = #""><img src=x onerror="window.__pwned=2">"#
    static let protectedValue = "PROTECTED-WEB-VALUE"
    /// The signature report with aggregations, columns and order chosen (a protected field among
    /// them, which only view_pii gets).
    static let signatureWithChoices = "/signature/?signature=crash&_aggs=platform_version&_aggs=url&_aggs=cpu_arch"
        + "&_columns=uuid&_columns=cpu_arch&_columns=url&_columns=build_id&_sort=-uuid"

    func get(_ port: Int, _ target: String) async throws -> (status: Int?, head: String, body: String) {
        let response = try await RawHTTPConnection.exchange(port: port, Data("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8), timeout: .seconds(30))
        let text = String(decoding: response, as: UTF8.self)
        let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
        return (RawHTTPConnection.status(of: response), head, RawHTTPConnection.body(of: response))
    }

    @Test func pagesRenderInABrowserSafelyAndWithoutLeaks() async throws {
        let products = TestData.temporaryDirectory("web-products")
        defer { try? FileManager.default.removeItem(atPath: products) }
        for name in ["Firefox.json", "Fenix.json"] {
            try FileManager.default.copyItem(atPath: try TestData.path("schemas/product_details/\(name)"), toPath: products + "/" + name)
        }
        let data = TestData.temporaryDirectory("web")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try e2e.start(symbols: try TestData.path("symbols"), data: data, extraEnvironment: [
            "POSTMORTEM_PRODUCTS_DIR": products, "POSTMORTEM_API_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "0",
            "POSTMORTEM_WEB_SOURCE_LINK_TEMPLATE": "https://source.example.com/browse/{file}#{line}",
        ])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })

        // A real crash, and one whose every annotation is hostile.
        let dump = try TestData.path("minidumps/linux-mini.dmp")
        let plain = try await offPool {
            try e2e.submit(server, dump: dump, annotations: ["ProductName=Firefox", "Version=120.0", "URL=https://\(Self.protectedValue)/",
                                                            "Comments=\(Self.protectedValue)"])
        }
        let hostileAnnotations = ["Version", "ReleaseChannel", "BuildID", "Notes", "AbortMessage", "Android_Model", "ProcessType", "URL", "Comments"]
            .flatMap { ["\($0)=\(Self.script)\(Self.image)"] }
        let hostile = try await offPool { try e2e.submit(server, dump: dump, annotations: ["ProductName=Firefox"] + hostileAnnotations) }
        _ = try await e2e.processed(server, plain)
        _ = try await e2e.processed(server, hostile)
        // A processed crash with a hostile signature, frames, modules and Java exception.
        let forged = CrashID.make(throttleDigit: 0, date: Date())
        let evil = Self.script + Self.image
        try await server.blobs.put(BlobKeys.rawCrash(forged), Data(#"{"ProductName": "Firefox"}"#.utf8))
        try await server.blobs.put(BlobKeys.processedCrash(forged), Data(JSONValue.object([
            ("uuid", .string(forged)), ("signature", .string(evil)), ("product", .string("Firefox")), ("reason", .string(evil)),
            ("crashing_thread", .int(0)),
            ("json_dump", .object([("threads", .array([.object([("frames", .array([.object([
                ("frame", .int(0)), ("module", .string(evil)), ("function", .string(evil)), ("file", .string("javascript:alert(1)")), ("line", .int(1)),
            ])]))])])),
            ("modules", .array([.object([("filename", .string(evil)), ("debug_id", .string(evil))])])),
            ("crash_info", .object([("instruction", .string(evil))]))])),
            ("java_exception", .object([("exception", .object([("values", .array([.object([("stacktrace", .object([
                ("type", .string(evil)), ("frames", .array([.object([("function", .string(evil)), ("filename", .string(evil))])])),
            ]))])]))]))])),
            ("processor_notes", .string(evil)),
        ]).serialized().utf8))
        // A crash stored but never queued: its page is the pending page, which queues it.
        let waiting = CrashID.make(throttleDigit: 0, date: Date())
        try await server.blobs.put(BlobKeys.rawCrash(waiting), Data(#"{"ProductName": "Firefox", "Version": "120.0"}"#.utf8))
        try await server.blobs.put(BlobKeys.dumpNames(waiting), Data("[]".utf8))

        // Plain HTTP: headers, redirects, assets, 404s.
        let report = try await get(port, "/report/index/\(plain)")
        #expect(report.status == 200)
        for header in ["Content-Security-Policy: default-src 'self'; script-src 'self'", "X-Content-Type-Options: nosniff",
                       "X-Frame-Options: DENY", "Referrer-Policy: "] {
            #expect(report.head.contains(header), "\(header)")
        }
        let redirect = try await get(port, "/report/index/bp-\(plain)")
        #expect(redirect.status == 301 && redirect.head.contains("Location: /report/index/\(plain)"))
        #expect(try await get(port, "/report/index?id=bp-\(plain)").status == 302)
        #expect(try await get(port, "/report/index/not-a-crash").status == 404)
        #expect(try await get(port, "/report/index/de1bb258-cbbf-4589-a673-34f800160918").status == 404)
        #expect(try await get(port, "/static/site.css").head.contains("text/css"))
        #expect(try await get(port, "/static/nope.css").status == 404)
        #expect(try await get(port, "/robots.txt").body.contains("Disallow: /report/"))
        #expect(try await get(port, "/favicon.ico").head.contains("image/svg+xml"))
        #expect(try await get(port, "/home/product/Nope").status == 404)

        // Every page an anonymous user can open: nothing protected, nothing unescaped.
        let pages = ["/", "/home/product/Firefox", "/home/product/Fenix", "/report/index/\(plain)", "/report/index/\(hostile)",
                     "/report/index/\(forged)", "/topcrashers/?product=Firefox", "/topcrashers/?product=Firefox&version=120.0&process_type=parent",
                     "/search/?product=Firefox&_facets=version&_facets=platform&_columns=uuid&_columns=signature&_columns=version",
                     "/search/?signature=~crash", "/documentation/datadictionary/", "/documentation/datadictionary/dataset/processed/field/product",
                     "/documentation/datadictionary/dataset/annotation/field/URL", "/signature/?signature=crash&product=Firefox&days=7",
                     "/documentation/", "/documentation/supersearch/", "/api/", "/documentation/protected_data_access/", "/about/throttling/",
                     Self.signatureWithChoices]
        for page in pages {
            let (status, _, body) = try await get(port, page)
            #expect(status == 200, "\(page)")
            #expect(!body.contains(Self.protectedValue), "\(page) shows a protected value")
            #expect(!body.contains("<script>window.__pwned") && !body.contains("<img src=x"), "\(page) has unescaped markup")
            #expect(!body.contains("href=\"javascript:"), "\(page) links to javascript:")
        }

        // The browser.
        let python = try #require(findExecutable("python3"), "python3 is required")
        let shots = ProcessInfo.processInfo.environment["POSTMORTEM_SCREENSHOTS"] ?? TestData.packageRoot + "/.build/screenshots"
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/browser_pages.py", server.base, shots]
                                                + pages.map { $0 == "/report/index/\(plain)" ? $0 + "#tabs" : $0 } + ["/report/index/\(waiting)", "/search/#searchform"],
                                                timeout: .seconds(300))
        #expect(status == 0, "headless Chromium (apt chromium chromium-driver, pip selenium): \(String(decoding: err, as: UTF8.self).suffix(1500))")
        let result = try #require(JSONValue.parse(out))
        let loaded = result["pages"]?.arrayValue ?? []
        #expect(loaded.count == pages.count + 2)
        for p in loaded {
            let path = p["path"]?.stringValue ?? "?"
            #expect(p["console_errors"] == .array([]), "\(path): \(p["console_errors"]?.serialized() ?? "")")
            #expect(p["pwned"] == .null, "\(path): injected script ran: \(p["pwned"]?.serialized() ?? "")")
            #expect(FileManager.default.fileExists(atPath: p["screenshot"]?.stringValue ?? ""), "\(path): no screenshot")
        }
        func text(_ path: String) -> String { loaded.first { $0["path"]?.stringValue == path }?["text"]?.stringValue ?? "" }
        #expect(text("/").contains("Firefox") && text("/").contains("Fenix"))
        #expect(text("/home/product/Firefox").contains("120.0"))
        let reportText = text("/report/index/\(plain)")
        for expected in ["Signature", "Crash analysis", "Crashing thread (0)", "Crash Reason", "SIGSEGV", "Build Architecture"] {
            #expect(reportText.contains(expected), "report page lacks \(expected)")
        }
        #expect(text("/report/index/\(forged)").contains(Self.script), "the hostile signature is shown as text")
        #expect(text("/report/index/\(waiting)").contains("is being processed"))
        // Top crashers: the signature of both Firefox crashes with its share, linked to a search.
        let top = text("/topcrashers/?product=Firefox")
        #expect(top.contains("crash") && top.contains("50.00%") && top.contains("new") && top.contains("Abort | <script>"), "\(top.prefix(600))")
        #expect(text("/topcrashers/?product=Firefox&version=120.0&process_type=parent").contains("1 crashes"))
        let searchText = text("/search/?product=Firefox&_facets=version&_facets=platform&_columns=uuid&_columns=signature&_columns=version")
        #expect(searchText.contains("2 crash reports") && searchText.contains("Linux") && searchText.contains(plain), "\(searchText.prefix(600))")
        #expect(text("/search/?signature=~crash").contains("crash reports"))
        // The form submits to a permalink and pages.
        let form = result["searchform"]
        #expect(form?["url"]?.stringValue?.contains("/search/?product=%3DFirefox") == true, "\(form?.serialized() ?? "")")
        #expect(form?["first"]?.stringValue?.contains("page 1 of ") == true && form?["second"]?.stringValue?.contains("page 2 of ") == true,
                "\(form?.serialized() ?? "")")
        #expect(form?["rows"] == .int(1) && form?["console_errors"] == .array([]))
        #expect(try await get(port, "/search/quick/?query=bp-\(plain)").head.contains("Location: /report/index/\(plain)"))
        #expect(try await get(port, "/search/quick/?query=Foo%20bar").head.contains("Location: /search/?signature=~Foo+bar"))
        #expect(try await get(port, "/topcrashers/").status == 400)
        let manyFilters = try await get(port, "/search/?" + (0..<51).map { "signature=~a\($0)" }.joined(separator: "&"))
        #expect(manyFilters.status == 400 && manyFilters.body.contains("Too many filters (at most 50 on this page; the API takes more)."))
        #expect(try await get(port, "/topcrashers/?product=Thunderbird").status == 400)
        // The signature report: totals, the chart, the breakdowns, the reports.
        let signatureText = text("/signature/?signature=crash&product=Firefox&days=7")
        for expected in ["1 crash reports in the last 7 days", "Crashes per day, by version", "120.0", "Summary", "Linux", "Reports", plain] {
            #expect(signatureText.contains(expected), "signature report lacks \(expected): \(signatureText.prefix(500))")
        }
        let signatureHTML = try await get(port, "/signature/?signature=crash").body
        #expect(signatureHTML.contains("<svg class=\"chart\"") && signatureHTML.components(separatedBy: "<svg class=\"chart\"").count == 2,
                "one daily chart")
        #expect(signatureHTML.contains("<svg class=\"chart breakdown\" viewBox=\"0 0 360 22\"") && signatureHTML.contains("aria-label=\"OS breakdown\""),
                "version and OS breakdowns as bars")
        let chosen = text(Self.signatureWithChoices)
        for expected in ["Aggregations", "By platform_version", "By cpu_arch", "amd64", "100.0%", "build_id", plain] {
            #expect(chosen.contains(expected), "signature report with choices lacks \(expected): \(chosen.prefix(800))")
        }
        #expect(!chosen.contains("By url"), "an anonymous reader cannot aggregate by a protected field")
        #expect(try await get(port, "/signature/").status == 400)
        // Documentation pages.
        #expect(text("/documentation/supersearch/").contains("does not exist") && text("/documentation/supersearch/").contains("Daily counts by version"))
        #expect(text("/api/").contains("SignaturesByBugs") && text("/api/").contains("Try it"))
        #expect(text("/documentation/protected_data_access/").contains("View Personal Identifiable Information"))
        #expect(text("/about/throttling/").contains("Firefox, Fenix"))
        #expect(try await get(port, "/api/SuperSearchFields/").head.contains("application/json"), "the API keeps its routes")
        // The data dictionary, from the schemas.
        #expect(text("/documentation/datadictionary/").contains("Crash annotations (raw crash)") && text("/documentation/datadictionary/").contains("abort_message"))
        let productField = text("/documentation/datadictionary/dataset/processed/field/product")
        #expect(productField.contains("ProductName") && productField.contains("Super Search field") && productField.contains("public"))
        let urlField = text("/documentation/datadictionary/dataset/annotation/field/URL")
        #expect(urlField.contains("protected") && urlField.contains("url"), "\(urlField.prefix(400))")
        #expect(try await get(port, "/documentation/datadictionary/dataset/processed/field/nope").status == 404)
        let tabs = result["tabs"]
        #expect(tabs?["count"] == .int(6))
        #expect(tabs?["initial"] == .array([.string("details")]))
        #expect(tabs?["after_click"] == .array([.string("modules")]) && tabs?["selected"] == .string("true"))
        #expect(tabs?["after_arrow"] == .array([.string("rawdata")]) && tabs?["focused"] == .string("rawdata"))
        // The pending page moved the waiting crash to the priority queue; it gets processed.
        _ = try await e2e.processed(server, waiting)
        #expect(try await get(port, "/report/index/\(waiting)").body.contains("Crash analysis") == false)
        #expect(try await get(port, "/report/index/\(waiting)").status == 200)
    }

    func cli(_ arguments: [String], stdin: String = "") throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), arguments, stdin: Data(stdin.utf8))
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// A raw POST with a cookie header, for the checks a browser would never fail.
    func post(_ port: Int, _ target: String, form: String, cookie: String) async throws -> (status: Int?, head: String, body: String) {
        let request = "POST \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: \(cookie)\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n" + form
        let response = try await RawHTTPConnection.exchange(port: port, Data(request.utf8), timeout: .seconds(30))
        let text = String(decoding: response, as: UTF8.self)
        return (RawHTTPConnection.status(of: response), text.components(separatedBy: "\r\n\r\n").first ?? "", RawHTTPConnection.body(of: response))
    }

    @Test func signInWithAPasswordShowsWhatThePermissionsAllow() async throws {
        let data = TestData.temporaryDirectory("web-signin")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let password = "correct horse battery staple"
        var (status, out, err) = try cli(["users", "create", "--data", data, "pii@example.com", "--password-stdin"], stdin: password + "\n")
        #expect(status == 0 && out.contains("with a password"), "\(err)")
        for p in ["view_pii", "reprocess_crashes"] { #expect(try cli(["users", "grant", "--data", data, "pii@example.com", p]).0 == 0) }
        (status, _, _) = try cli(["users", "create", "--data", data, "plain@example.com", "--password-stdin"], stdin: password + "\n")
        #expect(status == 0)
        (status, _, err) = try cli(["users", "create", "--data", data, "short@example.com", "--password-stdin"], stdin: "short\n")
        #expect(status == 2 && err.contains("at least 10 characters"))

        let server = try e2e.start(symbols: nil, data: data)
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        let dump = try TestData.path("minidumps/linux-mini.dmp")
        // Twelve breadcrumbs: the report shows the last ten and keeps two behind a disclosure.
        let crumbs = JSONValue.array((1...12).map { i in
            .object([("timestamp", .string("2026-11-30T10:00:\(10 + i)")), ("category", .string("navigation")),
                     ("message", .string(String(format: "crumb-%02d", i) + (i == 12 ? " " + Self.protectedValue : "")))])
        }).serialized()
        let id = try await offPool {
            try e2e.submit(server, dump: dump, annotations: ["ProductName=Firefox", "Version=120.0", "URL=https://\(Self.protectedValue)/",
                                                            "Breadcrumbs=\(crumbs)"])
        }
        _ = try await e2e.processed(server, id)

        let python = try #require(findExecutable("python3"), "python3 is required")
        let shots = (ProcessInfo.processInfo.environment["POSTMORTEM_SCREENSHOTS"] ?? TestData.packageRoot + "/.build/screenshots") + "/signed-in"
        let tokenCheck = "/api/ProcessedCrash/?crash_id=\(id)"
        func browse(_ email: String, more: [String] = []) throws -> JSONValue {
            let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/browser_pages.py", server.base, shots,
                                                             "/report/index/\(id)#reprocess"] + more + ["/profile/"],
                                                    environment: ["LOGIN_EMAIL": email, "LOGIN_PASSWORD": password, "TOKEN_CHECK_PATH": tokenCheck],
                                                    timeout: .seconds(300))
            #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(1500))")
            return JSONValue.parse(out) ?? .null
        }
        let piiSearch = "/search/?product=Firefox&_columns=uuid&_columns=url&_facets=url&url=~PROTECTED"
        let pii = try browse("pii@example.com", more: [piiSearch, Self.signatureWithChoices, "/api/tokens/#tokens"])
        #expect(pii["signed_in"]?.stringValue?.contains("pii@example.com") == true, "\(pii["signed_in"]?.serialized() ?? "")")
        #expect(pii["after_login_url"]?.stringValue?.hasSuffix("/profile/") == true)
        #expect(pii["reprocess"]?.stringValue?.contains("queued for reprocessing") == true, "\(pii["reprocess"]?.serialized() ?? "")")
        #expect(pii["signed_out"]?.stringValue?.contains("Sign in") == true)
        let piiPages = pii["pages"]?.arrayValue ?? []
        #expect(piiPages.first?["text"]?.stringValue?.contains(Self.protectedValue) == true, "view_pii sees the protected URL")
        let piiReport = piiPages.first?["text"]?.stringValue ?? ""
        #expect(piiReport.contains("Latest 10 breadcrumbs (out of 12)") && piiReport.contains("Show the 2 earlier breadcrumbs")
                && piiReport.contains("crumb-03") && piiReport.contains("crumb-12") && !piiReport.contains("crumb-02"),
                "the earlier breadcrumbs wait behind the disclosure: \(piiReport.prefix(3000))")
        #expect(piiPages.first { $0["path"]?.stringValue == piiSearch }?["text"]?.stringValue?.contains(Self.protectedValue) == true,
                "view_pii searches and sees the protected field")
        #expect(piiPages.last?["text"]?.stringValue?.contains("View Personal Identifiable Information") == true)
        for p in piiPages { #expect(p["console_errors"] == .array([]), "\(p["path"]?.stringValue ?? ""): \(p["console_errors"]?.serialized() ?? "")") }
        let piiSignature = piiPages.first { $0["path"]?.stringValue == Self.signatureWithChoices }?["text"]?.stringValue ?? ""
        #expect(piiSignature.contains("By url") && piiSignature.contains(Self.protectedValue), "view_pii aggregates by and shows the protected URL")
        // The token page: a token made with view_pii reads the protected field through the API,
        // is listed by its first characters, and once revoked on the page reads nothing.
        let tokens = pii["tokens"]
        let key = tokens?["key"]?.stringValue ?? ""
        #expect(key.count == 32, "\(tokens?.serialized() ?? "no token scenario")")
        #expect(tokens?["listed"]?.stringValue?.contains(String(key.prefix(8)) + "…") == true)
        #expect(tokens?["listed"]?.stringValue?.contains("made by the browser test") == true)
        #expect(tokens?["listed"]?.stringValue?.contains(key) == false, "the list shows the key's first characters only")
        #expect(tokens?["before"]?["status"] == .int(200) && tokens?["before"]?["body"]?.stringValue?.contains(Self.protectedValue) == true,
                "\(tokens?["before"]?.serialized() ?? "")")
        #expect(tokens?["after_revoke"]?["body"]?.stringValue?.contains(Self.protectedValue) == false)
        #expect(tokens?["after_revoke"]?["status"]?.intValue != 200, "a revoked token is refused")
        #expect(tokens?["page_after_revoke"]?.stringValue?.contains("You have no tokens.") == true)
        #expect(tokens?["console_errors"] == .array([]))
        _ = try await e2e.processed(server, id, historyAtLeast: 1)

        // A signed-in reader without view_pii, on every page that shows crash data: nothing protected.
        let everyPage = ["/", "/search/?product=Firefox&_columns=uuid&_columns=url&_facets=url&url=~PROTECTED", "/search/?product=Firefox", Self.signatureWithChoices,
                         "/topcrashers/?product=Firefox", "/signature/?signature=crash", "/documentation/datadictionary/", "/api/", "/api/tokens/"]
        let plain = try browse("plain@example.com", more: everyPage)
        #expect(plain["signed_in"]?.stringValue?.contains("plain@example.com") == true)
        #expect(plain["reprocess"] == .null, "no Reprocess button without the permission")
        #expect(plain["pages"]?.arrayValue?.first?["text"]?.stringValue?.contains(Self.protectedValue) == false)
        #expect(plain["pages"]?.arrayValue?.count == everyPage.count + 2)
        for p in plain["pages"]?.arrayValue ?? [] {
            #expect(p["text"]?.stringValue?.contains(Self.protectedValue) == false, "\(p["path"]?.stringValue ?? "") shows a protected value to a reader without view_pii")
            #expect(p["console_errors"] == .array([]), "\(p["path"]?.stringValue ?? ""): \(p["console_errors"]?.serialized() ?? "")")
        }

        // What a browser never does: a wrong password, no CSRF token, too many attempts.
        let loginPage = try await get(port, "/login/")
        let csrfCookie = try #require(loginPage.head.components(separatedBy: "\r\n").first { $0.hasPrefix("Set-Cookie: pm_login_csrf=") })
        #expect(csrfCookie.contains("HttpOnly") && csrfCookie.contains("SameSite=Lax") && csrfCookie.contains("Secure"))
        let csrf = String(csrfCookie.dropFirst("Set-Cookie: pm_login_csrf=".count).prefix { $0 != ";" })
        let wrong = try await post(port, "/login/", form: "csrf_token=\(csrf)&email=pii%40example.com&password=wrong-password-here", cookie: "pm_login_csrf=\(csrf)")
        #expect(wrong.status == 401 && wrong.body.contains("The email or password is not right."))
        let noToken = try await post(port, "/login/", form: "email=pii%40example.com&password=x", cookie: "")
        #expect(noToken.status == 403)
        let good = try await post(port, "/login/", form: "csrf_token=\(csrf)&email=PII%40example.com&password=correct+horse+battery+staple", cookie: "pm_login_csrf=\(csrf)")
        #expect(good.status == 302)
        let session = try #require(good.head.components(separatedBy: "\r\n").first { $0.hasPrefix("Set-Cookie: pm_session=") })
        let sessionToken = String(session.dropFirst("Set-Cookie: pm_session=".count).prefix { $0 != ";" })
        let forged = try await post(port, "/report/reprocess/\(id)", form: "csrf_token=guess", cookie: "pm_session=\(sessionToken)")
        #expect(forged.status == 403)
        // Tokens: no permission the user lacks, no form without its CSRF token; the JSON token
        // API on the same path still answers API callers, and browsers without a session sign in.
        let tokenPage = String(decoding: try await RawHTTPConnection.exchange(port: port, Data(
            "GET /api/tokens/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: pm_session=\(sessionToken)\r\n\r\n".utf8)), as: UTF8.self)
        let pageCSRF = try #require(tokenPage.components(separatedBy: "name=\"csrf_token\" value=\"").dropFirst().first?.prefix { $0 != "\"" })
        let overreach = try await post(port, "/api/tokens/", form: "csrf_token=\(pageCSRF)&permissions=manage_tokens", cookie: "pm_session=\(sessionToken)")
        #expect(overreach.status == 403 && overreach.body.contains("you do not have it"), "\(overreach.status ?? 0)")
        #expect(try await post(port, "/api/tokens/", form: "permissions=view_pii", cookie: "pm_session=\(sessionToken)").status == 403)
        let made = try await post(port, "/api/tokens/", form: "csrf_token=\(pageCSRF)&permissions=view_pii&expires=0", cookie: "pm_session=\(sessionToken)")
        #expect(made.status == 400 && made.body.contains("from 1 to 3650"))
        #expect(try await post(port, "/api/tokens/delete/1/", form: "csrf_token=\(pageCSRF)", cookie: "pm_session=\(sessionToken)").status == 404,
                "the browser's token was revoked; another user's ids are not found either")
        let anonymousAPI = try await get(port, "/api/tokens/")
        #expect(anonymousAPI.status == 403 && anonymousAPI.head.contains("application/json"), "\(anonymousAPI.head)")
        let anonymousBrowser = String(decoding: try await RawHTTPConnection.exchange(port: port, Data(
            "GET /api/tokens/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n".utf8)), as: UTF8.self)
        #expect(anonymousBrowser.hasPrefix("HTTP/1.1 302") && anonymousBrowser.contains("Location: /login/?next=/api/tokens/"))
        // 25 attempts from one address within 5 minutes (a sliding window): past the 10th of the window, every one is refused.
        var limited = 0
        for _ in 0..<25 {
            let r = try await post(port, "/login/", form: "csrf_token=\(csrf)&email=plain%40example.com&password=nope-nope-nope", cookie: "pm_login_csrf=\(csrf)")
            if r.status == 429 { limited += 1 }
        }
        #expect(limited >= 15, "sign-in attempts are rate-limited: \(limited) of 25 refused")
        // The sign-ins were recorded.
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let metadata = try await MetadataStore.open(database)
        let account = try #require(try await metadata.account(email: "pii@example.com"))
        #expect(try await metadata.lastLogin(accountID: account.id) != nil)
        await database.shutdown()
    }

    /// Sign-in with OpenID Connect against PyPI oidc-provider-mock: in the browser (the login
    /// page's button, the issuer's form, back signed in with an account created on first
    /// sign-in), and by hand for what a browser never does (no state, a forged code, an issuer
    /// refusal, an unknown user when accounts are not created).
    @Test func signInWithOpenIDConnect() async throws {
        let python = try #require(findExecutable("python3"), "python3 is required")
        let issuerProcess = try BackgroundProcess(python, [TestData.packageRoot + "/Tests/Oracles/oidc_issuer.py", "sso@example.com=Sam Sso"])
        defer { issuerProcess.signal(SIGTERM) }
        let issuerLine = try #require(issuerProcess.waitForLine(containing: "Listening on", timeout: .seconds(60)),
                                      "the issuer (pip oidc-provider-mock==0.3.4) did not start: \(issuerProcess.stderr.suffix(1500))")
        let issuer = String(issuerLine.dropFirst("Listening on ".count))
        let issuerPort = try #require(issuer.split(separator: ":").last.flatMap { Int($0) })
        let oidc = ["POSTMORTEM_WEB_OIDC_ISSUER": issuer, "POSTMORTEM_WEB_OIDC_CLIENT_ID": "postmortem-test",
                    "POSTMORTEM_WEB_OIDC_CLIENT_SECRET": "not-so-secret", "POSTMORTEM_WEB_OIDC_DISPLAY_NAME": "Test SSO"]

        let data = TestData.temporaryDirectory("web-oidc")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try e2e.start(symbols: nil, data: data, extraEnvironment: oidc)
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        #expect(try await get(port, "/login/").body.contains("Sign in with Test SSO"))

        let shots = (ProcessInfo.processInfo.environment["POSTMORTEM_SCREENSHOTS"] ?? TestData.packageRoot + "/.build/screenshots") + "/oidc"
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/browser_pages.py", server.base, shots, "/profile/"],
                                                environment: ["OIDC_SUB": "sso@example.com"], timeout: .seconds(300))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(1500))")
        let result = JSONValue.parse(out) ?? .null
        #expect(result["issuer_page"]?.stringValue?.contains("postmortem-test") == true, "\(result["issuer_page"]?.serialized() ?? "")")
        #expect(result["signed_in"]?.stringValue?.contains("sso@example.com") == true, "\(result.serialized().prefix(1500))")
        #expect(result["after_login_url"]?.stringValue?.hasSuffix("/profile/") == true)
        #expect(result["pages"]?.arrayValue?.first?["text"]?.stringValue?.contains("sso@example.com") == true)
        #expect(result["pages"]?.arrayValue?.first?["console_errors"] == .array([]))
        #expect(result["signed_out"]?.stringValue?.contains("Sign in") == true)
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let metadata = try await MetadataStore.open(database)
        let account = try #require(try await metadata.account(email: "sso@example.com"), "the first sign-in creates the account")
        #expect(account.name == "Sam Sso" && account.permissions.isEmpty)
        #expect(try await metadata.accountOverview(id: account.id)?.openIDSubject == "sso@example.com", "the audit can ask the issuer about this subject")
        #expect(try await metadata.lastLogin(accountID: account.id) != nil)
        await database.shutdown()

        // By hand: the start sets the state cookie and never returns to another site.
        let start = try await get(port, "/oidc/authenticate/?next=//evil.example/")
        #expect(start.status == 302 && start.head.contains("Location: \(issuer)/oauth2/authorize?response_type=code&client_id=postmortem-test"))
        #expect(start.head.contains("code_challenge_method=S256") && start.head.contains("nonce="))
        let stateCookie = try #require(start.head.components(separatedBy: "\r\n").first { $0.hasPrefix("Set-Cookie: pm_oidc=") })
        let pending = String(stateCookie.dropFirst("Set-Cookie: pm_oidc=".count).prefix { $0 != ";" })
        let state = String(pending.prefix { $0 != "." })
        #expect(stateCookie.contains("HttpOnly") && stateCookie.contains("SameSite=Lax"))
        func callback(_ query: String, cookie: String?, on port: Int) async throws -> (Int?, String) {
            let request = "GET /oidc/callback/?\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + (cookie.map { "Cookie: pm_oidc=\($0)\r\n" } ?? "") + "\r\n"
            let response = try await RawHTTPConnection.exchange(port: port, Data(request.utf8))
            return (RawHTTPConnection.status(of: response), String(decoding: response, as: UTF8.self))
        }
        #expect(try await callback("code=abc&state=\(state)", cookie: nil, on: port).0 == 403, "no state cookie")
        #expect(try await callback("code=abc&state=other", cookie: pending, on: port).0 == 403, "another state")
        let forged = try await callback("code=forged-code&state=\(state)", cookie: pending, on: port)
        #expect(forged.0 == 403 && forged.1.contains("the issuer refused the code"), "\(forged.1.suffix(600))")
        let refused = try await callback("error=access_denied&state=\(state)", cookie: pending, on: port)
        #expect(refused.0 == 403 && refused.1.contains("access_denied"))

        // A site that does not create accounts: the whole flow over raw HTTP, for a user the
        // issuer knows and the site does not.
        let closedData = TestData.temporaryDirectory("web-oidc-closed")
        defer { try? FileManager.default.removeItem(atPath: closedData) }
        let closed = try e2e.start(symbols: nil, data: closedData, extraEnvironment: oidc.merging(["POSTMORTEM_WEB_OIDC_CREATE_ACCOUNTS": "false"]) { $1 })
        defer { closed.process.signal(SIGTERM); _ = closed.process.waitForExit(timeout: .seconds(30)) }
        let closedPort = try #require(closed.base.split(separator: ":").last.flatMap { Int($0) })
        let begin = try await get(closedPort, "/oidc/authenticate/?next=/profile/")
        let authorize = try #require(begin.head.components(separatedBy: "\r\n").first { $0.hasPrefix("Location: ") }?.dropFirst("Location: ".count + issuer.count))
        let closedPending = try #require(begin.head.components(separatedBy: "\r\n").first { $0.hasPrefix("Set-Cookie: pm_oidc=") }?
            .dropFirst("Set-Cookie: pm_oidc=".count).prefix { $0 != ";" })
        let form = "sub=sso%40example.com"
        let granted = String(decoding: try await RawHTTPConnection.exchange(port: issuerPort, Data(
            ("POST \(authorize) HTTP/1.1\r\nHost: 127.0.0.1:\(issuerPort)\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             + "Content-Length: \(form.utf8.count)\r\n\r\n" + form).utf8)), as: UTF8.self)
        let back = try #require(granted.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("location: ") }, "\(granted.prefix(800))")
        let backQuery = try #require(back.split(separator: "?", maxSplits: 1).last.map(String.init))
        let unknown = try await callback(backQuery, cookie: String(closedPending), on: closedPort)
        #expect(unknown.0 == 403 && unknown.1.contains("There is no account for sso@example.com"), "\(unknown.1.suffix(600))")
        #expect(!unknown.1.contains("pm_session="))

        // An issuer without a client id and secret is a configuration error at start.
        let (badStatus, _, badErr) = try runProcess(try CommandLineTests.executable(), ["serve", "--data", closedData, "--port", "0"],
                                                    environment: ["POSTMORTEM_WEB_OIDC_ISSUER": issuer], timeout: .seconds(60))
        #expect(badStatus != 0 && String(decoding: badErr, as: UTF8.self).contains("web.oidc.client_id"))
    }

    /// `postmortem webapp` alone (no collector, processor or symbol server) serves every page
    /// and the token page on the data `serve` left.
    @Test func webappAloneServesThePages() async throws {
        let data = TestData.temporaryDirectory("web-webapp")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let id: String
        do {
            let server = try e2e.start(symbols: nil, data: data)
            defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
            let dump = try TestData.path("minidumps/linux-mini.dmp")
            id = try await offPool { try e2e.submit(server, dump: dump) }
            _ = try await e2e.processed(server, id)
        }
        let webapp = try BackgroundProcess(try CommandLineTests.executable(), ["webapp", "--data", data, "--port", "0"])
        defer { webapp.signal(SIGTERM); _ = webapp.waitForExit(timeout: .seconds(30)) }
        let line = try #require(webapp.waitForLine(containing: "Listening on"), "webapp did not start: \(webapp.stderr.suffix(1500))")
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0) })
        for page in ["/", "/report/index/\(id)", "/search/?product=Firefox", "/topcrashers/?product=Firefox", "/signature/?signature=crash",
                     "/documentation/datadictionary/", "/api/", "/login/", "/__heartbeat__"] {
            let (status, _, body) = try await get(port, page)
            #expect(status == 200, "\(page): \(body.prefix(300))")
        }
        #expect(try await get(port, "/report/index/\(id)").body.contains("Crash analysis"))
        #expect(try await get(port, "/api/tokens/").head.contains("Location: /login/?next=/api/tokens/"), "the token page asks to sign in")
        #expect(try await get(port, "/api/SuperSearch/?product=Firefox").body.contains("\"total\": 1"))
        #expect(try await get(port, "/submit").status == 404, "no collector in the webapp")
    }

    @Test func otherHostNamesGoToTheCanonicalHost() async throws {
        let data = TestData.temporaryDirectory("web-canonical")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try e2e.start(symbols: nil, data: data, extraEnvironment: ["POSTMORTEM_WEB_CANONICAL_HOST": "crash-stats.example.com"])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        func get(_ target: String, host: String) async throws -> String {
            String(decoding: try await RawHTTPConnection.exchange(port: port, Data("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)), as: UTF8.self)
        }
        let moved = try await get("/search/?product=Firefox&signature=~a%20b", host: "crash-stats.example.org")
        #expect(moved.hasPrefix("HTTP/1.1 301") && moved.contains("Location: https://crash-stats.example.com/search/?product=Firefox&signature=~a%20b"))
        #expect(try await get("/", host: "127.0.0.1").contains("Location: https://crash-stats.example.com/"))
        #expect(try await get("/", host: "crash-stats.example.com").hasPrefix("HTTP/1.1 200"))
        #expect(try await get("/__heartbeat__", host: "127.0.0.1").hasPrefix("HTTP/1.1 200"), "operational endpoints are exempt")
        #expect(try await get("/__version__", host: "other.example").hasPrefix("HTTP/1.1 200"))
    }
}
