import CrashModel
import Foundation
import Hummingbird
import JSONSupport
import ServiceSupport
import Storage

/// The signature report `/signature/?signature=…` (`crash-stats-api.md` §5.2): totals, first
/// appearance, bugs, a chart of daily crashes by version (inline SVG drawn here, readable
/// without JavaScript), breakdowns by product, version, OS, process type, architecture, uptime
/// range and device, aggregations by any field the reader may see (`_aggs`), and the paginated
/// reports with the reader's choice of columns (`_columns`) and order (`_sort`). Two Super
/// Search requests with the reader's permissions.
extension CrashStatsWeb {
    /// The bar colours, as the stylesheet's legend swatches (`.swatch-N`).
    static let chartColors = ["#0b5cad", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#1098ad", "#c2255c", "#868e96"]
    /// Uptime ranges (seconds) of the summary.
    static let uptimeRanges: [(String, Int64, Int64)] = [("< 1 min", 0, 60), ("1–5 min", 60, 300), ("5–15 min", 300, 900),
                                                          ("15–60 min", 900, 3600), ("> 1 hour", 3600, .max)]
    static let signatureReportColumns = ["uuid", "date", "product", "version", "platform", "reason", "address"]
    /// Columns and aggregations a page may ask for at once.
    static let maxReportColumns = 20, maxAggregations = 5

    func signatureReport(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        let query = FormEncoding.parse(request.uri.query ?? "")
        func value(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
        guard let signature = value("signature"), !signature.isEmpty, signature.utf8.count <= 2048 else {
            return errorPage(.badRequest, "Signature report", "Choose a signature: /signature/?signature=<signature>.")
        }
        let product = value("product") ?? "", version = value("version") ?? ""
        let days = value("days").flatMap(Int.init).flatMap { Self.dayChoices.contains($0) ? $0 : nil } ?? 7
        let page = value("page").flatMap(Int.init).map { min(200, max(1, $0)) } ?? 1
        let now = Date(), from = now.addingTimeInterval(-Double(days) * 86_400)
        var filters: [(String, String)] = [("signature", "=" + signature), ("date", ">=" + ISOTime.string(from.timeIntervalSince1970)),
                                           ("date", "<" + ISOTime.string(now.timeIntervalSince1970))]
        if !product.isEmpty { filters.append(("product", product)) }
        if !version.isEmpty { filters.append(("version", version)) }
        var context: [String: Any] = ["title": "Signature report: \(signature)", "signature": signature, "product": product, "version": version,
                                      "days": days, "dayChoices": Self.dayChoices.map { ["value": $0, "selected": $0 == days] }]
        let summaryFields = [("product", "Product"), ("version", "Version"), ("platform", "OS"), ("platform_version", "OS version"),
                             ("process_type", "Process type"), ("cpu_arch", "Architecture"), ("android_model", "Android device")]
        // The reader's columns, aggregations and order: fields they may see, bounded.
        let fields = api.search.fields.filter { api.search.allowed($0.name, visitor.caller) }
        let known = Set(fields.map(\.name))
        var columns: [String] = []
        for c in query where c.0 == "_columns" && known.contains(c.1) && !columns.contains(c.1) { columns.append(c.1) }
        columns = columns.isEmpty ? Self.signatureReportColumns.filter(known.contains) : Array(columns.prefix(Self.maxReportColumns))
        var aggregations: [String] = []
        for a in query where a.0 == "_aggs" && known.contains(a.1) && !aggregations.contains(a.1) { aggregations.append(a.1) }
        aggregations = Array(aggregations.prefix(Self.maxAggregations))
        let sort = value("_sort").flatMap { known.contains($0.hasPrefix("-") ? String($0.dropFirst()) : $0) ? $0 : nil } ?? "-date"
        context["columnChoices"] = fields.map { ["name": $0.name, "selected": columns.contains($0.name)] }
        context["aggregationChoices"] = fields.map { ["name": $0.name, "selected": aggregations.contains($0.name)] }
        context["columns"] = columns
        context["sortChoices"] = fields.flatMap { f in [["value": f.name, "label": "\(f.name) ↑", "selected": sort == f.name],
                                                         ["value": "-" + f.name, "label": "\(f.name) ↓", "selected": sort == "-" + f.name]] }
        let facetFields = summaryFields.map(\.0) + aggregations.filter { a in !summaryFields.contains { $0.0 == a } }
        let summaryQuery = filters + facetFields.map { ("_facets", $0) } + columns.map { ("_columns", $0) } + [
            ("_facets_size", "20"), ("_results_number", "50"), ("_results_offset", String((page - 1) * 50)), ("_sort", sort),
            ("_histogram.uptime", ""), ("_histogram_interval.uptime", "60"),
        ]
        let chartQuery = filters + [("_results_number", "0"), ("_histogram.date", "version"), ("_histogram_interval.date", "day"), ("_facets_size", "8")]
        async let summaryAnswer = api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: summaryQuery), caller: visitor.caller)
        async let chartAnswer = api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: chartQuery), caller: visitor.caller)
        let (summary, chart) = await (summaryAnswer, chartAnswer)
        guard summary.status == 200, let doc = JSONValue.parse(summary.body) else {
            context["error"] = Self.failureMessage(summary)
            return self.page(Self.failureStatus(summary), "signature", context, visitor: visitor)
        }
        let total = doc["total"]?.intValue ?? 0
        context["total"] = total
        context["searchURL"] = "/search/?" + Self.queryString(filters.filter { $0.0 != "date" })
        if let first = (try? await api.metadata.signatureFirstDates([signature]))?.first {
            context["firstDate"] = String(ISOTime.string(Double(first.firstDate) / 1_000_000).prefix(10))
            if let build = first.firstBuild { context["firstBuild"] = build }
        } else {
            context["firstDate"] = "unknown"
        }
        let bugs = ((try? await api.metadata.bugs(forSignatures: [signature])) ?? []).filter { $0.signature == signature }.map { String($0.bugID) }
        context["bugs"] = bugs
        context["hasBugs"] = !bugs.isEmpty

        func percent(_ n: Int64) -> String { total > 0 ? String(format: "%.1f%%", Double(n) * 100 / Double(total)) : "" }
        var summaries: [[String: Any]] = summaryFields.compactMap { field, title in
            guard let buckets = doc["facets"]?[field]?.arrayValue, !buckets.isEmpty else { return nil }
            let rows = buckets.map { b in (b["term"].map { $0.stringValue ?? $0.serialized() } ?? "", b["count"]?.intValue ?? 0) }
            // "chart" is always set: a missing key would fall back to the page's daily chart.
            var summary: [String: Any] = ["title": title, "rows": rows.map { ["term": $0.0, "count": $0.1, "percent": percent($0.1)] }, "chart": ""]
            // The version and platform breakdowns also as bars.
            if field == "version" || field == "platform" { summary["chart"] = Self.breakdownChart(title, rows) }
            return summary
        }
        // Uptime ranges from the one-minute histogram.
        var ranges = Array(repeating: Int64(0), count: Self.uptimeRanges.count)
        for b in doc["facets"]?["histogram_uptime"]?.arrayValue ?? [] {
            guard let start = b["term"]?.intValue, let n = b["count"]?.intValue else { continue }
            if let i = Self.uptimeRanges.firstIndex(where: { start >= $0.1 && start < $0.2 }) { ranges[i] += n }
        }
        if ranges.contains(where: { $0 > 0 }) {
            summaries.append(["title": "Uptime", "rows": zip(Self.uptimeRanges, ranges).filter { $0.1 > 0 }.map { r, n -> [String: Any] in
                ["term": r.0, "count": n, "percent": percent(n)]
            }, "chart": ""])
        }
        context["summaries"] = summaries
        context["hasAggregations"] = !aggregations.isEmpty
        context["aggregations"] = aggregations.map { field -> [String: Any] in
            let buckets = doc["facets"]?[field]?.arrayValue ?? []
            return ["title": field, "empty": buckets.isEmpty, "rows": buckets.map { b -> [String: Any] in
                let n = b["count"]?.intValue ?? 0
                return ["term": b["term"].map { $0.stringValue ?? $0.serialized() } ?? "", "count": n, "percent": percent(n)]
            }]
        }

        context["reports"] = Self.resultRows(doc, columns: columns, filters: filters.filter { $0.0 != "date" && $0.0 != "signature" })
        let pages = max(1, Int((total + 49) / 50))
        context["pageLabel"] = "page \(page) of \(pages)"
        let base = query.filter { $0.0 != "page" }
        if page > 1 { context["previousURL"] = "/signature/?" + Self.queryString(base + [("page", String(page - 1))]) }
        if page < pages, page < 200 { context["nextURL"] = "/signature/?" + Self.queryString(base + [("page", String(page + 1))]) }

        // The chart: days × versions (the eight commonest versions; others summed as "other").
        if chart.status == 200, let chartDoc = JSONValue.parse(chart.body) {
            let (svg, legend) = Self.dailyChart(chartDoc["facets"]?["histogram_date"]?.arrayValue ?? [], from: from, days: days)
            context["chart"] = svg
            context["legend"] = legend.enumerated().map { ["index": $0.offset, "label": $0.element] }
        }
        return self.page(.ok, "signature", context, visitor: visitor)
    }

    /// A stacked bar chart of daily counts by version, as SVG (text escaped here: the template
    /// inserts it as markup).
    static func dailyChart(_ buckets: [JSONValue], from: Date, days: Int) -> (String, [String]) {
        var perDay: [String: [String: Int64]] = [:]
        var versionTotals: [String: Int64] = [:]
        for b in buckets {
            guard let day = b["term"]?.stringValue?.prefix(10) else { continue }
            for v in b["facets"]?["version"]?.arrayValue ?? [] {
                let name = v["term"]?.stringValue ?? "?", n = v["count"]?.intValue ?? 0
                perDay[String(day), default: [:]][name, default: 0] += n
                versionTotals[name, default: 0] += n
            }
        }
        let top = versionTotals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(7).map(\.key)
        let legend = versionTotals.count > top.count ? top + ["other"] : top
        let dayKeys = (0...days).map { i in String(ISOTime.string(from.timeIntervalSince1970 + Double(i) * 86_400).prefix(10)) }
        let stacks = dayKeys.map { day -> [Int64] in
            let counts = perDay[day] ?? [:]
            var row = top.map { counts[$0] ?? 0 }
            if legend.count > top.count { row.append(counts.filter { !top.contains($0.key) }.values.reduce(0, +)) }
            return row
        }
        let maxTotal = max(1, stacks.map { $0.reduce(0, +) }.max() ?? 1)
        let width = 720, height = 220, left = 40, bottom = 30, barGap = 4
        let plotW = width - left - 10, plotH = height - bottom - 10
        let barW = max(2, plotW / max(1, dayKeys.count) - barGap)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"Crashes per day by version\">"
        svg += "<text x=\"4\" y=\"16\">\(maxTotal)</text><text x=\"4\" y=\"\(10 + plotH)\">0</text>"
        svg += "<line x1=\"\(left)\" y1=\"\(10 + plotH)\" x2=\"\(width - 10)\" y2=\"\(10 + plotH)\" stroke=\"#d8dde3\"/>"
        for (i, stack) in stacks.enumerated() {
            let x = left + i * (barW + barGap)
            var y = 10 + plotH
            for (j, n) in stack.enumerated() where n > 0 {
                let h = max(1, Int(Double(n) / Double(maxTotal) * Double(plotH)))
                y -= h
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(barW)\" height=\"\(h)\" fill=\"\(chartColors[j % chartColors.count])\"><title>\(xmlEscape(dayKeys[i])) \(xmlEscape(legend[j])): \(n)</title></rect>"
            }
            if i % max(1, dayKeys.count / 7) == 0 {
                svg += "<text x=\"\(x)\" y=\"\(height - 10)\">\(xmlEscape(String(dayKeys[i].dropFirst(5))))</text>"
            }
        }
        return (svg + "</svg>", legend)
    }

    /// Horizontal bars of a breakdown (at most ten terms), as SVG with its text escaped here.
    static func breakdownChart(_ title: String, _ rows: [(String, Int64)]) -> String {
        let shown = rows.prefix(10)
        let maxCount = max(1, shown.map(\.1).max() ?? 1)
        let width = 360, rowHeight = 18, labelWidth = 130
        let height = shown.count * rowHeight + 4
        var svg = "<svg class=\"chart breakdown\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(xmlEscape(title)) breakdown\">"
        for (i, row) in shown.enumerated() {
            let y = 2 + i * rowHeight
            let w = max(1, Int(Double(row.1) / Double(maxCount) * Double(width - labelWidth - 50)))
            let label = row.0.count > 20 ? String(row.0.prefix(19)) + "…" : row.0
            svg += "<text x=\"2\" y=\"\(y + 13)\">\(xmlEscape(label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(w)\" height=\"\(rowHeight - 6)\" fill=\"\(chartColors[i % chartColors.count])\"><title>\(xmlEscape(row.0)): \(row.1)</title></rect>"
            svg += "<text x=\"\(labelWidth + w + 4)\" y=\"\(y + 13)\">\(row.1)</text>"
        }
        return svg + "</svg>"
    }

    static func xmlEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
