import CrashModel
import Foundation
import Storage
import Testing
import TestSupport

@Suite struct BlobStoreTests {
    @Test(arguments: Backend.allCases)
    func putGetSizeDeleteAndOverwrite(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let key = BlobKeys.rawCrash("de1bb258-cbbf-4589-a673-34f800160918", date: "20261129")
        #expect(try await f.blobs.get(key) == nil)
        #expect(try await f.blobs.size(key) == nil)
        try await f.blobs.put(key, Data("{\"a\": 1}".utf8))
        #expect(try await f.blobs.get(key) == Data("{\"a\": 1}".utf8))
        #expect(try await f.blobs.size(key) == 8)
        try await f.blobs.put(key, Data("second".utf8))
        #expect(try await f.blobs.get(key) == Data("second".utf8))
        try await f.blobs.put("v1/empty/x", Data())
        #expect(try await f.blobs.get("v1/empty/x") == Data())
        try await f.blobs.delete(key)
        try await f.blobs.delete(key) // deleting a missing object is fine
        #expect(try await f.blobs.get(key) == nil)
        try await f.blobs.check()
    }

    @Test(arguments: Backend.allCases)
    func putAllStoresABatchWithTheLastItemLast(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        let items: [(String, Data)] = [("v1/dump/a", Data(repeating: 7, count: 300_000)), ("v1/dump_names/a", Data("[\"upload_file_minidump\"]".utf8)),
                                       ("v1/raw_crash/20261129/a", Data("{}".utf8))]
        try await f.blobs.putAll(items)
        for (key, data) in items { #expect(try await f.blobs.get(key) == data) }
        try await f.blobs.putAll([])
        // A bad key anywhere: nothing of the batch becomes visible.
        await #expect(throws: BlobStoreError.self) { try await f.blobs.putAll([("v1/dump/b", Data([1])), ("../escape", Data([2]))]) }
        #expect(try await f.blobs.get("v1/dump/b") == nil)
        if backend == .embedded {
            #expect(try await f.blobs.list(prefix: "v1/").count == 3) // no temporary files left behind
        }
    }

    @Test(arguments: Backend.allCases)
    func listsByPrefixInByteOrderAcrossPages(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend) { $0.listPageSize = 7 }
        defer { Task { await f.close() } }
        var expected: [String] = []
        for n in 0..<23 {
            let key = "v1/dump/crash-\(String(format: "%03d", n))"
            expected.append(key)
            try await f.blobs.put(key, Data([UInt8(n)]))
        }
        try await f.blobs.put("v1/dump_names/crash-000", Data("[]".utf8))
        try await f.blobs.put("v1/processed_crash/crash-000", Data("{}".utf8))
        #expect(try await f.blobs.list(prefix: "v1/dump/") == expected)
        #expect(try await f.blobs.list(prefix: "v1/dump/crash-01") == Array(expected[10..<20]))
        #expect(try await f.blobs.list(prefix: "v1/dump").count == 24)
        #expect(try await f.blobs.list(prefix: "").count == 25)
        #expect(try await f.blobs.list(prefix: "v1/nothing/").isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func rejectsKeysThatCouldEscapeTheStore(_ backend: Backend) async throws {
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        for bad in ["../etc/passwd", "/abs", "a//b", "a/../b", "a/./b", "a/.tmp-1", "", "a\\b", "tab\there", "x/", String(repeating: "k", count: 1025)] {
            await #expect(throws: BlobStoreError.self, "\(bad)") { try await f.blobs.put(bad, Data("x".utf8)) }
            await #expect(throws: BlobStoreError.self, "\(bad)") { _ = try await f.blobs.get(bad) }
        }
        await #expect(throws: BlobStoreError.self) { _ = try await f.blobs.list(prefix: "../") }
    }

    @Test(arguments: Backend.allCases)
    func largeObjectsRoundTrip(_ backend: Backend) async throws {
        // 11 MiB: over the 8 MiB multipart threshold, so S3 uploads it in two parts.
        let f = try await StorageFixture.make(backend)
        defer { Task { await f.close() } }
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<(11 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try await f.blobs.put("v1/dump/big", data)
        #expect(try await f.blobs.size("v1/dump/big") == data.count)
        #expect(try await f.blobs.get("v1/dump/big") == data)
    }

    @Test func s3ErrorsCarryStatusAndCode() async throws {
        let configuration = S3Configuration(endpoint: try TestServices.s3Endpoint(), bucket: "no-such-bucket-\(UUID().uuidString.lowercased().prefix(8))",
                                            accessKey: "testing", secretKey: "testing", maxAttempts: 1)
        let store = try S3BlobStore(configuration: configuration)
        let error = await #expect(throws: BlobStoreError.self) { try await store.put("v1/x", Data("x".utf8)) }
        guard case .s3(_, let status, let code, _)? = error else { Issue.record("not an S3 error: \(String(describing: error))"); return }
        #expect(status == 404 && code == "NoSuchBucket")
        await #expect(throws: BlobStoreError.self) { try await store.check() }
    }

    @Test func s3RetriesServerErrorsWithBackoff() async throws {
        // A loopback server that answers 503 twice, then the object.
        let file = TestData.temporaryDirectory("s3retry") + ".bin"
        try Data("payload".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let server = try TestHTTPServer(routes: ["/b/v1/x": .failing(503, times: 2, then: .file(file))])
        defer { server.shutdown() }
        let store = try S3BlobStore(configuration: S3Configuration(endpoint: server.baseURL, bucket: "b", accessKey: "a", secretKey: "s", maxAttempts: 3))
        #expect(try await store.get("v1/x") == Data("payload".utf8))
        #expect(server.requests(to: "/b/v1/x") == 3)

        // With fewer attempts than failures, the last error is reported.
        let failing = try TestHTTPServer(routes: ["/b/v1/y": .failing(500, times: 5, then: .status(200))])
        defer { failing.shutdown() }
        let impatient = try S3BlobStore(configuration: S3Configuration(endpoint: failing.baseURL, bucket: "b", accessKey: "a", secretKey: "s", maxAttempts: 2))
        let error = await #expect(throws: BlobStoreError.self) { _ = try await impatient.get("v1/y") }
        guard case .s3(_, 500, _, _)? = error else { Issue.record("expected HTTP 500, got \(String(describing: error))"); return }
        #expect(failing.requests(to: "/b/v1/y") == 2)
    }

    @Test func fileStoreTemporaryFilesAreInvisibleAndCleanedUp() async throws {
        let dir = TestData.temporaryDirectory("blobs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try FileBlobStore(root: URL(fileURLWithPath: dir))
        try await store.put("v1/dump/a", Data("whole".utf8))
        // What a writer killed before its rename leaves behind.
        try Data("partial".utf8).write(to: URL(fileURLWithPath: dir + "/v1/dump/.tmp-dead-writer"))
        #expect(try await store.list(prefix: "v1/") == ["v1/dump/a"])
        #expect(try await store.removeStaleTemporaryFiles(olderThan: 0) == 1)
        #expect(!FileManager.default.fileExists(atPath: dir + "/v1/dump/.tmp-dead-writer"))
    }
}
