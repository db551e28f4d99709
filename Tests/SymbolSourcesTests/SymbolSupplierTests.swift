import Foundation
import Testing
import TestSupport
@testable import SymbolSources

/// Symbol lookup against real local trees and a real HTTP symbol server on loopback.
@Suite struct SymbolSupplierTests {
    static let crashClientID = "509C0610949836F7B70BD88BCF03E5400"
    static let crashClientRoute = "/crash-client/\(crashClientID)/crash-client.sym"
    static func crashClientFile() throws -> String {
        try TestData.path("symbols/crash-client/\(crashClientID)/crash-client.sym")
    }
    let crashClient = ModuleIdentity(debugFile: "crash-client", debugId: crashClientID)

    func supplier(paths: [String] = [], urls: [String] = [], cache: String = TestData.temporaryDirectory("cache"),
                  ttl: Duration = .seconds(300), attempts: Int = 3, limit: Int64 = 1 << 30) -> SymbolSupplier {
        SymbolSupplier(configuration: SymbolSourcesConfiguration(
            symbolPaths: paths, symbolURLs: urls, cacheDirectory: cache, cacheSizeLimit: limit,
            negativeCacheTTL: ttl, attempts: attempts, retryBaseDelay: .milliseconds(10)))
    }

    @Test func findsModulesInALocalTree() async throws {
        let s = supplier(paths: [try TestData.path("symbols")])
        let fetch = await s.symbols(for: ModuleIdentity(debugFile: "test_app.pdb", debugId: "5A9832E5287241C1838ED98914E9B7FF1"))
        let table = try #require(fetch.table)
        #expect(table.module.debugFile == "test_app.pdb")
        #expect(fetch.report.source?.hasSuffix("test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym") == true)
        let lower = await s.symbols(for: ModuleIdentity(debugFile: "C:\\build\\test_app.pdb", debugId: "5a9832e5287241c1838ed98914e9b7ff1"))
        #expect(lower.table != nil)
        let missing = await s.symbols(for: ModuleIdentity(debugFile: "nothere.pdb", debugId: "5A9832E5287241C1838ED98914E9B7FF1"))
        #expect(missing.table == nil && missing.notFound == .missing)
        await s.shutdown()
    }

    /// Endless made-up modules cannot grow the negative cache past its bound; the most recent
    /// misses are still remembered.
    @Test func theNegativeCacheIsBounded() async throws {
        var configuration = SymbolSourcesConfiguration(symbolPaths: [try TestData.path("symbols")],
                                                       cacheDirectory: TestData.temporaryDirectory("cache"))
        configuration.negativeCacheEntries = 10
        let s = SymbolSupplier(configuration: configuration)
        for i in 0..<57 {
            _ = await s.symbols(for: ModuleIdentity(debugFile: "made-up-\(i).pdb", debugId: String(format: "%032X1", i)))
            #expect(await s.negativeCacheCount <= 10)
        }
        let last = await s.symbols(for: ModuleIdentity(debugFile: "made-up-56.pdb", debugId: String(format: "%032X1", 56)))
        #expect(last.notFound == .recentlyMissing)
        let first = await s.symbols(for: ModuleIdentity(debugFile: "made-up-0.pdb", debugId: String(format: "%032X1", 0)))
        #expect(first.notFound == .missing)
        await s.shutdown()
    }

    /// A file copied into a local tree is seen once the short local negative cache expires; a
    /// miss that asked a server is remembered for the full TTL.
    @Test func localTreeMissesAreRememberedBriefly() async throws {
        let tree = TestData.temporaryDirectory("late-tree")
        defer { try? FileManager.default.removeItem(atPath: tree) }
        var configuration = SymbolSourcesConfiguration(symbolPaths: [tree], cacheDirectory: TestData.temporaryDirectory("cache"))
        configuration.localNegativeCacheTTL = .milliseconds(200)
        let s = SymbolSupplier(configuration: configuration)
        #expect(await s.symbols(for: crashClient).notFound == .missing)
        try FileManager.default.createDirectory(atPath: "\(tree)/crash-client/\(Self.crashClientID)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try Self.crashClientFile(), toPath: "\(tree)/crash-client/\(Self.crashClientID)/crash-client.sym")
        #expect(await s.symbols(for: crashClient).notFound == .recentlyMissing)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await s.symbols(for: crashClient).table != nil)
        await s.shutdown()

        let server = try TestHTTPServer(routes: [:])
        defer { server.shutdown() }
        var remote = configuration
        remote.symbolURLs = [server.baseURL]
        remote.symbolPaths = []
        let r = SymbolSupplier(configuration: remote)
        _ = await r.symbols(for: crashClient)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await r.symbols(for: crashClient).notFound == .recentlyMissing)
        await r.shutdown()
    }

