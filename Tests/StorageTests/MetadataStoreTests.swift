import Foundation
import JSONSupport
import SQLKit
import Storage
import Testing
import TestSupport

@Suite struct MetadataStoreTests {
    @Test(arguments: Backend.allCases)
    func versionStringsFollowTheBetaAndReleaseCandidateRules(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let m = f.metadata
        for v in ["65.0b3", "65.0rc1"] { try await m.addProductVersion(product: "Firefox", channel: "beta", buildID: "20190101000000", version: v) }
        try await m.addProductVersion(product: "Firefox", channel: "beta", buildID: "20190101000000", version: "65.0b3") // again: no duplicate
        for v in ["66.0rc1", "66.0rc2", "66.0"] { try await m.addProductVersion(product: "Firefox", channel: "beta", buildID: "20190202000000", version: v) }
        try await m.addProductVersion(product: "Firefox", channel: "release", buildID: "20190303000000", version: "67.0")
        #expect(try await m.versionStrings(product: "Firefox", channel: "beta", buildID: "20190101000000") == ["65.0b3"])
        #expect(try await m.versionStrings(product: "Firefox", channel: "beta", buildID: "20190202000000") == ["66.0rc2", "66.0rc1"])
        #expect(try await m.versionStrings(product: "Firefox", channel: "release", buildID: "20190303000000") == ["67.0"])
        #expect(try await m.versionStrings(product: "Firefox", channel: "beta", buildID: "20190404000000") == [])
        #expect(try await m.productVersions(product: "Firefox").count == 6)
    }

    @Test(arguments: Backend.allCases)
    func migrationsApplyOnceAndReopenCleanly(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        #expect(try await f.metadata.schemaVersion() == 13)
        // A second process starting on the same database applies nothing and loses nothing.
        try await f.metadata.index(CrashIndexRow(crashID: "a", dateProcessed: 1))
        let again = try await Database.open(url: f.databaseURL, poolSize: 1)
        let reopened = try await MetadataStore.open(again)
        #expect(try await reopened.schemaVersion() == 13)
        #expect(try await reopened.crash("a") != nil)
        await again.shutdown()
    }

    /// Annotations are the client's: NUL characters anywhere and huge product/version/channel
    /// values must never make indexing fail (PostgreSQL refuses NUL in text and JSONB, and a
    /// B-tree entry over 2704 bytes).
    @Test(arguments: Backend.allCases)
    func indexingNeverFailsOnNULOrHugeValues(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let huge = String(repeating: "é", count: 40_000)  // 80,000 bytes
        let row = CrashIndexRow(
            crashID: "nul", dateProcessed: 1, product: "Fire\u{0}fox" + huge, version: huge, releaseChannel: "\u{0}",
            platform: huge, platformVersion: huge, cpuArch: huge, processType: huge, signature: "sig\u{0}" + huge, buildID: huge, reason: huge,
            document: .object([("product", .string("Fire\u{0}fox" + huge)), ("key\u{0}", .array([.string("\u{0}\u{0}")]))]))
        try await f.metadata.index(row)
        let stored = try #require(try await f.metadata.crash("nul"))
        #expect(stored.product == "Firefox" + String(repeating: "é", count: (CrashIndexRow.maxColumnBytes - 7) / 2))
        #expect(stored.version?.utf8.count == CrashIndexRow.maxColumnBytes)
        #expect(stored.releaseChannel == "")
        #expect(stored.signature == "sig" + String(repeating: "é", count: (CrashIndexRow.maxSignatureBytes - 3) / 2))
        // The document keeps the whole value, without the NULs.
        #expect(stored.document == .object([("product", .string("Firefox" + huge)), ("key", .array([.string("")]))]))
        // Searchable by the stored prefix.
        #expect(try await f.metadata.crashes(from: 0, to: 10, product: stored.product).map(\.crashID) == ["nul"])
    }

