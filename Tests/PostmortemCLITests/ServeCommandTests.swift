import AsyncHTTPClient
import Foundation
import Storage
import Testing
import TestSupport

/// `postmortem serve` as an operator runs it: a real process, real HTTP over loopback.
@Suite(.serialized) struct ServeCommandTests {
    struct Answer {
        let status: Int
        let body: String
    }

    func get(_ url: String) async throws -> Answer {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), body: String(buffer: body))
    }

    func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (BackgroundProcess, String, Duration) {
        let started = ContinuousClock.now
        let server = try BackgroundProcess(try CommandLineTests.executable(), arguments, environment: environment)
        guard let line = server.waitForLine(containing: "Listening on") else {
            throw TestServices.Unavailable(description: "serve exited before listening: \(server.stderr)")
        }
        let base = String(line.dropFirst("Listening on ".count))
        return (server, base, ContinuousClock.now - started)
    }

    @Test func servesHeartbeatsOnTheEmbeddedDefaultAndStopsOnSIGTERM() async throws {
        let data = TestData.temporaryDirectory("serve")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, base, startup) = try start(["serve", "--data", data, "--port", "0"])
        let lb = try await get(base + "/__lbheartbeat__")
        #expect(lb.status == 200)
        let heartbeat = try await get(base + "/__heartbeat__")
        #expect(heartbeat.status == 200, "\(heartbeat.body)")
        #expect(heartbeat.body.contains(#""checks": {"database": "ok", "blob_store": "ok", "queue": "ok", "scheduled_jobs": "ok"}"#))
        let version = try await get(base + "/__version__")
        #expect(version.status == 200 && version.body.contains(#""version": ""#))
        let metrics = try await get(base + "/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("http_server_request_duration"))
        #expect(FileManager.default.fileExists(atPath: data + "/postmortem.sqlite"))
        #expect(FileManager.default.fileExists(atPath: data + "/blobs"))
        // Logs are structured: one JSON object per line.
        let firstLog = try #require(server.stderr.split(separator: "\n").first)
        #expect((try? JSONSerialization.jsonObject(with: Data(firstLog.utf8))) is [String: Any])

        let stopping = ContinuousClock.now
        server.signal(SIGTERM)
        let status = server.waitForExit(timeout: .seconds(30))
        let shutdown = ContinuousClock.now - stopping
        #expect(status == 0, "\(server.stderr)")
        print("serve: listening after \(startup), stopped \(shutdown) after SIGTERM")
    }

    @Test func runsOnPostgreSQLAndS3ByConfigurationAlone() async throws {
        let (databaseURL, drop) = try await StorageTestDatabase.fresh()
        defer { Task { await drop() } }
        let endpoint = try TestServices.s3Endpoint()
        let bucket = TestServices.uniqueName("pm-serve")
        try await S3BlobStore(configuration: S3Configuration(endpoint: endpoint, bucket: bucket, accessKey: "testing", secretKey: "testing"))
            .createBucketIfNeeded()
        let env = ["POSTMORTEM_DATABASE_URL": databaseURL, "POSTMORTEM_S3_BUCKET": bucket, "POSTMORTEM_S3_ENDPOINT": endpoint,
                   "POSTMORTEM_S3_ACCESS_KEY": "testing", "POSTMORTEM_S3_SECRET_KEY": "testing"]
        let (server, base, _) = try start(["serve", "--port", "0", "--data", TestData.temporaryDirectory("serve-scale")], environment: env)
        let heartbeat = try await get(base + "/__heartbeat__")
        #expect(heartbeat.status == 200, "\(heartbeat.body)")
        #expect(server.stderr.contains(#""database": "postgres""#) && server.stderr.contains(#""embedded": "false""#))
        #expect(server.stderr.contains("s3 bucket \(bucket)"))
        server.signal(SIGTERM)
        #expect(server.waitForExit(timeout: .seconds(30)) == 0)

        // A missing bucket makes the heartbeat fail; the public body names the check, the log says
        // why (bucket names and paths are not for anonymous callers).
        var broken = env
        let missingBucket = TestServices.uniqueName("pm-missing")
        broken["POSTMORTEM_S3_BUCKET"] = missingBucket
        broken["POSTMORTEM_S3_MAX_ATTEMPTS"] = "1"
        let (second, base2, _) = try start(["serve", "--port", "0"], environment: broken)
        let failing = try await get(base2 + "/__heartbeat__")
        #expect(failing.status == 500)
        #expect(failing.body.contains(#""blob_store": "error""#))
        #expect(!failing.body.contains("HTTP 404") && !failing.body.contains(missingBucket))
        second.signal(SIGINT)
        #expect(second.waitForExit(timeout: .seconds(30)) == 0)
        #expect(second.stderr.contains("heartbeat check failed") && second.stderr.contains("HTTP 404"))
    }

    @Test func badConfigurationIsAUsageError() throws {
        let (status, _, err) = try runProcess(try CommandLineTests.executable(), ["serve", "--port", "70000"])
        #expect(status == 2 && err.count > 0)
        let file = TestData.temporaryDirectory("config") + "/postmortem.json"
        try Data(#"{"log": {"format": "xml"}}"#.utf8).write(to: URL(fileURLWithPath: file))
        let (s2, _, e2) = try runProcess(try CommandLineTests.executable(), ["serve", "--config", file])
        #expect(s2 == 2)
        #expect(String(decoding: e2, as: UTF8.self).contains("log.format"))
    }

    /// A writer killed at random points of `blobs put` (between write, fsync and rename) never
    /// leaves a partial object under the key: it holds the old object or the whole new one.
    @Test func aKilledBlobWriteNeverLeavesAPartialObject() async throws {
        let data = TestData.temporaryDirectory("durability")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let store = try FileBlobStore(root: URL(fileURLWithPath: data + "/blobs"))
        let old = Data("the old object".utf8)
        try await store.put("v1/dump/victim", old)
        let source = data + "/new.bin"
        var new = Data(count: 64 << 20)
        new.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 } // no two blocks alike
        }
        try new.write(to: URL(fileURLWithPath: source))
        let executable = try CommandLineTests.executable()

        let directory = data + "/blobs/v1/dump"
        func temporaryFiles() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix(".tmp-") }
        }
        /// Starts a writer and returns once its temporary file exists (the write has begun) or it
        /// has exited: process start-up time varies too much on a busy machine to aim kills from it.
        func startWriter(_ key: String) throws -> BackgroundProcess {
            let writer = try BackgroundProcess(executable, ["blobs", "put", "--data", data, key, source])
            let deadline = ContinuousClock.now + .seconds(30)
            while temporaryFiles().isEmpty && writer.isRunning && ContinuousClock.now < deadline { usleep(500) }
            return writer
        }

        // How long the write itself (temporary file → renamed) takes here; kills are spread over it.
        let timingWriter = try startWriter("v1/dump/timing")
        let writeStarted = ContinuousClock.now
        #expect(timingWriter.waitForExit(timeout: .seconds(60)) == 0, "\(timingWriter.stderr)")
        let whole = ContinuousClock.now - writeStarted
        try await store.delete("v1/dump/timing")

        var interruptedMidWrite = 0
        var completed = 0
        // Up to three passes: on a busy machine one write can take much longer than the timed one,
        // and a pass whose kills all land after the rename exercises nothing.
        for (pass, tenth) in (0..<3).flatMap({ p in (0..<12).map { (p, $0) } }) where pass == 0 || interruptedMidWrite == 0 {
            try await store.put("v1/dump/victim", old)
            let writer = try startWriter("v1/dump/victim")
            try await Task.sleep(for: whole * Double(tenth) / 10)
            writer.signal(SIGKILL)
            _ = writer.waitForExit(timeout: .seconds(30))
            if !temporaryFiles().isEmpty { interruptedMidWrite += 1 }
            let now = try #require(try await store.get("v1/dump/victim"))
            #expect(now == old || now == new, "partial object of \(now.count) bytes after a kill at \(tenth)/10 of a write")
            if now == new { completed += 1 }
            #expect(try await store.list(prefix: "v1/dump/") == ["v1/dump/victim"])
            _ = try await store.removeStaleTemporaryFiles(olderThan: 0)
        }
        #expect(interruptedMidWrite > 0, "no kill landed during a write; the test did not exercise anything")
        print("durability: a write takes \(whole); \(interruptedMidWrite) kills landed during a write, \(completed) writes completed before the kill")
    }
}

/// A fresh PostgreSQL database on the test server.
enum StorageTestDatabase {
    static func fresh() async throws -> (String, @Sendable () async -> Void) {
        let adminURL = try TestServices.postgresURL()
        let name = TestServices.uniqueName("pm_cli")
        let admin = try await Database.open(url: adminURL, poolSize: 1)
        try await admin.execute("CREATE DATABASE \(name)")
        await admin.shutdown()
        let base = adminURL[..<adminURL.lastIndex(of: "/")!]
        return ("\(base)/\(name)", {
            guard let admin = try? await Database.open(url: adminURL, poolSize: 1) else { return }
            try? await admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            await admin.shutdown()
        })
    }
}
