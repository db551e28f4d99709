import Foundation
import SQLKit

/// The processing queues, leased in this order.
public enum QueueName: String, Sendable, CaseIterable, Codable {
    case priority, standard, reprocessing

    var rank: Int {
        switch self { case .priority: 0; case .standard: 1; case .reprocessing: 2 }
    }
}

/// A queue message: `<crash_id>` or `<crash_id>:<ruleset>`.
public struct QueueItem: Sendable, Equatable {
    public var crashID: String
    public var ruleset: String?

    public init(crashID: String, ruleset: String? = nil) {
        self.crashID = crashID
        self.ruleset = ruleset
    }

    public init(message: String) {
        if let colon = message.firstIndex(of: ":") {
            crashID = String(message[..<colon])
            let r = String(message[message.index(after: colon)...])
            ruleset = r.isEmpty ? nil : r
        } else {
            crashID = message
            ruleset = nil
        }
    }

    public var message: String { ruleset.map { "\(crashID):\($0)" } ?? crashID }
}

/// A message a consumer holds until it acks, fails or its lease expires.
public struct Lease: Sendable, Equatable {
    public let id: Int64
    public let queue: QueueName
    public let item: QueueItem
    /// Including this lease.
    public let attempts: Int
    public let token: String
}

public struct DeadLetter: Sendable, Equatable {
    public let id: Int64
    public let queue: QueueName
    public let item: QueueItem
    public let attempts: Int
    public let lastError: String?
    public let failedAt: Int64
}

/// Standard, priority and reprocessing queues in the metadata database. A consumer leases
/// messages (they are invisible to others for `visibilityTimeout`), acks each after the processed
/// crash is saved, or fails it (retried after a backoff). A consumer that dies loses its lease
/// when the timeout passes and the message is leased again; a message leased `maxAttempts` times
/// without an ack goes to the dead-letter list, which operators can list and requeue.
/// PostgreSQL leases with `FOR UPDATE SKIP LOCKED`, so concurrent consumers never block on or
/// take the same row; SQLite serializes writers, which gives the same semantics in one process.
public struct WorkQueue: Sendable {
    public let database: Database
    public var visibilityTimeout: Duration
    public var maxAttempts: Int
    /// Microseconds since 1970; injected so tests can move time.
    let clock: @Sendable () -> Int64

    public init(database: Database, visibilityTimeout: Duration = .seconds(300), maxAttempts: Int = 5,
                clock: @escaping @Sendable () -> Int64 = WorkQueue.systemClock) {
        self.database = database
        self.visibilityTimeout = visibilityTimeout
        self.maxAttempts = max(1, maxAttempts)
        self.clock = clock
    }

    public static let systemClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    var timeoutMicros: Int64 {
        let (s, a) = visibilityTimeout.components
        return s * 1_000_000 + a / 1_000_000_000_000
    }

    public func enqueue(_ items: [QueueItem], queue: QueueName = .standard) async throws {
        guard !items.isEmpty else { return }
        let now = clock()
        try await database.withTransaction { db in
            for chunk in stride(from: 0, to: items.count, by: 200) {
                let slice = items[chunk..<min(items.count, chunk + 200)]
                var query: SQLQueryString = "INSERT INTO queue_messages (queue, rank, payload, enqueued_at, visible_at, attempts) VALUES "
                for (n, item) in slice.enumerated() {
                    if n > 0 { query.appendLiteral(", ") }
                    query += "(\(bind: queue.rawValue), \(bind: queue.rank), \(bind: item.message), \(bind: now), \(bind: now), 0)"
                }
                try await db.raw(query).run()
            }
        }
    }

    public func enqueue(_ item: QueueItem, queue: QueueName = .standard) async throws {
        try await enqueue([item], queue: queue)
    }

    /// The crash ids waiting in any queue or dead-lettered: the republish job leaves them alone.
    public func knownCrashIDs() async throws -> Set<String> {
        let rows = try await database.withConnection { db in
            try await db.raw("SELECT payload FROM queue_messages UNION SELECT payload FROM dead_letters").all()
        }
        return Set(try rows.map { QueueItem(message: try $0.decode(column: "payload", as: String.self)).crashID })
    }

