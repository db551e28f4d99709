import CompressNIO
import CrashModel
import Foundation
import JSONSupport
import NIOCore
import Processor
import Signatures
import Stackwalker
import Storage
import Testing
import TestSupport

/// The public export on both storage configurations: every line conforms to the export schema,
/// the legacy aliases are there, protected fields are not, and a second run of a day writes the
/// same bytes. The processor writes a crash's export on its first processing only.
@Suite struct CrashExporterTests {
    static let secret = "PROTECTED-EXPORT-VALUE"

    static func processed(_ id: String, n: Int) -> JSONValue {
        JSONValue.parse(Data("""
            {"uuid": "\(id)", "crash_id": "\(id)", "signature": "sig \(n % 3)", "product": "Firefox", "version": "120.0", "build": "2024010100000\(n % 10)",
             "os_name": "Windows NT", "os_version": "10.0.19045", "os_pretty_version": "Windows 10", "date_processed": "2026-11-28T10:00:0\(n % 10)+00:00",
             "uptime": \(n), "install_age": "not a number", "url": "https://\(secret)", "user_comments": "\(secret)", "remote_type": "\(secret)",
             "addons": ["a@b:1.0"], "cpu_arch": "amd64", "release_channel": "release",
             "json_dump": {"pid": 42, "status": "OK", "threads": [{"frames": [{"frame": 0, "module": "xul.dll", "function": "f", "registers": {"rip": "\(secret)"}}]}]},
             "java_exception": {"exception": {"values": [{"stacktrace": {"value": "\(secret)"}}]}}}
            """.utf8))!
    }

