import Foundation
import Logging
import Storage

/// The storage a service runs on, opened from configuration: the metadata database (migrated),
/// the blob store and the work queue.
public struct StorageContext: Sendable {
    public let database: Database
    public let metadata: MetadataStore
    public let blobs: any BlobStore
    public let queue: WorkQueue

    public static func open(_ configuration: PostmortemConfiguration, logger: Logger) async throws -> StorageContext {
        if configuration.isEmbedded || configuration.s3 == nil {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        }
        let database = try await Database.open(url: configuration.databaseURL, poolSize: configuration.databasePoolSize, logger: logger)
        do {
            let metadata = try await MetadataStore.open(database)
            let blobs: any BlobStore
            if let s3 = configuration.s3 {
                blobs = try S3BlobStore(configuration: s3, logger: logger)
            } else {
                blobs = try FileBlobStore(root: URL(fileURLWithPath: configuration.dataDirectory + "/blobs"))
            }
            let queue = WorkQueue(database: database, visibilityTimeout: configuration.queueVisibilityTimeout,
                                  maxAttempts: configuration.queueMaxAttempts)
            return StorageContext(database: database, metadata: metadata, blobs: blobs, queue: queue)
        } catch {
            await database.shutdown()
            throw error
        }
    }

    /// The heartbeat checks of the storage layer.
    public var healthChecks: [HealthCheck] {
        [
            HealthCheck(name: "database") { try await database.check() },
            HealthCheck(name: "blob_store") { try await blobs.check() },
            HealthCheck(name: "queue") { _ = try await queue.counts() },
        ]
    }

    public func close() async { await database.shutdown() }
}
