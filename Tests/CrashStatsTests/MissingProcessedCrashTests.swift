import CrashStats
import Foundation
import JSONSupport
import Signatures
import Storage
import Testing
import TestSupport

/// `/api/MissingProcessedCrash/`: Django REST framework pages of 1000, newest first, with
/// `is_processed` read from the crash index; a page that does not exist is a 400.
@Suite struct MissingProcessedCrashTests {
    @Test func pagesOfAThousandWithProcessedFlagsAndInvalidPages() async throws {
        let f = try await StorageFixture.make(.embedded)
        defer { Task { await f.close() } }
        let api = try CrashStatsAPI(blobs: f.blobs, metadata: f.metadata, queue: WorkQueue(database: f.database),
                                    signatures: SignatureGenerator(lists: try SignatureLists.bundled()))
        let ids = (0..<1001).map { String(format: "de1bb258-cbbf-4589-a673-%06d261128", $0) }
        try await f.metadata.recordMissingProcessedCrashes(Array(ids[..<1000]))
        f.clock.advance(seconds: 60)
        try await f.metadata.recordMissingProcessedCrashes([ids[1000]])
        try await f.metadata.index(CrashIndexRow(crashID: ids[1000], dateProcessed: 1))

        func get(_ query: [(String, String)]) async throws -> (Int, JSONValue?) {
            let r = await api.handle(APIRequest(method: "GET", endpoint: "MissingProcessedCrash", query: query))
            return (r.status, JSONValue.parse(r.body))
        }
        let (status, first) = try await get([])
        #expect(status == 200)
        guard case .object(let page1)? = first else { Issue.record("not an object"); return }
        let fields = Dictionary(uniqueKeysWithValues: page1)
        #expect(fields["count"] == .int(1001))
        #expect(fields["next"] == .string("/api/MissingProcessedCrash/?page=2"))
        #expect(fields["previous"] == .null)
        guard case .array(let results)? = fields["results"] else { Issue.record("no results"); return }
        #expect(results.count == 1000)
        // Newest first: the one recorded last, processed since.
        #expect(results.first == .object([("crash_id", .string(ids[1000])), ("is_processed", .bool(true)),
                                          ("created", .string(ISOTime.string(Double(f.clock.now) / 1_000_000)))]))
        if case .object(let second)? = results.dropFirst().first {
            #expect(Dictionary(uniqueKeysWithValues: second)["is_processed"] == .bool(false))
        }

        let (status2, body2) = try await get([("page", "2")])
        #expect(status2 == 200)
        if case .object(let page2)? = body2 {
            let f2 = Dictionary(uniqueKeysWithValues: page2)
            #expect(f2["next"] == .null)
            #expect(f2["previous"] == .string("/api/MissingProcessedCrash/?page=1"))
            if case .array(let r2)? = f2["results"] { #expect(r2.count == 1) } else { Issue.record("no results on page 2") }
        } else { Issue.record("page 2 not an object") }

        for bad in ["0", "-1", "3", "abc", "", "99999999999999999999"] {
            let (s, body) = try await get([("page", bad)])
            #expect(s == 400, "page=\(bad)")
            #expect(body == .object([("error", .string("invalid page number"))]), "page=\(bad)")
        }
    }
}