    /// Search queries end at their time limit with `QueryTimedOut`: PostgreSQL's statement_timeout
    /// (scoped to the query's transaction), SQLite's deadline inside `pm_regexp`.
    @Test(arguments: Backend.allCases)
    func searchesStopAtTheirTimeLimit(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        try await f.metadata.index((0..<200).map { CrashIndexRow(crashID: "c\($0)", dateProcessed: Int64($0), signature: String(repeating: "a", count: 40)) })
        let start = ContinuousClock.now
        await #expect(throws: QueryTimedOut.self) {
            if backend == .scaleOut {
                _ = try await f.metadata.search("SELECT pg_sleep(60)", timeout: .milliseconds(300))
            } else {
                let deadline = MetadataStore.regexDeadline(.milliseconds(300))
                _ = try await f.metadata.search("SELECT COUNT(*) AS n FROM crashes WHERE pm_regexp(\(bind: "(a|a)*!"), signature, \(bind: deadline)) = 1")
            }
        }
        // Without the limit the query runs a minute (PostgreSQL) or for ever (2^40 backtracking
        // steps); the bound leaves room for a loaded machine.
        #expect(ContinuousClock.now - start < .seconds(20))
        // The limit belonged to that query only.
        let n = try await f.metadata.search("SELECT COUNT(*) AS n FROM crashes").first?.decode(column: "n", as: Int64.self)
        #expect(n == 200)
        if backend == .embedded {
            // Without a deadline the same function still matches.
            let rows = try await f.metadata.search("SELECT COUNT(*) AS n FROM crashes WHERE pm_regexp(\(bind: "a+"), signature, \(bind: Int64.max)) = 1")
            #expect(try rows.first?.decode(column: "n", as: Int64.self) == 200)
        }
    }

    @Test(arguments: Backend.allCases)
    func indexesCrashesAndQueriesByDateProductAndSignaturePrefix(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let day: Int64 = 86_400_000_000
        let rows = [
            CrashIndexRow(crashID: "c1", dateProcessed: 10 * day, product: "Firefox", version: "120.0", platform: "Windows NT",
                          signature: "OOM | small", uptime: 12, document: .object([("uuid", .string("c1")), ("moz_crash_reason", .string("x"))])),
            CrashIndexRow(crashID: "c2", dateProcessed: 11 * day, product: "Firefox", version: "121.0", platform: "Linux", signature: "OOM | large"),
            CrashIndexRow(crashID: "c3", dateProcessed: 12 * day, product: "Fenix", version: "121.0", platform: "Android", signature: "mozilla::dom::Foo"),
            CrashIndexRow(crashID: "c4", dateProcessed: 20 * day, product: "Firefox", signature: "OOM | small"),
            CrashIndexRow(crashID: "c5", dateProcessed: 11 * day, product: "Firefox", signature: "OON"),
        ]
        for r in rows { try await f.metadata.index(r) }
        #expect(try await f.metadata.crash("c1") == rows[0])
        #expect(try await f.metadata.crash("nope") == nil)

        let window = try await f.metadata.crashes(from: 10 * day, to: 13 * day)
        #expect(window.map(\.crashID) == ["c3", "c2", "c5", "c1"])
        #expect(try await f.metadata.crashes(from: 0, to: 30 * day, product: "Firefox", signaturePrefix: "OOM |").map(\.crashID) == ["c4", "c2", "c1"])
        #expect(try await f.metadata.crashes(from: 0, to: 30 * day, signaturePrefix: "OO").count == 4)

        // Reprocessing replaces the row.
        var changed = rows[0]
        changed.signature = "new | signature"
        try await f.metadata.index(changed)
        #expect(try await f.metadata.crash("c1")?.signature == "new | signature")
        #expect(try await f.metadata.deleteCrashes(processedBefore: 11 * day) == 1)
        #expect(try await f.metadata.crash("c1") == nil)
    }

    @Test(arguments: Backend.allCases)
    func tokensAreStoredHashedAndExpire(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let account = try await f.metadata.createAccount(email: "Dev@Example.com", name: "Dev")
        try await f.metadata.grant("crashstats.view_pii", to: account.id)
        #expect(try await f.metadata.account(email: "dev@example.com")?.permissions == ["crashstats.view_pii"])
        let (text, token) = try await f.metadata.createToken(accountID: account.id, permissions: ["crashstats.view_pii"], lifetime: .seconds(3600))
        #expect(text.count == 32 && text.allSatisfy(\.isHexDigit) && token.prefix == String(text.prefix(8)))

        // The token text is nowhere in the database.
        let stored = try await f.database.withConnection { db in
            try await db.raw("SELECT token_hash, token_prefix, notes, permissions FROM api_tokens").all()
        }
        #expect(stored.count == 1)
        let hash = try stored[0].decode(column: "token_hash", as: String.self)
        #expect(hash != text && hash.count == 64 && !hash.contains(text))

        let (who, used) = try #require(try await f.metadata.authenticate(token: text))
        #expect(who.email == "dev@example.com" && used.permissions == ["crashstats.view_pii"])
        #expect(try await f.metadata.authenticate(token: String(text.dropLast()) + "0") == nil || text.hasSuffix("0"))
        #expect(try await f.metadata.authenticate(token: "") == nil)
        // Anything after "-" is a label.
        #expect(try await f.metadata.authenticate(token: text + "-my-laptop")?.1.id == token.id)
        // A token loses a permission its owner loses.
        try await f.metadata.revoke("crashstats.view_pii", from: account.id, actor: "admin@example.com")
        #expect(try await f.metadata.account(id: account.id)?.permissions == [])
        #expect(try await f.metadata.authenticate(token: text)?.1.permissions == [])
        #expect(try await f.metadata.tokens(accountID: account.id).map(\.id) == [token.id])
        f.clock.advance(seconds: 3601)
        #expect(try await f.metadata.authenticate(token: text) == nil)
        #expect(try await f.metadata.deleteToken(id: token.id, actor: "admin@example.com"))
        #expect(try await f.metadata.deleteToken(id: token.id) == false)
        let log = try await f.metadata.auditLog()
        #expect(log.map(\.action) == ["token-revoke", "revoke", "token-create", "grant"])
        #expect(log[1].actor == "admin@example.com" && log[1].details == "crashstats.view_pii" && log[1].target == "account:\(account.id)")
    }

    @Test(arguments: Backend.allCases)
    func recordsSymbolUploadsFilesAndObjects(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let account = try await f.metadata.createAccount(email: "ci@example.com")
        let id = try await f.metadata.createSymbolUpload(accountID: account.id, filename: "symbols.zip", size: 1234, contentHash: "abc",
                                                         isTry: false, bucket: "b", redirectURLs: ["https://x/y"])
        var file = SymbolFileRecord(uploadID: id, key: "symbols/v1/xul.pdb/ABC/xul.sym", isTry: false, size: 10, compressed: true,
                                    debugFilename: "xul.pdb", debugId: "ABC", codeFile: "xul.dll", codeId: "5F00AA")
        try await f.metadata.recordSymbolFiles([(SymbolObjectInfo(key: file.key, size: 10, originalSize: 30, originalMD5: "m0", compressed: true), file)])
        try await f.metadata.completeSymbolUpload(id: id, stored: [file.key], skipped: ["a/1/b"], ignored: ["x-symbols.txt"])
        let upload = try #require(try await f.metadata.symbolUpload(id: id))
        #expect(upload.user == "ci@example.com" && upload.files == [file.key] && upload.skippedKeys == ["a/1/b"] && upload.ignoredKeys == ["x-symbols.txt"])
        #expect(upload.redirectURLs == ["https://x/y"] && upload.completedAt != nil)
        #expect(try await f.metadata.symbolUploads(size: [RecordFilter.parse(">=1000")]).total == 1)
        #expect(try await f.metadata.symbolUploads(size: [RecordFilter.parse("!>=1000")]).total == 0)
        // The code-id lookup finds the file by either pair, case-insensitively by id.
        let byCode = try #require(try await f.metadata.latestSymbolFile(file: "xul.dll", id: "5f00aa", includeTry: false))
        file.id = byCode.id
        file.createdAt = byCode.createdAt
        #expect(byCode == file)
        #expect(try await f.metadata.latestSymbolFile(file: "xul.pdb", id: "ABC", includeTry: false)?.id == byCode.id)
        #expect(try await f.metadata.latestSymbolFile(file: "xul.pdb", id: "ABD", includeTry: true) == nil)
        // Object metadata is replaced, not duplicated.
        var again = file
        again.uploadID = nil
        try await f.metadata.recordSymbolFiles([(SymbolObjectInfo(key: file.key, size: 11, originalSize: 31, originalMD5: "m2", compressed: true), again)])
        #expect(try await f.metadata.symbolObject(key: file.key) == SymbolObjectInfo(key: file.key, size: 11, originalSize: 31, originalMD5: "m2", compressed: true))
        // Retention: a regular upload outlives the try cutoff.
        let now = f.clock.now
        #expect(try await f.metadata.deleteSymbolUploads(tryBefore: now + 1, regularBefore: now, dryRun: false) == (0, 0))
        #expect(try await f.metadata.deleteSymbolUploads(tryBefore: now + 1, regularBefore: now + 1, dryRun: true) == (1, 1))
        #expect(try await f.metadata.deleteSymbolUploads(tryBefore: now + 1, regularBefore: now + 1, dryRun: false) == (1, 1))
        #expect(try await f.metadata.symbolFile(id: byCode.id) == nil)
    }

    @Test(arguments: Backend.allCases)
    func missingSymbolsReportRanksByCrashes(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let a = MetadataStore.MissingModule(debugFile: "a.pdb", debugId: "AA", codeFile: "a.dll", codeId: "1")
        let b = MetadataStore.MissingModule(debugFile: "b.pdb", debugId: "bb", codeFile: "b.dll", codeId: "2")
        for crash in ["c1", "c2"] { try await f.metadata.recordMissingSymbols(crashID: crash, modules: [b], firstCheckAfter: .seconds(30)) }
        try await f.metadata.recordMissingSymbols(crashID: "c3", modules: [a], firstCheckAfter: .seconds(30))
        try await f.metadata.recordDownloadMiss(debugFile: "c.so", debugId: "CC", codeFile: "c.so", codeId: "3")
        try await f.metadata.recordDownloadMiss(debugFile: "c.so", debugId: "CC", codeFile: "c.so", codeId: "3")
        let report = try await f.metadata.missingSymbolsReport(since: f.clock.now - 1)
        #expect(report.map(\.module.debugFile) == ["b.pdb", "a.pdb", "c.so"])
        #expect(report.map(\.crashes) == [2, 1, 0] && report[2].downloadMisses == 2)
        #expect(try await f.metadata.waitingModules(debugFile: "b.pdb", debugId: "BB").map(\.debugId) == ["bb"])
        // Download misses of new modules stop at the cap; listed ones still count.
        try await f.metadata.recordDownloadMiss(debugFile: "d.so", debugId: "DD", codeFile: "d.so", codeId: "4", maxEntries: 3)
        try await f.metadata.recordDownloadMiss(debugFile: "c.so", debugId: "CC", codeFile: "c.so", codeId: "3", maxEntries: 3)
        let capped = try await f.metadata.missingSymbolsReport(since: f.clock.now - 1)
        #expect(!capped.contains { $0.module.debugFile == "d.so" } && capped.first { $0.module.debugFile == "c.so" }?.downloadMisses == 3)
        // Stale download-only entries go; modules crashes wait for stay.
        f.clock.advance(seconds: 100)
        #expect(try await f.metadata.deleteStaleDownloadMisses(before: f.clock.now) == 1)
        #expect(try await f.metadata.missingSymbolsReport(since: 0).map(\.module.debugFile) == ["b.pdb", "a.pdb"])
        // A crash reprocessed with its symbols takes its module off the report (another crash
        // still waiting for b.pdb keeps that one).
        try await f.metadata.recordMissingSymbols(crashID: "c3", modules: [], firstCheckAfter: .seconds(30))
        try await f.metadata.recordMissingSymbols(crashID: "c1", modules: [], firstCheckAfter: .seconds(30))
        #expect(try await f.metadata.missingSymbolsReport(since: 0).map(\.module.debugFile) == ["b.pdb"])
        #expect(try await f.metadata.missingModules(dueOnly: false, limit: 10).map(\.debugFile) == ["b.pdb"])
    }
}
