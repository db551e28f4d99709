// storage-bench: blob put/get throughput (filesystem and S3) and queue operations per second
// (SQLite and PostgreSQL), against the same real servers the tests use.
//
//   eval "$(scripts/test-services.sh)"   # PostgreSQL and moto_server on 127.0.0.1
//   swift run -c release --package-path Benchmarks storage-bench
//
// Blobs: 200 puts then 200 gets of 64 KiB (a typical minidump is 50–500 KiB) from 8 concurrent
// tasks, and 4 puts/gets of 16 MiB (multipart on S3). Queue: enqueue 2000 messages in batches of
// 50, then lease-and-ack them one at a time from 4 concurrent consumers.
import BenchSupport
import Foundation
import Storage

let env = ProcessInfo.processInfo.environment
guard let postgresURL = env["POSTMORTEM_TEST_POSTGRES_URL"], let s3Endpoint = env["POSTMORTEM_TEST_S3_ENDPOINT"] else {
    FileHandle.standardError.write(Data("storage-bench: run `eval \"$(scripts/test-services.sh)\"` first\n".utf8))
    exit(2)
}

func concurrently(_ count: Int, tasks: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> Double {
    let start = benchClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for t in 0..<tasks {
            group.addTask { for i in stride(from: t, to: count, by: tasks) { try await body(i) } }
        }
        try await group.waitForAll()
    }
    return seconds(benchClock.now - start)
}

func blobRows(_ name: String, _ store: any BlobStore) async throws -> [String] {
    var rows: [String] = []
    for (size, count) in [(64 << 10, 200), (16 << 20, 4)] {
        let payload = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let put = try await concurrently(count, tasks: size > 1 << 20 ? 2 : 8) { i in try await store.put("bench/\(size)/\(i)", payload) }
        let get = try await concurrently(count, tasks: size > 1 << 20 ? 2 : 8) { i in
            guard try await store.get("bench/\(size)/\(i)")?.count == size else { fatalError("short read") }
        }
        let mb = Double(size * count) / 1e6
        rows.append(String(format: "| %@ | %@ × %d | %.0f objects/s, %.1f MB/s | %.0f objects/s, %.1f MB/s |", name,
                           size >= 1 << 20 ? "\(size >> 20) MiB" : "\(size >> 10) KiB", count,
                           Double(count) / put, mb / put, Double(count) / get, mb / get))
    }
    return rows
}

func freshPostgres() async throws -> String {
    let admin = try await Database.open(url: postgresURL, poolSize: 1)
    let name = "pm_bench_\(UUID().uuidString.prefix(8).lowercased())"
    try await admin.execute("CREATE DATABASE \(name)")
    await admin.shutdown()
    return postgresURL[..<postgresURL.lastIndex(of: "/")!] + "/" + name
}

func queueRow(_ name: String, url: String) async throws -> String {
    let database = try await Database.open(url: url, poolSize: 8)
    _ = try await MetadataStore.open(database)
    let queue = WorkQueue(database: database, visibilityTimeout: .seconds(300))
    let total = 2000
    let enqueue = try await concurrently(total / 50, tasks: 1) { batch in
        try await queue.enqueue((0..<50).map { QueueItem(crashID: "crash-\(batch)-\($0)") })
    }
    let start = benchClock.now
    let consumed = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<4 {
            group.addTask {
                var n = 0
                while let lease = try await queue.lease().first {
                    guard try await queue.ack(lease) else { fatalError("lost a lease") }
                    n += 1
                }
                return n
            }
        }
        return try await group.reduce(0, +)
    }
    let leaseAck = seconds(benchClock.now - start)
    precondition(consumed == total, "consumed \(consumed) of \(total)")
    await database.shutdown()
    return String(format: "| %@ | %.0f messages/s | %.0f lease+ack/s |", name, Double(total) / enqueue, Double(total) / leaseAck)
}

let dir = NSTemporaryDirectory() + "storage-bench-\(UUID().uuidString)"
defer { try? FileManager.default.removeItem(atPath: dir) }
let s3 = try S3BlobStore(configuration: S3Configuration(endpoint: s3Endpoint, bucket: "pm-bench-\(UUID().uuidString.prefix(8).lowercased())",
                                                        accessKey: "testing", secretKey: "testing"))
try await s3.createBucketIfNeeded()

print("| blob store | objects | put | get |")
print("|---|---|---|---|")
for row in try await blobRows("filesystem (fsync)", try FileBlobStore(root: URL(fileURLWithPath: dir + "/blobs"))) { print(row) }
for row in try await blobRows("S3 (moto_server)", s3) { print(row) }
print("")
print("| queue | enqueue | lease + ack (4 consumers) |")
print("|---|---|---|")
print(try await queueRow("SQLite (WAL)", url: "sqlite://\(dir)/bench.sqlite"))
print(try await queueRow("PostgreSQL", url: try await freshPostgres()))
