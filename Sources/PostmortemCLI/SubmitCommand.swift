import ArgumentParser
import AsyncHTTPClient
import CompressNIO
import Foundation
import JSONSupport
import NIOCore
import NIOHTTP1

/// A crash report to send: annotations (as key/value parts or one JSON part) and dumps.
struct CrashReport: Sendable {
    var annotations: [(String, JSONValue)]
    var dumps: [(String, ByteBuffer)]
    var jsonAnnotations: Bool
    var gzip: Bool

    /// The multipart body, as Breakpad/Socorro clients build it.
    func body(boundary: String) -> ByteBuffer {
        var out = ByteBuffer()
        func line(_ s: String) { out.writeString(s + "\r\n") }
        if jsonAnnotations {
            line("--\(boundary)")
            line("Content-Disposition: form-data; name=\"extra\"")
            line("Content-Type: application/json")
            line("")
            out.writeString(JSONValue.object(annotations).serialized())
            line("")
        } else {
            for (key, value) in annotations {
                line("--\(boundary)")
                line("Content-Disposition: form-data; name=\"\(Self.quoted(key))\"")
                line("Content-Type: text/plain; charset=utf-8")
                line("")
                if case .string(let s) = value { out.writeString(s) } else { out.writeString(value.serialized()) }
                line("")
            }
        }
        for (name, data) in dumps {
            line("--\(boundary)")
            line("Content-Disposition: form-data; name=\"\(Self.quoted(name))\"; filename=\"file.dump\"")
            line("Content-Type: application/octet-stream")
            line("")
            var d = data
            out.writeBuffer(&d)
            line("")
        }
        line("--\(boundary)--")
        return out
    }

    /// The request body under a fresh boundary, gzipped if the report asks for it.
    func encoded() throws -> EncodedReport {
        let boundary = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var body = body(boundary: boundary)
        if gzip { body = try body.compress(with: .gzip()) }
        return EncodedReport(boundary: boundary, body: body, gzipped: gzip, dumpBytes: dumps.reduce(0) { $0 + $1.1.readableBytes })
    }

    static func quoted(_ s: String) -> String { s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
}

/// A report ready to send: its multipart body (gzipped or not) and boundary.
struct EncodedReport: Sendable {
    let boundary: String
    let body: ByteBuffer
    let gzipped: Bool
    let dumpBytes: Int
}

/// Sends reports and measures the answers.
struct Submitter: Sendable {
    let url: String
    let chunked: Bool
    let userAgent: String
    let timeout: TimeAmount
    let client: HTTPClient

    /// A client with one connection per request in flight: crash reports come from many
    /// machines, each on its own connection (AsyncHTTPClient's default of 8 connections per
    /// host would queue the rest inside the submitter and count the wait as the collector's).
    static func makeClient(connections: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, connections)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    struct Outcome: Sendable {
        var status: Int
        var body: String
        var latency: Duration
    }

    func send(_ report: CrashReport) async throws -> Outcome {
        try await send(report.encoded())
    }