    /// Leases up to `limit` visible messages, priority queue first, oldest first.
    public func lease(limit: Int = 1) async throws -> [Lease] {
        try await deadLetterExpired()
        let now = clock()
        let token = UUID().uuidString
        let lockClause = database.kind == .postgres ? " FOR UPDATE SKIP LOCKED" : ""
        let rows = try await database.write { db in
            try await db.raw("""
                UPDATE queue_messages SET visible_at = \(bind: now + timeoutMicros), attempts = attempts + 1, lease_token = \(bind: token)
                WHERE id IN (SELECT id FROM queue_messages WHERE visible_at <= \(bind: now) ORDER BY rank, id LIMIT \(bind: max(1, limit))\(unsafeRaw: lockClause))
                RETURNING id, queue, rank, payload, attempts
                """).all()
        }
        return try rows.map { row in
            (try row.decode(column: "rank", as: Int.self), Lease(
                id: try row.decode(column: "id", as: Int64.self),
                queue: QueueName(rawValue: try row.decode(column: "queue", as: String.self)) ?? .standard,
                item: QueueItem(message: try row.decode(column: "payload", as: String.self)),
                attempts: try row.decode(column: "attempts", as: Int.self),
                token: token))
        }.sorted { ($0.0, $0.1.id) < ($1.0, $1.1.id) }.map(\.1)
    }

    /// Removes a message after its work is saved. False when the lease was lost (it expired and
    /// another consumer holds the message now).
    @discardableResult
    public func ack(_ lease: Lease) async throws -> Bool {
        try await database.write { db in
            try await db.raw("DELETE FROM queue_messages WHERE id = \(bind: lease.id) AND lease_token = \(bind: lease.token) RETURNING id").first() != nil
        }
    }

    /// Keeps a lease for another `visibilityTimeout` (long work). False when it was lost.
    @discardableResult
    public func extend(_ lease: Lease) async throws -> Bool {
        let until = clock() + timeoutMicros
        return try await database.write { db in
            try await db.raw("""
                UPDATE queue_messages SET visible_at = \(bind: until) WHERE id = \(bind: lease.id) AND lease_token = \(bind: lease.token) RETURNING id
                """).first() != nil
        }
    }

    /// Hands a message back without counting the attempt (its work cannot start yet, e.g. the
    /// crash is being processed elsewhere); it is leased again after `delay`.
    public func postpone(_ lease: Lease, by delay: Duration) async throws {
        let visible = clock() + max(0, delay.components.seconds) * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000
        try await database.write { db in
            try await db.raw("""
                UPDATE queue_messages SET visible_at = \(bind: visible), lease_token = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
                WHERE id = \(bind: lease.id) AND lease_token = \(bind: lease.token)
                """).run()
        }
    }

    /// Records a failure: the message becomes visible again after a backoff, or goes to the
    /// dead-letter list once it has been attempted `maxAttempts` times — at once when `retry`
    /// is false (a failure that would only repeat).
    public func fail(_ lease: Lease, error: String, retry: Bool = true) async throws {
        let now = clock()
        if lease.attempts >= maxAttempts || !retry {
            try await database.withTransaction { db in
                let moved = try await db.raw("""
                    DELETE FROM queue_messages WHERE id = \(bind: lease.id) AND lease_token = \(bind: lease.token)
                    RETURNING queue, payload, attempts, enqueued_at
                    """).first()
                guard let moved else { return }
                try await db.raw("""
                    INSERT INTO dead_letters (queue, payload, attempts, last_error, enqueued_at, failed_at)
                    VALUES (\(bind: try moved.decode(column: "queue", as: String.self)), \(bind: try moved.decode(column: "payload", as: String.self)),
                            \(bind: try moved.decode(column: "attempts", as: Int.self)), \(bind: error),
                            \(bind: try moved.decode(column: "enqueued_at", as: Int64.self)), \(bind: now))
                    """).run()
            }
            return
        }
        // Exponential backoff: 1 s, 2 s, 4 s, … capped at the visibility timeout.
        let backoff = min(timeoutMicros, Int64(1_000_000) << min(20, max(0, lease.attempts - 1)))
        try await database.write { db in
            try await db.raw("""
                UPDATE queue_messages SET visible_at = \(bind: now + backoff), lease_token = NULL, last_error = \(bind: error)
                WHERE id = \(bind: lease.id) AND lease_token = \(bind: lease.token)
                """).run()
        }
    }

