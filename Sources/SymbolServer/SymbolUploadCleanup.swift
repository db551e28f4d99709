import Foundation
import Logging
import ServiceLifecycle
import Storage

/// Retention of upload records (`symbols-server.md` §7): try uploads after 30 days, regular ones
/// after 2 years (configurable), deleted in bulk with their file records; and temporary upload
/// files a dead request left behind (older than 15 minutes). Stored symbol files are not
/// touched: they stay downloadable (bucket lifecycle rules expire objects where wanted).
/// Safe while uploads run: a running upload's records are new, its temporary files young.
public struct SymbolUploadCleanup: Service {
    let metadata: MetadataStore
    let settings: SymbolServerSettings
    let interval: Duration
    let orphanAge: TimeInterval
    let logger: Logger

    public init(metadata: MetadataStore, settings: SymbolServerSettings, interval: Duration = .seconds(3600), orphanAge: TimeInterval = 900,
                logger: Logger = Logger(label: "postmortem.symbols.cleanup")) {
        self.metadata = metadata
        self.settings = settings
        self.interval = interval
        self.orphanAge = orphanAge
        self.logger = logger
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

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var lastRecords = ContinuousClock.now - interval
            while !Task.isCancelled {
                if ContinuousClock.now - lastRecords >= interval {
                    lastRecords = .now
                    do {
                        let o = try await runOnce(dryRun: false)
                        if o.uploads + o.temporaryFiles > 0 {
                            logger.info("symbol upload cleanup", metadata: ["uploads": "\(o.uploads)", "files": "\(o.files)", "temporary_files": "\(o.temporaryFiles)"])
                        }
                    } catch {
                        logger.error("symbol upload cleanup failed", metadata: ["error": "\(error)"])
                    }
                } else {
                    _ = removeOrphanedFiles(olderThan: orphanAge, now: Date(), dryRun: false)
                }
                try await Task.sleep(for: .seconds(60))
            }
        }
    }
}
