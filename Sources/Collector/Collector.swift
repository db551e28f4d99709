import CrashModel
import CompressNIO
import Crypto
import Foundation
import JSONSupport
import Logging
import NIOCore
import NIOFoundationCompat
import ServiceSupport
import Storage

/// A submission as the HTTP layer hands it over.
public struct Submission<Body: AsyncSequence & Sendable>: Sendable where Body.Element == ByteBuffer {
    public var headers: [(String, String)]
    public var query: [(String, String)]
    public var body: Body

    public init(headers: [(String, String)], query: [(String, String)], body: Body) {
        self.headers = headers
        self.query = query
        self.body = body
    }

    func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// The collector's answer: status and a plain-text body (and `Retry-After` when busy).
public struct CollectorResponse: Sendable, Equatable {
    public var status: Int
    public var body: String
    public var retryAfter: Int? = nil
}

/// Why a submission was refused before throttling (the `Discarded=malformed_<reason>` set).
enum Malformed: String, Error {
    case noContentType = "no_content_type", wrongContentType = "wrong_content_type", noBoundary = "no_boundary"
    case noContentLength = "no_content_length", badGzip = "bad_gzip", invalidJSON = "invalid_json"
    case invalidJSONValue = "invalid_json_value", invalidDumpName = "invalid_dump_name"
    case invalidPayloadStructure = "invalid_payload_structure", noAnnotations = "no_annotations", invalidUUID = "invalid_uuid"
}

enum Refusal: Error {
    case malformed(Malformed)
    case tooLarge
    case unauthorizedUUID
    /// Too many submissions in progress, or their bodies fill the buffer budget: 503, retry later.
    case busy
    /// The body did not arrive within `bodyTimeout`.
    case tooSlow
}

/// The crash collector (`../shared/reference/collector.md`): reads a multipart submission
/// (gzip and chunked bodies included, with size limits), builds the raw crash, throttles,
/// saves the dumps, the dump names and the raw crash — in that order, durably — queues the
/// crash id, and only then answers with the crash id.
public struct Collector: Sendable {
    public let configuration: CollectorConfiguration
    let throttler: Throttler
    let blobs: any BlobStore
    let queue: WorkQueue?
    let metadata: MetadataStore?
    let metrics: CollectorMetrics
    /// Concurrent submissions share queue inserts and payload records (group commit).
    let enqueuer: GroupCommit<QueueItem>?
    let payloads: GroupCommit<MetadataStore.PayloadRecord>?
    let logger: Logger
    let now: @Sendable () -> Date
    let gate: SubmissionGate

    public init(configuration: CollectorConfiguration, throttler: Throttler, blobs: any BlobStore, queue: WorkQueue?,
                metadata: MetadataStore?, logger: Logger = Logger(label: "postmortem.collector"),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.throttler = throttler
        self.blobs = blobs
        self.queue = queue
        self.metadata = metadata
        self.metrics = CollectorMetrics.shared
        enqueuer = queue.map { q in GroupCommit { items in try await q.enqueue(items) } }
        payloads = metadata.map { m in GroupCommit { records in try await m.recordPayloads(records) } }
        self.logger = logger
        self.now = now
        gate = SubmissionGate(.init(maxSubmissions: configuration.maxConcurrentSubmissions,
                                    maxDecompressions: configuration.maxConcurrentDecompressions,
                                    maxBufferedBytes: configuration.maxBufferedBytes))
    }

    public func handle<Body>(_ submission: Submission<Body>) async -> CollectorResponse {
        metrics.incoming.increment()
        let started = ContinuousClock.now
        let response: CollectorResponse
        do {
            response = try await process(submission)
        } catch {
            switch error {
            case .malformed(let reason):
                metrics.result("malformed_\(reason.rawValue)")
                response = CollectorResponse(status: 400, body: "Discarded=malformed_\(reason.rawValue)")
            case .tooLarge:
                metrics.result("too_large")
                response = CollectorResponse(status: 413, body: "Discarded=payload_too_large")
            case .unauthorizedUUID:
                metrics.result("unauthorized_uuid")
                response = CollectorResponse(status: 401, body: "Discarded=unauthorized_uuid")
            case .busy:
                metrics.result("busy")
                response = CollectorResponse(status: 503, body: "Discarded=collector_busy", retryAfter: configuration.busyRetryAfter)
            case .tooSlow:
                metrics.result("too_slow")
                response = CollectorResponse(status: 408, body: "Discarded=request_timeout")
            }
        }
        metrics.handleTime.record(ContinuousClock.now - started)
        return response
    }

    struct Body {
        var buffer: ByteBuffer
        var receivedSize: Int
        var compressed: Bool
    }

