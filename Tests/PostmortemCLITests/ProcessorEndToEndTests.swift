import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// `postmortem submit` → `postmortem serve` (collector, queue, processor workers) → processed
/// crash, with the shared test dumps and symbols.
@Suite(.serialized) struct ProcessorEndToEndTests {
    struct Server {
        let process: BackgroundProcess
        let base: String
        let data: String
        let blobs: FileBlobStore
    }

    func start(symbols: String?, data: String = TestData.temporaryDirectory("processor"), extraEnvironment: [String: String] = [:]) throws -> Server {
        var arguments = ["serve", "--data", data, "--port", "0"]
        if let symbols { arguments += ["--symbols-path", symbols] }
        let server = try BackgroundProcess(try CommandLineTests.executable(), arguments, environment: extraEnvironment)
        guard let line = server.waitForLine(containing: "Listening on") else {
            throw TestServices.Unavailable(description: "serve did not start: \(server.stderr)")
        }
        return Server(process: server, base: String(line.dropFirst("Listening on ".count)), data: data,
                      blobs: try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs")))
    }

    func submit(_ server: Server, dump: String?, annotations: [String] = ["ProductName=Firefox", "Version=120.0"]) throws -> String {
        var arguments = ["submit", server.base + "/submit"]
        if let dump { arguments.append(dump) } else { arguments += ["--load", "--count", "0"] }
        for a in annotations { arguments += ["--annotation", a] }
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), arguments)
        let text = String(decoding: out, as: UTF8.self)
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        return String(text.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("CrashID=bp-".count))
    }

    /// Waits for the processed crash (with `completedAfter`, for a reprocessed one).
    func processed(_ server: Server, _ id: String, historyAtLeast: Int = 0) async throws -> JSONValue {
        for _ in 0..<300 {
            if let data = try await server.blobs.get(BlobKeys.processedCrash(id)), let p = JSONValue.parse(data),
               (p["processor_history"]?.arrayValue?.count ?? 0) >= historyAtLeast {
                return p
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestServices.Unavailable(description: "\(id) was not processed: \(server.process.stderr.suffix(2000))")
    }

    func golden(_ name: String) throws -> JSONValue {
        try #require(JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: try TestData.path("expected/\(name)")))))
    }

    func functions(_ thread: JSONValue?) -> [String?] {
        (thread?["frames"]?.arrayValue ?? []).map { $0["function"]?.stringValue }
    }

    @Test func processesTheTestDumpsToTheirGoldenStacksAndSignatures() async throws {
        let server = try start(symbols: try TestData.path("symbols"))
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }

        // test.dmp with symbols.
        let id = try submit(server, dump: try TestData.path("minidumps/test.dmp"))
        let p = try await processed(server, id)
        let gold = try golden("test.dmp.json")
        #expect(p["success"] == .bool(true) && p["reason"] == .string("EXCEPTION_ACCESS_VIOLATION_WRITE") && p["address"] == .string("0x00000045"))
        #expect(Array(functions(p["json_dump"]?["crashing_thread"]).prefix(3)) == Array(functions(gold["crashing_thread"]).prefix(3)))
        #expect(p["signature"] == .string("(anonymous namespace)::CrashFunction"))
        #expect(p["proto_signature"]?.stringValue?.hasPrefix("(anonymous namespace)::CrashFunction | main") == true)
        #expect(p["os_name"] == .string("Windows NT") && p["os_pretty_version"] == .string("Windows XP") && p["cpu_arch"] == .string("x86"))
        #expect(p["product"] == .string("Firefox") && p["major_version"] == .int(120) && p["process_type"] == .string("parent"))
        #expect(p["modules_in_stack"]?.stringValue?.contains("test_app.exe/5A9832E5287241C1838ED98914E9B7FF1") == true)
        #expect(p["crash_id"] == .string(id) && p["processor_notes"]?.stringValue?.hasPrefix(">>> Start processing: ") == true)

        // linux-mini.dmp and the macOS inlines dump: reason, address and top frames of the goldens.
        for name in ["linux-mini.dmp", "pipeline-inlines-macos-segv.dmp"] {
            let id = try submit(server, dump: try TestData.path("minidumps/\(name)"))
            let p = try await processed(server, id)
            let gold = try golden("\(name).json")
            #expect(p["reason"]?.stringValue == gold["crash_info"]?["type"]?.stringValue, "\(name)")
            #expect(p["json_dump"]?["crash_info"]?["address"] == gold["crash_info"]?["address"], "\(name)")
            #expect(Array(functions(p["json_dump"]?["crashing_thread"]).prefix(3)) == Array(functions(gold["crashing_thread"]).prefix(3)), "\(name)")
            let signature = try #require(p["signature"]?.stringValue)
            #expect(!signature.isEmpty && !signature.hasPrefix("EMPTY: crash failed"), "\(name): \(signature)")
        }
        let mac = try await processed(server, try submit(server, dump: try TestData.path("minidumps/pipeline-inlines-macos-segv.dmp")))
        // Inlines come before their frame: the inlined write_volatile leads, then the function it is in.
        #expect(mac["proto_signature"]?.stringValue?.hasPrefix("core::ptr::write_volatile::<T> | sadness_generator::raise_segfault | crash_client::real_main") == true,
                "\(mac["proto_signature"] ?? .null)")

        // The corrupt invalid-* dumps: an error signature and a note saying why. (invalid-parameter.dmp
        // is a well-formed dump of a STATUS_INVALID_PARAMETER crash and is processed normally.)
        let parameter = try await processed(server, try submit(server, dump: try TestData.path("minidumps/invalid-parameter.dmp")))
        #expect(parameter["reason"] == .string("STATUS_INVALID_PARAMETER") && parameter["success"] == .bool(true))
        let corrupt = try TestData.files(under: "minidumps", suffix: ".dmp").filter { ["invalid-range.dmp", "invalid-record-count.dmp"].contains(($0 as NSString).lastPathComponent) }
        #expect(corrupt.count == 2)
        for dump in corrupt {
            let p = try await processed(server, try submit(server, dump: dump))
            #expect(p["signature"]?.stringValue?.hasPrefix("EMPTY") == true, "\(dump): \(p["signature"] ?? .null)")
            #expect(p["processor_notes"]?.stringValue?.contains("could not be read") == true, "\(dump)")
            #expect(p["mdsw_status_string"] == .string("ERROR_MINIDUMP_PARSE"))
        }
    }

    @Test func anAnnotationOnlyReportTakesItsPlatformFromAnnotations() async throws {
        let server = try start(symbols: nil)
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let payload = TestData.temporaryDirectory("annot") + "/empty.dmp"
        try Data().write(to: URL(fileURLWithPath: payload))
        let id = try submit(server, dump: payload, annotations: [
            "ProductName=Fenix", "Version=130.0", "Android_CPU_ABI=arm64-v8a", "Android_Version=34 (REL)",
            "JavaStackTrace=java.lang.IllegalStateException: boom\n\tat org.mozilla.Foo.bar(Foo.java:12)",
        ])
        let p = try await processed(server, id)
        #expect(p["os_name"] == .string("Android") && p["os_version"] == .string("34 (REL)") && p["cpu_arch"] == .string("arm64"))
        #expect(p["mdsw_status_string"] == .string("EmptyMinidump"))
        #expect(p["java_stack_trace"] == .string("java.lang.IllegalStateException\n\tat org.mozilla.Foo.bar(Foo.java:12)"))
        #expect(p["signature"]?.stringValue?.hasPrefix("java.lang.IllegalStateException") == true, "\(p["signature"] ?? .null)")
    }

    @Test func reprocessingKeepsTheHistoryWithBothRulesets() async throws {
        let server = try start(symbols: try TestData.path("symbols"))
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let id = try submit(server, dump: try TestData.path("minidumps/test.dmp"))
        let first = try await processed(server, id)
        for (n, ruleset) in ["regenerate_signature", "default"].enumerated() {
            let (status, out, err) = try runProcess(try CommandLineTests.executable(), ["reprocess", "--data", server.data, "--ruleset", ruleset, "bp-" + id])
            #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
            #expect(String(decoding: out, as: UTF8.self) == "queued 1 crash for reprocessing (\(ruleset))\n")
            let again = try await processed(server, id, historyAtLeast: n + 1)
            #expect(again["signature"] == first["signature"])
            #expect(again["processor_history"]?.arrayValue?.count == n + 1)
            #expect(again["json_dump"]?["crashing_thread"] == first["json_dump"]?["crashing_thread"])
        }
        let (bad, _, _) = try runProcess(try CommandLineTests.executable(), ["reprocess", "--data", server.data, "--ruleset", "nope", id])
        #expect(bad == 2)
    }

    /// A crash whose stackwalk outlives the time limit (its symbol server never answers in time)
    /// is finished with an error signature and a note; the crashes after it keep flowing.
    @Test func aStackwalkOverItsTimeLimitDoesNotStallTheQueue() async throws {
        let symbolFile = try TestData.path("symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym")
        let slow = try TestHTTPServer(routes: ["/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym": .delayed(milliseconds: 20_000, .file(symbolFile))])
        defer { slow.shutdown() }
        let data = TestData.temporaryDirectory("poison")
        let server = try BackgroundProcess(try CommandLineTests.executable(), ["serve", "--data", data, "--port", "0", "--symbols-url", slow.baseURL + "/"],
                                           environment: ["POSTMORTEM_PROCESSOR_STACKWALK_TIME_LIMIT_MS": "500", "POSTMORTEM_PROCESSOR_WORKERS": "1"])
        guard let line = server.waitForLine(containing: "Listening on") else { Issue.record("serve did not start: \(server.stderr)"); return }
        let s = Server(process: server, base: String(line.dropFirst("Listening on ".count)), data: data,
                       blobs: try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs")))
        defer { server.signal(SIGTERM); _ = server.waitForExit(timeout: .seconds(30)) }

        let started = ContinuousClock.now
        let poison = try submit(s, dump: try TestData.path("minidumps/test.dmp"))
        let empty = TestData.temporaryDirectory("poison-next") + "/empty.dmp"
        try Data().write(to: URL(fileURLWithPath: empty))
        let next = try submit(s, dump: empty, annotations: ["ProductName=Firefox", "OS=Linux"])
        let p = try await processed(s, poison)
        #expect(p["mdsw_status_string"] == .string("ERROR_TIMEOUT"))
        #expect(p["processor_notes"]?.stringValue?.contains("took longer than 0.5 seconds and was abandoned") == true, "\(p["processor_notes"] ?? .null)")
        #expect(p["signature"]?.stringValue?.hasPrefix("EMPTY") == true)
        let q = try await processed(s, next)
        #expect(q["os_name"] == .string("Linux"))
        // Both were done long before the slow symbol server would have answered.
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    /// A crash processed before its symbols existed is reprocessed by itself once they appear.
    @Test func lateSymbolsTriggerReprocessing() async throws {
        let tree = TestData.temporaryDirectory("late-symbols")
        let data = TestData.temporaryDirectory("late")
        let server = try BackgroundProcess(try CommandLineTests.executable(), ["serve", "--data", data, "--port", "0", "--symbols-path", tree],
                                           environment: ["POSTMORTEM_PROCESSOR_LATE_SYMBOLS_INTERVAL": "1"])
        guard let line = server.waitForLine(containing: "Listening on") else { Issue.record("serve did not start: \(server.stderr)"); return }
        let s = Server(process: server, base: String(line.dropFirst("Listening on ".count)), data: data,
                       blobs: try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs")))
        defer { server.signal(SIGTERM); _ = server.waitForExit(timeout: .seconds(30)) }

        let id = try submit(s, dump: try TestData.path("minidumps/test.dmp"))
        let before = try await processed(s, id)
        #expect(before["signature"] != .string("(anonymous namespace)::CrashFunction"), "\(before["signature"] ?? .null)")
        #expect(before["missing_symbols"]?.stringValue?.contains("test_app.pdb") == true || before["missing_symbols"]?.stringValue?.contains("test_app") == true)

        // The symbols arrive.
        let source = try TestData.path("symbols/test_app.pdb")
        try FileManager.default.copyItem(atPath: source, toPath: tree + "/test_app.pdb")
        let after = try await processed(s, id, historyAtLeast: 1)
        #expect(after["signature"] == .string("(anonymous namespace)::CrashFunction"))
        #expect(after["processor_notes"]?.stringValue?.contains("symbols for a module this crash lacked became available") == true)
    }
}
