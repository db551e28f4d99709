import CrashModel
import Foundation
import Hummingbird
import JSONSupport
import ServiceSupport
import Storage

/// Top crashers `/topcrashers/` (`crash-stats-api.md` §5.3): one Super Search request with the
/// signature aggregation and its sub-facets (platform, startup crash, garbage collection,
/// distinct install times), the previous period the same way for the rank and share change,
/// first appearances and bugs. Run through the API with the reader's permissions.
extension CrashStatsWeb {
    static let dayChoices = [1, 3, 7, 14, 28]
    static let processTypes = ["any", "parent", "content", "gpu", "rdd", "utility", "socket", "gmplugin", "plugin"]
    static let reportTypes = ["any", "crash", "hang"]
    /// The per-OS columns (platform term → column).
    static let osColumns: [(String, String)] = [("Windows NT", "Win"), ("Mac OS X", "Mac"), ("Linux", "Lin"), ("Android", "Android")]

    func topCrashers(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        let query = FormEncoding.parse(request.uri.query ?? "")
        func value(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
        guard let product = value("product")?.nonEmpty, api.products.accepts(product) else {
            return errorPage(.badRequest, "Top crashers", "Choose a product: /topcrashers/?product=<name>\(api.products.isRestricted ? " (one of \(api.products.names.joined(separator: ", ")))" : "").")
        }
        let versions = query.filter { $0.0 == "version" }.map(\.1).filter { !$0.isEmpty }.prefix(20)
        let days = value("days").flatMap(Int.init).flatMap { Self.dayChoices.contains($0) ? $0 : nil } ?? 7
        let processType = value("process_type").flatMap { Self.processTypes.contains($0) ? $0 : nil } ?? "any"
        let reportType = value("_report_type").flatMap { Self.reportTypes.contains($0) ? $0 : nil } ?? "any"
        let size = value("_facets_size").flatMap(Int.init).map { min(300, max(1, $0)) } ?? 50

        let now = Date()
        let from = now.addingTimeInterval(-Double(days) * 86_400), previousFrom = now.addingTimeInterval(-2 * Double(days) * 86_400)
        var filters: [(String, String)] = [("product", product)] + versions.map { ("version", $0) }
        if processType != "any" { filters.append(("process_type", processType)) }
        if reportType != "any" { filters.append(("report_type", reportType)) }
        func iso(_ d: Date) -> String { ISOTime.string(d.timeIntervalSince1970) }
        let current = filters + [("date", ">=" + iso(from)), ("date", "<" + iso(now)), ("_results_number", "0"), ("_facets_size", String(size)),
                                 ("_aggs.signature", "platform"), ("_aggs.signature", "startup_crash"), ("_aggs.signature", "is_garbage_collecting"),
                                 ("_aggs.signature", "_cardinality.install_time")]
        let previous = filters + [("date", ">=" + iso(previousFrom)), ("date", "<" + iso(from)), ("_results_number", "0"),
                                  ("_facets_size", String(size * 2)), ("_aggs.signature", "platform")]
        // The two periods are independent: asked at once.
        async let currentAnswer = api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: current), caller: visitor.caller)
        async let previousAnswer = api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: previous), caller: visitor.caller)
        let (answer, before) = await (currentAnswer, previousAnswer)
        guard answer.status == 200, let doc = JSONValue.parse(answer.body) else {
            return errorPage(Self.failureStatus(answer), "Top crashers", Self.failureMessage(answer))
        }
        let previousDoc = before.status == 200 ? JSONValue.parse(before.body) : nil
        let total = doc["total"]?.intValue ?? 0, previousTotal = previousDoc?["total"]?.intValue ?? 0
        var previousRanks: [String: (Int, Double)] = [:]
        for (i, b) in (previousDoc?["facets"]?["signature"]?.arrayValue ?? []).enumerated() {
            guard let term = b["term"]?.stringValue else { continue }
            previousRanks[term] = (i + 1, previousTotal > 0 ? Double(b["count"]?.intValue ?? 0) / Double(previousTotal) : 0)
        }
        let buckets = doc["facets"]?["signature"]?.arrayValue ?? []
        let signatures = buckets.compactMap { $0["term"]?.stringValue }
        let firstDates = Dictionary(((try? await api.metadata.signatureFirstDates(signatures)) ?? []).map { ($0.signature, $0.firstDate) }, uniquingKeysWith: min)
        var bugs: [String: [Int64]] = [:]
        for b in (try? await api.metadata.bugs(forSignatures: signatures)) ?? [] { bugs[b.signature, default: []].append(b.bugID) }

        // The OS columns that have crashes (one column when a single OS is shown).
        var osSeen = Set<String>()
        for b in buckets { for p in b["facets"]?["platform"]?.arrayValue ?? [] { if let t = p["term"]?.stringValue { osSeen.insert(t) } } }
        let columns = Self.osColumns.filter { osSeen.contains($0.0) }
        var rows: [[String: Any]] = []
        for (i, b) in buckets.enumerated() {
            guard let signature = b["term"]?.stringValue else { continue }
            let count = b["count"]?.intValue ?? 0
            let share = total > 0 ? Double(count) / Double(total) : 0
            let facets = b["facets"]
            func termCount(_ facet: String, _ term: String) -> Int64 {
                facets?[facet]?.arrayValue?.first { $0["term"]?.stringValue == term }?["count"]?.intValue ?? 0
            }
            var diff = "new", diffTitle = "not in the previous period"
            if let (rank, previousShare) = previousRanks[signature] {
                diff = String(format: "%+.2f%%", (share - previousShare) * 100)
                diffTitle = "rank \(rank) → \(i + 1)"
            }
            let startup = termCount("startup_crash", "T")
            var reportQuery = [("signature", signature), ("product", product), ("days", String(days))]
            if versions.count == 1 { reportQuery.append(("version", versions[0])) }
            rows.append([
                "rank": i + 1, "percent": String(format: "%.2f%%", share * 100), "diff": diff, "diffTitle": diffTitle, "signature": signature,
                "count": count, "osCounts": columns.map { termCount("platform", $0.0) },
                "installs": facets?["cardinality_install_time"]?["value"]?.intValue ?? 0, "gc": termCount("is_garbage_collecting", "T"),
                "startup": count > 0 && startup * 2 > count ? "startup" : "",
                "firstDate": firstDates[signature].map { String(ISOTime.string(Double($0) / 1_000_000).prefix(10)) } ?? "",
                "bugs": (bugs[signature] ?? []).map(String.init), "searchURL": "/signature/?" + Self.queryString(reportQuery),
            ])
        }
        return page(.ok, "topcrashers", [
            "title": "Top crashers for \(product)", "product": product, "versions": Array(versions), "versionLabel": versions.joined(separator: ", "),
            "dayChoices": Self.dayChoices.map { ["value": $0, "selected": $0 == days] },
            "processChoices": Self.processTypes.map { ["value": $0 == "any" ? "" : $0, "label": $0, "selected": $0 == processType] },
            "reportChoices": Self.reportTypes.map { ["value": $0, "selected": $0 == reportType] },
            "size": size, "total": total, "previousTotal": previousTotal, "from": String(iso(from).prefix(16)), "to": String(iso(now).prefix(16)),
            "rows": rows, "hasRows": !rows.isEmpty, "osColumns": columns.map(\.1),
        ], visitor: visitor)
    }

    /// A form-encoded query string (`+` for spaces, everything else not unreserved escaped).
    static func queryString(_ pairs: [(String, String)]) -> String {
        pairs.map { BugLinks.quotePlus($0.0) + "=" + BugLinks.quotePlus($0.1) }.joined(separator: "&")
    }
}