    func send(_ report: EncodedReport) async throws -> Outcome {
        let body = report.body, boundary = report.boundary
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
        request.headers.add(name: "User-Agent", value: userAgent)
        if report.gzipped { request.headers.add(name: "Content-Encoding", value: "gzip") }
        if chunked {
            // Unknown length: AsyncHTTPClient sends Transfer-Encoding: chunked.
            let chunks = stride(from: 0, to: body.readableBytes, by: 64 << 10).map { body.getSlice(at: body.readerIndex + $0, length: min(64 << 10, body.readableBytes - $0))! }
            request.body = .stream(chunks.async, length: .unknown)
        } else {
            request.body = .bytes(body)
        }
        let start = ContinuousClock.now
        let response = try await client.execute(request, timeout: timeout)
        let text = try await response.body.collect(upTo: 1 << 20)
        return Outcome(status: Int(response.status.code), body: String(buffer: text), latency: ContinuousClock.now - start)
    }
}

extension Array where Element: Sendable {
    /// An async sequence over the array's elements (streamed request bodies).
    var async: AsyncArraySequence<Self> { AsyncArraySequence(elements: self) }
}

struct AsyncArraySequence<Elements: Collection & Sendable>: AsyncSequence, Sendable where Elements.Element: Sendable {
    typealias Element = Elements.Element
    let elements: Elements
    struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: Elements.Iterator
        mutating func next() async -> Element? { iterator.next() }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(iterator: elements.makeIterator()) }
}

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Send crash reports to a collector: one dump, a directory of crashes, or generated load.",
        discussion: """
        One report:    postmortem submit URL DUMP --annotation ProductName=App --annotation Version=1.0
        A directory:   postmortem submit URL --crash-dir DIR   (crashstats-tools fetch-data layout: \
        raw_crash/<date>/<id>, dump_names/<id>, <dump name>/<id>)
        Load:          postmortem submit URL --load --count 30000 --rate 500 --concurrency 32
        URL is the submission URL, e.g. http://127.0.0.1:8000/submit.
        """)

    @Argument(help: "The collector's submission URL.") var url: String
    @Argument(help: "A minidump to send as upload_file_minidump.") var dump: String?

    @Option(name: .customLong("annotation"), help: "An annotation KEY=VALUE. Repeatable.") var annotations: [String] = []
    @Option(help: "A JSON object file of annotations.") var extra: String?
    @Flag(name: .customLong("json-annotations"), help: "Send the annotations as one JSON part (extra) instead of one part each.") var jsonAnnotations = false
    @Flag(help: "Gzip the whole body (Content-Encoding: gzip).") var gzip = false
    @Flag(help: "Send the body with Transfer-Encoding: chunked (no Content-Length).") var chunked = false
    @Option(name: .customLong("crash-dir"), help: "Send every crash in this directory.") var crashDirectory: String?

    @Flag(help: "Generate load instead of sending files.") var load = false
    @Option(help: "Load: reports to send (0 with --duration: until the time is up).") var count = 1000
    @Option(help: "Load: reports per second (0 = as fast as the concurrency allows).") var rate: Double = 0
    @Option(help: "Load: requests in flight at most.") var concurrency = 16
    @Option(help: "Load: stop after this many seconds.") var duration: Double?
    @Option(name: .customLong("size-mean"), help: "Load: mean dump size in bytes (log-normal, σ 0.75).") var sizeMean = 300_000
    @Option(name: .customLong("gzip-share"), help: "Load: fraction of reports sent gzipped.") var gzipShare: Double = 0.1
    @Option(name: .customLong("ids-file"), help: "Append every crash id the collector returned to this file.") var idsFile: String?
    @Option(name: .customLong("load-dump"), help: "Load: send this minidump in every report instead of generated bytes.") var loadDump: String?
    @Option(help: "Seconds to wait for each answer.") var timeout: Int64 = 60

    func validate() throws {
        if load && (dump != nil || crashDirectory != nil) { throw ValidationError("--load takes no dump or --crash-dir") }
        if !load && crashDirectory == nil && dump == nil { throw ValidationError("give a DUMP, --crash-dir or --load") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        for a in annotations where !a.contains("=") { throw ValidationError("--annotation \(a): expected KEY=VALUE") }
    }

    func run() async throws {
        let client = Submitter.makeClient(connections: concurrency)
        do {
            try await run(Submitter(url: url, chunked: chunked, userAgent: "postmortem-submit/1.0", timeout: .seconds(timeout), client: client))
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    func run(_ submitter: Submitter) async throws {
        let ids = try idsFile.map { try IDLog(path: $0) }
        if load {
            try await runLoad(submitter, ids: ids)
        } else if let crashDirectory {
            try await runDirectory(crashDirectory, submitter, ids: ids)
        } else if let dump {
            guard let data = FileManager.default.contents(atPath: dump) else { throw fail("cannot read \(dump)") }
            var pairs: [(String, JSONValue)] = []
            if let extra {
                guard let d = FileManager.default.contents(atPath: extra), case .object(let p)? = JSONValue.parse(d) else {
                    throw fail("\(extra) is not a JSON object")
                }
                pairs = p
            }
            for a in annotations {
                let kv = a.split(separator: "=", maxSplits: 1)
                pairs.append((String(kv[0]), .string(kv.count > 1 ? String(kv[1]) : "")))
            }
            let report = CrashReport(annotations: pairs, dumps: [("upload_file_minidump", ByteBuffer(data: data))],
                                     jsonAnnotations: jsonAnnotations, gzip: gzip)
            let outcome: Submitter.Outcome
            do { outcome = try await submitter.send(report) } catch { throw fail("\(url): \(error)") }
            FileHandleOutput.stdout(outcome.body.hasSuffix("\n") ? outcome.body : outcome.body + "\n")
            ids?.record(outcome)
            if !(200..<300).contains(outcome.status) { throw fail("HTTP \(outcome.status)") }
        }
    }

    func runDirectory(_ dir: String, _ submitter: Submitter, ids: IDLog?) async throws {
        let rawRoot = dir + "/raw_crash"
        guard let enumerator = FileManager.default.enumerator(atPath: rawRoot) else { throw fail("\(rawRoot) does not exist") }
        var crashes: [(String, String)] = []
        while let relative = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: rawRoot + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                crashes.append(((relative as NSString).lastPathComponent, rawRoot + "/" + relative))
            }
        }
        crashes.sort { $0.0 < $1.0 }
        var statuses: [Int: Int] = [:]
        var progress = Progress(total: crashes.count)
        for (id, path) in crashes {
            guard let data = FileManager.default.contents(atPath: path), case .object(var raw)? = JSONValue.parse(data) else {
                FileHandleOutput.stderr("\(id): raw crash is not a JSON object; skipped\n")
                continue
            }
            let metadata = raw.first { $0.0 == "metadata" }?.1
            raw.removeAll { ["metadata", "submitted_timestamp", "version", "uuid"].contains($0.0) }
            var dumps: [(String, ByteBuffer)] = []
            let names = FileManager.default.contents(atPath: "\(dir)/dump_names/\(id)").flatMap { JSONValue.parse($0) }
            if case .array(let list)? = names {
                for case .string(let name) in list {
                    guard let dump = FileManager.default.contents(atPath: "\(dir)/\(name)/\(id)") else { continue }
                    dumps.append((name == "dump" ? "upload_file_minidump" : name, ByteBuffer(data: dump)))
                }
            }
            let report = CrashReport(annotations: raw.sorted { $0.0 < $1.0 }, dumps: dumps,
                                     jsonAnnotations: jsonAnnotations || metadata?["payload"] == .string("json"),
                                     gzip: gzip || metadata?["payload_compressed"] == .string("1"))
            do {
                let outcome = try await submitter.send(report)
                statuses[outcome.status, default: 0] += 1
                ids?.record(outcome)
                FileHandleOutput.stdout("\(id)\t\(outcome.status)\t\(outcome.body.trimmingCharacters(in: .whitespacesAndNewlines))\n")
            } catch {
                statuses[0, default: 0] += 1
                FileHandleOutput.stderr("\(id): \(error)\n")
            }
            progress.advance(ok: statuses[200] ?? 0)
        }
        progress.finish()
        FileHandleOutput.stdout("sent \(crashes.count): " + statuses.sorted { $0.key < $1.key }.map { "\($0.key == 0 ? "failed" : String($0.key)) × \($0.value)" }.joined(separator: ", ") + "\n")
    }

    func runLoad(_ submitter: Submitter, ids: IDLog?) async throws {
        var fixedDump: ByteBuffer?
        if let loadDump {
            guard let d = FileManager.default.contents(atPath: loadDump) else { throw fail("cannot read \(loadDump)") }
            fixedDump = ByteBuffer(data: d)
        }
        let generator = try LoadGenerator(sizeMean: sizeMean, gzipShare: gzipShare, fixedDump: fixedDump)
        let pacer = Pacer(rate: rate, limit: duration == nil || count > 0 ? count : Int.max,
                          deadline: duration.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) })
        let stats = LoadStatistics()
        let started = ContinuousClock.now
        let reporter = Task {
            var progress = Progress(total: duration == nil ? count : 0)
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                let s = await stats.snapshot()
                progress.show(done: s.done, ok: s.ok, failed: s.failed, elapsed: ContinuousClock.now - started)
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var rng = SplitMix(seed: UInt64(worker + 1) &* 0x9E37_79B9_7F4A_7C15)
                    while let _ = await pacer.next() {
                        do {
                            let report = try generator.next(&rng)
                            let outcome = try await submitter.send(report)
                            ids?.record(outcome)
                            await stats.add(status: outcome.status, latency: outcome.latency, bytes: report.dumpBytes)
                        } catch {
                            await stats.add(status: 0, latency: .zero, bytes: 0)
                        }
                    }
                }
            }
        }
        reporter.cancel()
        let elapsed = ContinuousClock.now - started
        FileHandleOutput.stderr("\n")
        FileHandleOutput.stdout(await stats.summary(elapsed: elapsed))
    }
}

