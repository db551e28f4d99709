import Foundation
import Logging

/// Where a service's storage lives: the part of the configuration the storage layer reads
/// (`PostmortemConfiguration.storage` fills it from `data.dir`, `database.*`, `s3.*`, `queue.*`).
public struct StorageConfiguration: Sendable {
    public var dataDirectory: String
    public var databaseURL: String
    public var databasePoolSize: Int
    /// Set when blobs live in S3; nil for the filesystem under `<data>/blobs`.
    public var s3: S3Configuration?
    public var queueVisibilityTimeout: Duration
    public var queueMaxAttempts: Int

    public init(dataDirectory: String, databaseURL: String, databasePoolSize: Int = 8, s3: S3Configuration? = nil,
                queueVisibilityTimeout: Duration = .seconds(300), queueMaxAttempts: Int = 5) {
        self.dataDirectory = dataDirectory
        self.databaseURL = databaseURL
        self.databasePoolSize = databasePoolSize
        self.s3 = s3
        self.queueVisibilityTimeout = queueVisibilityTimeout
        self.queueMaxAttempts = queueMaxAttempts
    }

    /// Embedded (SQLite + files) or scale-out (PostgreSQL and/or S3), chosen by configuration alone.
    public var isEmbedded: Bool { s3 == nil && !databaseURL.hasPrefix("postgres") }
}

/// The storage a service runs on, opened from configuration: the metadata database (migrated),
/// the blob store and the work queue.
public struct StorageContext: Sendable {
    public let database: Database
    public let metadata: MetadataStore
    public let blobs: any BlobStore
    public let queue: WorkQueue

    public static func open(_ configuration: StorageConfiguration, logger: Logger) async throws -> StorageContext {
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

    public func close() async { await database.shutdown() }
}