    @Test(arguments: Backend.allCases)
    func aDayExportsPublicConformingLinesIdenticallyTwice(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let target = try FileBlobStore(root: URL(fileURLWithPath: TestData.temporaryDirectory("export")))
        let day = try #require(ISO8601DateFormatter().date(from: "2026-11-28T10:00:00Z"))
        var ids: [String] = []
        for n in 0..<25 {
            let id = CrashID.make(throttleDigit: 0, date: day)
            try await f.blobs.put(BlobKeys.rawCrash(id), Data(#"{"ProductName": "Firefox"}"#.utf8))
            // Three received that day are not processed yet.
            if n >= 3 { try await f.blobs.put(BlobKeys.processedCrash(id), Data(Self.processed(id, n: n).serialized().utf8)) }
            ids.append(id)
        }
        // A crash of another day stays out.
        let other = CrashID.make(throttleDigit: 0, date: day.addingTimeInterval(86_400))
        try await f.blobs.put(BlobKeys.rawCrash(other), Data("{}".utf8))
        try await f.blobs.put(BlobKeys.processedCrash(other), Data(Self.processed(other, n: 99).serialized().utf8))

        let schemas = try CrashSchemas.bundled()
        let exporter = CrashExporter(source: f.blobs, target: target, schemas: schemas)
        let first = try await exporter.exportDay("20261128")
        #expect(first.crashes == 22 && first.unprocessed == 3)
        let daily = try #require(try await target.get(BlobKeys.exportDay("20261128")))
        let manifest = try #require(try await target.get(BlobKeys.exportManifest("20261128")).flatMap { JSONValue.parse($0) })
        #expect(manifest["crashes"] == .int(22) && manifest["target_version"] == .int(2))
        var buffer = ByteBuffer(data: daily)
        let lines = String(decoding: Data(try buffer.decompress(with: .gzip(), maxSize: 64 << 20).readableBytesView), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        #expect(lines.count == 22)
        for line in lines {
            let doc = try #require(JSONValue.parse(Data(line.utf8)))
            #expect(schemas.export.validate(doc) == [], "\(line.prefix(200))")
            #expect(!line.contains(Self.secret), "a protected value reached the export")
            #expect(doc["build_id"] == doc["build"] && doc["platform"] == .string("Windows NT") && doc["platform_version"] == .string("10.0.19045"))
            #expect(doc["platform_pretty_version"] == .string("Windows 10") && doc["date"] == doc["date_processed"])
            #expect(doc["install_age"] == nil && doc["uptime"]?.intValue != nil)
            #expect(doc["json_dump"]?["pid"] == .int(42))
            // The per-crash object is the same document.
            let id = try #require(doc["uuid"]?.stringValue)
            #expect(try await target.get(BlobKeys.exportedCrash(id)) == Data(line.utf8))
        }
        #expect(try await target.get(BlobKeys.exportedCrash(other)) == nil)
        // Idempotent: a rerun writes byte-identical objects.
        let manifestBytes = try await target.get(BlobKeys.exportManifest("20261128"))
        let oneCrash = try await target.get(BlobKeys.exportedCrash(ids[5]))
        let again = try await exporter.exportDay("20261128")
        #expect(again == first)
        #expect(try await target.get(BlobKeys.exportDay("20261128")) == daily)
        #expect(try await target.get(BlobKeys.exportManifest("20261128")) == manifestBytes)
        #expect(try await target.get(BlobKeys.exportedCrash(ids[5])) == oneCrash)
    }

    /// A blob store under `dir` with `count` processed crashes received on the day of `time`, and
    /// an empty export store beside it.
    static func processedDay(in dir: String, _ time: String, count: Int) async throws -> (FileBlobStore, FileBlobStore) {
        let source = try FileBlobStore(root: URL(fileURLWithPath: dir + "/blobs"))
        let target = try FileBlobStore(root: URL(fileURLWithPath: dir + "/export"))
        let day = try #require(ISO8601DateFormatter().date(from: time))
        for n in 0..<count {
            let id = CrashID.make(throttleDigit: 0, date: day)
            try await source.put(BlobKeys.rawCrash(id), Data("{}".utf8))
            try await source.put(BlobKeys.processedCrash(id), Data(processed(id, n: n).serialized().utf8))
        }
        return (source, target)
    }

    /// A day larger than the 1 MiB compression chunk, and an empty day: both give gzip files
    /// holding exactly their lines, identical when exported again.
    @Test func largeAndEmptyDaysCompressInChunks() async throws {
        let dir = TestData.temporaryDirectory("export-large")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (source, target) = try await Self.processedDay(in: dir, "2026-11-26T10:00:00Z", count: 2_500)
        let exporter = CrashExporter(source: source, target: target, schemas: try CrashSchemas.bundled())
        func lines(_ day: String) async throws -> [Substring] {
            var buffer = ByteBuffer(data: try #require(try await target.get(BlobKeys.exportDay(day))))
            let text = String(decoding: Data(try buffer.decompress(with: .gzip(), maxSize: 256 << 20).readableBytesView), as: UTF8.self)
            return text.split(separator: "\n")
        }
        let outcome = try await exporter.exportDay("20261126")
        #expect(outcome.crashes == 2_500)
        let all = try await lines("20261126")
        #expect(all.count == 2_500 && all.reduce(0) { $0 + $1.utf8.count + 1 } > 1 << 20)
        let first = try await target.get(BlobKeys.exportDay("20261126"))
        _ = try await exporter.exportDay("20261126")
        #expect(try await target.get(BlobKeys.exportDay("20261126")) == first)
        let empty = try await exporter.exportDay("20261125")
        let emptyLines = try await lines("20261125")
        #expect(empty.crashes == 0 && emptyLines.isEmpty)
    }

    /// The DuckDB one-liner of docs/export.md, run by DuckDB itself (PyPI `duckdb`, which the
    /// test command installs) on an exported day.
    @Test func duckDBLoadsTheDailyFile() async throws {
        let dir = TestData.temporaryDirectory("export-duckdb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (source, target) = try await Self.processedDay(in: dir, "2026-11-28T10:00:00Z", count: 12)
        _ = try await CrashExporter(source: source, target: target, schemas: try CrashSchemas.bundled()).exportDay("20261128")
        let python = try #require(findExecutable("python3"), "python3 is required")
        let query = """
            import duckdb, sys
            rows = duckdb.sql("SELECT signature, count(*) AS n, sum(uptime) AS up, any_value(platform) AS os "
                              "FROM read_json_auto('\(dir)/export/v1/crash_report_daily/*/crashes.jsonl.gz') GROUP BY signature ORDER BY signature").fetchall()
            print(rows)
            """
        let (status, out, err) = try runProcess(python, ["-c", query])
        #expect(status == 0, "duckdb (pip install duckdb): \(String(decoding: err, as: UTF8.self).suffix(600))")
        #expect(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                == "[('sig 0', 4, 18, 'Windows NT'), ('sig 1', 4, 22, 'Windows NT'), ('sig 2', 4, 26, 'Windows NT')]")
    }

    @Test func theProcessorExportsOnFirstProcessingOnly() async throws {
        let f = try await StorageFixture.make(.embedded)
        defer { Task { await f.close() } }
        let target = try FileBlobStore(root: URL(fileURLWithPath: TestData.temporaryDirectory("export")))
        let schemas = try CrashSchemas.bundled()
        let processor = try CrashProcessor(blobs: f.blobs, metadata: f.metadata, walker: Stackwalker(supplier: nil),
                                           signatures: SignatureGenerator(lists: try SignatureLists.bundled()), schemas: schemas,
                                           exporter: CrashExporter(source: f.blobs, target: target, schemas: schemas), logger: RunningService.quietLogger)
        let id = CrashID.make(throttleDigit: 0, date: Date())
        try await f.blobs.put(BlobKeys.rawCrash(id), Data(#"{"ProductName": "Firefox", "Version": "120.0", "URL": "https://\#(Self.secret)", "uuid": "\#(id)"}"#.utf8))
        try await processor.process(id)
        let exported = try #require(try await target.get(BlobKeys.exportedCrash(id)))
        #expect(JSONValue.parse(exported)?["product"] == .string("Firefox"))
        #expect(!String(decoding: exported, as: UTF8.self).contains(Self.secret))
        // Reprocessing leaves the export as it was.
        try await target.delete(BlobKeys.exportedCrash(id))
        try await processor.process(id)
        #expect(try await target.get(BlobKeys.exportedCrash(id)) == nil)
    }
}