/// Crash ids the collector returned, one per line (for checks that nothing acknowledged was lost).
final class IDLog: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw fail("cannot write \(path)") }
        h.seekToEndOfFile()
        handle = h
    }

    func record(_ outcome: Submitter.Outcome) {
        guard outcome.status == 200 else { return }
        let body = outcome.body.trimmingCharacters(in: .whitespacesAndNewlines)
        let id = body.hasPrefix("CrashID=bp-") ? String(body.dropFirst("CrashID=bp-".count)) : body
        guard !id.isEmpty, !id.hasPrefix("Discarded=") else { return }
        lock.withLock { handle.write(Data((id + "\n").utf8)) } // FileHandle.write is unbuffered: the id is on disk when this returns
    }
}

/// Hands out send slots: at most `limit`, no faster than `rate` per second, until `deadline`.
actor Pacer {
    let interval: Duration?
    let limit: Int
    let deadline: ContinuousClock.Instant?
    var issued = 0
    var nextSlot = ContinuousClock.now

    init(rate: Double, limit: Int, deadline: ContinuousClock.Instant?) {
        interval = rate > 0 ? .nanoseconds(Int64(1e9 / rate)) : nil
        self.limit = limit
        self.deadline = deadline
    }

    func next() async -> Int? {
        guard issued < limit else { return nil }
        let now = ContinuousClock.now
        // A fixed schedule: a slot missed because this process woke late (a busy machine) is
        // sent at once, not dropped, so the offered rate is the one asked for. Slots more than a
        // second behind are dropped: every sender was busy that long, and the shortfall shows in
        // the achieved rate. Without a rate, the slot is now.
        let slot = interval == nil ? now : max(nextSlot, now - .seconds(1))
        if let deadline, slot >= deadline { return nil }
        issued += 1
        if let interval {
            nextSlot = slot + interval
            if slot > now { try? await Task.sleep(until: slot, clock: .continuous) }
        }
        return issued
    }
}

