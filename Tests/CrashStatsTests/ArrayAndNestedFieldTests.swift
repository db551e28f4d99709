import CrashModel
import CrashStats
import Foundation
import JSONSupport
import Signatures
import Storage
import Testing
import TestSupport

/// Super Search over array fields (`addons`: an element matches) and declared members of object
/// fields (`memory_measures.explicit`), on both databases: filters with every operator, `__null__`
/// and negation, facets that count crashes, columns, cardinality and histograms.
@Suite struct ArrayAndNestedFieldTests {
    @Test(arguments: Backend.allCases)
    func arraysMatchByElementAndNestedMembersAreFields(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let api = try CrashStatsAPI(blobs: f.blobs, metadata: f.metadata, queue: WorkQueue(database: f.database),
                                    signatures: SignatureGenerator(lists: try SignatureLists.bundled()), anonymousPerMinute: 0, authenticatedPerMinute: 0)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let documents: [String] = [
            #"{"addons": ["uBlock0@raymondhill.net:1.50", "formautofill@mozilla.org:1.0"], "memory_measures": {"explicit": 500, "images": 7}}"#,
            #"{"addons": ["uBlock0@raymondhill.net:1.50", "uBlock0@raymondhill.net:1.50"], "memory_measures": {"explicit": 50}}"#,
            #"{"addons": [], "memory_measures": {"explicit": "not a number"}}"#,
            #"{"addons": "not-an-array"}"#,
            #"{}"#,
        ]
        for (i, doc) in documents.enumerated() {
            try await f.metadata.index(CrashIndexRow(crashID: "c\(i)", dateProcessed: now - Int64(i) * 1_000_000, product: "Firefox",
                                                     document: try #require(JSONValue.parse(Data(doc.utf8)))))
        }
        func search(_ query: [(String, String)]) async throws -> JSONValue {
            let r = await api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: query))
            #expect(r.status == 200, "\(query): \(String(decoding: r.body, as: UTF8.self))")
            return try #require(JSONValue.parse(r.body))
        }
        func ids(_ query: [(String, String)]) async throws -> [String] {
            try await search(query + [("_columns", "uuid"), ("_sort", "uuid")]).self["hits"]?.arrayValue?.compactMap { $0["uuid"]?.stringValue }.sorted() ?? []
        }
        #expect(try await ids([("addons", "~uBlock0")]) == ["c0", "c1"])
        #expect(try await ids([("addons", "=formautofill@mozilla.org:1.0")]) == ["c0"])
        #expect(try await ids([("addons", "^formautofill")]) == ["c0"])
        #expect(try await ids([("addons", "$:1.50")]) == ["c0", "c1"])
        #expect(try await ids([("addons", "@uBlock0@.*")]) == ["c0", "c1"])
        #expect(try await ids([("addons", "!~uBlock0")]) == ["c2", "c3", "c4"])
        #expect(try await ids([("addons", "__null__")]) == ["c2", "c4"])
        #expect(try await ids([("addons", "!__null__")]) == ["c0", "c1", "c3"])
        // The facet counts crashes, once each even when an array repeats the term.
        let facets = try await search([("_facets", "addons"), ("_results_number", "0")])
        #expect(facets["facets"]?["addons"] == JSONValue.parse(Data("""
            [{"term": "uBlock0@raymondhill.net:1.50", "count": 2}, {"term": "formautofill@mozilla.org:1.0", "count": 1}, {"term": "not-an-array", "count": 1}]
            """.utf8)))
        #expect(try await search([("_facets", "_cardinality.addons"), ("_results_number", "0")])["facets"]?["cardinality_addons"]?["value"] == .int(3))
        let column = try await search([("_columns", "uuid"), ("_columns", "addons"), ("addons", "=formautofill@mozilla.org:1.0")])
        #expect(column["hits"]?.arrayValue?.first?["addons"] == .array([.string("uBlock0@raymondhill.net:1.50"), .string("formautofill@mozilla.org:1.0")]))
        // Sub-facets of an array inside product buckets.
        let aggs = try await search([("_aggs.product", "addons"), ("_results_number", "0")])
        #expect(aggs["facets"]?["product"]?.arrayValue?.first?["facets"]?["addons"]?.arrayValue?.first?["count"] == .int(2))

        // Nested members: filter, column, facet, histogram; a value that is not a number is no match.
        #expect(try await ids([("memory_measures.explicit", ">100")]) == ["c0"])
        #expect(try await ids([("memory_measures.explicit", "<=500")]) == ["c0", "c1"])
        #expect(try await ids([("memory_measures.images", "7")]) == ["c0"])
        let nested = try await search([("_columns", "memory_measures.explicit"), ("_sort", "-memory_measures.explicit"), ("memory_measures.explicit", ">0"),
                                       ("_histogram.memory_measures.explicit", ""), ("_histogram_interval.memory_measures.explicit", "100")])
        #expect(nested["hits"]?.arrayValue?.map { $0["memory_measures.explicit"] } == [.int(500), .int(50)])
        #expect(nested["facets"]?["histogram_memory_measures.explicit"] == JSONValue.parse(Data(#"[{"term": 0, "count": 1}, {"term": 500, "count": 1}]"#.utf8)))
        let fields = try #require(JSONValue.parse(await api.handle(APIRequest(method: "GET", endpoint: "SuperSearchFields")).body))
        #expect(fields["addons"]?["query_type"] == .string("string"))
        #expect(fields["memory_measures.explicit"]?["query_type"] == .string("integer"))
        #expect(fields["memory_measures.explicit"]?["description"]?.stringValue?.isEmpty == false)
        // Fields kept out of the index document are not offered.
        #expect(fields["json_dump"] == nil && fields["processor_history"] == nil)
    }
}