    @Test func downloadsGzippedSymbolsOnceAndThenUsesTheIndex() async throws {
        let server = try TestHTTPServer(routes: [Self.crashClientRoute: .file(try Self.crashClientFile(), gzip: true)])
        defer { server.shutdown() }
        let cache = TestData.temporaryDirectory("cache")
        let first = supplier(urls: [server.baseURL], cache: cache)
        let fetch = await first.symbols(for: crashClient)
        let table = try #require(fetch.table)
        #expect(table.isMemoryMapped)
        #expect(table.module.url == server.baseURL + Self.crashClientRoute)
        #expect(fetch.report.downloadBytes == 4_171_369)
        #expect(fetch.report.cacheHit == false && fetch.report.saveSeconds != nil)
        await first.shutdown()

        // A new process (new supplier) with the same cache directory needs no download.
        let second = supplier(urls: [server.baseURL], cache: cache)
        let again = await second.symbols(for: crashClient)
        #expect(again.table?.lookup(0x1000) == table.lookup(0x1000))
        #expect(again.report.cacheHit == true && again.report.downloadBytes == nil)
        #expect(server.requests(to: Self.crashClientRoute) == 1)
        #expect(FileManager.default.fileExists(atPath: "\(cache)/crash-client/\(Self.crashClientID).symc"))
        await second.shutdown()
    }

    @Test func triesServersInOrder() async throws {
        let empty = try TestHTTPServer(routes: [:])
        let full = try TestHTTPServer(routes: [Self.crashClientRoute: .file(try Self.crashClientFile())])
        defer { empty.shutdown(); full.shutdown() }
        let s = supplier(urls: [empty.baseURL + "/", full.baseURL])
        #expect(await s.symbols(for: crashClient).table != nil)
        #expect(empty.requests(to: Self.crashClientRoute) == 1)
        #expect(full.requests(to: Self.crashClientRoute) == 1)
        await s.shutdown()
    }

