import Foundation
import Storage

/// Retention of upload records (`symbols-server.md` §7): try uploads after 30 days, regular ones
/// after 2 years (configurable), deleted in bulk with their file records; and temporary upload
/// files a dead request left behind (older than 15 minutes). Stored symbol files are not
/// touched: they stay downloadable (bucket lifecycle rules expire objects where wanted).
/// Safe while uploads run: a running upload's records are new, its temporary files young. `serve`
/// and `symbols-server` run it hourly as the `symbol_cleanup` job.
public struct SymbolUploadCleanup: Sendable {
    let metadata: MetadataStore
    let settings: SymbolServerSettings
    let orphanAge: TimeInterval

    public init(metadata: MetadataStore, settings: SymbolServerSettings, orphanAge: TimeInterval = 900) {
        self.metadata = metadata
        self.settings = settings
        self.orphanAge = orphanAge
    }

    public struct Outcome: Sendable, Equatable {
        public var uploads: Int
        public var files: Int
        public var temporaryFiles: Int
        public init(uploads: Int, files: Int, temporaryFiles: Int) {
            self.uploads = uploads
            self.files = files
            self.temporaryFiles = temporaryFiles
        }
    }

    public func runOnce(dryRun: Bool, now: Date = Date()) async throws -> Outcome {
        let micros = Int64(now.timeIntervalSince1970 * 1_000_000)
        let (uploads, files) = try await metadata.deleteSymbolUploads(
            tryBefore: micros - settings.tryRetention.components.seconds * 1_000_000,
            regularBefore: micros - settings.regularRetention.components.seconds * 1_000_000, dryRun: dryRun)
        if !dryRun {
            try await metadata.deleteExpiredPendingSymbolFiles(before: micros)
            // The missing-symbols report looks back 90 days at most.
            try await metadata.deleteStaleDownloadMisses(before: micros - 90 * 86_400 * 1_000_000)
        }
        let temporary = removeOrphanedFiles(olderThan: orphanAge, now: now, dryRun: dryRun)
        return Outcome(uploads: uploads, files: files, temporaryFiles: temporary)
    }

    /// Temporary upload files (`upload-*`) not modified for `age` seconds.
    func removeOrphanedFiles(olderThan age: TimeInterval, now: Date, dryRun: Bool) -> Int {
        let directory = settings.temporaryDirectory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("upload-") {
            let path = directory + "/" + name
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  now.timeIntervalSince(modified) > age else { continue }
            if dryRun || unlink(path) == 0 { removed += 1 }
        }
        return removed
    }
}
