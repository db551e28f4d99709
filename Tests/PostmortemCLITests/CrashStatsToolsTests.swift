import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// Mozilla's own API client, PyPI `crashstats-tools` 2.1.0 (installed by `.ci/run`), against
/// `postmortem serve` with crashes sent by `postmortem submit`: with a token it gets everything,
/// without one exactly the public data and the documented errors.
@Suite(.serialized) struct CrashStatsToolsTests {
    func tool(_ name: String, _ arguments: [String], token: String?) throws -> (Int32, String, String) {
        guard let executable = findExecutable(name) else {
            throw TestServices.Unavailable(description: "\(name) is missing: pip install crashstats-tools==2.1.0 (.ci/run does)")
        }
        let env = token.map { ["CRASHSTATS_API_TOKEN=\($0)"] } ?? []
        let (status, out, err) = try runProcess("/usr/bin/env", ["-u", "CRASHSTATS_API_TOKEN"] + env + [executable] + arguments)
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    func cli(_ arguments: [String]) throws -> String {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), arguments)
        #expect(status == 0, "\(arguments): \(String(decoding: err, as: UTF8.self))")
        return String(decoding: out, as: UTF8.self) + String(decoding: err, as: UTF8.self)
    }

    @Test func supersearchFacetsFetchDataAndReprocess() async throws {
        let e2e = ProcessorEndToEndTests()
        let server = try e2e.start(symbols: try TestData.path("symbols"))
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let dumpPath = try TestData.path("minidumps/test.dmp")
        var ids: [String] = []
        for (n, version) in ["120.0", "121.0", "121.0"].enumerated() {
            ids.append(try e2e.submit(server, dump: dumpPath, annotations: ["ProductName=Firefox", "Version=\(version)", "ReleaseChannel=release",
                                                                          "URL=https://secret.example/\(n)"]))
        }
        for id in ids { _ = try await e2e.processed(server, id) }
        let host = ["--host", server.base]

        // A token with view_pii, view_rawdump and reprocess_crashes.
        _ = try cli(["users", "create", "dev@example.com", "--data", server.data])
        for p in ["view_pii", "view_rawdump", "reprocess_crashes"] { _ = try cli(["users", "grant", "dev@example.com", p, "--data", server.data]) }
        let created = try cli(["tokens", "create", "dev@example.com", "--permission", "view_pii", "--permission", "view_rawdump",
                               "--permission", "reprocess_crashes", "--data", server.data])
        let token = try #require(created.split(whereSeparator: { !$0.isHexDigit }).first { $0.count == 32 }.map(String.init))

        // supersearch: filters, all pages, columns; the protected column only with the token.
        let (s1, found, e1) = try tool("supersearch", host + ["--num", "all", "--product", "Firefox", "--version", "121.0",
                                                             "--_columns", "uuid", "--_columns", "url"], token: token)
        #expect(s1 == 0, "\(e1)")
        let rows = found.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(Set(rows.map { $0[0] }) == Set(ids[1...]))
        #expect(rows.allSatisfy { $0.count == 2 && $0[1].hasPrefix("https://secret.example/") })
        let (s2, publicRows, e2) = try tool("supersearch", host + ["--num", "all", "--_columns", "uuid", "--_columns", "signature"], token: nil)
        #expect(s2 == 0, "\(e2.suffix(600))")
        #expect(publicRows.split(separator: "\n").count == 3)
        // A protected column is removed from an anonymous search; the client reports it has no data.
        let (s2b, protectedRows, e2b) = try tool("supersearch", host + ["--num", "all", "--_columns", "uuid", "--_columns", "url"], token: nil)
        #expect(s2b != 0 && e2b.contains("url: no data") && !protectedRows.contains("secret.example"))

        // supersearchfacet: a facet, an aggregation and a date histogram.
        let (s3, facetText, e3) = try tool("supersearchfacet", host + ["--_facets", "version", "--_aggs.product=version", "--_histogram.date=product",
                                                                       "--format", "json"], token: nil)
        #expect(s3 == 0, "\(e3)")
        let facets = try #require(JSONValue.parse(Data(facetText.utf8)))
        #expect(facets["version"]?.arrayValue?.contains { $0["version"] == .string("121.0") && $0["count"] == .int(2) } == true)
        #expect(facets["product / version"]?.arrayValue?.contains { $0["product / version"] == .string("Firefox / 121.0") && $0["count"] == .int(2) } == true)
        #expect(facets["histogram_date"]?["product"]?.arrayValue?.first?["Firefox"] == .int(3))

        // fetch-data with the token: raw crash, dump and processed crash as stored.
        let out = TestData.temporaryDirectory("fetch-data")
        let (s4, _, e4) = try tool("fetch-data", host + ["--raw", "--processed", "--dumps", out] + ids, token: token)
        #expect(s4 == 0, "\(e4)")
        let dump = try Data(contentsOf: URL(fileURLWithPath: dumpPath))
        for (n, id) in ids.enumerated() {
            #expect(FileManager.default.contents(atPath: "\(out)/upload_file_minidump/\(id)") == dump)
            let raw = try #require(FileManager.default.contents(atPath: "\(out)/raw_crash/20\(id.suffix(6))/\(id)").flatMap { JSONValue.parse($0) })
            #expect(raw["URL"] == .string("https://secret.example/\(n)") && raw["ProductName"] == .string("Firefox"))
            let processed = try #require(FileManager.default.contents(atPath: "\(out)/processed_crash/\(id)").flatMap { JSONValue.parse($0) })
            #expect(processed["uuid"] == .string(id) && processed["url"] == .string("https://secret.example/\(n)"))
            #expect(FileManager.default.contents(atPath: "\(out)/dump_names/\(id)").flatMap { JSONValue.parse($0) } == .array([.string("upload_file_minidump")]))
        }

        // Without a token: public annotations only, and dumps are refused.
        let anonymous = TestData.temporaryDirectory("fetch-data-anonymous")
        let (s5, _, e5) = try tool("fetch-data", host + ["--raw", "--processed", "--no-dumps", anonymous, ids[0]], token: nil)
        #expect(s5 == 0, "\(e5)")
        let publicRaw = try #require(FileManager.default.contents(atPath: "\(anonymous)/raw_crash/20\(ids[0].suffix(6))/\(ids[0])").flatMap { JSONValue.parse($0) })
        #expect(publicRaw["ProductName"] == .string("Firefox") && publicRaw["URL"] == nil && publicRaw["metadata"] == nil)
        let publicProcessed = try #require(FileManager.default.contents(atPath: "\(anonymous)/processed_crash/\(ids[0])").flatMap { JSONValue.parse($0) })
        #expect(publicProcessed["url"] == nil && publicProcessed["signature"] != nil)
        // A token with view_pii only: dumps and reprocessing are refused with the documented errors.
        let limited = try cli(["tokens", "create", "dev@example.com", "--permission", "view_pii", "--data", server.data])
        let piiOnly = try #require(limited.split(whereSeparator: { !$0.isHexDigit }).first { $0.count == 32 }.map(String.init))
        let (s6, _, e6) = try tool("fetch-data", host + ["--raw", "--dumps", TestData.temporaryDirectory("fetch-data-dumps"), ids[0]], token: piiOnly)
        #expect(s6 != 0 && e6.contains("Binary response requires permissions: View Raw Dumps"), "\(e6.suffix(600))")
        let (s7, o7, e7) = try tool("reprocess", host + ["--sleep", "0", ids[0]], token: piiOnly)
        #expect(s7 != 0 && (o7 + e7).contains("requires the 'Reprocess Crashes' permission"), "\(o7)\(e7)")
        let (s8, o8, e8) = try tool("reprocess", host + ["--sleep", "0", ids[0]], token: token)
        #expect(s8 == 0, "\(o8)\(e8)")
        let again = try await e2e.processed(server, ids[0], historyAtLeast: 1)
        #expect(again["processor_history"]?.arrayValue?.isEmpty == false)
    }
}
