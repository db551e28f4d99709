import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// The collector with real clients and real failures: Google Crashpad's own handler, and a
/// server killed with SIGKILL in the middle of a load.
@Suite(.serialized) struct CollectorEndToEndTests {
    func startServer(data: String, port: Int = 0) throws -> (BackgroundProcess, String) {
        let server = try BackgroundProcess(try CommandLineTests.executable(), ["serve", "--data", data, "--port", String(port)])
        guard let line = server.waitForLine(containing: "Listening on") else {
            throw TestServices.Unavailable(description: "serve did not start: \(server.stderr)")
        }
        return (server, String(line.dropFirst("Listening on ".count)))
    }

    @Test func aRealCrashpadHandlerReportIsAcceptedAndStored() async throws {
        let script = try TestData.root() + "/../tools/crashpad-crasher/run_crash.sh"
        #expect(FileManager.default.fileExists(atPath: script), "\(script) is missing")
        let handler = try TestServices.crashpadHandler()
        let data = TestData.temporaryDirectory("crashpad-e2e")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, base) = try startServer(data: data)
        let work = data + "/client"
        let crash = try runProcess("/usr/bin/env", ["CRASHPAD_HANDLER=\(handler)", "bash", script, base + "/submit", work])
        #expect(crash.status == 0, "run_crash.sh: \(String(decoding: crash.stderr, as: UTF8.self))")

