import CrashModel
import Foundation
import JSONSupport
import Processor
import Storage
import Testing
import TestSupport

/// Retention deletes what is older than the cutoff, counts what it deletes (the same in a dry
/// run), and never touches anything newer — on both storage configurations.
@Suite struct CrashRetentionTests {
    @Test(arguments: Backend.allCases)
    func oldCrashesGoNewerOnesStay(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let queue = WorkQueue(database: f.database, clock: f.clock.function)
        let now = Date(timeIntervalSince1970: Double(f.clock.now) / 1_000_000)
        func store(daysAgo: Double, dumps: Bool) async throws -> String {
            let day = now.addingTimeInterval(-daysAgo * 86_400)
            let id = CrashID.make(throttleDigit: 0, date: day)
            try await f.blobs.put(BlobKeys.rawCrash(id), Data(#"{"ProductName": "Firefox"}"#.utf8))
            if dumps {
                try await f.blobs.put(BlobKeys.dumpNames(id), Data(#"["upload_file_minidump", "memory_report"]"#.utf8))
                try await f.blobs.put(BlobKeys.dump(id, name: "upload_file_minidump"), Data("MDMP".utf8))
                try await f.blobs.put(BlobKeys.dump(id, name: "memory_report"), Data("gz".utf8))
            }
            try await f.blobs.put(BlobKeys.processedCrash(id), Data("{}".utf8))
            try await f.metadata.index(CrashIndexRow(crashID: id, dateProcessed: Int64(day.timeIntervalSince1970 * 1_000_000), product: "Firefox"))
            try await f.metadata.recordMissingSymbols(crashID: id, modules: [.init(debugFile: "x.pdb", debugId: "AB")], firstCheckAfter: .seconds(30))
            return id
        }
        let old = [try await store(daysAgo: 40, dumps: true), try await store(daysAgo: 45, dumps: false)]
        let kept = [try await store(daysAgo: 2, dumps: true), try await store(daysAgo: 29, dumps: false)]
        let account = try await f.metadata.createAccount(email: "a@example.com")
        _ = try await f.metadata.createToken(accountID: account.id, permissions: [], lifetime: .seconds(1))
        f.clock.advance(seconds: 100 * 86_400)
        _ = try await f.metadata.createToken(accountID: account.id, permissions: [], lifetime: .seconds(86_400))
        let later = now.addingTimeInterval(100 * 86_400)

        // Thirty days kept, counted from `now` (the fixture clock moved on only for the tokens).
        var retention = CrashRetention(blobs: f.blobs, metadata: f.metadata, queue: queue, retentionDays: 30)
        retention.scanDays = 60
        let dry = try await retention.runOnce(dryRun: true, now: now)
        #expect(dry.crashes == 2 && dry.blobs == 5 + 2 && dry.indexRows == 2 && dry.missingSymbolRows == 2, "\(dry)")
        #expect(try await f.blobs.get(BlobKeys.rawCrash(old[0])) != nil, "a dry run deletes nothing")
        let done = try await retention.runOnce(dryRun: false, now: now)
        #expect(done.crashes == dry.crashes && done.blobs == dry.blobs && done.indexRows == dry.indexRows && done.missingSymbolRows == dry.missingSymbolRows,
                "\(done) vs \(dry)")
        for id in old {
            #expect(try await f.blobs.get(BlobKeys.rawCrash(id)) == nil)
            #expect(try await f.blobs.get(BlobKeys.processedCrash(id)) == nil)
            #expect(try await f.metadata.crash(id) == nil)
        }
        #expect(try await f.blobs.get(BlobKeys.dump(old[0], name: "memory_report")) == nil)
        for id in kept {
            #expect(try await f.blobs.get(BlobKeys.rawCrash(id)) != nil)
            #expect(try await f.blobs.get(BlobKeys.processedCrash(id)) != nil)
            #expect(try await f.metadata.crash(id) != nil)
        }
        #expect(try await f.blobs.get(BlobKeys.dump(kept[0], name: "upload_file_minidump")) != nil)
        #expect(try await retention.runOnce(dryRun: false, now: now) == CrashRetention.Outcome(), "a second run finds nothing")

        // Tokens: the one expired 100 days before `later` goes, the live one stays.
        let tokens = try await retention.runOnce(dryRun: false, now: later)
        #expect(tokens.expiredTokens == 1)
        #expect(try await f.metadata.tokens(accountID: account.id).count == 1)
    }
}
