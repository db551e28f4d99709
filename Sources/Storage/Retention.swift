import Foundation
import SQLKit

/// Counts the rows of `table` matching `condition` and, unless `dryRun`, deletes them, in the
/// caller's transaction: a dry run reports the numbers a real run deletes. `countAlso` narrows
/// only the count.
func countAndDelete(_ db: any SQLDatabase, from table: String, where condition: SQLQueryString, dryRun: Bool,
                    countAlso: SQLQueryString = "") async throws -> Int {
    let n = try await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table) WHERE \(condition)\(countAlso)").first()?
        .decode(column: "n", as: Int.self) ?? 0
    if !dryRun { try await db.raw("DELETE FROM \(unsafeRaw: table) WHERE \(condition)").run() }
    return n
}

/// Deleting what is past retention (`postmortem cleanup crashes`): every statement counts what
/// it would delete first, so a dry run reports the same numbers a real run deletes.
extension MetadataStore {
    public struct CrashRecordCounts: Sendable, Equatable {
        public var indexRows = 0
        public var missingSymbolRows = 0
        public var otherRows = 0
        public init() {}
    }

    /// The database rows of these crashes: index rows, the crashes' missing-symbol records,
    /// republish records and processing claims. A dry run after `countOrDeleteCrashes(processedBefore:)`
    /// passes that cutoff so index rows are not counted twice.
    public func deleteCrashRecords(_ ids: [String], dryRun: Bool, indexRowsCountedBefore countedCutoff: Int64? = nil) async throws -> CrashRecordCounts {
        var counts = CrashRecordCounts()
        var start = 0
        while start < ids.count {
            let batch = Array(ids[start..<min(ids.count, start + 500)])
            start += batch.count
            let batchCounts = try await database.withTransaction { db -> CrashRecordCounts in
                var c = CrashRecordCounts()
                for table in ["crashes", "missing_symbol_crashes", "missing_processed_crashes", "processing_claims"] {
                    let uncounted: SQLQueryString = table == "crashes" && dryRun && countedCutoff != nil
                        ? " AND date_processed >= \(bind: countedCutoff!)" : ""
                    let n = try await countAndDelete(db, from: table, where: "crash_id IN (\(binds: batch))", dryRun: dryRun, countAlso: uncounted)
                    switch table {
                    case "crashes": c.indexRows += n
                    case "missing_symbol_crashes": c.missingSymbolRows += n
                    default: c.otherRows += n
                    }
                }
                return c
            }
            counts.indexRows += batchCounts.indexRows
            counts.missingSymbolRows += batchCounts.missingSymbolRows
            counts.otherRows += batchCounts.otherRows
        }
        return counts
    }

    /// Index rows of crashes processed before `cutoff` whose raw crash is gone already.
    public func countOrDeleteCrashes(processedBefore cutoff: Int64, dryRun: Bool) async throws -> Int {
        if dryRun {
            return try await database.withConnection { db in
                try await db.raw("SELECT COUNT(*) AS n FROM crashes WHERE date_processed < \(bind: cutoff)").first()?.decode(column: "n", as: Int.self) ?? 0
            }
        }
        return try await deleteCrashes(processedBefore: cutoff)
    }

    /// Collector payload records received before `cutoff`.
    public func countOrDeletePayloadRecords(before cutoff: Int64, dryRun: Bool) async throws -> Int {
        try await database.withTransaction { db in
            try await countAndDelete(db, from: "collector_payloads", where: "received_at < \(bind: cutoff)", dryRun: dryRun)
        }
    }

    /// Tokens that expired before `cutoff` (the audit log keeps that they existed).
    public func deleteExpiredTokens(expiredBefore cutoff: Int64, dryRun: Bool, actor: String = "cleanup") async throws -> Int {
        let now = clock()
        return try await database.withTransaction { db in
            let rows = try await db.raw("SELECT id, account_id FROM api_tokens WHERE expires_at < \(bind: cutoff)").all()
            if !dryRun {
                for row in rows {
                    let id = try row.decode(column: "id", as: Int64.self), account = try row.decode(column: "account_id", as: Int64.self)
                    try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id)").run()
                    try await Self.audit(db, at: now, actor: actor, action: "token-delete-expired", target: "account:\(account)", details: "token \(id)")
                }
            }
            return rows.count
        }
    }
}

extension WorkQueue {
    /// Dead letters that failed before `cutoff`.
    public func deleteDeadLetters(failedBefore cutoff: Int64, dryRun: Bool) async throws -> Int {
        try await database.withTransaction { db in
            try await countAndDelete(db, from: "dead_letters", where: "failed_at < \(bind: cutoff)", dryRun: dryRun)
        }
    }
}
