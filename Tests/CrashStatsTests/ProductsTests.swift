import CrashModel
import CrashStats
import Foundation
import JSONSupport
import Signatures
import Storage
import Testing
import TestSupport

/// Products from `<Product>.json` files: home-page order, featured versions (`auto` and beta
/// families from crash data, `version_json_urls` lookups over real HTTP with failures skipped),
/// Super Search's product validation, bug links in the processed-crash API, bug associations.
@Suite struct ProductsTests {
    /// The shared product files, with Fenix's version document pointed at a local server.
    func catalogDirectory(versionsURL: String) throws -> String {
        let dir = TestData.temporaryDirectory("products")
        for name in ["Firefox.json", "Fenix.json"] {
            var text = try String(contentsOfFile: try TestData.path("schemas/product_details/\(name)"), encoding: .utf8)
            text = text.replacingOccurrences(of: "https://product-details.mozilla.org/1.0/mobile_versions.json", with: versionsURL)
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test func productsLoadInHomePageOrderAndBadFilesAreRefused() throws {
        let dir = try catalogDirectory(versionsURL: "http://127.0.0.1:1/versions.json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try ProductCatalog.load(directory: dir)
        #expect(catalog.names == ["Firefox", "Fenix"])
        let fenix = try #require(catalog.product(named: "Fenix"))
        #expect(fenix.bugLinks.map(\.text) == ["Firefox for Android", "GeckoView", "Core", "Application-Services"])
        #expect(fenix.productHomeLinks.first?.text == "Fenix crash monitoring documentation")
        #expect(catalog.product(named: "Firefox")?.inBuildhub == true && !fenix.inBuildhub)
        #expect(catalog.accepts("Fenix") && !catalog.accepts("Thunderbird"))
        #expect(ProductCatalog(products: []).accepts("Anything"))
        // A file must be named after its product, and must be well-formed.
        try #"{"name": "Other", "home_page_sort": 3}"#.write(toFile: dir + "/Misnamed.json", atomically: true, encoding: .utf8)
        #expect(throws: ProductDetails.FormatError.self) { try ProductCatalog.load(directory: dir) }
        try FileManager.default.removeItem(atPath: dir + "/Misnamed.json")
        try #"{"name": "Broken", "featured_versions": ["nowhere.version"]}"#.write(toFile: dir + "/Broken.json", atomically: true, encoding: .utf8)
        #expect(throws: ProductDetails.FormatError.self) { try ProductCatalog.load(directory: dir) }
    }

    @Test func featuredVersionsComeFromCrashDataAndVersionDocuments() async throws {
        let versions = TestData.temporaryDirectory("versions") + "/mobile_versions.json"
        try #"{"version": "120.1.0", "beta_version": "121.0b3", "nightly_version": "122.0a1"}"#.write(toFile: versions, atomically: true, encoding: .utf8)
        let server = try TestHTTPServer(routes: ["/mobile_versions.json": .file(versions), "/broken.json": .status(500)])
        defer { server.shutdown() }
        let dir = try catalogDirectory(versionsURL: server.baseURL + "/mobile_versions.json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try ProductCatalog.load(directory: dir)

        let f = try await StorageFixture.make(.embedded)
        defer { Task { await f.close() } }
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var rows: [CrashIndexRow] = []
        for (i, version) in ["120.0", "120.0", "119.0", "121.0b3", "121.0b5", "122.0a1", "115.5.0esr", "121.0b5"].enumerated() {
            rows.append(CrashIndexRow(crashID: "c\(i)", dateProcessed: now - Int64(i) * 1_000_000, product: "Firefox", version: version))
        }
        // Older than a week, and another product: not featured.
        rows.append(CrashIndexRow(crashID: "old", dateProcessed: now - 8 * 86_400_000_000, product: "Firefox", version: "130.0"))
        rows.append(CrashIndexRow(crashID: "fenix", dateProcessed: now, product: "Fenix", version: "131.0"))
        try await f.metadata.index(rows)

        let featured = FeaturedVersions(metadata: f.metadata, logger: RunningService.quietLogger)
        #expect(await featured.versions(for: try #require(catalog.product(named: "Firefox"))) == ["122.0a1", "121.0b", "120.0", "115.5.0esr"])
        let fenix = try #require(catalog.product(named: "Fenix"))
        #expect(await featured.versions(for: fenix) == ["120.1.0", "121.0b3", "122.0a1"])
        // Cached: a second call does not fetch again.
        _ = await featured.versions(for: fenix)
        #expect(server.requests(to: "/mobile_versions.json") == 1)
        // A document that fails is skipped; the literal entries remain.
        let flaky = ProductDetails(name: "Flaky", featuredVersions: ["99.0", "doc.version"], versionJSONURLs: ["doc": server.baseURL + "/broken.json"])
        #expect(await featured.versions(for: flaky) == ["99.0"])
    }

    @Test func searchValidatesProductsAndTheProcessedCrashCarriesBugLinks() async throws {
        let dir = try catalogDirectory(versionsURL: "http://127.0.0.1:1/versions.json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = try await StorageFixture.make(.embedded)
        defer { Task { await f.close() } }
        let api = try CrashStatsAPI(blobs: f.blobs, metadata: f.metadata, queue: WorkQueue(database: f.database),
                                    signatures: SignatureGenerator(lists: try SignatureLists.bundled()), anonymousPerMinute: 0, authenticatedPerMinute: 0,
                                    products: try ProductCatalog.load(directory: dir), baseURL: "https://crash-stats.example.com/")
        func get(_ endpoint: String, _ query: [(String, String)]) async -> (Int, JSONValue?) {
            let r = await api.handle(APIRequest(method: "GET", endpoint: endpoint, query: query))
            return (r.status, JSONValue.parse(r.body))
        }
        let bad = await get("SuperSearch", [("product", "Firefox"), ("product", "Thunderbird"), ("product", "!=Nope")])
        #expect(bad.0 == 400)
        #expect(bad.1 == JSONValue.parse(Data(#"{"errors": {"product": ["Not valid products: Thunderbird, Nope"]}}"#.utf8)))
        #expect(await get("SuperSearch", [("product", "Firefox"), ("product", "=Fenix")]).0 == 200)

        let id = "de1bb258-cbbf-4589-a673-34f800241130"
        try await f.blobs.put(BlobKeys.processedCrash(id), Data("""
            {"uuid": "\(id)", "product": "Firefox", "signature": "OOM | small", "os_name": "Linux", "cpu_arch": "amd64", "url": "https://secret.example"}
            """.utf8))
        let plain = await get("ProcessedCrash", [("crash_id", id)])
        #expect(plain.1?["_bug_links"] == nil)
        let (status, doc) = await get("ProcessedCrash", [("crash_id", id), ("_bug_links", "1")])
        #expect(status == 200)
        let links = try #require(doc?["_bug_links"]?.arrayValue)
        #expect(links.map { $0["text"]?.stringValue } == ["Firefox", "Core", "External Software Affecting Firefox", "Toolkit", "GeckoView"])
        let url = try #require(links.first?["url"]?.stringValue)
        #expect(url.hasPrefix("https://bugzilla.mozilla.org/enter_bug.cgi?bug_type=defect&keywords=crash&product=Firefox&op_sys=Linux&rep_platform=amd64&cf_crash_signature=%5B%40+OOM+%7C+small%5D"))
        #expect(url.contains("https%3A%2F%2Fcrash-stats.example.com%2Freport%2Findex%2F\(id)"))
        // Built from what the caller may see: the protected URL never enters a link.
        #expect(!url.contains("secret.example"))

        // Bug associations: Bugs lists the bugs of the signatures with their related signatures.
        try await f.metadata.associateBug(1234, signature: "OOM | small")
        try await f.metadata.associateBug(1234, signature: "OOM | large")
        try await f.metadata.associateBug(999, signature: "other")
        #expect(try await f.metadata.associateBug(1234, signature: "OOM | small") == false)
        let bugs = await get("Bugs", [("signatures", "OOM | small")])
        #expect(bugs.1 == JSONValue.parse(Data(#"{"hits": [{"id": 1234, "signature": "OOM | large"}, {"id": 1234, "signature": "OOM | small"}], "total": 2}"#.utf8)))
        let byBugs = await get("SignaturesByBugs", [("bug_ids", "999"), ("bug_ids", "1234")])
        #expect(byBugs.1?["total"] == .int(3))
        #expect(await get("SignaturesByBugs", [("bug_ids", "12x")]).0 == 400)
        #expect(await get("Bugs", []).1 == JSONValue.parse(Data(#"{"errors": {"signatures": ["This field is required."]}}"#.utf8)))
        #expect(try await f.metadata.removeBugAssociation(999, signature: "other"))
        #expect(await get("SignaturesByBugs", [("bug_ids", "999")]).1?["total"] == .int(0))
    }
}
