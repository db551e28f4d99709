import JSONSupport
import Foundation
import SymbolSources
import Testing
import TestSupport
@testable import Symbolication

@Suite struct SymbolicationGroupingTests {
    /// Each (debug_filename, debug_id) is fetched once per request, across jobs and stacks, even
    /// when more modules are referenced than are fetched at once.
    @Test func fetchesEachReferencedModuleOncePerRequest() async throws {
        let id = "509C0610949836F7B70BD88BCF03E5400"
        let route = "/crash-client/\(id)/crash-client.sym"
        let server = try TestHTTPServer(routes: [route: .file(try TestData.path("symbols/crash-client/\(id)/crash-client.sym"))])
        defer { server.shutdown() }
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(
            symbolURLs: [server.baseURL], cacheDirectory: TestData.temporaryDirectory("cache"), negativeCacheTTL: .zero))

        let missing = (0..<20).map { ["missing\($0).so", String(format: "%032X", $0) + "0"] }
        let memoryMap = [["crash-client", id]] + missing + [["unused.so", String(repeating: "A", count: 33)]]
        let frames = (0...20).map { [$0, 0x51e20] }
        let job: [String: Any] = ["memoryMap": memoryMap, "stacks": [frames, [[0, 0x51e20]]]]
        let body = try JSONSerialization.data(withJSONObject: ["jobs": [job, job]])
        let result = await Symbolicator(supplier: supplier).symbolicate(body: body, version: .v5, debug: true)
        await supplier.shutdown()

        let json = try #require(JSONValue.parse(Data(try result.get().utf8)))
        #expect(server.requests(to: route) == 1)
        for i in 0..<20 { #expect(server.requests(to: "/missing\(i).so/\(String(format: "%032X", i))0/missing\(i).so.sym") == 1) }
        guard case .array(let results) = json["results"], results.count == 2 else { Issue.record("no results"); return }
        for r in results {
            #expect(r["found_modules"]?["crash-client/\(id)"] == .bool(true))
            #expect(r["found_modules"]?["missing7.so/\(String(format: "%032X", 7))0"] == .bool(false))
            #expect(r["found_modules"]?["unused.so/\(String(repeating: "A", count: 33))"] == .null)
            guard case .array(let stacks) = r["stacks"], case .array(let first) = stacks[0] else { continue }
            #expect(first[0]["function"] != nil)
            #expect(first[1]["function"] == nil)
        }
        #expect(json["debug"]?["modules"]?["count"] == .int(42))
        #expect(json["debug"]?["cache_lookups"]?["count"] == .int(21))
        #expect(json["debug"]?["downloads"]?["count"] == .int(21))
    }
}
