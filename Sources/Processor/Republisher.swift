import CrashModel
import Foundation
import Logging
import Storage

/// Socorro's MissingProcessedCrash safety net. A crash whose files are stored but whose queue
/// message was lost (the queue failed after the collector saved it, a message was deleted) would
/// never be processed; once a day this job lists the previous day's stored raw crashes, finds those
/// with no crash index row (the processor writes it last) that are neither queued nor
/// dead-lettered, queues them on the standard queue and records them for
/// `/api/MissingProcessedCrash/`.
public struct Republisher: Sendable {
    let blobs: any BlobStore
    let metadata: MetadataStore
    let queue: WorkQueue

    public struct Report: Sendable, Equatable {
        public var day: String
        public var stored: Int
        public var processed: Int
        public var waiting: Int
        public var queued: [String]
    }

    public init(blobs: any BlobStore, metadata: MetadataStore, queue: WorkQueue) {
        self.blobs = blobs
        self.metadata = metadata
        self.queue = queue
    }

    /// Checks the raw crashes stored on `day` (`YYYYMMDD`, UTC). `progress` is told how many of
    /// them were checked so far, and of how many.
    public func republish(day: String, progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> Report {
        let keys = try await blobs.list(prefix: BlobKeys.rawCrashDay(day))
        let ids = keys.compactMap { key -> String? in
            let id = key.split(separator: "/").last.map(String.init) ?? ""
            return Self.looksLikeCrashID(id) ? id : nil
        }
        let known = try await queue.knownCrashIDs()
        var report = Report(day: day, stored: ids.count, processed: 0, waiting: 0, queued: [])
        var checked = 0
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let batch = Array(ids[start..<min(ids.count, start + 1000)])
            let indexed = try await metadata.indexedCrashIDs(batch)
            var missing: [String] = []
            for id in batch {
                if indexed.contains(id) { report.processed += 1 } else if known.contains(id) { report.waiting += 1 } else { missing.append(id) }
            }
            // Recorded first: a crash queued but not recorded would be invisible to operators.
            try await metadata.recordMissingProcessedCrashes(missing)
            try await queue.enqueue(missing.map { QueueItem(crashID: $0) }, queue: .standard)
            report.queued += missing
            checked += batch.count
            progress?(checked, ids.count)
        }
        return report
    }

    /// Runs `republish` for the previous UTC day every `interval`, the first time `initialDelay`
    /// after start.
    /// 36 characters of hex digits and dashes: the collector's ids (any other key is not a crash).
    static func looksLikeCrashID(_ id: String) -> Bool {
        id.utf8.count == 36 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || $0 == UInt8(ascii: "-") }
    }
}
