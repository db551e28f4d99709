import Foundation
import SQLKit
import Storage
import Testing

/// The two storage configurations every storage test runs against.
public enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Filesystem blobs + SQLite: `postmortem serve`'s default.
    case embedded
    /// S3 (moto_server) + PostgreSQL: the scale-out configuration.
    case scaleOut

    public var testDescription: String { rawValue }
}

/// A settable clock (microseconds) for lease and expiry tests.
public final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64 = 1_700_000_000_000_000

    public var now: Int64 { lock.withLock { value } }
    public func advance(seconds: Int64) { lock.withLock { value += seconds * 1_000_000 } }
    public var function: @Sendable () -> Int64 { { [self] in now } }
}

/// Fresh, isolated stores for one test: a new directory and SQLite file, or a new PostgreSQL
/// database and S3 bucket.
public struct StorageFixture: Sendable {
    public let blobs: any BlobStore
    public let database: Database
    public let metadata: MetadataStore
    public let clock: TestClock
    public let databaseURL: String
    private let teardown: @Sendable () async -> Void

    public static func make(_ backend: Backend, s3Tuning: (inout S3Configuration) -> Void = { _ in }) async throws -> StorageFixture {
        let clock = TestClock()
        switch backend {
        case .embedded:
            let dir = TestData.temporaryDirectory("storage")
            let blobs = try FileBlobStore(root: URL(fileURLWithPath: dir + "/blobs"))
            let url = "sqlite://\(dir)/postmortem.sqlite"
            let database = try await Database.open(url: url, poolSize: 4)
            let metadata = try await MetadataStore.open(database, clock: clock.function)
            return StorageFixture(blobs: blobs, database: database, metadata: metadata, clock: clock, databaseURL: url) {
                await database.shutdown()
                try? FileManager.default.removeItem(atPath: dir)
            }
        case .scaleOut:
            let (url, drop) = try await freshPostgresDatabase()
            let database = try await Database.open(url: url, poolSize: 8)
            let metadata = try await MetadataStore.open(database, clock: clock.function)
            var configuration = S3Configuration(endpoint: try TestServices.s3Endpoint(), bucket: TestServices.uniqueName("pm-test"),
                                                accessKey: "testing", secretKey: "testing")
            s3Tuning(&configuration)
            let blobs = try S3BlobStore(configuration: configuration)
            try await blobs.createBucketIfNeeded()
            return StorageFixture(blobs: blobs, database: database, metadata: metadata, clock: clock, databaseURL: url) {
                await database.shutdown()
                await drop()
            }
        }
    }

    public func close() async { await teardown() }

    /// A new empty database on the test server, and a function that drops it.
    public static func freshPostgresDatabase() async throws -> (String, @Sendable () async -> Void) {
        let adminURL = try TestServices.postgresURL()
        let name = TestServices.uniqueName("pm_test")
        let admin = try await Database.open(url: adminURL, poolSize: 1)
        try await admin.withConnection { try await $0.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
        await admin.shutdown()
        let base = adminURL[..<adminURL.lastIndex(of: "/")!]
        return ("\(base)/\(name)", {
            guard let admin = try? await Database.open(url: adminURL, poolSize: 1) else { return }
            try? await admin.withConnection { try await $0.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run() }
            await admin.shutdown()
        })
    }
}
