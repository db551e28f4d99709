import CrashModel
import Foundation
import Processor
import Storage
import Testing
import TestSupport

/// The MissingProcessedCrash safety net over real storage: stored raw crashes with no processed
/// crash are queued once and recorded; processed, queued and dead-lettered ones are left alone.
@Suite struct RepublisherTests {
    static let day = "20261128"
    static func id(_ n: Int) -> String { String(format: "de1bb258-cbbf-4589-a673-%06d261128", n) }

    @Test(arguments: Backend.allCases)
    func storedCrashesWithNoProcessedCrashAreQueuedOnceAndRecorded(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let queue = WorkQueue(database: f.database, maxAttempts: 1, clock: f.clock.function)
        let processed = Self.id(1), queued = Self.id(2), dead = Self.id(3), lost = [Self.id(4), Self.id(5)]
        for id in [processed, queued, dead] + lost {
            try await f.blobs.put(BlobKeys.rawCrash(id, date: Self.day), Data("{}".utf8))
        }
        // Not crashes: another day, and a key in the day folder that is no crash id.
        try await f.blobs.put(BlobKeys.rawCrash(Self.id(6), date: "20261127"), Data("{}".utf8))
        try await f.blobs.put(BlobKeys.rawCrashDay(Self.day) + "notes.txt", Data("x".utf8))
        try await f.metadata.index(CrashIndexRow(crashID: processed, dateProcessed: 1))
        try await queue.enqueue(QueueItem(crashID: dead))
        let lease = try #require(try await queue.lease().first)
        try await queue.fail(lease, error: "cannot be processed")
        try await queue.enqueue(QueueItem(crashID: queued, ruleset: "default"), queue: .priority)

        let republisher = Republisher(blobs: f.blobs, metadata: f.metadata, queue: queue)
        let seen = ProgressLog()
        let report = try await republisher.republish(day: Self.day) { done, total in seen.add(done, total) }
        #expect(report.stored == 5)
        #expect(report.processed == 1)
        #expect(report.waiting == 2)
        #expect(report.queued.sorted() == lost)
        #expect(seen.last == [5, 5])
        #expect(try await queue.knownCrashIDs() == Set([queued, dead] + lost))

        var (rows, count) = try await f.metadata.missingProcessedCrashes(limit: 10, offset: 0)
        #expect(count == 2)
        #expect(rows.map(\.crashID).sorted() == lost)
        #expect(rows.allSatisfy { !$0.isProcessed && $0.created == f.clock.now })

        // A second run finds them queued: nothing is queued twice.
        #expect(try await republisher.republish(day: Self.day).queued.isEmpty)
        // Once processed, the record says so.
        try await f.metadata.index(CrashIndexRow(crashID: lost[0], dateProcessed: 2))
        (rows, count) = try await f.metadata.missingProcessedCrashes(limit: 1, offset: 0)
        #expect(count == 2 && rows.count == 1)
        let all = try await f.metadata.missingProcessedCrashes(limit: 10, offset: 0).rows
        #expect(all.first { $0.crashID == lost[0] }?.isProcessed == true)
        #expect(all.first { $0.crashID == lost[1] }?.isProcessed == false)
        // An empty day is no error.
        let empty = try await republisher.republish(day: "20200101")
        #expect(empty.stored == 0 && empty.queued.isEmpty)
    }

    final class ProgressLog: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [[Int]] = []
        func add(_ a: Int, _ b: Int) { lock.withLock { values.append([a, b]) } }
        var last: [Int]? { lock.withLock { values.last } }
    }
}
