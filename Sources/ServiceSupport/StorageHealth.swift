import Storage

extension PostmortemConfiguration {
    /// The storage part of the configuration, for `StorageContext.open`.
    public var storage: StorageConfiguration {
        StorageConfiguration(dataDirectory: dataDirectory, databaseURL: databaseURL, databasePoolSize: databasePoolSize, s3: s3,
                             queueVisibilityTimeout: queueVisibilityTimeout, queueMaxAttempts: queueMaxAttempts)
    }
}

extension StorageContext {
    /// The heartbeat checks of the storage layer.
    public var healthChecks: [HealthCheck] {
        [
            HealthCheck(name: "database") { try await database.check() },
            HealthCheck(name: "blob_store") { try await blobs.check() },
            HealthCheck(name: "queue") { _ = try await queue.counts() },
        ]
    }
}