actor LoadStatistics {
    var statuses: [Int: Int] = [:]
    var latencies: [Double] = []
    var bytes = 0
    var done = 0

    func add(status: Int, latency: Duration, bytes: Int) {
        statuses[status, default: 0] += 1
        if status != 0 { latencies.append(Double(latency.components.seconds) + Double(latency.components.attoseconds) / 1e18) }
        self.bytes += bytes
        done += 1
    }

    func snapshot() -> (done: Int, ok: Int, failed: Int) {
        (done, statuses[200] ?? 0, done - (statuses[200] ?? 0))
    }

    func summary(elapsed: Duration) -> String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let sorted = latencies.sorted()
        func p(_ q: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            return String(format: "%.1f ms", sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] * 1000)
        }
        var out = String(format: "sent %d in %.1f s: %.1f reports/s, %.1f MB/s of dumps\n", done, seconds, Double(done) / seconds, Double(bytes) / seconds / 1e6)
        out += "status: " + statuses.sorted { $0.key < $1.key }.map { "\($0.key == 0 ? "no answer" : String($0.key)) × \($0.value)" }.joined(separator: ", ") + "\n"
        out += "latency: p50 \(p(0.5)), p90 \(p(0.9)), p99 \(p(0.99)), max \(sorted.last.map { String(format: "%.1f ms", $0 * 1000) } ?? "-")\n"
        return out
    }
}