        let blobs = try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs"))
        var raws: [String] = []
        for _ in 0..<100 where raws.isEmpty { // the handler uploads right after the crash
            raws = try await blobs.list(prefix: "v1/raw_crash/")
            if raws.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(raws.count == 1, "\(server.stderr)")
        let key = try #require(raws.first)
        let id = String(key.split(separator: "/").last!)
        let rawData = try #require(try await blobs.get(key))
        let raw = try #require(JSONValue.parse(rawData))
        #expect(raw["ProductName"] == .string("TestApp") && raw["Version"] == .string("1.0"))
        #expect(raw["prod"] == .string("TestApp") && raw["ver"] == .string("1.0"))
        #expect(raw["metadata"]?["payload_compressed"] == .string("1"), "Crashpad gzips its uploads")
        #expect(raw["guid"] != nil, "the client id from the URL is kept")
        let dump = try #require(try await blobs.get("v1/dump/\(id)"))
        #expect(dump.prefix(4) == Data("MDMP".utf8) && dump.count > 1000)
        #expect(try await blobs.get("v1/dump_names/\(id)") == Data(#"["upload_file_minidump"]"#.utf8))

        // serve's processor workers walk the real dump: a SIGSEGV on Linux.
        var processed: JSONValue?
        for _ in 0..<100 where processed == nil {
            processed = try await blobs.get("v1/processed_crash/\(id)").flatMap { JSONValue.parse($0) }
            if processed == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(processed?["reason"]?.stringValue?.hasPrefix("SIGSEGV") == true, "\(processed?["reason"] ?? .null)")
        #expect(processed?["os_name"] == .string("Linux") && processed?["product"] == .string("TestApp"))
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: .seconds(30)) == 0)
    }

    @Test func noAcknowledgedCrashIsLostWhenTheServerIsKilled() async throws {
        let data = TestData.temporaryDirectory("kill")
        defer { try? FileManager.default.removeItem(atPath: data) }
        var (server, base) = try startServer(data: data)
        let port = Int(base.split(separator: ":").last!)!
        let idsFile = data + "/ids.txt"
        let load = try BackgroundProcess(try CommandLineTests.executable(), [
            "submit", base + "/submit", "--load", "--count", "0", "--duration", "6", "--concurrency", "8",
            "--size-mean", "60000", "--ids-file", idsFile, "--timeout", "10",
        ])
        try await Task.sleep(for: .seconds(2))
        server.signal(SIGKILL)
        _ = server.waitForExit(timeout: .seconds(10))
        try await Task.sleep(for: .milliseconds(300))
        (server, _) = try startServer(data: data, port: port)
        let summary = load.waitForLine(containing: "status:")
        #expect(load.waitForExit(timeout: .seconds(60)) != nil)

        let ids = try String(contentsOfFile: idsFile, encoding: .utf8).split(separator: "\n").map(String.init)
        let blobs = try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs"))
        var missing: [String] = []
        for id in ids {
            let raw = try await blobs.get(BlobKeys.rawCrash(id, date: "20" + id.suffix(6)))
            let names = try await blobs.get(BlobKeys.dumpNames(id))
            let dump = try await blobs.get(BlobKeys.dump(id, name: "upload_file_minidump"))
            if raw == nil || names == nil || dump == nil { missing.append(id) }
        }
        let stored = try await blobs.list(prefix: "v1/raw_crash/").count
        print("kill test: \(ids.count) crash ids acknowledged, \(stored) raw crashes stored, \(missing.count) acknowledged but missing; \(summary ?? "")")
        #expect(ids.count > 50, "the load did not run")
        #expect(missing.isEmpty, "acknowledged but not stored: \(missing.prefix(5))")
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// `submit --crash-dir` replays a `crashstats-tools fetch-data` directory; `collector stats`
    /// reports the payload sizes the collector saw.
    @Test func replaysACrashDirectoryAndReportsPayloadSizes() async throws {
        let data = TestData.temporaryDirectory("replay")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let source = data + "/fetched"
        let ids = ["11111111-2222-4333-8444-555555261101", "66666666-7777-4888-9999-000000261102"]
        for (n, id) in ids.enumerated() {
            try FileManager.default.createDirectory(atPath: "\(source)/raw_crash/2026110\(n + 1)", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "\(source)/dump_names", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "\(source)/dump", withIntermediateDirectories: true)
            let payload = n == 0 ? "json" : "multipart"
            let raw = #"{"ProductName": "Firefox", "Version": "120.0", "uuid": "\#(id)", "submitted_timestamp": "2026-11-01T00:00:00+00:00", "version": 2, "metadata": {"payload": "\#(payload)", "payload_compressed": "\#(n)"}}"#
            try Data(raw.utf8).write(to: URL(fileURLWithPath: "\(source)/raw_crash/2026110\(n + 1)/\(id)"))
            try Data(#"["dump"]"#.utf8).write(to: URL(fileURLWithPath: "\(source)/dump_names/\(id)"))
            try Data(("MDMP" + String(repeating: "x", count: 2000 * (n + 1))).utf8).write(to: URL(fileURLWithPath: "\(source)/dump/\(id)"))
        }
        let (server, base) = try startServer(data: data + "/server")
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), ["submit", base + "/submit", "--crash-dir", source])
        let text = String(decoding: out, as: UTF8.self)
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        #expect(text.contains("sent 2: 200 × 2"), "\(text)")
        let blobs = try FileBlobStore(root: URL(fileURLWithPath: data + "/server/blobs"))
        let stored = try await blobs.list(prefix: "v1/raw_crash/")
        #expect(stored.count == 2)
        for key in stored {
            let rawData = try #require(try await blobs.get(key))
            let raw = try #require(JSONValue.parse(rawData))
            #expect(raw["ProductName"] == .string("Firefox") && raw["uuid"] != .string(ids[0]) && raw["uuid"] != .string(ids[1]))
            let id = String(key.split(separator: "/").last!)
            #expect(try await blobs.get("v1/dump/\(id)")?.prefix(4) == Data("MDMP".utf8))
            let compressed = raw["metadata"]?["payload_compressed"]
            let json = raw["metadata"]?["payload"]
            #expect((compressed == .string("0") && json == .string("json")) || (compressed == .string("1") && json == .string("multipart")))
        }
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: .seconds(30)) == 0)
        let (s2, statsOut, _) = try runProcess(try CommandLineTests.executable(), ["collector", "stats", "--data", data + "/server"])
        let stats = String(decoding: statsOut, as: UTF8.self)
        #expect(s2 == 0 && stats.contains("payloads in the last 24.0 h: 2 (50 % gzip)"), "\(stats)")
        #expect(stats.contains("as received") && stats.contains("uncompressed"))
    }
}
