import Foundation
import Storage
import Testing
import TestSupport

@Suite struct WorkQueueTests {
    func queue(_ f: StorageFixture, maxAttempts: Int = 3) -> WorkQueue {
        WorkQueue(database: f.database, visibilityTimeout: .seconds(60), maxAttempts: maxAttempts, clock: f.clock.function)
    }

    @Test func messagesCarryACrashIDAndAnOptionalRuleset() {
        #expect(QueueItem(message: "de1bb258-cbbf-4589-a673-34f800160918") == QueueItem(crashID: "de1bb258-cbbf-4589-a673-34f800160918"))
        let r = QueueItem(message: "de1bb258-cbbf-4589-a673-34f800160918:regenerate_signature")
        #expect(r.ruleset == "regenerate_signature" && r.message == "de1bb258-cbbf-4589-a673-34f800160918:regenerate_signature")
    }

    @Test(arguments: Backend.allCases)
    func leasesPriorityFirstThenOldestAndHidesLeasedMessages(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let q = queue(f)
        try await q.enqueue([QueueItem(crashID: "s1"), QueueItem(crashID: "s2")])
        try await q.enqueue(QueueItem(crashID: "r1", ruleset: "signature"), queue: .reprocessing)
        try await q.enqueue(QueueItem(crashID: "p1"), queue: .priority)
        let first = try await q.lease(limit: 3)
        #expect(first.map(\.item.crashID) == ["p1", "s1", "s2"])
        #expect(first.allSatisfy { $0.attempts == 1 })
        let second = try await q.lease(limit: 3)
        #expect(second.map(\.item) == [QueueItem(crashID: "r1", ruleset: "signature")])
        #expect(try await q.lease(limit: 3).isEmpty)
        for l in first + second { #expect(try await q.ack(l)) }
        let counts = try await q.counts()
        #expect(counts.values.allSatisfy { $0 == WorkQueue.Counts() })
    }

    @Test(arguments: Backend.allCases)
    func anExpiredLeaseIsTakenByAnotherConsumerAndTheOldAckFails(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let q = queue(f)
        try await q.enqueue(QueueItem(crashID: "c1"))
        let dead = try #require(try await q.lease().first)
        f.clock.advance(seconds: 30)
        #expect(try await q.lease().isEmpty) // still leased
        #expect(try await q.extend(dead))     // a live consumer may keep it longer
        f.clock.advance(seconds: 61)
        let again = try #require(try await q.lease().first)
        #expect(again.item.crashID == "c1" && again.attempts == 2)
        #expect(try await q.ack(dead) == false) // the first consumer lost it
        #expect(try await q.ack(again))
    }

    @Test(arguments: Backend.allCases)
    func failuresRetryWithBackoffThenDeadLetter(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let q = queue(f, maxAttempts: 3)
        try await q.enqueue(QueueItem(crashID: "bad"))
        for attempt in 1...3 {
            let l = try #require(try await q.lease().first, "attempt \(attempt)")
            #expect(l.attempts == attempt)
            try await q.fail(l, error: "stackwalk failed (\(attempt))")
            #expect(try await q.lease().isEmpty) // backing off
            f.clock.advance(seconds: 10)
        }
        #expect(try await q.lease().isEmpty)
        let letters = try await q.deadLetters()
        #expect(letters.count == 1 && letters[0].item.crashID == "bad" && letters[0].attempts == 3 && letters[0].lastError == "stackwalk failed (3)")
        #expect(try await q.counts()[.standard]?.deadLetters == 1)
        #expect(try await q.requeue(deadLetter: letters[0].id))
        #expect(try await q.lease().first?.attempts == 1)
    }

    /// A failure that would only repeat goes to the dead letters on its first attempt.
    @Test(arguments: Backend.allCases)
    func aPermanentFailureIsDeadLetteredOnce(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let q = queue(f, maxAttempts: 5)
        try await q.enqueue(QueueItem(crashID: "gone"))
        let l = try #require(try await q.lease().first)
        try await q.fail(l, error: "no raw crash for gone", retry: false)
        f.clock.advance(seconds: 3600)
        #expect(try await q.lease().isEmpty)
        let letters = try await q.deadLetters()
        #expect(letters.map(\.item.crashID) == ["gone"] && letters[0].attempts == 1)
    }

    @Test(arguments: Backend.allCases)
    func aMessageWhoseConsumersKeepDyingIsDeadLettered(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let q = queue(f, maxAttempts: 2)
        try await q.enqueue(QueueItem(crashID: "poison"))
        for _ in 1...2 {
            #expect(try await q.lease().count == 1) // consumer dies holding it
            f.clock.advance(seconds: 61)
        }
        #expect(try await q.lease().isEmpty)
        let letters = try await q.deadLetters()
        #expect(letters.map(\.item.crashID) == ["poison"])
        #expect(letters[0].lastError?.contains("lease expired") == true)
    }

    /// Two consumers with their own connection pools on PostgreSQL: every message is processed
    /// exactly once while leases are live, and a consumer that dies mid-lease loses nothing.
    @Test func concurrentConsumersOnPostgreSQLNeverShareALiveLease() async throws {
        let f = try await StorageFixture.make(.scaleOut)
        defer { Task { await f.close() } }
        let producer = queue(f)
        let ids = (0..<300).map { "crash-\($0)" }
        try await producer.enqueue(ids.map { QueueItem(crashID: $0) })

        let secondPool = try await Database.open(url: f.databaseURL, poolSize: 4)
        defer { Task { await secondPool.shutdown() } }
        let consumers = [queue(f), WorkQueue(database: secondPool, visibilityTimeout: .seconds(60), maxAttempts: 3, clock: f.clock.function)]

        // A consumer that dies: leases 10 messages and never acks them.
        let abandoned = try await consumers[1].lease(limit: 10)
        #expect(abandoned.count == 10)

        let processed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (n, consumer) in consumers.enumerated() {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let leases = try await consumer.lease(limit: n == 0 ? 3 : 5)
                        if leases.isEmpty { break }
                        for l in leases {
                            mine.append(l.item.crashID)
                            #expect(try await consumer.ack(l))
                        }
                    }
                    return mine
                }
            }
            var all: [[String]] = []
            for try await part in group { all.append(part) }
            return all
        }
        let live = processed.flatMap { $0 }
        #expect(processed.allSatisfy { !$0.isEmpty }, "both consumers took work")
        #expect(live.count == 290 && Set(live).count == 290, "no message processed twice while leased")
        #expect(Set(live).isDisjoint(with: abandoned.map(\.item.crashID)))

        // After the dead consumer's leases expire, its messages are processed; none is lost.
        f.clock.advance(seconds: 61)
        var recovered: [String] = []
        while true {
            let leases = try await consumers[0].lease(limit: 4)
            if leases.isEmpty { break }
            for l in leases {
                recovered.append(l.item.crashID)
                #expect(try await consumers[0].ack(l))
            }
        }
        #expect(Set(recovered) == Set(abandoned.map(\.item.crashID)))
        #expect(Set(live + recovered) == Set(ids))
    }
}