/// Generated reports: Socorro-style annotations and a dump of log-normal size (mean `sizeMean`)
/// whose bytes compress about as well as real minidumps (half zeros, half noise).
///
/// Gzipped reports come from a set compressed once at start: real clients compress on their own
/// machines, and compressing every report here took a third of the generator's CPU — on a shared
/// 2-core machine that is CPU the collector under test did not get. The collector still inflates
/// every one of them.
struct LoadGenerator: Sendable {
    let sizeMean: Int
    let gzipShare: Double
    let pool: ByteBuffer
    let fixedDump: ByteBuffer?
    private(set) var gzipped: [EncodedReport] = []

    static let gzippedVariants = 64

    init(sizeMean: Int, gzipShare: Double, fixedDump: ByteBuffer? = nil) throws {
        self.sizeMean = max(1, sizeMean)
        self.gzipShare = gzipShare
        self.fixedDump = fixedDump
        var rng = SplitMix(seed: 42)
        var bytes = [UInt8](repeating: 0, count: 8 << 20)
        for i in stride(from: 0, to: bytes.count, by: 8) where (i / 4096) % 2 == 1 {
            withUnsafeBytes(of: rng.next()) { w in for k in 0..<8 { bytes[i + k] = w[k] } }
        }
        pool = ByteBuffer(bytes: bytes)
        if gzipShare > 0 {
            var variants = SplitMix(seed: 7)
            gzipped = try (0..<Self.gzippedVariants).map { _ in
                var report = report(&variants)
                report.gzip = true
                return try report.encoded()
            }
        }
    }

    /// The next report to send: a gzipped one from the precompressed set with probability
    /// `gzipShare`, otherwise a fresh uncompressed one.
    func next(_ rng: inout SplitMix) throws -> EncodedReport {
        if !gzipped.isEmpty, rng.unit() < gzipShare {
            return gzipped[Int(rng.next() % UInt64(gzipped.count))]
        }
        return try report(&rng).encoded()
    }

    func report(_ rng: inout SplitMix) -> CrashReport {
        // Log-normal with σ = 0.75, scaled so the mean is `sizeMean`.
        let u1 = max(1e-12, rng.unit()), u2 = rng.unit()
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        let sigma = 0.75
        let size = Int(Double(sizeMean) * exp(sigma * normal - sigma * sigma / 2)).clamped(to: 1_000...(pool.readableBytes - 1))
        let offset = Int(rng.next() % UInt64(pool.readableBytes - size))
        let dump = fixedDump ?? pool.getSlice(at: offset, length: size)!
        let annotations: [(String, JSONValue)] = [
            ("ProductName", .string("LoadTest")), ("Version", .string("1.\(rng.next() % 10).0")), ("ReleaseChannel", .string("release")),
            ("BuildID", .string("20261129000000")), ("CrashTime", .string(String(Int(Date().timeIntervalSince1970)))),
        ]
        // Whether it is gzipped is `next`'s choice.
        return CrashReport(annotations: annotations, dumps: [("upload_file_minidump", dump)], jsonAnnotations: rng.unit() < 0.5, gzip: false)
    }
}

struct SplitMix: Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

extension Comparable {
    func clamped(to range: ClosedRange<Self>) -> Self { min(max(self, range.lowerBound), range.upperBound) }
}

/// A one-line progress display on standard error (redrawn in place on a terminal).
struct Progress {
    let total: Int
    let terminal = isatty(2) != 0
    var lastPrint = ContinuousClock.now
    var done = 0

    init(total: Int) { self.total = total }

    mutating func advance(ok: Int) {
        done += 1
        show(done: done, ok: ok, failed: done - ok, elapsed: nil)
    }

    mutating func show(done: Int, ok: Int, failed: Int, elapsed: Duration?) {
        let now = ContinuousClock.now
        guard terminal || now - lastPrint >= .seconds(5) || done == total else { return }
        lastPrint = now
        let of = total > 0 ? "/\(total)" : ""
        let rate = elapsed.map { e -> String in
            let s = Double(e.components.seconds) + Double(e.components.attoseconds) / 1e18
            return s > 0 ? String(format: ", %.0f/s", Double(done) / s) : ""
        } ?? ""
        FileHandleOutput.stderr((terminal ? "\r" : "") + "sent \(done)\(of): \(ok) accepted, \(failed) other\(rate)" + (terminal ? "   " : "\n"))
    }

    func finish() { if terminal { FileHandleOutput.stderr("\n") } }
}