    /// Messages whose lease expired after their last allowed attempt go to the dead letters.
    func deadLetterExpired() async throws {
        let now = clock()
        let max = maxAttempts
        let error = "lease expired after \(max) attempts (consumer stopped or timed out)"
        switch database.kind {
        case .postgres:
            try await database.write { db in
                try await db.raw("""
                    WITH moved AS (
                        DELETE FROM queue_messages WHERE id IN (
                            SELECT id FROM queue_messages WHERE visible_at <= \(bind: now) AND attempts >= \(bind: max) AND lease_token IS NOT NULL
                            FOR UPDATE SKIP LOCKED)
                        RETURNING queue, payload, attempts, enqueued_at, last_error)
                    INSERT INTO dead_letters (queue, payload, attempts, last_error, enqueued_at, failed_at)
                    SELECT queue, payload, attempts, COALESCE(last_error, \(bind: error)), enqueued_at, \(bind: now) FROM moved
                    """).run()
            }
        case .sqlite:
            // Cheap check first: the write transaction is only taken when there is work.
            let any = try await database.withConnection { db in
                try await db.raw("""
                    SELECT id FROM queue_messages WHERE visible_at <= \(bind: now) AND attempts >= \(bind: max) AND lease_token IS NOT NULL LIMIT 1
                    """).first()
            }
            guard any != nil else { return }
            try await database.withTransaction { db in
                try await db.raw("""
                    INSERT INTO dead_letters (queue, payload, attempts, last_error, enqueued_at, failed_at)
                    SELECT queue, payload, attempts, COALESCE(last_error, \(bind: error)), enqueued_at, \(bind: now) FROM queue_messages
                    WHERE visible_at <= \(bind: now) AND attempts >= \(bind: max) AND lease_token IS NOT NULL
                    """).run()
                try await db.raw("""
                    DELETE FROM queue_messages WHERE visible_at <= \(bind: now) AND attempts >= \(bind: max) AND lease_token IS NOT NULL
                    """).run()
            }
        }
    }

    public func deadLetters(limit: Int = 100) async throws -> [DeadLetter] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT id, queue, payload, attempts, last_error, failed_at FROM dead_letters ORDER BY id LIMIT \(bind: limit)
                """).all()
        }.map { row in
            DeadLetter(id: try row.decode(column: "id", as: Int64.self),
                       queue: QueueName(rawValue: try row.decode(column: "queue", as: String.self)) ?? .standard,
                       item: QueueItem(message: try row.decode(column: "payload", as: String.self)),
                       attempts: try row.decode(column: "attempts", as: Int.self),
                       lastError: try row.decode(column: "last_error", as: String?.self),
                       failedAt: try row.decode(column: "failed_at", as: Int64.self))
        }
    }

    /// Puts a dead letter back on its queue with a fresh attempt count.
    public func requeue(deadLetter id: Int64) async throws -> Bool {
        let now = clock()
        return try await database.withTransaction { db in
            guard let row = try await db.raw("DELETE FROM dead_letters WHERE id = \(bind: id) RETURNING queue, payload").first() else { return false }
            let queue = QueueName(rawValue: try row.decode(column: "queue", as: String.self)) ?? .standard
            try await db.raw("""
                INSERT INTO queue_messages (queue, rank, payload, enqueued_at, visible_at, attempts)
                VALUES (\(bind: queue.rawValue), \(bind: queue.rank), \(bind: try row.decode(column: "payload", as: String.self)), \(bind: now), \(bind: now), 0)
                """).run()
            return true
        }
    }

    public struct Counts: Sendable, Equatable {
        public var ready = 0
        public var leased = 0
        public var deadLetters = 0
        public init(ready: Int = 0, leased: Int = 0, deadLetters: Int = 0) {
            self.ready = ready
            self.leased = leased
            self.deadLetters = deadLetters
        }
    }

    /// Messages per queue: ready (visible), leased or waiting for a retry, dead.
    public func counts() async throws -> [QueueName: Counts] {
        let now = clock()
        var out: [QueueName: Counts] = [:]
        for q in QueueName.allCases { out[q] = Counts() }
        let (live, dead) = try await database.withConnection { db in
            (try await db.raw("""
                SELECT queue, CAST(SUM(CASE WHEN visible_at <= \(bind: now) THEN 1 ELSE 0 END) AS BIGINT) AS ready,
                       CAST(SUM(CASE WHEN visible_at > \(bind: now) THEN 1 ELSE 0 END) AS BIGINT) AS leased
                FROM queue_messages GROUP BY queue
                """).all(),
             try await db.raw("SELECT queue, COUNT(*) AS n FROM dead_letters GROUP BY queue").all())
        }
        for row in live {
            guard let q = QueueName(rawValue: try row.decode(column: "queue", as: String.self)) else { continue }
            out[q]?.ready = Int(try row.decode(column: "ready", as: Int64?.self) ?? 0)
            out[q]?.leased = Int(try row.decode(column: "leased", as: Int64?.self) ?? 0)
        }
        for row in dead {
            guard let q = QueueName(rawValue: try row.decode(column: "queue", as: String.self)) else { continue }
            out[q]?.deadLetters = Int(try row.decode(column: "n", as: Int64.self))
        }
        return out
    }
}
