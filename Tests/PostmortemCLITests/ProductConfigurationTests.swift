import Foundation
import JSONSupport
import Testing
import TestSupport

/// `products.dir` on a running `serve`: the collector accepts only the listed products (without
/// `collector.products`), Super Search refuses other product names, `SuperSearchFields` offers
/// the names, and the processed crash carries the product's create-a-bug links.
@Suite(.serialized) struct ProductConfigurationTests {
    let e2e = ProcessorEndToEndTests()

    @Test func theProductFilesDecideWhatIsAcceptedAndSearched() async throws {
        let products = TestData.temporaryDirectory("products")
        defer { try? FileManager.default.removeItem(atPath: products) }
        for name in ["Firefox.json", "Fenix.json"] {
            try FileManager.default.copyItem(atPath: try TestData.path("schemas/product_details/\(name)"), toPath: products + "/" + name)
        }
        let data = TestData.temporaryDirectory("products-serve")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try e2e.start(symbols: nil, data: data, extraEnvironment: [
            "POSTMORTEM_PRODUCTS_DIR": products, "POSTMORTEM_CRASHSTATS_BASE_URL": "https://crash-stats.example.com",
            "POSTMORTEM_API_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "0",
        ])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        func request(_ method: String, _ target: String, body: Data = Data(), type: String? = nil) async throws -> (Int?, String) {
            var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            if let type { head += "Content-Type: \(type)\r\nContent-Length: \(body.count)\r\n" }
            let response = try await RawHTTPConnection.exchange(port: port, Data((head + "\r\n").utf8) + body, timeout: .seconds(30))
            return (RawHTTPConnection.status(of: response), RawHTTPConnection.body(of: response))
        }
        let multipart = "multipart/form-data; boundary=hostile-boundary"
        let refused = try await request("POST", "/submit", body: HostileRequestTests.multipart([("ProductName", "Thunderbird"), ("Version", "1.0")], dump: nil), type: multipart)
        #expect(refused.1.hasPrefix("Discarded=rule_"), "\(refused.1)")
        let accepted = try await request("POST", "/submit", body: HostileRequestTests.multipart([("ProductName", "Fenix"), ("Version", "120.0")], dump: nil), type: multipart)
        #expect(accepted.1.hasPrefix("CrashID=bp-"), "\(accepted.1)")
        let id = String(accepted.1.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("CrashID=bp-".count))
        _ = try await e2e.processed(server, id)

        let search = try await request("GET", "/api/SuperSearch/?product=Thunderbird")
        #expect(search.0 == 400)
        #expect(JSONValue.parse(Data(search.1.utf8)) == JSONValue.parse(Data(#"{"errors": {"product": ["Not valid products: Thunderbird"]}}"#.utf8)))
        let found = try await request("GET", "/api/SuperSearch/?product=Fenix")
        #expect(found.0 == 200 && JSONValue.parse(Data(found.1.utf8))?["total"] == .int(1))
        let fields = JSONValue.parse(Data(try await request("GET", "/api/SuperSearchFields/").1.utf8))
        #expect(fields?["product"]?["form_field_choices"] == .array([.string("Firefox"), .string("Fenix")]))
        let processed = JSONValue.parse(Data(try await request("GET", "/api/ProcessedCrash/?crash_id=\(id)&_bug_links=1").1.utf8))
        let links = processed?["_bug_links"]?.arrayValue ?? []
        #expect(links.map { $0["text"]?.stringValue } == ["Firefox for Android", "GeckoView", "Core", "Application-Services"])
        #expect(links.first?["url"]?.stringValue?.contains("https%3A%2F%2Fcrash-stats.example.com%2Freport%2Findex%2F\(id)") == true)
    }
}
