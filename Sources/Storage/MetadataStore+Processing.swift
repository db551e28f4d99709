import Crypto
import Foundation
import JSONSupport
import SQLKit

/// Processing bookkeeping: missing processed crashes (republish) and processing claims.
extension MetadataStore {
    // MARK: - missing processed crashes

    /// Which of `ids` have a crash index row (the processor writes it last).
    public func indexedCrashIDs(_ ids: [String]) async throws -> Set<String> {
        var found = Set<String>()
        var start = 0
        while start < ids.count {
            let batch = Array(ids[start..<min(ids.count, start + 500)])
            start += batch.count
            let rows = try await database.withConnection { db in
                try await db.raw("SELECT crash_id FROM crashes WHERE crash_id IN (\(binds: batch))").all()
            }
            for row in rows { found.insert(try row.decode(column: "crash_id", as: String.self)) }
        }
        return found
    }

    /// Records crashes the republish job queued again (an id already recorded keeps its date).
    public func recordMissingProcessedCrashes(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        let now = clock()
        try await database.withTransaction { db in
            for id in ids {
                try await db.raw("""
                    INSERT INTO missing_processed_crashes (crash_id, created) VALUES (\(bind: id), \(bind: now)) ON CONFLICT (crash_id) DO NOTHING
                    """).run()
            }
        }
    }

    public struct MissingProcessedCrash: Sendable, Equatable {
        public var crashID: String
        public var isProcessed: Bool
        /// Microseconds since 1970.
        public var created: Int64
    }

    /// The recorded crashes, newest first, with whether each has been processed since; and
    /// how many there are in all.
    public func missingProcessedCrashes(limit: Int, offset: Int) async throws -> (rows: [MissingProcessedCrash], count: Int) {
        try await database.withConnection { db in
            let total = try await db.raw("SELECT COUNT(*) AS n FROM missing_processed_crashes").first()?.decode(column: "n", as: Int.self) ?? 0
            let rows = try await db.raw("""
                SELECT m.crash_id, m.created, CASE WHEN c.crash_id IS NULL THEN 0 ELSE 1 END AS processed
                FROM missing_processed_crashes m LEFT JOIN crashes c ON c.crash_id = m.crash_id
                ORDER BY m.created DESC, m.crash_id LIMIT \(bind: limit) OFFSET \(bind: offset)
                """).all()
            return (try rows.map { row in
                MissingProcessedCrash(crashID: try row.decode(column: "crash_id", as: String.self),
                                      isProcessed: try row.decode(column: "processed", as: Int.self) == 1,
                                      created: try row.decode(column: "created", as: Int64.self))
            }, total)
        }
    }

    // MARK: - processing claims

    /// Claims the processing of `crashID` for `lease` under `token`: true when no other run
    /// holds an unexpired claim.
    public func claimProcessing(_ crashID: String, token: String, lease: Duration) async throws -> Bool {
        let now = clock()
        let expires = now + max(1, lease.components.seconds) * 1_000_000
        return try await database.write { db in
            try await db.raw("""
                INSERT INTO processing_claims (crash_id, token, expires_at) VALUES (\(bind: crashID), \(bind: token), \(bind: expires))
                ON CONFLICT (crash_id) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
                WHERE processing_claims.expires_at < \(bind: now)
                RETURNING token
                """).first() != nil
        }
    }

    /// Gives a claim back (only the run holding it can).
    public func releaseProcessing(_ crashID: String, token: String) async throws {
        try await database.write { db in
            try await db.raw("DELETE FROM processing_claims WHERE crash_id = \(bind: crashID) AND token = \(bind: token)").run()
        }
    }
}
