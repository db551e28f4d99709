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
                     "/report/index/\(forged)"]
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
                                                + pages.map { $0 == "/report/index/\(plain)" ? $0 + "#tabs" : $0 } + ["/report/index/\(waiting)"],
                                                timeout: .seconds(300))
        #expect(status == 0, "headless Chromium (apt chromium chromium-driver, pip selenium): \(String(decoding: err, as: UTF8.self).suffix(1500))")
        let result = try #require(JSONValue.parse(out))
        let loaded = result["pages"]?.arrayValue ?? []
        #expect(loaded.count == pages.count + 1)
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
}