    func process<B>(_ submission: Submission<B>) async throws(Refusal) -> CollectorResponse {
        // Headers first: nothing is read for a request that cannot be valid.
        guard let contentType = submission.header("Content-Type") else { throw .malformed(.noContentType) }
        let (type, parameters) = HeaderValue.parse(contentType)
        guard ["multipart/form-data", "multipart/mixed"].contains(type.lowercased()) else { throw .malformed(.wrongContentType) }
        guard let boundary = parameters["boundary"], !boundary.isEmpty, boundary.utf8.count <= 200 else { throw .malformed(.noBoundary) }
        let chunked = submission.header("Transfer-Encoding")?.lowercased().contains("chunked") ?? false
        let declared = submission.header("Content-Length").flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        if !chunked {
            guard let declared, declared > 0 else { throw .malformed(.noContentLength) }
        }
        if let declared, declared > configuration.maxPayloadSize { throw .tooLarge }
        let gzip = submission.header("Content-Encoding")?.lowercased().trimmingCharacters(in: .whitespaces) == "gzip"

        guard let ticket = gate.enter(gzip: gzip) else { throw .busy }
        defer { ticket.close() }
        // A declared length is reserved up front: a client that announces more than fits waits
        // (503) instead of filling memory halfway.
        if let declared, !ticket.hold(declared) { throw .busy }
        let body = try await read(submission.body, gzip: gzip, ticket: ticket)
        guard body.receivedSize > 0 else { throw .malformed(.noContentLength) }

        // Parse in place: dumps stay slices of the one body buffer.
        let parts: [MultipartPart]
        do {
            parts = try body.buffer.withUnsafeReadableBytes { raw throws(MultipartError) in
                try MultipartParser(boundary: boundary, maxPartSize: configuration.maxPartSize, maxParts: configuration.maxParts).parse(raw)
            }
        } catch {
            throw .malformed(.invalidPayloadStructure)
        }
        var notes: [String] = []
        var annotations: [(String, JSONValue)] = []
        var annotationIndex: [String: Int] = [:]
        func setAnnotation(_ key: String, _ value: JSONValue) {
            if let at = annotationIndex[key] { annotations[at].1 = value } else { annotationIndex[key] = annotations.count; annotations.append((key, value)) }
        }
        var dumps: [(String, ByteBuffer)] = []
        var sawJSON = false, sawKV = false
        for part in parts {
            guard let name = part.name else { continue }
            let contentType = part.contentType ?? "text/plain"
            let slice = body.buffer.getSlice(at: body.buffer.readerIndex + part.range.lowerBound, length: part.range.count)!
            if contentType.hasPrefix("application/json") {
                guard let text = slice.getString(at: slice.readerIndex, length: slice.readableBytes),
                      let json = JSONValue.parse(Data(text.utf8)) else { throw .malformed(.invalidJSON) }
                guard case .object(let pairs) = json else { throw .malformed(.invalidJSONValue) }
                sawJSON = true
                for (k, v) in pairs { setAnnotation(k, v) }
            } else if contentType.hasPrefix("text/plain") && part.filename == nil {
                sawKV = true
                let bytes = slice.readableBytesView
                if let text = String(validating: bytes, as: UTF8.self) {
                    setAnnotation(name, .string(text))
                } else {
                    notes.append("\(name) could not be decoded as UTF-8")
                    setAnnotation(name, .string(String(decoding: bytes, as: UTF8.self)))
                }
            } else {
                let dumpName = Self.sanitizeDumpName(name)
                guard !dumpName.isEmpty, !["dump_names", "processed_crash", "raw_crash"].contains(dumpName) else {
                    throw .malformed(.invalidDumpName)
                }
                if contentType != "application/octet-stream" { notes.append("unknown content type: \(dumpName) \(contentType)") }
                if let at = dumps.firstIndex(where: { $0.0 == dumpName }) { dumps[at].1 = slice } else { dumps.append((dumpName, slice)) }
            }
        }
        if sawJSON && sawKV { notes.append("includes annotations in both json-encoded extra and formdata parts") }

        // Crashpad and Electron identify the product in the URL and in `prod`/`ver` fields.
        for key in ["product", "version", "guid"] {
            if let value = submission.query.first(where: { $0.0 == key })?.1, annotationIndex[key] == nil {
                setAnnotation(key, .string(value))
            }
        }
        let crashpadStyle = annotationIndex["ProductName"] == nil
            && (annotationIndex["prod"] != nil || annotationIndex["_productName"] != nil || submission.query.contains { $0.0 == "guid" })
        for (target, sources) in [("ProductName", ["_productName", "product", "prod"]), ("Version", ["_version", "version", "ver"])]
        where annotationIndex[target] == nil {
            if let source = sources.first(where: { annotationIndex[$0] != nil }), case .string(let v) = annotations[annotationIndex[source]!].1 {
                setAnnotation(target, .string(v))
                notes.append("\(target) from \(source)")
            }
        }
        guard !annotations.isEmpty else { throw .malformed(.noAnnotations) }

        // Trusted replay: a bearer token lets the sender keep the crash id.
        var crashID: String?
        if let uuidIndex = annotationIndex["uuid"] {
            guard let token = configuration.replayToken, let presented = Self.bearerToken(submission.header("Authorization")),
                  Self.constantTimeEquals(presented, token) else { throw .unauthorizedUUID }
            guard case .string(let u) = annotations[uuidIndex].1, CrashID.isValid(u) else { throw .malformed(.invalidUUID) }
            crashID = u
            annotations.remove(at: uuidIndex)
            annotationIndex = Dictionary(uniqueKeysWithValues: annotations.enumerated().map { ($1.0, $0) })
        }

        for field in configuration.removedFields where annotationIndex[field] != nil {
            annotations.remove(at: annotationIndex[field]!)
            annotationIndex = Dictionary(uniqueKeysWithValues: annotations.enumerated().map { ($1.0, $0) })
            notes.append("Removed \(field) from raw crash.")
        }

        let received = now()
        var flat: [String: String] = [:]
        for (k, v) in annotations { if case .string(let s) = v { flat[k] = s } else { flat[k] = v.serialized() } }
        let (decision, rule) = throttler.decide(flat)
        metrics.payloadSize(received: body.receivedSize, uncompressed: body.buffer.readableBytes, compressed: body.compressed)
        await recordPayload(body, outcome: decision)

        let dialect: CollectorConfiguration.ResponseDialect =
            configuration.responseDialect == .auto ? (crashpadStyle ? .crashpad : .socorro) : configuration.responseDialect
        switch decision {
        case .reject, .continue:
            metrics.result("rule_\(rule)")
            return CollectorResponse(status: 200, body: "Discarded=rule_\(rule)")
        case .fakeAccept:
            metrics.result("fakeaccept")
            let id = crashID ?? CrashID.make(throttleDigit: 0, date: received)
            return CollectorResponse(status: 200, body: Self.acceptedBody(id, dialect))
        case .accept, .deferred:
            break
        }
        let id = crashID ?? CrashID.make(throttleDigit: decision == .accept ? 0 : 1, date: received)

        // The raw crash: annotations plus what the collector knows.
        var checksums: [(String, JSONValue)] = []
        for (name, data) in dumps { checksums.append((name, .string(Self.sha256(data)))) }
        let metadataValue = JSONValue.object([
            ("collector_notes", .array(notes.map { .string($0) })),
            ("dump_checksums", .object(checksums)),
            ("payload", .string(sawJSON ? "json" : "multipart")),
            ("payload_compressed", .string(body.compressed ? "1" : "0")),
            ("payload_size", .int(Int64(body.receivedSize))),
            ("throttle_rule", .string(rule)),
            ("user_agent", .string(submission.header("User-Agent") ?? "")),
        ])
        var raw = annotations
        raw.removeAll { ["metadata", "submitted_timestamp", "version"].contains($0.0) }
        raw.append(("uuid", .string(id)))
        raw.append(("submitted_timestamp", .string(ISOTime.string(received))))
        raw.append(("version", .int(2)))
        raw.append(("metadata", metadataValue))
        let rawJSON = JSONValue.object(raw).sortedSerialization(pretty: false)
        let dumpNames = JSONValue.array(dumps.map { .string($0.0) }).serialized()

        // Save: dumps, dump names, raw crash last (its presence means the crash is complete).
        let saveStart = ContinuousClock.now
        var saved = false
        for attempt in 1...configuration.saveAttempts {
            do {
                // Dumps and dump names, then the raw crash once they are durable.
                var writes: [(String, Data)] = dumps.map { name, data in
                    (BlobKeys.dump(id, name: name), data.getData(at: data.readerIndex, length: data.readableBytes, byteTransferStrategy: .noCopy)!)
                }
                writes.append((BlobKeys.dumpNames(id), Data(dumpNames.utf8)))
                writes.append((BlobKeys.rawCrash(id, date: CrashID.date(of: id)), Data(rawJSON.utf8)))
                try await blobs.putAll(writes)
                saved = true
                break
            } catch {
                logger.error("saving a crash failed", metadata: ["crash_id": "\(id)", "attempt": "\(attempt)", "error": "\(error)"])
                if attempt < configuration.saveAttempts { try? await Task.sleep(for: configuration.saveRetryDelay) }
            }
        }
        metrics.saveTime.record(ContinuousClock.now - saveStart)
        guard saved else {
            metrics.result("save_failed")
            return CollectorResponse(status: 500, body: "")
        }
        if let enqueuer {
            let queueStart = ContinuousClock.now
            // Tried like the save (a database restart takes seconds); if it still fails, the crash
            // is stored and the daily republish job (`Republisher`) queues it.
            for attempt in 1...configuration.saveAttempts {
                do {
                    try await enqueuer.submit(QueueItem(crashID: id))
                    break
                } catch {
                    logger.error("queueing a saved crash failed", metadata: ["crash_id": "\(id)", "attempt": "\(attempt)", "error": "\(error)"])
                    if attempt == configuration.saveAttempts { metrics.result("queue_failed") }
                    else { try? await Task.sleep(for: configuration.saveRetryDelay) }
                }
            }
            metrics.queueTime.record(ContinuousClock.now - queueStart)
        }
        metrics.result(decision == .accept ? "accept" : "defer")
        logger.info("crash accepted", metadata: ["crash_id": "\(id)", "rule": "\(rule)", "size": "\(body.receivedSize)"])
        return CollectorResponse(status: 200, body: Self.acceptedBody(id, dialect))
    }

