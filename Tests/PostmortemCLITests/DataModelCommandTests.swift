import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// `postmortem export` to an S3 bucket (storage on PostgreSQL and S3, as at scale) and
/// `postmortem bugs associate|remove`.
@Suite struct DataModelCommandTests {
    func cli(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), arguments, environment: environment)
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func exportWritesADayToAnS3Prefix() async throws {
        let (databaseURL, drop) = try await StorageTestDatabase.fresh()
        defer { Task { await drop() } }
        let endpoint = try TestServices.s3Endpoint()
        let bucket = TestServices.uniqueName("pm-crashes"), exportBucket = TestServices.uniqueName("pm-export")
        let blobs = try S3BlobStore(configuration: S3Configuration(endpoint: endpoint, bucket: bucket, accessKey: "testing", secretKey: "testing"))
        try await blobs.createBucketIfNeeded()
        let exported = try S3BlobStore(configuration: S3Configuration(endpoint: endpoint, bucket: exportBucket, accessKey: "testing", secretKey: "testing",
                                                                      keyPrefix: "warehouse/socorro/"))
        try await exported.createBucketIfNeeded()
        let day = try #require(ISO8601DateFormatter().date(from: "2026-11-27T12:00:00Z"))
        var ids: [String] = []
        for n in 0..<3 {
            let id = CrashID.make(throttleDigit: 0, date: day)
            try await blobs.put(BlobKeys.rawCrash(id), Data("{}".utf8))
            try await blobs.put(BlobKeys.processedCrash(id), Data(#"{"uuid": "\#(id)", "product": "Firefox", "os_name": "Linux", "uptime": \#(n), "user_comments": "PRIVATE"}"#.utf8))
            ids.append(id)
        }
        let env = ["POSTMORTEM_DATABASE_URL": databaseURL, "POSTMORTEM_S3_BUCKET": bucket, "POSTMORTEM_S3_ENDPOINT": endpoint,
                   "POSTMORTEM_S3_ACCESS_KEY": "testing", "POSTMORTEM_S3_SECRET_KEY": "testing"]
        let (status, out, err) = try cli(["export", "--date", "2026-11-27", "--to", "s3://\(exportBucket)/warehouse/socorro", "--data", TestData.temporaryDirectory("export-cli")],
                                         environment: env)
        #expect(status == 0, "\(err)")
        #expect(out.contains("20261127: 3 crashes exported"), "\(out)")
        #expect(err.contains("exported 3/3"), "progress: \(err)")
        for id in ids {
            let doc = try #require(try await exported.get(BlobKeys.exportedCrash(id)).flatMap { JSONValue.parse($0) })
            #expect(doc["platform"] == .string("Linux") && doc["user_comments"] == nil)
        }
        let manifest = try #require(try await exported.get(BlobKeys.exportManifest("20261127")).flatMap { JSONValue.parse($0) })
        #expect(manifest["crashes"] == .int(3))
        // Bad dates and targets are usage errors.
        #expect(try cli(["export", "--date", "2026-13-01"]).0 == 2)
        let noS3 = try cli(["export", "--date", "2026-11-27", "--to", "s3://bucket", "--data", TestData.temporaryDirectory("export-cli")])
        #expect(noS3.0 != 0 && noS3.2.contains("s3.*"))
    }

    @Test func bugsAreAssociatedAndRemoved() async throws {
        let data = TestData.temporaryDirectory("bugs-cli")
        defer { try? FileManager.default.removeItem(atPath: data) }
        var (status, out, err) = try cli(["bugs", "associate", "--data", data, "1234", "OOM | small", "js::GC"])
        #expect(status == 0, "\(err)")
        #expect(out.contains("associated: bug 1234 ↔ OOM | small") && out.contains("associated: bug 1234 ↔ js::GC"))
        (status, out, _) = try cli(["bugs", "associate", "--data", data, "1234", "js::GC"])
        #expect(out.contains("already associated"))
        (status, out, _) = try cli(["bugs", "remove", "--data", data, "1234", "js::GC", "never"])
        #expect(out.contains("removed: bug 1234 ↔ js::GC") && out.contains("not associated: bug 1234 ↔ never"))
        #expect(try cli(["bugs", "associate", "--data", data, "0", "x"]).0 == 2)
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let metadata = try await MetadataStore.open(database)
        #expect(try await metadata.bugs(forSignatures: ["OOM | small"]).map { "\($0.bugID) \($0.signature)" } == ["1234 OOM | small"])
        await database.shutdown()
    }
}
