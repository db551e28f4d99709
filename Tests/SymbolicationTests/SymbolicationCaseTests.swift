import JSONSupport
import Foundation
import SymbolSources
import Testing
import TestSupport
@testable import Symbolication

/// The Eliot request/response pairs of `testdata/symbolication/cases`, run against a real symbol
/// server on loopback that serves only each case's `symbol_files`.
@Suite struct SymbolicationCaseTests {
    static func caseFiles() throws -> [String] {
        try TestData.files(under: "symbolication/cases", suffix: ".json")
    }

    @Test func everyCaseFileIsFound() throws {
        #expect(try Self.caseFiles().count == 9)
    }

    @Test(arguments: ["v4-module-200", "v4-module-missing-and-not-checked", "v4-with-inlines", "v5-debug-stats",
                      "v5-line-without-file", "v5-module-200", "v5-module-missing-and-not-checked",
                      "v5-pe-module-name", "v5-with-inlines"])
    func goldenCase(_ name: String) async throws {
        let path = try TestData.path("symbolication/cases/\(name).json")
        let testCase = try #require(JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: path))))
        guard case .string(let endpoint) = testCase["endpoint"], case .array(let files) = testCase["symbol_files"],
              let request = testCase["request"] else { Issue.record("bad case file \(name)"); return }

        // Serve exactly the listed files under their symbol-server paths; everything else is 404.
        var routes: [String: TestHTTPServer.Response] = [:]
        for case .string(let f) in files {
            routes["/" + f.dropFirst("symbols/".count)] = .file(try TestData.path("symbolication/" + f))
        }
        let server = try TestHTTPServer(routes: routes)
        defer { server.shutdown() }
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(
            symbolURLs: [server.baseURL], cacheDirectory: TestData.temporaryDirectory("symcache"), negativeCacheTTL: .zero))
        let target = endpoint.contains("/v4") ? "/symbolicate/v4" : "/symbolicate/v5"
        let headers = endpoint.contains("Debug: true") ? [("Debug", "true")] : []
        let http = await Symbolicator(supplier: supplier).respond(
            to: SymbolicationHTTPRequest(method: "POST", target: target, headers: headers, body: Data(request.serialized().utf8)))
        await supplier.shutdown()

        let reply = try #require(http)
        #expect(reply.status == 200)
        let response = Data(reply.body.utf8)
        let actual = try #require(JSONValue.parse(response))
        if let expected = testCase["expected_response"] {
            #expect(actual == expected, "response: \(actual.serialized())")
        }
        if let subset = testCase["expected_debug_subset"] {
            let debugStats = try #require(actual["debug"])
            expectSubset(subset, debugStats, path: "debug")
            #expect(actual["results"] != nil)
        }
    }

    /// Every key of `expected` is in `actual` with an equal value; "ANY" matches any number.
    func expectSubset(_ expected: JSONValue, _ actual: JSONValue, path: String) {
        switch expected {
        case .string("ANY"):
            switch actual {
            case .double, .int: break
            default: Issue.record("\(path): expected a number, got \(actual.serialized())")
            }
        case .object(let pairs):
            for (key, value) in pairs {
                guard let a = actual[key] else { Issue.record("\(path).\(key) missing in \(actual.serialized())"); continue }
                expectSubset(value, a, path: "\(path).\(key)")
            }
        default:
            #expect(expected == actual, "\(path)")
        }
    }
}