    /// Reads the body within the limits, decompressing gzip as it arrives.
    func read<B: AsyncSequence>(_ stream: B, gzip: Bool, ticket: SubmissionGate.Ticket? = nil) async throws(Refusal) -> Body where B.Element == ByteBuffer {
        let deadline = ContinuousClock.now + configuration.bodyTimeout
        var received = 0
        var collected = ByteBuffer()
        let decompressor = gzip ? CompressionAlgorithm.gzip().decompressor : nil
        if let decompressor {
            do { try decompressor.startStream() } catch { throw .malformed(.badGzip) }
        }
        defer { try? decompressor?.finishStream() }
        do {
            for try await var chunk in stream {
                received += chunk.readableBytes
                if received > configuration.maxPayloadSize { throw Refusal.tooLarge }
                // Slow clients: the HTTP idle timeout closes silent ones, this the ones that drip.
                if ContinuousClock.now > deadline { throw Refusal.tooSlow }
                if let decompressor {
                    try inflate(&chunk, with: decompressor, into: &collected)
                } else {
                    collected.writeBuffer(&chunk)
                }
                if let ticket, !ticket.hold(collected.readableBytes) { throw Refusal.busy }
            }
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            // The client went away or the connection broke mid-body.
            throw .malformed(.invalidPayloadStructure)
        }
        if gzip && received > 0 && collected.readableBytes == 0 { throw .malformed(.badGzip) }
        return Body(buffer: collected, receivedSize: received, compressed: gzip)
    }