    @Test func retriesServerErrorsWithBackoff() async throws {
        let server = try TestHTTPServer(routes: [
            Self.crashClientRoute: .failing(503, times: 2, then: .file(try Self.crashClientFile())),
            "/other/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0/other.sym": .status(500),
        ])
        defer { server.shutdown() }
        let s = supplier(urls: [server.baseURL], attempts: 3)
        #expect(await s.symbols(for: crashClient).table != nil)
        #expect(server.requests(to: Self.crashClientRoute) == 3)
        let failing = await s.symbols(for: ModuleIdentity(debugFile: "other", debugId: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0"))
        #expect(failing.table == nil)
        guard case .fetchFailed(let message) = failing.notFound else { Issue.record("\(String(describing: failing.notFound))"); return }
        #expect(message.hasSuffix("HTTP 500 after 3 attempts"))
        #expect(server.requests(to: "/other/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0/other.sym") == 3)
        await s.shutdown()
    }

    @Test func remembersMissingModulesForTheTTL() async throws {
        let server = try TestHTTPServer(routes: [:])
        defer { server.shutdown() }
        let route = "/gone.pdb/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB1/gone.sym"
        let gone = ModuleIdentity(debugFile: "gone.pdb", debugId: "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB1")
        let s = supplier(urls: [server.baseURL], ttl: .seconds(60))
        #expect(await s.symbols(for: gone).notFound == .missing)
        #expect(await s.symbols(for: gone).notFound == .recentlyMissing)
        #expect(server.requests(to: route) == 1)
        await s.shutdown()

        let noNegativeCache = supplier(urls: [server.baseURL], ttl: .zero)
        _ = await noNegativeCache.symbols(for: gone)
        _ = await noNegativeCache.symbols(for: gone)
        #expect(server.requests(to: route) == 3)
        await noNegativeCache.shutdown()
    }

    @Test func concurrentRequestsForOneModuleShareOneDownload() async throws {
        let server = try TestHTTPServer(routes: [Self.crashClientRoute: .delayed(milliseconds: 300, .file(try Self.crashClientFile()))])
        defer { server.shutdown() }
        let s = supplier(urls: [server.baseURL])
        let module = crashClient
        let found = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<12 { group.addTask { await s.symbols(for: module).table != nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(found == 12)
        #expect(server.requests(to: Self.crashClientRoute) == 1)
        await s.shutdown()
    }

    @Test func rejectsAFileWhoseModuleIdDiffers() async throws {
        // The server answers the wrong file for the requested id.
        let route = "/crash-client/00000000000000000000000000000000A/crash-client.sym"
        let server = try TestHTTPServer(routes: [route: .file(try Self.crashClientFile())])
        defer { server.shutdown() }
        let s = supplier(urls: [server.baseURL])
        let fetch = await s.symbols(for: ModuleIdentity(debugFile: "crash-client", debugId: "00000000000000000000000000000000A"))
        #expect(fetch.table == nil)
        #expect(fetch.notFound == .debugIdMismatch(found: Self.crashClientID))
        await s.shutdown()
    }

    @Test func findsSymbolsByCodeIdThroughTheServerRedirect() async throws {
        let sym = try TestData.path("tecken/symbols/ShowSSEConfig.exe/6A4B9A365000/ShowSSEConfig.sym")
        let server = try TestHTTPServer(routes: [
            "/ShowSSEConfig.exe/6A4B9A365000/ShowSSEConfig.sym": .redirect("/ShowSSEConfig.pdb/D57F52D4A2FD56244C4C44205044422E1/ShowSSEConfig.sym"),
            "/ShowSSEConfig.pdb/D57F52D4A2FD56244C4C44205044422E1/ShowSSEConfig.sym": .file(sym, gzip: true),
        ])
        defer { server.shutdown() }
        let s = supplier(urls: [server.baseURL])
        let fetch = await s.symbols(for: ModuleIdentity(debugFile: "", debugId: "", codeFile: "C:\\app\\ShowSSEConfig.exe", codeId: "6A4B9A365000"))
        let table = try #require(fetch.table)
        #expect(table.module.debugFile == "ShowSSEConfig.pdb")
        #expect(table.module.debugId == "D57F52D4A2FD56244C4C44205044422E1")
        await s.shutdown()
    }

    @Test func namesThatWouldLeaveTheTreeAreNotLookedUp() async throws {
        let server = try TestHTTPServer(routes: [:])
        defer { server.shutdown() }
        let s = supplier(paths: [try TestData.path("symbols")], urls: [server.baseURL])
        for name in ["..", ".", "a/../../b", ""] {
            let fetch = await s.symbols(for: ModuleIdentity(debugFile: name, debugId: ".."))
            #expect(fetch.table == nil && fetch.notFound == .notLookedUp)
        }
        #expect(server.totalRequests == 0)
        await s.shutdown()
    }

    @Test func evictsLeastRecentlyUsedIndexesBeyondTheSizeLimit() async throws {
        let files = [
            ("symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym", "test_app.pdb", "5A9832E5287241C1838ED98914E9B7FF1", "test_app.sym"),
            ("symbols/kernel32.pdb/BCE8785C57B44245A669896B6A19B9542/kernel32.sym", "kernel32.pdb", "BCE8785C57B44245A669896B6A19B9542", "kernel32.sym"),
            ("tecken/symbols/c++filt/B2E65520F14FB5332E38A5A5189839AD0/c++filt.sym", "c++filt", "B2E65520F14FB5332E38A5A5189839AD0", "c++filt.sym"),
        ]
        var routes: [String: TestHTTPServer.Response] = [:]
        for f in files { routes["/\(f.1)/\(f.2)/\(f.3)"] = .file(try TestData.path(f.0)) }
        let server = try TestHTTPServer(routes: routes)
        defer { server.shutdown() }
        let cache = TestData.temporaryDirectory("cache")
        // Indexes: test_app ~856 KB, kernel32 ~660 KB, c++filt ~28 KB: 1.2 MB holds the last two.
        let s = supplier(urls: [server.baseURL], cache: cache, limit: 1_200_000)
        for f in files {
            #expect(await s.symbols(for: ModuleIdentity(debugFile: f.1, debugId: f.2)).table != nil)
            try await Task.sleep(for: .milliseconds(20))
        }
        let present = files.map { FileManager.default.fileExists(atPath: "\(cache)/\($0.1)/\($0.2).symc") }
        #expect(present == [false, true, true], "\(present)")
        await s.shutdown()
    }
}
