import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// Requests and crash reports from clients nobody controls, sent to a running `postmortem serve`
/// over raw sockets. After each: the documented error, `/__lbheartbeat__` still answers, and a
/// normal crash submitted right after is accepted — and, at the end, every one of them processed.
@Suite(.serialized) struct HostileRequestTests {
    let e2e = ProcessorEndToEndTests()

    struct Case {
        let name: String
        let request: Data
        let status: Int
        /// Text the response body contains (nil: the HTTP layer's own bare answer).
        let body: String?
    }

    static func get(_ target: String) -> Data {
        Data("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    }

    static func post(_ target: String, headers: [String] = [], body: Data) -> Data {
        var head = "POST \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for h in headers { head += h + "\r\n" }
        if !headers.contains(where: { $0.lowercased().hasPrefix("content-length") || $0.lowercased().hasPrefix("transfer-encoding") }) {
            head += "Content-Length: \(body.count)\r\n"
        }
        return Data((head + "\r\n").utf8) + body
    }

    /// A multipart/form-data body: text annotations and (optionally) a minidump.
    static func multipart(_ annotations: [(String, String)], dump: Data?, boundary: String = "hostile-boundary") -> Data {
        var body = Data()
        for (name, value) in annotations {
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n".utf8) + Data(value.utf8) + Data("\r\n".utf8)
        }
        if let dump {
            body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"x.dmp\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
            body += dump + Data("\r\n".utf8)
        }
        return body + Data("--\(boundary)--\r\n".utf8)
    }

    static let crashID = "de1bb258-cbbf-4589-a673-34f800160918"

    static var requestCases: [Case] {
        let multipartType = "Content-Type: multipart/form-data; boundary=hostile-boundary"
        let annotations = multipart([("ProductName", "Firefox"), ("Version", "1.0")], dump: nil)
        var cases = [
            Case(name: "histogram interval 1e20s", request: get("/api/SuperSearch/?_histogram.date=&_histogram_interval.date=1e20s"),
                 status: 400, body: "Histogram interval '1e20s' is not valid."),
            Case(name: "histogram interval inf", request: get("/api/SuperSearch/?_histogram.date=&_histogram_interval.date=infs"),
                 status: 400, body: "Histogram interval 'infs' is not valid."),
            Case(name: "histogram interval negative", request: get("/api/SuperSearch/?_histogram.date=&_histogram_interval.date=-1h"),
                 status: 400, body: "Histogram interval '-1h' is not valid."),
            Case(name: "histogram interval zero", request: get("/api/SuperSearch/?_histogram.uptime=&_histogram_interval.uptime=0"),
                 status: 400, body: "Histogram interval '0' is not a positive integer."),
            Case(name: "histogram interval beyond Int64", request: get("/api/SuperSearch/?_histogram.uptime=&_histogram_interval.uptime=99999999999999999999"),
                 status: 400, body: "Histogram interval '99999999999999999999' is not a positive integer."),
            Case(name: "raw dump anonymously", request: get("/api/RawCrash/?crash_id=\(crashID)&format=raw&name=../raw_crash"),
                 status: 403, body: "Binary response requires permissions"),
            Case(name: "processed crash of a malformed id", request: get("/api/ProcessedCrash/?crash_id=../../etc/passwd"),
                 status: 400, body: "is not valid"),
            Case(name: "unknown model", request: get("/api/..%2F..%2Fetc%2Fpasswd/"), status: 404, body: "No service called"),
            Case(name: "missing processed crash page beyond Int", request: get("/api/MissingProcessedCrash/?page=99999999999999999999999"),
                 status: 400, body: "invalid page number"),
            Case(name: "symbolication: not JSON", request: post("/symbolicate/v5", headers: ["Content-Type: application/json"], body: Data("{\"jobs\": [".utf8)),
                 status: 400, body: #"{"title": "Payload is not valid JSON"}"#),
            Case(name: "symbolication: address beyond UInt64",
                 request: post("/symbolicate/v5", headers: ["Content-Type: application/json"],
                               body: Data(#"{"memoryMap": [["a.pdb", "0123456789ABCDEF0123456789ABCDEF0"]], "stacks": [[[0, 99999999999999999999999]]]}"#.utf8)),
                 status: 400, body: "stack 0 frame 0 has an invalid module_offset"),
            Case(name: "symbolication: module index beyond Int",
                 request: post("/symbolicate/v5", headers: ["Content-Type: application/json"],
                               body: Data(#"{"memoryMap": [["a.pdb", "0123456789ABCDEF0123456789ABCDEF0"]], "stacks": [[[9223372036854775807, 1]]]}"#.utf8)),
                 status: 400, body: "stack 0 frame 0 has a module_index that isn't in modules"),
            Case(name: "submit: no boundary", request: post("/submit", headers: ["Content-Type: multipart/form-data"], body: annotations),
                 status: 400, body: "Discarded=malformed_no_boundary"),
            Case(name: "submit: gzip that is not gzip", request: post("/submit", headers: [multipartType, "Content-Encoding: gzip"], body: Data(repeating: 0x41, count: 4096)),
                 status: 400, body: "Discarded=malformed_bad_gzip"),
            Case(name: "submit: Content-Length far beyond the limit", request: post("/submit", headers: [multipartType, "Content-Length: 99999999999999"], body: Data()),
                 status: 413, body: "Discarded=payload_too_large"),
            Case(name: "submit: negative Content-Length", request: post("/submit", headers: [multipartType, "Content-Length: -5"], body: Data()),
                 status: 400, body: nil),
            Case(name: "submit: parts that never end", request: post("/submit", headers: [multipartType], body: Data("--hostile-boundary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxxxx".utf8)),
                 status: 400, body: "Discarded=malformed_"),
            Case(name: "submit: JSON annotations that are a list",
                 request: post("/submit", headers: [multipartType],
                               body: Data("--hostile-boundary\r\nContent-Disposition: form-data; name=\"extra\"\r\nContent-Type: application/json\r\n\r\n[1, 2]\r\n--hostile-boundary--\r\n".utf8)),
                 status: 400, body: "Discarded=malformed_invalid_json_value"),
            Case(name: "submit: a gzip bomb",
                 request: post("/submit", headers: [multipartType, "Content-Encoding: gzip"], body: try! gzipBomb()),
                 status: 413, body: "Discarded=payload_too_large"),
        ]
        cases.append(Case(name: "URL of 60 KB", request: get("/api/SuperSearch/?product=" + String(repeating: "A", count: 60_000)), status: 200, body: "\"total\""))
        return cases
    }

    /// 200 MiB of zeros gzipped (about 200 KB): over the decompressed-size limit.
    static func gzipBomb() throws -> Data {
        let dir = TestData.temporaryDirectory("bomb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try runProcess("/bin/sh", ["-c", "head -c 209715200 /dev/zero | gzip -1 > \(dir)/bomb.gz"])
        guard result.status == 0, let data = FileManager.default.contents(atPath: dir + "/bomb.gz") else {
            throw TestServices.Unavailable(description: "gzip failed")
        }
        return data
    }

    func port(_ server: ProcessorEndToEndTests.Server) throws -> Int {
        try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
    }

    func heartbeat(_ port: Int) async throws -> Int? {
        RawHTTPConnection.status(of: try await RawHTTPConnection.exchange(port: port, Self.get("/__lbheartbeat__"), timeout: .seconds(10)))
    }

    @Test func hostileRequestsGetTheirDocumentedErrorsAndServeKeepsProcessing() async throws {
        let server = try e2e.start(symbols: nil)
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try port(server)
        let dump = try TestData.path("minidumps/linux-mini.dmp")
        var accepted: [String] = []
        for c in Self.requestCases {
            let response = try await RawHTTPConnection.exchange(port: port, c.request)
            #expect(RawHTTPConnection.status(of: response) == c.status, "\(c.name): \(String(decoding: response.prefix(300), as: UTF8.self))")
            if let body = c.body {
                #expect(RawHTTPConnection.body(of: response).contains(body), "\(c.name): \(RawHTTPConnection.body(of: response).prefix(300))")
            }
            #expect(try await heartbeat(port) == 200, "\(c.name): /__lbheartbeat__ after it")
            let id = try await offPool { try e2e.submit(server, dump: dump) }
            #expect(id.count == 36, "\(c.name): a normal crash after it")
            accepted.append(id)
        }
        for id in accepted { _ = try await e2e.processed(server, id) }
    }

    /// The processor's hostile annotation values, in real crash reports: each is processed, with
    /// a processor note for what could not be used.
    @Test func hostileAnnotationsAreProcessedWithNotes() async throws {
        let server = try e2e.start(symbols: nil)
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try port(server)
        let dump = try Data(contentsOf: URL(fileURLWithPath: try TestData.path("minidumps/linux-mini.dmp")))
        let cases: [([(String, String)], String)] = [
            ([("UptimeTS", "1e300")], "UptimeTS '1e300' is not a number of seconds"),
            ([("UptimeTS", "nan")], "UptimeTS 'nan' is not a number of seconds"),
            ([("CrashTime", "99999999999999"), ("InstallTime", "-9223372036854775808")], "is out of range"),
            ([("StartupTime", "-9223372036854775808"), ("CrashTime", "9223372036854775807")], "DatesAndTimes"),
            ([("BuildID", String(repeating: "9", count: 400)), ("ReleaseChannel", "beta\u{0}nightly")], ""),
            ([("Version", String(repeating: "1.", count: 5000)), ("AvailablePhysicalMemory", "1e400"), ("TotalVirtualMemory", "-1")], ""),
            ([("TelemetryEnvironment", "{\"build\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["), ("MozCrashReason", String(repeating: "é\u{0}", count: 10_000))], ""),
        ]
        for (annotations, note) in cases {
            let body = Self.multipart([("ProductName", "Firefox")] + annotations + (annotations.contains { $0.0 == "Version" } ? [] : [("Version", "120.0")]), dump: dump)
            let response = try await RawHTTPConnection.exchange(port: port, Self.post("/submit", headers: ["Content-Type: multipart/form-data; boundary=hostile-boundary"], body: body))
            let text = RawHTTPConnection.body(of: response)
            #expect(RawHTTPConnection.status(of: response) == 200 && text.hasPrefix("CrashID=bp-"), "\(annotations.map(\.0)): \(text)")
            let id = String(text.dropFirst("CrashID=bp-".count).prefix(36))
            let processed = try await e2e.processed(server, id)
            let notes = (processed["processor_notes"]?.stringValue ?? "")
            #expect(note.isEmpty || notes.contains(note), "\(annotations.map(\.0)): notes \(notes)")
            #expect(processed["signature"]?.stringValue?.isEmpty == false, "\(annotations.map(\.0)): processed with a signature")
            #expect(try await heartbeat(port) == 200)
        }
    }

    /// Slowloris: 200 connections that send half a body and stop. They hold bounded memory, a
    /// normal submission still succeeds beside them, and the idle timeout closes them.
    @Test func slowClientsHoldBoundedMemoryAndAreClosed() async throws {
        let server = try e2e.start(symbols: nil, extraEnvironment: ["POSTMORTEM_HTTP_IDLE_TIMEOUT": "5"])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try port(server)
        let before = try #require(Self.residentMiB(server.process.child.pid))
        let bodySize = 1 << 20
        var slow: [RawHTTPConnection] = []
        for _ in 0..<200 {
            let c = try RawHTTPConnection(port: port)
            c.send("POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: \(bodySize)\r\n\r\n")
            c.send(Data("--b\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"x\"\r\n\r\n".utf8) + Data(repeating: 0x4d, count: bodySize / 2))
            slow.append(c)
        }
        try await Task.sleep(for: .seconds(1))
        let during = try #require(Self.residentMiB(server.process.child.pid))
        // 200 half bodies are 100 MiB; the bound allows for them once, not for copies of them.
        #expect(during - before < 200, "RSS grew from \(before) MiB to \(during) MiB")
        print("slow clients: RSS \(before) MiB before, \(during) MiB with 200 half bodies of \(bodySize / 2) bytes")
        let dump = try TestData.path("minidumps/linux-mini.dmp")
        let id = try await offPool { try e2e.submit(server, dump: dump) }
        #expect(id.count == 36, "a normal submission beside 200 slow clients")
        // The idle timeout (5 s here) closes every one of them.
        let connections = slow
        let closed = try await offPool { connections.filter { $0.isClosedByServer(timeout: .seconds(20)) }.count }
        #expect(closed == 200)
        #expect(try await heartbeat(port) == 200)
        _ = try await e2e.processed(server, id)
    }

    /// `/metrics` can be kept to an address range; the other operations endpoints stay open.
    @Test func metricsAreServedOnlyToTheAllowedNetworks() async throws {
        for (allow, expected) in [("10.0.0.0/8", 403), ("10.0.0.0/8,127.0.0.0/8", 200)] {
            let server = try e2e.start(symbols: nil, extraEnvironment: ["POSTMORTEM_HTTP_METRICS_ALLOW": allow])
            defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
            let response = try await RawHTTPConnection.exchange(port: try port(server), Self.get("/metrics"), timeout: .seconds(10))
            #expect(RawHTTPConnection.status(of: response) == expected, "\(allow)")
            if expected == 200 { #expect(RawHTTPConnection.body(of: response).contains("# TYPE")) }
            #expect(try await heartbeat(try port(server)) == 200)
        }
    }

    static func residentMiB(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }
}