    /// Decompresses one chunk of a gzip body into `collected`, within `maxDecompressedSize`.
    /// CompressNIO's looping `decompressStream(with:process:)` spins forever on bytes after the end
    /// of the gzip stream (zlib then consumes nothing and reports the end again), so the loop is
    /// ours: a step that consumes and produces nothing means trailing bytes, a malformed body.
    func inflate(_ chunk: inout ByteBuffer, with decompressor: NIODecompressor, into collected: inout ByteBuffer) throws(Refusal) {
        var window = ByteBufferAllocator().buffer(capacity: 64 << 10)
        func flush() throws(Refusal) {
            if collected.readableBytes + window.readableBytes > configuration.maxDecompressedSize { throw .tooLarge }
            collected.writeBuffer(&window)
            window.clear()
        }
        while chunk.readableBytes > 0 {
            let unread = chunk.readableBytes, written = window.writerIndex
            do {
                try chunk.decompressStream(to: &window, with: decompressor)
            } catch let e as CompressNIOError where e == .bufferOverflow {
                try flush()
                continue
            } catch let e as CompressNIOError where e == .inputBufferOverflow {
                break  // all of this chunk taken; the stream goes on in the next one
            } catch {
                throw .malformed(.badGzip)
            }
            if chunk.readableBytes == unread && window.writerIndex == written { throw .malformed(.badGzip) }
        }
        try flush()
    }

    func recordPayload(_ body: Body, outcome: ThrottleResult) async {
        guard let payloads else { return }
        do {
            try await payloads.submit(MetadataStore.PayloadRecord(size: body.receivedSize, uncompressedSize: body.buffer.readableBytes,
                                                                  compressed: body.compressed, outcome: "\(outcome)"))
        } catch {
            logger.warning("recording the payload size failed", metadata: ["error": "\(error)"])
        }
    }

    static func acceptedBody(_ id: String, _ dialect: CollectorConfiguration.ResponseDialect) -> String {
        dialect == .crashpad ? CrashID.hex16(id) : "CrashID=bp-\(id)\n"
    }

    /// `[A-Za-z0-9_]` only, at most 30 characters (Antenna's rule).
    static func sanitizeDumpName(_ name: String) -> String {
        String(name.unicodeScalars.filter { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }.prefix(30).map(Character.init))
    }

    static func bearerToken(_ header: String?) -> String? {
        guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }

    static func sha256(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { SHA256.hash(data: $0).map { String(format: "%02x", $0) }.joined() }
    }
}
