import JSONSupport
import Foundation
import SymbolSources
import Testing
import TestSupport
@testable import Symbolication

/// `testdata/symbolication/validation-cases.json`: request bodies and the exact status and
/// `title` Eliot answers. The two `GET` rows (405) belong to the HTTP service and are checked there.
@Suite struct SymbolicationValidationTests {
    struct Row: Sendable, CustomStringConvertible {
        var index: Int
        var endpoint: String
        var status: Int
        var body: Data
        var title: String?
        var description: String { "#\(index) \(endpoint) \(String(decoding: body.prefix(80), as: UTF8.self))" }
    }

    static func rows() throws -> [Row] {
        let data = try Data(contentsOf: URL(fileURLWithPath: try TestData.path("symbolication/validation-cases.json")))
        guard case .array(let cases) = JSONValue.parse(data)?["cases"] else { return [] }
        var rows: [Row] = []
        for (i, c) in cases.enumerated() {
            guard case .string(let endpoint) = c["endpoint"], case .int(let status) = c["status"] else { continue }
            var body = Data()
            if case .string(let raw) = c["raw_body"] { body = Data(raw.utf8) }
            if let json = c["json_body"] { body = Data(json.serialized().utf8) }
            var title: String?
            if case .string(let t) = c["expected_body"]?["title"] { title = t }
            rows.append(Row(index: i, endpoint: endpoint, status: Int(status), body: body, title: title))
        }
        return rows
    }

    /// Bounds Eliot does not have (issue #16): frames per request and identifier lengths.
    @Test func oversizedRequestsAreRefusedWithClearErrors() throws {
        func request(frames: Int, file: String = "xul.pdb", id: String = "44E4EC8C2F41492B9369D6B9A059577C2") -> JSONValue {
            let stack = JSONValue.array((0..<frames).map { _ in .array([.int(0), .int(0x1000)]) })
            return .object([("jobs", .array([.object([("memoryMap", .array([.array([.string(file), .string(id)])])),
                                                    ("stacks", .array([stack]))])]))])
        }
        #expect(throws: Never.self) { try SymbolicationRequestParser.parse(request(frames: 100_000), version: .v5) }
        #expect(throws: SymbolicationFailure(status: 400, title: "please limit number of frames in a single request to <= 100000")) {
            try SymbolicationRequestParser.parse(request(frames: 100_001), version: .v5)
        }
        #expect(throws: SymbolicationFailure(status: 400, title: "job 0 has invalid modules: module index 0 has an invalid debug_filename")) {
            try SymbolicationRequestParser.parse(request(frames: 1, file: String(repeating: "a", count: 513)), version: .v5)
        }
        #expect(throws: SymbolicationFailure(status: 400, title: "job 0 has invalid modules: module index 0 has an invalid debug_id")) {
            try SymbolicationRequestParser.parse(request(frames: 1, id: String(repeating: "A", count: 65)), version: .v5)
        }
    }

    @Test func tableHasAllRows() throws {
        #expect(try Self.rows().count == 39)
    }

    /// All 39 rows, through the HTTP semantics (`Symbolicator.respond`): method, path with its
    /// query string, body; status, JSON content type and the exact error body.
    @Test func everyRowGivesItsStatusAndBody() async throws {
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(
            cacheDirectory: TestData.temporaryDirectory("symcache"), negativeCacheTTL: .zero))
        let symbolicator = Symbolicator(supplier: supplier)
        var checked = 0
        for row in try Self.rows() {
            let parts = row.endpoint.split(separator: " ", maxSplits: 1).map(String.init)
            let request = SymbolicationHTTPRequest(method: parts[0], target: parts[1], body: row.body)
            let response = try #require(await symbolicator.respond(to: request), "\(row)")
            #expect(response.status == row.status, "\(row): \(response.body)")
            #expect(response.headers["Content-Type"]?.hasPrefix("application/json") == true, "\(row)")
            if let title = row.title {
                #expect(response.body == JSONValue.object([("title", .string(title))]).serialized(), "\(row)")
                #expect(response.body.hasPrefix("{\"title\": \""), "\(row)")
            } else if row.status == 200 {
                #expect(JSONValue.parse(Data(response.body.utf8))?["results"] != nil, "\(row)")
            }
            checked += 1
        }
        #expect(checked == 39)
        await supplier.shutdown()
    }

    @Test func optionsAnswersTheCorsPreflight() async throws {
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(cacheDirectory: TestData.temporaryDirectory("c")))
        let response = try #require(await Symbolicator(supplier: supplier).respond(to: SymbolicationHTTPRequest(method: "OPTIONS", target: "/symbolicate/v5")))
        #expect(response.status == 200)
        #expect(response.headers["Access-Control-Allow-Origin"] == "*")
        #expect(response.headers["Access-Control-Allow-Methods"] == "POST")
        #expect(response.headers["Access-Control-Expose-Headers"]?.contains("x-requested-with") == true)
        #expect(await Symbolicator(supplier: supplier).respond(to: SymbolicationHTTPRequest(method: "GET", target: "/other")) == nil)
        await supplier.shutdown()
    }

    @Test func errorBodyUsesEliotSpacing() {
        #expect(SymbolicationFailure(status: 400, title: "Payload is not valid JSON").body == #"{"title": "Payload is not valid JSON"}"#)
    }

    @Test func booleansAndFloatsAreNotIntegers() async {
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(cacheDirectory: TestData.temporaryDirectory("c")))
        let s = Symbolicator(supplier: supplier)
        let r1 = await s.symbolicate(body: Data(#"{"jobs":[{"stacks":[[[true, 0]]],"memoryMap":[["a.so","AB"]]}]}"#.utf8), version: .v5)
        #expect(r1 == .failure(SymbolicationFailure(status: 400, title: "job 0 has invalid stacks: stack 0 frame 0 has an invalid module_index")))
        let r2 = await s.symbolicate(body: Data(#"{"jobs":[{"stacks":[[[0, 1.5]]],"memoryMap":[["a.so","AB"]]}]}"#.utf8), version: .v5)
        #expect(r2 == .failure(SymbolicationFailure(status: 400, title: "job 0 has invalid stacks: stack 0 frame 0 has an invalid module_offset")))
        await supplier.shutdown()
    }
}
