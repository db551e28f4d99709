import CrashModel
import Foundation
import JSONSupport
import Logging
import Storage

/// Crash data retention (`postmortem cleanup crashes`, and daily in `serve` with
/// `retention.crashes_days`): crashes received before the cutoff day lose their raw crash, dumps,
/// processed crash, index row, missing-symbol, republish and claim rows; dead letters, collector
/// payload records from before the cutoff and tokens expired more than `tokenGrace` ago go too.
/// Crashes are found by the day folders of their raw crashes (`v1/raw_crash/YYYYMMDD/`), the
/// `scanDays` days before the cutoff. Per crash the database rows go first and the raw crash
/// last, so a run that dies half-way is finished by the next one, and nothing newer than the
/// cutoff is touched.
public struct CrashRetention: Sendable {
    let blobs: any BlobStore
    let metadata: MetadataStore
    let queue: WorkQueue
    public var retentionDays: Int
    public var scanDays = 366
    public var tokenGrace: Duration = .seconds(90 * 86_400)

    public init(blobs: any BlobStore, metadata: MetadataStore, queue: WorkQueue, retentionDays: Int) {
        self.blobs = blobs
        self.metadata = metadata
        self.queue = queue
        self.retentionDays = retentionDays
    }

    public struct Outcome: Sendable, Equatable {
        public var crashes = 0
        public var blobs = 0
        public var indexRows = 0
        public var missingSymbolRows = 0
        public var otherRows = 0
        public var deadLetters = 0
        public var payloadRecords = 0
        public var expiredTokens = 0
        /// Web sessions that had expired (sessions end on their own; the rows go here).
        public var expiredSessions = 0
        public init() {}
    }

    /// The first UTC day kept.
    public func cutoffDay(now: Date) -> Date {
        let start = floor(now.timeIntervalSince1970 / 86_400) * 86_400
        return Date(timeIntervalSince1970: start - Double(retentionDays) * 86_400)
    }

    /// A crash's stored files — dumps, their list, the processed crash, the raw crash last —
    /// counted and, unless `dryRun`, deleted; returns how many there were.
    func deleteFiles(of id: String, day: String, dryRun: Bool) async throws -> Int {
        var keys: [String] = []
        if let names = try await blobs.get(BlobKeys.dumpNames(id)), case .array(let list)? = JSONValue.parse(names) {
            keys += list.compactMap(\.stringValue).map { BlobKeys.dump(id, name: $0) }
            keys.append(BlobKeys.dumpNames(id))
        }
        keys.append(BlobKeys.processedCrash(id))
        keys.append(BlobKeys.rawCrash(id, date: day))
        var found = 0
        for key in keys where (try? BlobKey.validate(key)) != nil {
            guard try await blobs.size(key) != nil else { continue }
            found += 1
            if !dryRun { try await blobs.delete(key) }
        }
        return found
    }

    /// Deletes one crash now (an administrator's action): its database rows, then its files.
    /// Returns the files and rows removed.
    public func deleteCrash(_ id: String) async throws -> (files: Int, rows: Int) {
        guard CrashID.isValid(id) else { return (0, 0) }
        let rows = try await metadata.deleteCrashRecords([id], dryRun: false)
        let files = try await deleteFiles(of: id, day: CrashID.date(of: id), dryRun: false)
        return (files, rows.indexRows + rows.missingSymbolRows + rows.otherRows)
    }

    public func runOnce(dryRun: Bool, now: Date = Date()) async throws -> Outcome {
        var outcome = Outcome()
        let cutoff = cutoffDay(now: now)
        let cutoffMicros = Int64(cutoff.timeIntervalSince1970) * 1_000_000
        // Index rows of crashes processed before the cutoff (also those whose raw crash is gone).
        outcome.indexRows = try await metadata.countOrDeleteCrashes(processedBefore: cutoffMicros, dryRun: dryRun)
        for back in 1...max(1, scanDays) {
            let day = CrashID.dayStamp(cutoff.addingTimeInterval(-Double(back) * 86_400))
            let rawKeys = try await blobs.list(prefix: BlobKeys.rawCrashDay(day))
            guard !rawKeys.isEmpty else { continue }
            let ids = rawKeys.compactMap { $0.split(separator: "/").last.map(String.init) }.filter { CrashID.isValid($0) }
            let rows = try await metadata.deleteCrashRecords(ids, dryRun: dryRun, indexRowsCountedBefore: cutoffMicros)
            outcome.indexRows += rows.indexRows
            outcome.missingSymbolRows += rows.missingSymbolRows
            outcome.otherRows += rows.otherRows
            for id in ids {
                outcome.blobs += try await deleteFiles(of: id, day: day, dryRun: dryRun)
                outcome.crashes += 1
            }
        }
        outcome.deadLetters = try await queue.deleteDeadLetters(failedBefore: cutoffMicros, dryRun: dryRun)
        outcome.payloadRecords = try await metadata.countOrDeletePayloadRecords(before: cutoffMicros, dryRun: dryRun)
        let tokenCutoff = Int64(now.timeIntervalSince1970) * 1_000_000 - tokenGrace.components.seconds * 1_000_000
        outcome.expiredTokens = try await metadata.deleteExpiredTokens(expiredBefore: tokenCutoff, dryRun: dryRun)
        outcome.expiredSessions = try await metadata.deleteExpiredSessions(before: Int64(now.timeIntervalSince1970) * 1_000_000, dryRun: dryRun)
        return outcome
    }
}
