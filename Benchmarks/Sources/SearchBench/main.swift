// search-bench: Super Search latency over a large crash index, on SQLite and PostgreSQL.
//
//   eval "$(scripts/test-services.sh)"   # PostgreSQL on 127.0.0.1 (SQLite needs nothing)
//   swift run -c release --package-path Benchmarks search-bench 1000000
//
// Loads N synthetic processed crashes spread over the last 30 days into a fresh index (products,
// versions, platforms, process types, 20,000 signatures with a Zipf-like popularity), then times
// four requests through `CrashStatsAPI` (what `GET /api/SuperSearch/` runs), each 7 times after a
// warm-up, and reports the median and the slowest:
//   (a) the signature facet of one product over 7 days;
//   (b) a `~` (contains) filter on signature, with the default columns and facet;
//   (c) a three-level aggregation, `_aggs.product.platform=version`;
//   (d) a daily histogram with a product sub-facet;
// and three web pages rendered in process (`CrashStatsWeb.render`, server time without HTTP):
//   (e) a report page (a processed crash with the macOS inlines stackwalk of the shared test data);
//   (f) top crashers of one product over 7 days;
//   (g) the signature report of the most common signature.
import BenchSupport
import CrashModel
import CrashStats
import Foundation
import JSONSupport
import Signatures
import Storage

let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
let env = ProcessInfo.processInfo.environment

struct Rng {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// Zipf-like: small values are much more likely.
    mutating func popular(_ n: Int) -> Int { Int(Double(n) * pow(Double(next() % 1_000_000) / 1_000_000, 3)) }
}

func rows(_ n: Int, now: Int64) -> [CrashIndexRow] {
    var rng = Rng(state: 7)
    let products = ["Firefox", "Firefox", "Firefox", "Fenix", "Fenix", "Thunderbird"]
    let platforms = ["Windows NT", "Windows NT", "Windows NT", "Windows NT", "Mac OS X", "Linux", "Android"]
    let processes = ["parent", "content", "content", "gpu", "utility"]
    let span: Int64 = 30 * 86_400_000_000
    return (0..<n).map { i in
        let product = products[rng.below(products.count)]
        let version = "\(120 + rng.below(10)).0\(rng.below(4) == 0 ? "b\(rng.below(9))" : "")"
        let k = rng.popular(20_000)
        let signature = "mozilla::Module\(k % 97)::Function\(k)"
        let date = now - Int64(rng.next() % UInt64(span))
        let platform = platforms[rng.below(platforms.count)]
        let hex = String(format: "%08x", i)
        let id = "\(hex)-cbbf-4589-a673-34f800\(String(format: "%06d", i % 1_000_000))"
        let uptime = Int64(rng.below(100_000))
        return CrashIndexRow(crashID: id, dateProcessed: date, product: product, version: version, releaseChannel: "release", platform: platform,
                             processType: processes[rng.below(processes.count)], signature: signature, buildID: "20240101000000",
                             uptime: uptime, document: .object([("signature", .string(signature)), ("address", .string("0x\(hex)")),
                                                                ("uptime", .int(uptime))]))
    }
}

