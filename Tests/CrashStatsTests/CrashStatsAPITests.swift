import CrashModel
import CrashStats
import Foundation
import JSONSupport
import Signatures
import Storage
import Testing
import TestSupport

/// The API over real storage (files + SQLite, S3 + PostgreSQL): models, errors, permissions,
/// redaction and Super Search.
@Suite struct CrashStatsAPITests {
    static let secret = "SECRET-user-typed-text"
    static let day: Int64 = 86_400_000_000

    struct World {
        let f: StorageFixture
        let api: CrashStatsAPI
        let ids: [String]
        let piiToken: String
        let plainToken: String
        let now: Int64
    }

    /// Four crashes over the last days; the first carries a value in every protected field.
    static func world(_ backend: Backend) async throws -> World {
        let f = try await StorageFixture.make(backend)
        let queue = WorkQueue(database: f.database)
        // The time limit has tests of its own; here a query must not run out of time on a
        // fully loaded CI machine (the whole suite runs at once on two cores).
        let api = try CrashStatsAPI(blobs: f.blobs, metadata: f.metadata, queue: queue,
                                    signatures: SignatureGenerator(lists: try SignatureLists.bundled()), queryTimeout: .seconds(120))
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let specs: [(String, String, String, Int64, String, Int64)] = [
            // id, signature, version, uptime, os, age (days)
            ("de1bb258-cbbf-4589-a673-34f800160918", "OOM | small", "120.0", 30, "Windows NT", 1),
            ("de1bb258-cbbf-4589-a673-34f800160919", "mozilla::dom::Foo::Bar", "121.0b3", 300, "Linux", 2),
            ("de1bb258-cbbf-4589-a673-34f800160920", "mozilla::dom::Foo::Baz", "121.0b4", 3000, "Linux", 3),
            ("de1bb258-cbbf-4589-a673-34f800160921", "js::GC | Collect", "120.0", 5, "Mac OS X", 30),
        ]
        for (n, (id, signature, version, uptime, os, age)) in specs.enumerated() {
            let date = now - age * day + Int64(n)
            var processed: [(String, JSONValue)] = [
                ("uuid", .string(id)), ("crash_id", .string(id)), ("signature", .string(signature)), ("product", .string("Firefox")),
                ("version", .string(version)), ("os_name", .string(os)), ("uptime", .int(uptime)), ("build", .string("2024010100000\(n)")),
                ("date_processed", .string(ISOTime.string(Double(date) / 1_000_000))), ("not_in_the_schema", .string("dropped")),
                ("json_dump", .object([("threads", .array([.object([("frames", .array([.object([
                    ("function", .string("main")), ("registers", .object([("rip", .string("0x\(secret)"))]))])]))])]))])),
            ]
            if n == 0 {
                for field in ["url", "user_comments", "breadcrumbs", "remote_type", "moz_crash_reason_raw", "signature_debug", "collector_metadata",
                              "phc_alloc_stack", "mac_boot_args", "java_stack_trace_raw", "soft_errors"] {
                    processed.append((field, .string(secret + "-" + field)))
                }
                processed.append(("java_exception", .object([("exception", .object([("values", .array([.object([("stacktrace", .object([
                    ("type", .string("IllegalStateException")), ("value", .string(secret + "-exception"))]))])]))]))])))
            }
            let document = JSONValue.object(processed)
            try await f.blobs.put(BlobKeys.processedCrash(id), Data(document.serialized().utf8))
            var raw: [(String, JSONValue)] = [("ProductName", .string("Firefox")), ("Version", .string(version)), ("uuid", .string(id))]
            if n == 0 { raw += [("URL", .string(secret + "-URL")), ("Comments", .string(secret + "-Comments")), ("SomethingNew", .string(secret + "-unknown")),
                                ("metadata", .object([("dump_checksums", .object([("upload_file_minidump", .string("abc"))]))]))] }
            try await f.blobs.put(BlobKeys.rawCrash(id, date: "20" + id.suffix(6)), Data(JSONValue.object(raw).serialized().utf8))
            try await f.blobs.put(BlobKeys.dump(id, name: "upload_file_minidump"), Data("MDMP-\(id)".utf8))
            try await f.blobs.put(BlobKeys.dumpNames(id), Data(#"["upload_file_minidump"]"#.utf8))
            var searchable = processed.filter { !["json_dump"].contains($0.0) }
            searchable.append(("address", .string("0x\(n)")))
            if n < 2 { searchable.append(("startup_crash", .bool(n == 0))) }
            searchable.append(("crashing_thread", .int(Int64(n))))
            try await f.metadata.index(CrashIndexRow(crashID: id, dateProcessed: date, product: "Firefox", version: version, platform: os,
                                                     signature: signature, buildID: "2024010100000\(n)", uptime: uptime, document: .object(searchable)))
        }
        let pii = try await f.metadata.createAccount(email: "pii@example.com")
        for p in ["view_pii", "view_rawdump", "reprocess_crashes"] { try await f.metadata.grant(p, to: pii.id) }
        let (piiToken, _) = try await f.metadata.createToken(accountID: pii.id, permissions: ["view_pii", "view_rawdump", "reprocess_crashes"])
        let plain = try await f.metadata.createAccount(email: "plain@example.com")
        let (plainToken, _) = try await f.metadata.createToken(accountID: plain.id, permissions: [])
        return World(f: f, api: api, ids: specs.map(\.0), piiToken: piiToken, plainToken: plainToken, now: now)
    }

    static func get(_ w: World, _ endpoint: String, _ query: [(String, String)] = [], token: String? = nil) async -> (Int, JSONValue?, APIResponse) {
        let r = await w.api.handle(APIRequest(method: "GET", endpoint: endpoint, query: query, headers: token.map { ["auth-token": $0] } ?? [:]))
        return (r.status, JSONValue.parse(r.body), r)
    }

    @Test(arguments: Backend.allCases)
    func errorsAndTokens(_ backend: Backend) async throws {
        let w = try await Self.world(backend)
        defer { Task { await w.f.close() } }
        #expect(await Self.get(w, "Nope").1 == .object([("error", .string("No service called 'Nope'"))]))
        #expect(await Self.get(w, "Nope").0 == 404)
        let bad = await Self.get(w, "ProcessedCrash", [("crash_id", w.ids[0])], token: String(repeating: "0", count: 32))
        #expect(bad.0 == 403 && bad.1?["error"] == .string("API Token not matched"))
        let r = await w.api.handle(APIRequest(method: "POST", endpoint: "ProcessedCrash"))
        #expect(r.status == 405 && JSONValue.parse(r.body)?["error"] == .string("Method not allowed"))
        let missing = await Self.get(w, "ProcessedCrash")
        #expect(missing.0 == 400 && missing.1?["errors"]?["crash_id"] == .array([.string("This field is required.")]))
        let invalid = await Self.get(w, "ProcessedCrash", [("crash_id", "xyz")])
        #expect(invalid.1?["error"] == .string("Bad request: BadArgumentError: Crash id 'xyz' is not valid."))
        let notFound = await Self.get(w, "ProcessedCrash", [("crash_id", "de1bb258-cbbf-4589-a673-34f800169999")])
        #expect(notFound.0 == 404 && notFound.1?["error"] == .string("Not found: CrashIDNotFound de1bb258-cbbf-4589-a673-34f800169999"))
        let ok = await Self.get(w, "ProcessedCrash", [("crash_id", "bp-" + w.ids[0]), ("format", "meta")], token: w.plainToken + "-label")
        #expect(ok.0 == 200 && ok.2.headers.contains { $0 == ("Cache-Control", "private, max-age=0") })
        #expect(await Self.get(w, "NoOp", [("product", "x")]).1 == .object([("hits", .array([])), ("total", .int(0))]))
    }

    @Test func rateLimitsPerClient() async throws {
        let w = try await Self.world(.embedded)
        defer { Task { await w.f.close() } }
        let api = try CrashStatsAPI(blobs: w.f.blobs, metadata: w.f.metadata, queue: WorkQueue(database: w.f.database),
                                    signatures: SignatureGenerator(lists: try SignatureLists.bundled()), anonymousPerMinute: 2, authenticatedPerMinute: 3,
                                    rateLimitClock: { Date(timeIntervalSince1970: 1_800_000_000) }) // one minute however slow the run
        func status(_ client: String, token: String? = nil) async -> (Int, String) {
            let r = await api.handle(APIRequest(method: "GET", endpoint: "NoOp", query: [("product", "x")], headers: token.map { ["auth-token": $0] } ?? [:],
                                                client: client))
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }
        let first = await status("10.0.0.1"), second = await status("10.0.0.1"), third = await status("10.0.0.1")
        #expect(first.0 == 200 && second.0 == 200)
        #expect(third.0 == 429 && third.1 == "Too Many Requests")
        #expect(await status("10.0.0.2").0 == 200) // another client has its own budget
        for _ in 0..<3 { #expect(await status("10.0.0.1", token: w.plainToken).0 == 200) } // tokens count per account
        #expect(await status("10.0.0.3", token: w.plainToken).0 == 429)
        // Guessed tokens are anonymous requests of their address: 403 within its budget, then 429.
        #expect(await status("10.0.0.4", token: "guess-1").1 == #"{"error": "API Token not matched"}"#)
        #expect(await status("10.0.0.4", token: "guess-2").0 == 403)
        #expect(await status("10.0.0.4", token: "guess-3").0 == 429)
        #expect(await status("10.0.0.4").0 == 429)
    }

    @Test(arguments: Backend.allCases)
    func documentsAreRedactedWithoutViewPII(_ backend: Backend) async throws {
        let w = try await Self.world(backend)
        defer { Task { await w.f.close() } }
        let anonymous = try #require(await Self.get(w, "ProcessedCrash", [("crash_id", w.ids[0])]).1)
        #expect(anonymous["signature"] == .string("OOM | small"))
        #expect(anonymous["url"] == nil && anonymous["user_comments"] == nil && anonymous["not_in_the_schema"] == nil)
        let frame = anonymous["json_dump"]?["threads"]?.arrayValue?.first?["frames"]?.arrayValue?.first
        #expect(frame?["function"] == .string("main") && frame?["registers"] == nil)
        #expect(anonymous["java_exception"]?["exception"]?["values"]?.arrayValue?.first?["stacktrace"]?["type"] == .string("IllegalStateException"))
        #expect(anonymous["java_exception"]?["exception"]?["values"]?.arrayValue?.first?["stacktrace"]?["value"] == nil)
        let full = try #require(await Self.get(w, "ProcessedCrash", [("crash_id", w.ids[0])], token: w.piiToken).1)
        #expect(full["url"] == .string(Self.secret + "-url") && full["not_in_the_schema"] != nil)

        let raw = try #require(await Self.get(w, "RawCrash", [("crash_id", w.ids[0])]).1)
        #expect(raw["ProductName"] == .string("Firefox") && raw["URL"] == nil && raw["SomethingNew"] == nil && raw["metadata"] == nil)
        #expect(try #require(await Self.get(w, "RawCrash", [("crash_id", w.ids[0])], token: w.piiToken).1)["URL"] != nil)

        let denied = await Self.get(w, "RawCrash", [("crash_id", w.ids[0]), ("format", "raw")], token: w.plainToken)
        #expect(denied.0 == 403 && denied.1?["error"] == .string("Binary response requires permissions: View Raw Dumps"))
        for name in ["dump", "upload_file_minidump", ""] {
            let dump = await Self.get(w, "RawCrash", [("crash_id", w.ids[0]), ("format", "raw"), ("name", name)], token: w.piiToken)
            #expect(dump.0 == 200 && String(decoding: dump.2.body, as: UTF8.self) == "MDMP-\(w.ids[0])")
            #expect(dump.2.headers.contains { $0 == ("Content-Disposition", "attachment; filename=\"\(w.ids[0]).dmp\"") })
        }
        let traversal = await Self.get(w, "RawCrash", [("crash_id", w.ids[0]), ("format", "raw"), ("name", "../raw_crash")], token: w.piiToken)
        #expect(traversal.0 == 400)
        // Only the crash's own dumps, by its dump_names: other blob kinds and absent dumps are not found.
        for name in ["Processed_crash", "memory_report", "upload_file_minidump_browser", "RAW_CRASH"] {
            let r = await Self.get(w, "RawCrash", [("crash_id", w.ids[0]), ("format", "raw"), ("name", name)], token: w.piiToken)
            #expect(r.0 == 404 && r.1?["error"] == .string("Not found: CrashIDNotFound \(w.ids[0])"), "\(name)")
        }
        for name in ["raw_crash/20240101", "raw_crash", "processed_crash", "dump_names", "a/../b"] {
            let r = await Self.get(w, "RawCrash", [("crash_id", w.ids[0]), ("format", "raw"), ("name", name)], token: w.piiToken)
            #expect(r.0 == 400 && r.1?["error"] == .string("Bad request: BadArgumentError: Dump name '\(name)' is not valid."), "\(name)")
        }
    }

    @Test(arguments: Backend.allCases)
    func reprocessingNeedsThePermissionAndValidatesEverything(_ backend: Backend) async throws {
        let w = try await Self.world(backend)
        defer { Task { await w.f.close() } }
        func post(_ ids: [String], token: String?) async -> (Int, JSONValue?) {
            let r = await w.api.handle(APIRequest(method: "POST", endpoint: "Reprocessing", form: ids.map { ("crash_ids", $0) },
                                                  headers: token.map { ["auth-token": $0] } ?? [:]))
            return (r.status, JSONValue.parse(r.body))
        }
        #expect(await post([w.ids[0]], token: w.plainToken).1?["error"] == .string("Use of this endpoint requires the 'Reprocess Crashes' permission"))
        #expect(await post([w.ids[0], "bad"], token: w.piiToken).1?["error"] == .string("Bad request: BadArgumentError: Crash id 'bad' is not valid."))
        #expect(await post([w.ids[0] + ":nope"], token: w.piiToken).1?["error"] == .string("Bad request: BadArgumentError: Ruleset 'nope' is not valid."))
        let ok = await post([w.ids[0], w.ids[1] + ":regenerate_signature"], token: w.piiToken)
        #expect(ok.0 == 200 && ok.1 == .null)
        let queue = WorkQueue(database: w.f.database)
        let leased = try await queue.lease(limit: 10)
        #expect(Set(leased.map(\.item.crashID)) == Set([w.ids[0], w.ids[1]]))
        #expect(leased.contains { $0.item.ruleset == "regenerate_signature" })
    }

    @Test(arguments: Backend.allCases)
    func superSearchOperatorsAndMetaParameters(_ backend: Backend) async throws {
        let w = try await Self.world(backend)
        defer { Task { await w.f.close() } }
        func total(_ q: [(String, String)], token: String? = nil) async -> Int64? {
            let answer = await Self.get(w, "SuperSearch", q, token: token)
            if answer.0 != 200 { Issue.record("SuperSearch \(q) answered \(answer.0): \(String(decoding: answer.2.body, as: UTF8.self).prefix(300))") }
            return answer.1?["total"]?.intValue
        }
        let week = [("date", ">=" + ISOTime.string(Double(w.now - 7 * Self.day) / 1_000_000))]
        #expect(await total([]) == 3) // default window: the last 7 days
        #expect(await total([("date", ">=" + ISOTime.string(Double(w.now - 40 * Self.day) / 1_000_000))]) == 4)
        #expect(await total([("signature", "=OOM | small")]) == 1)
        #expect(await total([("signature", "~Foo")]) == 2)
        #expect(await total([("signature", "~foo")]) == 0) // contains is case-sensitive
        #expect(await total([("signature", "^mozilla::")]) == 2)
        #expect(await total([("signature", "$Baz")]) == 1)
        #expect(await total([("signature", "@mozilla::dom::Foo::Ba[rz]")]) == 2) // a regular expression matching the whole value
        #expect(await total([("signature", "@Foo")]) == 0)                      // anchored at both ends
        #expect(await total([("signature", "!@.*Foo.*")]) == 1)
        #expect(await Self.get(w, "SuperSearch", [("signature", "@(unclosed")]).0 == 400)
        #expect(await total([("startup_crash", "__true__")]) == 1)
        #expect(await total([("crashing_thread", ">=1")]) == 2) // an integer member of the document, from the schema
        #expect(await total([("address", "=0x1")]) == 1)
        #expect(await total([("startup_crash", "!__true__")]) == 2)
        #expect(await total([("startup_crash", "__null__")]) == 1)
        let booleans = try #require(await Self.get(w, "SuperSearch", [("_columns", "uuid"), ("_columns", "startup_crash"), ("_facets", "startup_crash"),
                                                                      ("_sort", "uuid")]).1)
        #expect(booleans["facets"]?["startup_crash"] == .array([.object([("term", .string("F")), ("count", .int(1))]),
                                                                .object([("term", .string("T")), ("count", .int(1))])]))
        #expect(booleans["hits"]?.arrayValue?.map { $0["startup_crash"] } == [.bool(true), .bool(false), .null])
        #expect(await total([("signature", "!~Foo")]) == 1)
        #expect(await total([("signature", "=OOM | small"), ("signature", "$Baz")]) == 2) // OR
        #expect(await total([("signature", "foo bar")]) == 1) // has terms, any case
        #expect(await total([("version", "121.0b")]) == 2)
        #expect(await total([("platform", "=Linux"), ("uptime", ">=300"), ("uptime", "<3000")]) == 1) // ranges AND-ed
        #expect(await total([("uptime", "30")]) == 1)
        #expect(await total([("reason", "__null__")]) == 3)
        #expect(await total([("reason", "!__null__")]) == 0)
        #expect(await total([("url", "~SECRET")]) == 3) // protected filter dropped for anonymous callers
        #expect(await total([("url", "~SECRET")], token: w.piiToken) == 1)
        #expect(await total([("not_a_field", "x")]) == 3) // unknown parameters are ignored

        let bare = await Self.get(w, "SuperSearch", [("date", "2024-01-01")])
        #expect(bare.0 == 400)
        let wide = await Self.get(w, "SuperSearch", [("date", ">=2020-01-01"), ("date", "<2022-01-01")])
        #expect(wide.0 == 400)
        #expect(await Self.get(w, "SuperSearch", [("_results_number", "1001")]).0 == 400)
        #expect(await Self.get(w, "SuperSearch", (0..<51).map { _ in ("_facets", "signature") }).1?["error"]
                == .string("Bad request: BadArgumentError: Too many facets and aggregations (at most 50)."))
        #expect(await Self.get(w, "SuperSearch", (0..<2001).map { ("signature", "=s\($0)") }).0 == 400)
        #expect(await Self.get(w, "SuperSearch", [("_results_offset", "9999"), ("_results_number", "2")]).0 == 400)

        let page = try #require(await Self.get(w, "SuperSearch", week + [("_columns", "uuid"), ("_columns", "uptime"), ("_sort", "-uptime"),
                                                                           ("_results_number", "2"), ("_results_offset", "1")]).1)
        #expect(page["hits"] == .array([.object([("uuid", .string(w.ids[1])), ("uptime", .int(300))]),
                                        .object([("uuid", .string(w.ids[0])), ("uptime", .int(30))])]))
        let defaults = try #require(await Self.get(w, "SuperSearch", []).1?["hits"]?.arrayValue?.first)
        #expect(defaults.objectKeys == ["uuid", "date", "signature", "product", "version"])

        let facets = try #require(await Self.get(w, "SuperSearch", [("_facets", "platform"), ("_facets", "_cardinality.version"), ("_results_number", "0")]).1)
        #expect(facets["facets"]?["platform"] == .array([.object([("term", .string("Linux")), ("count", .int(2))]),
                                                         .object([("term", .string("Windows NT")), ("count", .int(1))])]))
        #expect(facets["facets"]?["cardinality_version"] == .object([("value", .int(3))]))
        #expect(facets["hits"] == .array([]))
        let defaultFacet = try #require(await Self.get(w, "SuperSearch", []).1?["facets"]?["signature"]?.arrayValue)
        #expect(defaultFacet.count == 3)
        // Protected columns and facets are dropped for anonymous callers.
        let stripped = try #require(await Self.get(w, "SuperSearch", [("_columns", "url"), ("_columns", "uuid"), ("_facets", "url")]).1)
        #expect(stripped["hits"]?.arrayValue?.allSatisfy { $0.objectKeys == ["uuid"] } == true && stripped["facets"] == .object([]))
        #expect(await Self.get(w, "SuperSearchUnredacted", []).0 == 403)
        let query = try #require(await Self.get(w, "SuperSearch", [("signature", "~Foo"), ("_return_query", "1")]).1)
        #expect(query["query"]?["sql"]?.stringValue?.contains("FROM crashes WHERE") == true && query["hits"] == nil)
        #expect(query["query"]?["binds"]?.arrayValue?.contains(.string("Foo")) == true)
    }

    @Test(arguments: Backend.allCases)
    func aggregationsHistogramsAndCardinalities(_ backend: Backend) async throws {
        let w = try await Self.world(backend)
        defer { Task { await w.f.close() } }
        let q: [(String, String)] = [("_results_number", "0"), ("_facets", "product"), ("_aggs.product", "platform"), ("_aggs.product", "_cardinality.version"),
                                     ("_aggs.product.platform", "version"), ("_histogram.date", "platform"), ("_histogram.uptime", ""),
                                     ("_histogram_interval.uptime", "100"), ("_aggs.signature", "_histogram.uptime")]
        let facets = try #require(await Self.get(w, "SuperSearch", q).1?["facets"])
        let product = try #require(facets["product"]?.arrayValue?.first)
        #expect(product["term"] == .string("Firefox") && product["count"] == .int(3))
        // `_aggs.product.platform=version` nests three levels and wins over `_aggs.product=platform`.
        let linux = try #require(product["facets"]?["platform"]?.arrayValue?.first)
        #expect(linux["term"] == .string("Linux") && linux["count"] == .int(2))
        #expect(linux["facets"]?["version"] == .array([.object([("term", .string("121.0b3")), ("count", .int(1))]),
                                                      .object([("term", .string("121.0b4")), ("count", .int(1))])]))
        let days = try #require(facets["histogram_date"]?.arrayValue)
        #expect(days.count == 3 && days.allSatisfy { ($0["term"]?.stringValue ?? "").hasSuffix("T00:00:00+00:00") })
        #expect(days.map { $0["count"]?.intValue ?? 0 } == [1, 1, 1])
        #expect(days.last?["facets"]?["platform"] == .array([.object([("term", .string("Windows NT")), ("count", .int(1))])]))
        #expect(facets["histogram_uptime"] == .array([.object([("term", .int(0)), ("count", .int(1))]), .object([("term", .int(300)), ("count", .int(1))]),
                                                       .object([("term", .int(3000)), ("count", .int(1))])]))
        let bySignature = try #require(facets["signature"]?.arrayValue)
        #expect(bySignature.count == 3 && bySignature.allSatisfy { $0["facets"]?["histogram_uptime"]?.arrayValue?.count == 1 })

        let cardinality = try #require(await Self.get(w, "SuperSearch", [("_results_number", "0"), ("_aggs.platform", "_cardinality.version"),
                                                                         ("_aggs.platform", "product")]).1?["facets"])
        #expect(cardinality["platform"]?.arrayValue?.first?["facets"]?["product"] == .array([.object([("term", .string("Firefox")), ("count", .int(2))])]))
        #expect(cardinality["platform"]?.arrayValue?.first?["facets"]?["cardinality_version"] == .object([("value", .int(2))]))
        #expect(await Self.get(w, "SuperSearch", [("_histogram.date", ""), ("_histogram_interval.date", "fortnight")]).0 == 400)
        // Hostile intervals are refused with the documented error, never converted with a trap.
        for interval in ["1e20s", "infs", "nanh", "-1h", "0s", "1e-9s", "9223372036854775807w", "1e308d"] {
            let (status, body, _) = await Self.get(w, "SuperSearch", [("_histogram.date", ""), ("_histogram_interval.date", interval)])
            #expect(status == 400, "\(interval)")
            #expect(body?["error"]?.stringValue?.hasSuffix("Histogram interval '\(interval)' is not valid.") == true, "\(interval)")
        }
        for interval in ["0", "-5", "99999999999999999999"] {
            #expect(await Self.get(w, "SuperSearch", [("_histogram.uptime", ""), ("_histogram_interval.uptime", interval)]).0 == 400, "\(interval)")
        }
        #expect(await Self.get(w, "SuperSearch", [("_histogram.date", ""), ("_histogram_interval.date", "1.5h")]).0 == 200)
    }

    @Test func otherModels() async throws {
        let w = try await Self.world(.embedded)
        defer { Task { await w.f.close() } }
        try await w.f.metadata.addProductVersion(product: "Firefox", channel: "beta", buildID: "20240101000001", version: "121.0b3")
        let versions = await Self.get(w, "VersionString", [("product", "Firefox"), ("channel", "beta"), ("build_id", "20240101000001")])
        #expect(versions.1 == .object([("hits", .array([.object([("version_string", .string("121.0b3"))])])), ("total", .int(1))]))
        #expect(await Self.get(w, "VersionString", [("product", "Firefox")]).1?["errors"]?["channel"] != nil)

        let first = try #require(await Self.get(w, "SignatureFirstDate", [("signatures", "js::GC | Collect"), ("signatures", "unknown")]).1)
        #expect(first["total"] == .int(1) && first["hits"]?.arrayValue?.first?["first_build"] == .string("20240101000003"))

        let verify = try #require(await Self.get(w, "CrashVerify", [("crash_id", w.ids[0])]).1)
        #expect(verify["raw_crash"] == .bool(true) && verify["processed_crash"] == .bool(true) && verify["elasticsearch_crash"] == .bool(true))

        let body = Data(#"{"jobs": [{"crashing_thread": 0, "threads": [{"frames": [{"function": "abort"}, {"function": "mozilla::Foo::Bar(int)"}]}]}]}"#.utf8)
        let signed = await w.api.handle(APIRequest(method: "POST", endpoint: "CrashSignature", headers: ["debug": "1"], body: body))
        let result = try #require(JSONValue.parse(signed.body)?["results"]?.arrayValue?.first)
        #expect(result["signature"]?.stringValue?.isEmpty == false && result["debug_log"] != nil)
        #expect(signed.headers.contains { $0 == ("Access-Control-Allow-Origin", "*") })
        let none = await w.api.handle(APIRequest(method: "POST", endpoint: "CrashSignature", body: Data(#"{"jobs": []}"#.utf8)))
        #expect(none.status == 400 && JSONValue.parse(none.body)?["error"] == .string("no jobs specified"))

        let fields = try #require(await Self.get(w, "SuperSearchFields").1)
        #expect(fields.objectKeys.count > 60) // generated from the processed crash schema
        #expect(fields["crashing_thread"]?["query_type"] == .string("integer") && fields["startup_crash"]?["query_type"] == .string("boolean"))
        #expect(fields["url"]?["description"] == .string("The URL of the page the crashing process showed."))
        #expect(fields["date"]?["operators"] == .array([">", ">=", "<", "<=", "__null__"].map { .string($0) }))
        #expect(fields["signature"]?["permissions_needed"] == .array([]) && fields["url"]?["permissions_needed"] == .array([.string("crashstats.view_pii")]))
        let pretty = await Self.get(w, "SuperSearchFields", [("pretty", "print")])
        #expect(String(decoding: pretty.2.body, as: UTF8.self).contains("\n  "))
    }

    /// Every response an anonymous caller can get, for every column and facet, is free of the
    /// protected values.
    @Test func nothingProtectedLeaks() async throws {
        let w = try await Self.world(.embedded)
        defer { Task { await w.f.close() } }
        let everything = [("date", ">=" + ISOTime.string(Double(w.now - 60 * Self.day) / 1_000_000))]
        var bodies: [Data] = []
        for token in [nil, w.plainToken] {
            for id in w.ids {
                for endpoint in ["ProcessedCrash", "RawCrash", "CrashVerify"] { bodies.append(await Self.get(w, endpoint, [("crash_id", id)], token: token).2.body) }
                bodies.append(await Self.get(w, "RawCrash", [("crash_id", id), ("format", "raw")], token: token).2.body)
            }
            let columns = (try #require(await Self.get(w, "SuperSearchFields").1)).objectKeys
            bodies.append(await Self.get(w, "SuperSearch", everything + columns.map { ("_columns", $0) } + columns.map { ("_facets", $0) }, token: token).2.body)
            bodies.append(await Self.get(w, "SuperSearch", everything + [("url", "~SECRET"), ("user_comments", "SECRET")], token: token).2.body)
            bodies.append(await Self.get(w, "SuperSearchFields", token: token).2.body)
            // Protected fields inside aggregations and histograms, and the other models.
            bodies.append(await Self.get(w, "SuperSearch", everything + [("_aggs.product", "url"), ("_aggs.product.url", "user_comments"),
                                                                          ("_histogram.date", "url"), ("_facets", "_cardinality.url"),
                                                                          ("_sort", "url"), ("_return_query", "0")], token: token).2.body)
            bodies.append(await Self.get(w, "SuperSearch", everything + [("url", "~SECRET"), ("_return_query", "1")], token: token).2.body)
            bodies.append(await Self.get(w, "SignatureFirstDate", [("signatures", "OOM | small")], token: token).2.body)
            bodies.append(await Self.get(w, "SuperSearchUnredacted", everything + [("_columns", "url")], token: token).2.body)
        }
        let leaks = bodies.filter { String(decoding: $0, as: UTF8.self).contains(Self.secret) }
        #expect(leaks.isEmpty, "\(leaks.first.map { String(decoding: $0, as: UTF8.self).prefix(300) } ?? "")")
        // The protected values are there for a view_pii caller (the scan looks at the right data).
        let full = await Self.get(w, "SuperSearch", everything + [("_columns", "url")], token: w.piiToken).2.body
        #expect(String(decoding: full, as: UTF8.self).contains(Self.secret))
    }
}

extension JSONValue {
    var objectKeys: [String] { if case .object(let pairs) = self { return pairs.map(\.0) } else { return [] } }
}
