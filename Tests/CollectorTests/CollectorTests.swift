import CrashModel
import AsyncHTTPClient
@testable import Collector
import Foundation
import JSONSupport
import NIOCore
import ServiceSupport
import Storage
import Testing
import TestSupport

@Suite struct CollectorTests {
    static let dump: [UInt8] = Array("MDMP".utf8) + (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }

    func standardBody() -> MultipartBody {
        var m = MultipartBody()
        m.field("ProductName", "Firefox")
        m.field("Version", "120.0")
        m.file("upload_file_minidump", Self.dump)
        return m
    }

    func crashID(_ answer: CollectorHarness.Answer) throws -> String {
        #expect(answer.status == 200, "\(answer.body)")
        #expect(answer.body.hasPrefix("CrashID=bp-") && answer.body.hasSuffix("\n"), "\(answer.body)")
        let id = String(answer.body.dropFirst("CrashID=bp-".count).dropLast())
        #expect(CrashID.isValid(id, strict: true))
        return id
    }

    @Test func acceptsKeyValueAnnotationsAndStoresDumpNamesAndRawCrash() async throws {
        let h = try await CollectorHarness()
        defer { Task { await h.close() } }
        var m = standardBody()
        m.file("upload_file_minidump_browser", [1, 2, 3])
        m.field("Email", "someone@example.com")
        m.field("TelemetryClientId", "abc")
        let answer = try await h.post(m.finished(), headers: m.headers + [("User-Agent", "Breakpad/1.0")])
        #expect(answer.contentType.hasPrefix("text/plain"))
        let id = try crashID(answer)
        #expect(id.suffix(7) == "0" + CrashID.dayStamp(Date()).dropFirst(2)) // accepted today
        let stored = try #require(try await h.stored(id))
        #expect(stored.dumpNames == ["upload_file_minidump", "upload_file_minidump_browser"])
        #expect(stored.dumps["upload_file_minidump"] == Data(Self.dump))
        #expect(try await h.blobs.get("v1/dump/\(id)") == Data(Self.dump))
        let raw = stored.raw
        #expect(raw["ProductName"] == .string("Firefox") && raw["uuid"] == .string(id) && raw["version"] == .int(2))
        #expect(raw["Email"] == nil && raw["TelemetryClientId"] == nil)
        let metadata = try #require(raw["metadata"])
        #expect(metadata["payload"] == .string("multipart") && metadata["payload_compressed"] == .string("0"))
        #expect(metadata["user_agent"] == .string("Breakpad/1.0") && metadata["throttle_rule"] == .string("accept_everything"))
        #expect(metadata["collector_notes"] == .array([.string("Removed Email from raw crash."), .string("Removed TelemetryClientId from raw crash.")]))
        #expect(metadata["dump_checksums"]?["upload_file_minidump"] == .string(Collector.sha256(ByteBuffer(bytes: Self.dump))))
        #expect(metadata["payload_size"] == .int(Int64(m.finished().readableBytes)))
        // Raw crash keys are sorted.
        if case .object(let pairs) = raw { #expect(pairs.map(\.0) == pairs.map(\.0).sorted()) }
        // Queued exactly once.
        let leases = try await h.queue.lease(limit: 10)
        #expect(leases.map(\.item.crashID) == [id])
    }

    @Test func acceptsJSONAnnotationsGzipAndChunkedBodies() async throws {
        let h = try await CollectorHarness()
        defer { Task { await h.close() } }
        var m = MultipartBody()
        m.field("extra", #"{"ProductName": "Firefox", "Version": "1.0", "TelemetryEnvironment": "{\"build\": {}}"}"#, contentType: "application/json")
        m.file("upload_file_minidump", Self.dump)
        let gz = try MultipartBody.gzip(m.finished())
        for framing in [CollectorHarness.Framing.contentLength, .chunked] {
            let id = try crashID(try await h.post(gz, headers: m.headers + [("Content-Encoding", "gzip")], framing: framing))
            let raw = try #require(try await h.stored(id)).raw
            #expect(raw["TelemetryEnvironment"] == .string(#"{"build": {}}"#))
            #expect(raw["metadata"]?["payload"] == .string("json") && raw["metadata"]?["payload_compressed"] == .string("1"))
            #expect(raw["metadata"]?["payload_size"] == .int(Int64(gz.readableBytes)))
            #expect(try await h.stored(id)?.dumps["upload_file_minidump"] == Data(Self.dump))
        }
        // Plain chunked body.
        _ = try crashID(try await h.post(m.finished(), headers: m.headers, framing: .chunked))
        // Both annotation forms at once: accepted with a note.
        var both = m
        both.field("Extra2", "x")
        let id = try crashID(try await h.post(both.finished(), headers: both.headers))
        let notes = try #require(try await h.stored(id)).raw["metadata"]?["collector_notes"]
        #expect(notes == .array([.string("includes annotations in both json-encoded extra and formdata parts")]))
    }

    @Test func everyMalformedReasonHasItsStatusAndBody() async throws {
        let h = try await CollectorHarness()
        defer { Task { await h.close() } }
        let good = standardBody()
        func expectDiscarded(_ answer: CollectorHarness.Answer, _ reason: String, status: Int = 400, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(answer.status == status && answer.body == "Discarded=malformed_\(reason)", "\(answer.status) \(answer.body)", sourceLocation: sourceLocation)
        }
        expectDiscarded(try await h.post(good.finished(), headers: []), "no_content_type")
        expectDiscarded(try await h.post(good.finished(), headers: [("Content-Type", "application/json")]), "wrong_content_type")
        expectDiscarded(try await h.post(good.finished(), headers: [("Content-Type", "multipart/form-data")]), "no_boundary")
        expectDiscarded(try await h.post(ByteBuffer(), headers: good.headers, framing: .none), "no_content_length")
        expectDiscarded(try await h.post(ByteBuffer(), headers: good.headers), "no_content_length")
        expectDiscarded(try await h.post(ByteBuffer(string: "not gzip at all"), headers: good.headers + [("Content-Encoding", "gzip")]), "bad_gzip")
        var truncatedGzip = try MultipartBody.gzip(good.finished())
        truncatedGzip.moveWriterIndex(to: truncatedGzip.writerIndex - 20)
        truncatedGzip.setBytes([0xFF, 0xFF, 0xFF, 0xFF], at: 30)
        expectDiscarded(try await h.post(truncatedGzip, headers: good.headers + [("Content-Encoding", "gzip")]), "bad_gzip")
        // Bytes after the end of the gzip stream (found by the fuzzer: the decompressor spun on them forever).
        for trailing in [[0x90], [0x00, 0x00], Array(repeating: UInt8(0x41), count: 5000)] as [[UInt8]] {
            var withTrailing = try MultipartBody.gzip(good.finished())
            withTrailing.writeBytes(trailing)
            expectDiscarded(try await h.post(withTrailing, headers: good.headers + [("Content-Encoding", "gzip")]), "bad_gzip")
            var chunkedTrailing = withTrailing
            expectDiscarded(try await h.post(chunkedTrailing.readSlice(length: chunkedTrailing.readableBytes)!, headers: good.headers + [("Content-Encoding", "gzip")],
                                             framing: .chunked), "bad_gzip")
        }

        var badJSON = MultipartBody()
        badJSON.field("extra", "{not json", contentType: "application/json")
        expectDiscarded(try await h.post(badJSON.finished(), headers: badJSON.headers), "invalid_json")
        var listJSON = MultipartBody()
        listJSON.field("extra", "[1, 2]", contentType: "application/json")
        expectDiscarded(try await h.post(listJSON.finished(), headers: listJSON.headers), "invalid_json_value")
        for reserved in ["raw_crash", "dump_names", "processed_crash", "../../", "ü"] {
            var m = standardBody()
            m.file(reserved, [1])
            expectDiscarded(try await h.post(m.finished(), headers: m.headers), "invalid_dump_name")
        }
        // Truncated body: no closing boundary.
        var truncated = good.finished()
        truncated.moveWriterIndex(to: truncated.writerIndex - 40)
        expectDiscarded(try await h.post(truncated, headers: good.headers), "invalid_payload_structure")
        expectDiscarded(try await h.post(ByteBuffer(string: "no multipart here"), headers: good.headers), "invalid_payload_structure")
        var onlyDump = MultipartBody()
        onlyDump.file("upload_file_minidump", Self.dump)
        expectDiscarded(try await h.post(onlyDump.finished(), headers: onlyDump.headers), "no_annotations")
        // A uuid annotation needs the replay token.
        var withUUID = standardBody()
        withUUID.field("uuid", "de1bb258-cbbf-4589-a673-34f800160918")
        let unauthorized = try await h.post(withUUID.finished(), headers: withUUID.headers)
        #expect(unauthorized.status == 401 && unauthorized.body == "Discarded=unauthorized_uuid")
    }

    @Test func sizeLimitsAtTheLimitAndOneByteOver() async throws {
        var configuration = CollectorConfiguration()
        let body = standardBody().finished()
        configuration.maxPayloadSize = body.readableBytes
        configuration.maxPartSize = 6000
        configuration.maxDecompressedSize = 1 << 20
        let h = try await CollectorHarness(configuration: configuration)
        defer { Task { await h.close() } }
        _ = try crashID(try await h.post(body, headers: standardBody().headers))
        _ = try crashID(try await h.post(body, headers: standardBody().headers, framing: .chunked))
        var over = standardBody()
        over.field("X", "")
        var oneMore = body
        oneMore.writeString(" ") // epilogue byte: still valid multipart, one byte over
        for framing in [CollectorHarness.Framing.contentLength, .chunked] {
            let answer = try await h.post(oneMore, headers: standardBody().headers, framing: framing)
            #expect(answer.status == 413, "\(framing)")
        }
        // A part over the part limit.
        var bigPart = MultipartBody()
        bigPart.field("ProductName", "Firefox")
        bigPart.file("upload_file_minidump", [UInt8](repeating: 1, count: 6001))
        let configuration2 = { var c = CollectorConfiguration(); c.maxPartSize = 6000; return c }()
        let h2 = try await CollectorHarness(configuration: configuration2)
        defer { Task { await h2.close() } }
        let part = try await h2.post(bigPart.finished(), headers: bigPart.headers)
        #expect(part.status == 400 && part.body == "Discarded=malformed_invalid_payload_structure")
        // A gzip bomb: 8 MiB of zeros in a few KB, far over the 1 MiB decompressed limit.
        var zeros = MultipartBody()
        zeros.field("ProductName", "Firefox")
        zeros.file("upload_file_minidump", [UInt8](repeating: 0, count: 8 << 20))
        let bomb = try MultipartBody.gzip(zeros.finished())
        #expect(bomb.readableBytes < 20_000)
        let answer = try await h.post(bomb, headers: zeros.headers + [("Content-Encoding", "gzip")])
        #expect(answer.status == 413)
    }

    /// Submissions in progress are bounded: past `max_concurrent_submissions`, or when the bodies
    /// announced would pass `max_buffered_bytes`, the answer is 503 with Retry-After, and the
    /// collector takes crashes again as soon as the place is free.
    @Test func aFullCollectorAnswers503WithRetryAfterAndRecovers() async throws {
        var configuration = CollectorConfiguration()
        configuration.maxPayloadSize = 100_000
        configuration.maxBufferedBytes = 150_000
        configuration.maxConcurrentSubmissions = 2
        configuration.busyRetryAfter = 7
        let h = try await CollectorHarness(configuration: configuration)
        defer { Task { await h.close() } }
        let port = try #require(Int(h.base.split(separator: ":").last ?? ""))
        func slowClient(declaring length: Int) throws -> RawHTTPConnection {
            let c = try RawHTTPConnection(port: port)
            c.send("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: \(length)\r\n\r\n--b\r\n")
            return c
        }
        func rawSubmit() async throws -> Data {
            let m = standardBody()
            var body = m.finished()
            let head = "POST /submit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + m.headers.map { "\($0.0): \($0.1)\r\n" }.joined()
                + "Content-Length: \(body.readableBytes)\r\n\r\n"
            return try await RawHTTPConnection.exchange(port: port, Data(head.utf8) + Data(body.readBytes(length: body.readableBytes)!), timeout: .seconds(30))
        }
        // One slow client holds 100,000 of the 150,000 bytes: a second announcing 100,000 is refused.
        var first: RawHTTPConnection? = try slowClient(declaring: 100_000)
        try await Task.sleep(for: .milliseconds(300))
        let third = try slowClient(declaring: 100_000)
        let refused = try await offPool { third.receive(timeout: .seconds(30)) }
        #expect(RawHTTPConnection.status(of: refused) == 503)
        #expect(RawHTTPConnection.body(of: refused) == "Discarded=collector_busy")
        #expect(String(decoding: refused, as: UTF8.self).lowercased().contains("retry-after: 7\r\n"))
        // A small one still fits; with two in progress, a third is refused whatever its size.
        var second: RawHTTPConnection? = try slowClient(declaring: 1000)
        try await Task.sleep(for: .milliseconds(300))
        #expect(RawHTTPConnection.status(of: try await rawSubmit()) == 503)
        // The slow clients go away: their places and bytes are given back.
        first = nil
        second = nil
        _ = (first, second)
        // (Up to 30 s: on a loaded machine the closed connections are noticed late.)
        var answer = Data()
        for _ in 0..<300 {
            answer = try await rawSubmit()
            if RawHTTPConnection.status(of: answer) == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(RawHTTPConnection.status(of: answer) == 200)
        #expect(RawHTTPConnection.body(of: answer).hasPrefix("CrashID=bp-"))
    }

    @Test func hostileDumpNamesAreSanitized() async throws {
        let h = try await CollectorHarness()
        defer { Task { await h.close() } }
        var m = standardBody()
        m.file("../../etc/passwd", [1])
        m.file("upload_file_minidump_" + String(repeating: "x", count: 100), [2])
        m.file("mem\u{00FC}ry-report.json", [3], contentType: "application/gzip")
        let id = try crashID(try await h.post(m.finished(), headers: m.headers))
        let stored = try #require(try await h.stored(id))
        #expect(stored.dumpNames == ["upload_file_minidump", "etcpasswd", "upload_file_minidump_xxxxxxxxx", "memryreportjson"])
        #expect(stored.dumpNames.allSatisfy { $0.count <= 30 })
        #expect(try await h.blobs.get("v1/etcpasswd/\(id)") == Data([1]))
        let notes = stored.raw["metadata"]?["collector_notes"]
        #expect(notes == .array([.string("unknown content type: memryreportjson application/gzip")]))
        // Nothing was written outside the blob root.
        #expect(!FileManager.default.fileExists(atPath: h.directory + "/etc"))
    }

    @Test func throttleRulesRejectFakeAcceptDeferAndSample() async throws {
        let rules = #"""
        [{"name": "has_hangid_and_browser", "when": {"all": [{"key": "HangID", "exists": true},
                                                             {"key": "ProcessType", "in": ["browser"], "default": "browser"}]}, "result": "reject"},
         {"name": "b2g", "when": {"key": "ProductName", "equals": "B2G"}, "result": "fakeaccept"},
         {"name": "is_nightly", "when": {"key": "ReleaseChannel", "prefix": "nightly"}, "result": "defer"},
         {"name": "sampled", "when": {"key": "ReleaseChannel", "equals": "release"}, "result": {"percent": 10, "then": "accept", "else": "continue"}},
         {"name": "accept_firefox", "when": {"key": "ProductName", "matches": "Fire(fox|bird)$"}, "result": "accept"}]
        """#
        let h = try await CollectorHarness(throttler: try Throttler.load(json: Data(rules.utf8), roll: { 50 }))
        defer { Task { await h.close() } }
        func send(_ fields: [(String, String)]) async throws -> CollectorHarness.Answer {
            var m = MultipartBody()
            for (k, v) in fields { m.field(k, v) }
            m.file("upload_file_minidump", Self.dump)
            return try await h.post(m.finished(), headers: m.headers)
        }
        #expect(try await send([("ProductName", "Firefox"), ("HangID", "x")]).body == "Discarded=rule_has_hangid_and_browser")
        _ = try crashID(try await send([("ProductName", "Firefox"), ("HangID", "x"), ("ProcessType", "content")]))
        let fake = try crashID(try await send([("ProductName", "B2G")]))
        #expect(try await h.stored(fake) == nil) // fake-accepted: nothing stored
        let deferred = try crashID(try await send([("ProductName", "Firefox"), ("ReleaseChannel", "nightly-try")]))
        #expect(deferred.dropLast(6).last == "1")
        #expect(try await h.stored(deferred) != nil)
        // 10 % sample with a roll of 50: CONTINUE, so the next rule decides.
        _ = try crashID(try await send([("ProductName", "Firefox"), ("ReleaseChannel", "release")]))
        #expect(try await send([("ProductName", "Chrome"), ("ReleaseChannel", "release")]).body == "Discarded=rule_NO_MATCH")

        // The generic default with a product list.
        let listed = Throttler.standard(products: ["Firefox"])
        #expect(listed.decide(["ProductName": "Other"]) == (.reject, "unsupported_product"))
        #expect(listed.decide(["ProductName": "Firefox"]) == (.accept, "accept_everything"))
        #expect(throws: ThrottleRuleError.self) { try Throttler.load(json: Data(#"[{"name": "x", "result": "maybe"}]"#.utf8)) }
        #expect(throws: ThrottleRuleError.self) { try Throttler.load(json: Data(#"[{"name": "x", "when": {"key": "A", "matches": "("}, "result": "accept"}]"#.utf8)) }
    }

    @Test func crashpadClientsGetHexIDsAndTheirProductFromTheURL() async throws {
        let h = try await CollectorHarness()
        defer { Task { await h.close() } }
        var m = MultipartBody()
        m.field("prod", "TestApp", contentType: nil) // Crashpad sends no per-part Content-Type
        m.field("ver", "1.0", contentType: nil)
        m.file("upload_file_minidump", Self.dump, filename: "4a7e2f0d.dmp")
        let answer = try await h.post(try MultipartBody.gzip(m.finished()), headers: m.headers + [("Content-Encoding", "gzip")],
                                      framing: .chunked, query: "?product=TestApp&version=1.0&guid=c0ffee")
        #expect(answer.status == 200)
        #expect(answer.body.count == 16 && answer.body.allSatisfy(\.isHexDigit), "\(answer.body)")
        let leases = try await h.queue.lease()
        let id = try #require(leases.first?.item.crashID)
        #expect(CrashID.hex16(id) == answer.body)
        let raw = try #require(try await h.stored(id)).raw
        #expect(raw["ProductName"] == .string("TestApp") && raw["Version"] == .string("1.0") && raw["guid"] == .string("c0ffee"))
    }

    @Test func trustedReplayKeepsTheCrashID() async throws {
        var configuration = CollectorConfiguration()
        configuration.replayToken = "s3cret-token"
        let h = try await CollectorHarness(configuration: configuration)
        defer { Task { await h.close() } }
        var m = standardBody()
        m.field("uuid", "de1bb258-cbbf-4589-a673-34f800160918")
        let answer = try await h.post(m.finished(), headers: m.headers + [("Authorization", "Bearer s3cret-token")])
        #expect(answer.body == "CrashID=bp-de1bb258-cbbf-4589-a673-34f800160918\n")
        #expect(try await h.stored("de1bb258-cbbf-4589-a673-34f800160918")?.raw["uuid"] == .string("de1bb258-cbbf-4589-a673-34f800160918"))
        let wrong = try await h.post(m.finished(), headers: m.headers + [("Authorization", "Bearer nope")])
        #expect(wrong.status == 401)
        var bad = standardBody()
        bad.field("uuid", "not-a-crash-id")
        let invalid = try await h.post(bad.finished(), headers: bad.headers + [("Authorization", "Bearer s3cret-token")])
        #expect(invalid.status == 400 && invalid.body == "Discarded=malformed_invalid_uuid")
    }

    @Test func aFailingStoreAnswers500AndQueuesNothing() async throws {
        var configuration = CollectorConfiguration()
        configuration.saveAttempts = 2
        configuration.saveRetryDelay = .milliseconds(10)
        // A real S3 server whose bucket does not exist: every put fails.
        let missing = try S3BlobStore(configuration: S3Configuration(endpoint: try TestServices.s3Endpoint(), bucket: TestServices.uniqueName("pm-none"),
                                                                     accessKey: "testing", secretKey: "testing", maxAttempts: 1))
        let h = try await CollectorHarness(configuration: configuration, blobStore: missing)
        defer { Task { await h.close() } }
        let answer = try await h.post(standardBody().finished(), headers: standardBody().headers)
        #expect(answer.status == 500 && answer.body.isEmpty)
        #expect(try await h.queue.lease().isEmpty)
    }

    @Test func crashIDsCarryTheThrottleDigitAndDate() {
        let date = Date(timeIntervalSince1970: 1_474_200_000) // 2016-09-18
        let id = CrashID.make(throttleDigit: 0, date: date, uuid: UUID(uuidString: "DE1BB258-CBBF-4589-A673-34F800000000")!)
        #expect(id == "de1bb258-cbbf-4589-a673-34f800160918")
        #expect(CrashID.isValid(id, strict: true) && CrashID.date(of: id) == "20160918")
        #expect(!CrashID.isValid("de1bb258-cbbf-4589-a673-34f800160918x") && !CrashID.isValid("DE1BB258-cbbf-4589-a673-34f800160918"))
        #expect(!CrashID.isValid("de1bb258-cbbf-4589-a673-34f802160918", strict: true))
        #expect(CrashID.normalize("bp-de1bb258-cbbf-4589-a673-34f800160918") == id)
        #expect(CrashID.hex16(id) == "de1bb258cbbf4589")
    }

    @Test func headerParametersFollowTheGrammar() {
        let (value, p) = HeaderValue.parse(#"form-data; name="a \"quoted\" name"; filename=plain.dmp; Empty="""#)
        #expect(value == "form-data" && p["name"] == #"a "quoted" name"# && p["filename"] == "plain.dmp" && p["empty"] == "")
    }
}