func measure(_ name: String, _ database: Database, metadata: MetadataStore, blobs: any BlobStore) async throws -> [String] {
    let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
    let loadStart = benchClock.now
    let all = rows(count, now: now)
    for start in stride(from: 0, to: all.count, by: 50_000) {
        try await metadata.index(Array(all[start..<min(all.count, start + 50_000)]))
        FileHandle.standardError.write(Data("\r\(name): loaded \(min(all.count, start + 50_000)) of \(all.count)".utf8))
    }
    FileHandle.standardError.write(Data("\n".utf8))
    if database.kind == .postgres { try await database.withConnection { try await $0.raw("VACUUM ANALYZE crashes").run() } }
    else { try await database.withConnection { try await $0.raw("ANALYZE").run() } }
    let loadSeconds = seconds(benchClock.now - loadStart)
    let api = try CrashStatsAPI(blobs: blobs, metadata: metadata, queue: WorkQueue(database: database),
                                signatures: SignatureGenerator(lists: try SignatureLists.bundled()), anonymousPerMinute: 0)
    let requests: [(String, [(String, String)])] = [
        ("(a) signature facet, one product, 7 days", [("product", "Firefox"), ("_facets", "signature"), ("_results_number", "0")]),
        ("(b) `~` contains on signature", [("signature", "~Function12")]),
        ("(c) `_aggs.product.platform=version`", [("_aggs.product.platform", "version"), ("_results_number", "0"), ("_facets", "product")]),
        ("(d) daily histogram with a product sub-facet", [("_histogram.date", "product"), ("_results_number", "0"), ("_facets_size", "0")]),
    ]
    var out: [String] = []
    for (label, query) in requests {
        var times: [Double] = []
        var total: Int64 = 0
        for run in 0..<8 {
            let start = benchClock.now
            let r = await api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: query))
            let t = seconds(benchClock.now - start)
            guard r.status == 200 else { fatalError("\(label): HTTP \(r.status) \(String(decoding: r.body, as: UTF8.self))") }
            total = JSONValue.parse(r.body)?["total"]?.intValue ?? 0
            if run > 0 { times.append(t) }
        }
        times.sort()
        out.append(String(format: "| %@ | %@ | %d | %.0f ms | %.0f ms |", name, label, total, times[times.count / 2] * 1000, times.last! * 1000))
    }
    // The web pages.
    let dumpJSON = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../../shared/testdata/expected/pipeline-inlines-macos-segv.dmp.json")
    guard let json = JSONValue.parse(try Data(contentsOf: dumpJSON.standardized)) else { fatalError("cannot read \(dumpJSON.path)") }
    let reportID = all[0].crashID
    let processed = JSONValue.object([("uuid", .string(reportID)), ("signature", .string(all[0].signature ?? "")), ("product", .string("Firefox")),
                                      ("version", .string("120.0")), ("os_name", .string("Mac OS X")), ("reason", .string("EXC_BAD_ACCESS / KERN_INVALID_ADDRESS")),
                                      ("crashing_thread", .int(0)), ("json_dump", json), ("processor_notes", .string("bench"))])
    try await blobs.put(BlobKeys.processedCrash(reportID), Data(processed.serialized().utf8))
    try await blobs.put(BlobKeys.rawCrash(reportID, date: "20" + reportID.suffix(6)), Data(#"{"ProductName": "Firefox", "Version": "120.0"}"#.utf8))
    let web = try CrashStatsWeb(api: api)
    // The most common signature (k = 0 of the Zipf-like draw): the largest signature report.
    let popular = "mozilla::Module0::Function0"
    let pages: [(String, String)] = [
        ("(e) report page", "/report/index/\(reportID)"),
        ("(f) top crashers, one product, 7 days", "/topcrashers/?product=Firefox&days=7"),
        ("(g) signature report", "/signature/?" + "signature=\(popular.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&product=Firefox&days=7"),
    ]
    for (label, target) in pages {
        var times: [Double] = []
        for run in 0..<8 {
            let start = benchClock.now
            let (status, html) = await web.render(target)
            let t = seconds(benchClock.now - start)
            guard status == 200, html.count > 1000 else { fatalError("\(label): HTTP \(status) \(html.prefix(300))") }
            if run > 0 { times.append(t) }
        }
        times.sort()
        out.append(String(format: "| %@ | %@ | — | %.1f ms | %.1f ms |", name, label, times[times.count / 2] * 1000, times.last! * 1000))
    }
    out.append(String(format: "| %@ | load of %d rows | — | %.0f s | — |", name, count, loadSeconds))
    return out
}

var table = ["| backend | request | total (hits matched) | p50 | max |", "|---|---|---|---|---|"]
let dir = NSTemporaryDirectory() + "pm-search-bench-\(ProcessInfo.processInfo.processIdentifier)"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
let blobs = try FileBlobStore(root: URL(fileURLWithPath: dir + "/blobs"))
do {
    let database = try await Database.open(url: "sqlite://\(dir)/index.sqlite", poolSize: 4)
    table += try await measure("SQLite", database, metadata: try await MetadataStore.open(database), blobs: blobs)
    await database.shutdown()
}
if let admin = env["POSTMORTEM_TEST_POSTGRES_URL"] {
    let name = "pm_search_bench_\(ProcessInfo.processInfo.processIdentifier)"
    let server = try await Database.open(url: admin, poolSize: 1)
    try await server.withConnection { try await $0.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
    let url = admin[..<admin.lastIndex(of: "/")!] + "/" + name
    let database = try await Database.open(url: String(url), poolSize: 4)
    table += try await measure("PostgreSQL", database, metadata: try await MetadataStore.open(database), blobs: blobs)
    await database.shutdown()
    try await server.withConnection { try await $0.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run() }
    await server.shutdown()
} else {
    FileHandle.standardError.write(Data("search-bench: no POSTMORTEM_TEST_POSTGRES_URL; PostgreSQL skipped (eval \"$(scripts/test-services.sh)\")\n".utf8))
}
print(table.joined(separator: "\n"))
