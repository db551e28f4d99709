import CrashModel
import Foundation
import JSONSupport
import Processor
import Signatures
import Stackwalker
import Storage
import Testing
import TestSupport

/// One processing run per crash at a time, across processes: a second run is told `Busy` (its
/// worker postpones the message without spending an attempt), so an older result never
/// overwrites a newer one; a claim left by a dead run expires.
@Suite struct ProcessingClaimTests {
    @Test(arguments: Backend.allCases)
    func aCrashBeingProcessedElsewhereIsPostponedNotOverwritten(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let processor = try CrashProcessor(blobs: f.blobs, metadata: f.metadata, walker: Stackwalker(supplier: nil),
                                       signatures: SignatureGenerator(lists: try SignatureLists.bundled()), stackwalkTimeLimit: .seconds(10))
        let id = "de1bb258-cbbf-4589-a673-34f800261128"
        try await f.blobs.put(BlobKeys.rawCrash(id, date: "20261128"), Data(#"{"ProductName": "Firefox", "Version": "1.0"}"#.utf8))

        // Another process holds the crash: this run does not touch it.
        #expect(try await f.metadata.claimProcessing(id, token: "elsewhere", lease: .seconds(80)))
        await #expect(throws: CrashProcessor.Busy.self) { try await processor.process(id) }
        #expect(try await f.blobs.get(BlobKeys.processedCrash(id)) == nil)
        // That run finishes and gives the claim back: now this one processes, and releases too.
        try await f.metadata.releaseProcessing(id, token: "elsewhere")
        _ = try await processor.process(id)
        #expect(try await f.blobs.get(BlobKeys.processedCrash(id)) != nil)
        #expect(try await f.metadata.claimProcessing(id, token: "next", lease: .seconds(80)))
        // A claim whose run died expires after its lease and is taken over.
        await #expect(throws: CrashProcessor.Busy.self) { try await processor.process(id) }
        f.clock.advance(seconds: 81)
        _ = try await processor.process(id)
        #expect(try await f.metadata.crash(id) != nil)
    }

    @Test(arguments: Backend.allCases)
    func concurrentRunsOfOneCrashNeverBothSave(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let processor = try CrashProcessor(blobs: f.blobs, metadata: f.metadata, walker: Stackwalker(supplier: nil),
                                       signatures: SignatureGenerator(lists: try SignatureLists.bundled()))
        let id = "de1bb258-cbbf-4589-a673-34f800261128"
        try await f.blobs.put(BlobKeys.rawCrash(id, date: "20261128"), Data(#"{"ProductName": "Firefox", "Version": "1.0"}"#.utf8))
        // Each run's claim is its own: at any moment at most one holds it. Eight at once: some
        // are Busy, every one that ran saved a complete crash, and none overlapped.
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 { group.addTask { (try? await processor.process(id)) != nil } }
            var all: [Bool] = []
            for await o in group { all.append(o) }
            return all
        }
        #expect(outcomes.contains(true))
        let saved = try #require(try await f.blobs.get(BlobKeys.processedCrash(id)).flatMap { JSONValue.parse($0) })
        #expect(saved["success"] == .bool(true))
        // Every run that saved kept the previous one's notes in the history: runs were one after another.
        #expect(saved["processor_history"]?.arrayValue?.count == outcomes.filter { $0 }.count - 1)
    }

    @Test(arguments: Backend.allCases)
    func aPostponedMessageKeepsItsAttempts(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let queue = WorkQueue(database: f.database, maxAttempts: 2, clock: f.clock.function)
        try await queue.enqueue(QueueItem(crashID: "busy"))
        for _ in 0..<5 {
            let lease = try #require(try await queue.lease().first)
            #expect(lease.attempts == 1)
            try await queue.postpone(lease, by: .seconds(5))
            #expect(try await queue.lease().isEmpty)
            f.clock.advance(seconds: 6)
        }
        #expect(try await queue.deadLetters().isEmpty)
    }
}

/// While the blob store is down, a crash the workers cannot load is postponed without spending
/// an attempt (a one-attempt queue would otherwise dead-letter it), and processed once the store
/// is back.
@Suite struct StorageOutageTests {
    final class FlakyBlobStore: BlobStore, @unchecked Sendable {
        let inner: any BlobStore
        private let lock = NSLock()
        private var isDown = false
        private var failedChecks = 0
        init(_ inner: any BlobStore) { self.inner = inner }
        /// Health checks answered while down.
        var checksRefused: Int { lock.withLock { failedChecks } }
        var down: Bool {
            get { lock.withLock { isDown } }
            set { lock.withLock { isDown = newValue } }
        }
        struct Unavailable: Error {}
        func gate() throws { if down { throw Unavailable() } }
        func put(_ key: String, _ data: Data) async throws { try gate(); try await inner.put(key, data) }
        func get(_ key: String) async throws -> Data? { try gate(); return try await inner.get(key) }
        func size(_ key: String) async throws -> Int? { try gate(); return try await inner.size(key) }
        func delete(_ key: String) async throws { try gate(); try await inner.delete(key) }
        func list(prefix: String) async throws -> [String] { try gate(); return try await inner.list(prefix: prefix) }
        func check() async throws {
            if down { lock.withLock { failedChecks += 1 }; throw Unavailable() }
            try await inner.check()
        }
        var description: String { "flaky" }
    }

    @Test func processingWaitsOutAStorageOutage() async throws {
        let f = try await StorageFixture.make(.embedded)
        defer { Task { await f.close() } }
        let blobs = FlakyBlobStore(f.blobs)
        let id = "de1bb258-cbbf-4589-a673-34f800261128"
        try await blobs.put(BlobKeys.rawCrash(id, date: "20261128"), Data(#"{"ProductName": "Firefox", "Version": "1.0"}"#.utf8))
        let queue = WorkQueue(database: f.database, maxAttempts: 1, clock: f.clock.function)
        try await queue.enqueue(QueueItem(crashID: id))
        let processor = try CrashProcessor(blobs: blobs, metadata: f.metadata, walker: Stackwalker(supplier: nil),
                                       signatures: SignatureGenerator(lists: try SignatureLists.bundled()))
        blobs.down = true
        let workers = ProcessorWorkers(processor: processor, queue: queue, workers: 1, idleDelay: .milliseconds(20))
        let running = Task { try await workers.run() }
        defer { running.cancel() }
        // Down until a worker has failed on the crash and found the store unhealthy.
        for _ in 0..<600 where blobs.checksRefused == 0 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(blobs.checksRefused > 0)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await queue.deadLetters().isEmpty, "an outage must not dead-letter the crash")
        blobs.down = false
        f.clock.advance(seconds: 11)
        var processed: Data?
        for _ in 0..<100 where processed == nil {
            processed = try await f.blobs.get(BlobKeys.processedCrash(id))
            if processed == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(processed != nil)
        #expect(try await queue.deadLetters().isEmpty)
    }
}
