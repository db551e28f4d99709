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

    @Test func tableHasAllRows() throws {
        #expect(try Self.rows().count == 39)
    }

    @Test func everyPostRowGivesItsStatusAndTitle() async throws {
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(
            cacheDirectory: TestData.temporaryDirectory("symcache"), negativeCacheTTL: .zero))
        let symbolicator = Symbolicator(supplier: supplier)
        var checked = 0
        for row in try Self.rows() where row.endpoint.hasPrefix("POST") {
            let version: SymbolicationAPIVersion = row.endpoint.contains("/v4") ? .v4 : .v5
            let result = await symbolicator.symbolicate(body: row.body, version: version)
            switch (result, row.status) {
            case (.success(let json), 200):
                #expect(JSONValue.parse(Data(json.utf8))?["results"] != nil, "\(row)")
            case (.failure(let failure), let status):
                #expect(failure.status == status, "\(row)")
                #expect(failure.title == row.title, "\(row)")
                #expect(failure.body == "{\"title\": \"\(row.title ?? "")\"}", "\(row)")
            case (.success(let json), let status):
                Issue.record("\(row): expected \(status), got 200 \(json)")
            }
            checked += 1
        }
        #expect(checked == 37)
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
