import AsyncHTTPClient
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// `postmortem symbols upload` → `serve`'s symbol server → the processor: a crash that came in
/// before its symbols is made whole by the upload, with no flag and no polling.
@Suite(.serialized) struct SymbolServerEndToEndTests {
    func run(_ args: [String]) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), args)
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func getJSON(_ url: String) async throws -> JSONValue? {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        return JSONValue.parse(Data(try await response.body.collect(upTo: 16 << 20).readableBytesView))
    }

    /// `symbols upload` retries 503s with backoff and stops at a refusal.
    @Test func theUploadClientRetriesServerErrors() async throws {
        let dir = TestData.temporaryDirectory("upload-client")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let answer = #"{"upload": {"files": ["v1/a.so/AB/a.so.sym"], "skipped_keys": [], "ignored_keys": ["x-symbols.txt"]}}"#
        try answer.write(toFile: dir + "/answer.json", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/tree/a.so/AB", withIntermediateDirectories: true)
        try "MODULE Linux x86_64 AB a.so\n".write(toFile: dir + "/tree/a.so/AB/a.so.sym", atomically: true, encoding: .utf8)
        try "x\n".write(toFile: dir + "/tree/x-symbols.txt", atomically: true, encoding: .utf8)
        try "0123456789abcdef0123456789abcdef".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let server = try TestHTTPServer(routes: ["/upload/": .failing(503, times: 2, then: .file(dir + "/answer.json"))])
        defer { server.shutdown() }
        let (status, out, err) = try run(["symbols", "upload", dir + "/tree", "--url", server.baseURL, "--token-file", dir + "/token"])
        #expect(status == 0, "\(err)")
        #expect(server.requests(to: "/upload/") == 3)
        #expect(err.components(separatedBy: "retrying in").count == 3, "\(err)")
        #expect(out == "stored   v1/a.so/AB/a.so.sym\nignored  x-symbols.txt\n")

        let refusing = try TestHTTPServer(routes: ["/upload/": .status(403)])
        defer { refusing.shutdown() }
        let (refused, _, why) = try run(["symbols", "upload", dir + "/tree", "--url", refusing.baseURL, "--token-file", dir + "/token"])
        #expect(refused == 1 && why.contains("HTTP 403") && refusing.requests(to: "/upload/") == 1, "\(why)")
    }

    @Test func uploadedSymbolsMakeAWaitingCrashWhole() async throws {
        let data = TestData.temporaryDirectory("symbols-e2e")
        defer { try? FileManager.default.removeItem(atPath: data) }
        // The late-symbols watcher is slowed to an hour: only the upload can wake the crash.
        let server = try BackgroundProcess(try CommandLineTests.executable(), ["serve", "--data", data, "--port", "0"],
                                           environment: ["POSTMORTEM_PROCESSOR_LATE_SYMBOLS_INTERVAL": "3600"])
        defer { server.signal(SIGTERM); _ = server.waitForExit(timeout: .seconds(30)) }
        guard let line = server.waitForLine(containing: "Listening on") else { Issue.record("serve did not start: \(server.stderr)"); return }
        let base = String(line.dropFirst("Listening on ".count))
        let e2e = ProcessorEndToEndTests()
        let s = ProcessorEndToEndTests.Server(process: server, base: base, data: data, blobs: try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs")))

        let id = try e2e.submit(s, dump: try TestData.path("minidumps/test.dmp"))
        let before = try await e2e.processed(s, id)
        #expect(before["signature"] != .string("(anonymous namespace)::CrashFunction"))
        let report = try await getJSON(base + "/api/missingsymbols/")
        let waiting = report?["hits"]?.arrayValue?.first { $0["debug_file"]?.stringValue == "test_app.pdb" }
        #expect(waiting?["crashes"] == .int(1), "\(report?.serialized() ?? "no report")")

        // An uploader with a token, then the symbol tree, split into archives of at most 1 MB.
        #expect(try run(["users", "create", "ci@example.com", "--data", data]).0 == 0)
        #expect(try run(["users", "grant", "ci@example.com", "upload_symbols", "--data", data]).0 == 0)
        let (status, token, err) = try run(["tokens", "create", "ci@example.com", "--permission", "upload_symbols", "--data", data])
        #expect(status == 0, "\(err)")
        let tokenFile = data + "/token"
        try token.trimmingCharacters(in: .whitespacesAndNewlines).write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let uploadStarted = ContinuousClock.now
        let (uploaded, out, uploadErr) = try run(["symbols", "upload", try TestData.path("symbols"), "--url", base, "--token-file", tokenFile,
                                                  "--max-size-mb", "1"])
        #expect(uploaded == 0, "\(uploadErr)")
        #expect(out.contains("stored   v1/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"), "\(out)")
        #expect(uploadErr.contains("[2/"), "a 5 MB tree goes up in several archives: \(uploadErr)")
        #expect(uploadErr.contains("sent 100%"), "progress lines (not a terminal): \(uploadErr)")

        // kernel32.pdb and test_app.pdb arrive in different archives: each wakes the crash.
        var after = try await e2e.processed(s, id, historyAtLeast: 1)
        while after["signature"] != .string("(anonymous namespace)::CrashFunction"), ContinuousClock.now - uploadStarted < .seconds(30) {
            try await Task.sleep(for: .milliseconds(100))
            after = try await e2e.processed(s, id, historyAtLeast: 1)
        }
        #expect(ContinuousClock.now - uploadStarted < .seconds(10))
        #expect(after["signature"] == .string("(anonymous namespace)::CrashFunction"))
        #expect(after["processor_notes"]?.stringValue?.contains("symbols for a module this crash lacked became available") == true)
        let afterReport = try await getJSON(base + "/api/missingsymbols/")
        #expect(afterReport?["hits"]?.arrayValue?.contains { $0["debug_file"]?.stringValue == "test_app.pdb" } == false)

        // The same tree again: everything is skipped.
        let (_, again, _) = try run(["symbols", "upload", try TestData.path("symbols"), "--url", base, "--token-file", tokenFile])
        #expect(!again.contains("stored ") && again.contains("skipped  test_app.pdb/"), "\(again)")

        // A stackwalk against serve as a symbol server.
        let (walked, json, walkErr) = try run(["stackwalk", try TestData.path("minidumps/test.dmp"), "--symbols-url", base + "/",
                                             "--symbols-cache", data + "/walk-cache"])
        #expect(walked == 0, "\(walkErr)")
        #expect(json.contains("CrashFunction"))
    }
}
