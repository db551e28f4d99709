import CrashModel
import Foundation
import Hummingbird
import JSONSupport
import ServiceSupport
import Storage

/// Super Search in the browser `/search/`: a form of filter rows (field, operator, value), columns,
/// facets and sort; results and facet tables; pages. The page's query string *is* the Super
/// Search query, so every search has a permalink and an API twin; the form's rows (`f`, `op`,
/// `v`) are turned into that query by a redirect. `/search/quick/?query=` goes to a report or
/// to a signature search.
extension CrashStatsWeb {
    /// Operators offered per field type: the value prefix and its label.
    static func operators(_ type: CrashSearch.FieldType) -> [(String, String)] {
        switch type {
        case .string: [("", "has terms"), ("=", "is"), ("!=", "is not"), ("~", "contains"), ("!~", "does not contain"), ("^", "starts with"),
                       ("$", "ends with"), ("@", "matches regex"), ("__null__", "does not exist"), ("!__null__", "exists")]
        case .integer: [("", "is"), (">", ">"), (">=", ">="), ("<", "<"), ("<=", "<="), ("__null__", "does not exist")]
        case .date: [(">=", ">="), ("<", "<")]
        case .boolean: [("__true__", "is true"), ("!__true__", "is not true"), ("__null__", "does not exist")]
        }
    }

    static let maxFilterRows = 50

    /// Result rows of a Super Search answer as table cells: crash ids link to their report,
    /// signatures to a search for them within `filters`.
    static func resultRows(_ doc: JSONValue, columns: [String], filters: [(String, String)]) -> [[String: Any]] {
        (doc["hits"]?.arrayValue ?? []).map { hit -> [String: Any] in
            ["cells": columns.map { c -> [String: Any] in
                let text = hit[c].map { $0.stringValue ?? ($0 == .null ? "" : $0.serialized()) } ?? ""
                var cell: [String: Any] = ["text": text]
                if c == "uuid", CrashID.isValid(text) { cell["url"] = "/report/index/\(text)" }
                if c == "signature", !text.isEmpty { cell["url"] = "/search/?" + Self.queryString(filters + [("signature", "=" + text)]) }
                return cell
            }]
        }
    }

    static let pageParameters: Set<String> = ["_columns", "_facets", "_sort", "_results_number", "_results_offset", "_facets_size"]

    func quickSearch(_ request: Request) -> Response {
        let text = (FormEncoding.parse(request.uri.query ?? "").first { $0.0 == "query" }?.1 ?? "").trimmingCharacters(in: .whitespaces)
        let id = CrashID.normalize(text.split(separator: "/").last.map(String.init) ?? text)
        if CrashID.isValid(id) { return Self.redirect("/report/index/\(id)") }
        return Self.redirect("/search/?" + Self.queryString([("signature", "~" + text)]))
    }

    func search(_ request: Request) async -> Response {
        let visitor = await visitor(request)
        var query = FormEncoding.parse(request.uri.query ?? "")
        // The form's rows become the permalink's parameters.
        if query.contains(where: { $0.0 == "f" }) {
            let f = query.filter { $0.0 == "f" }.map(\.1), op = query.filter { $0.0 == "op" }.map(\.1), v = query.filter { $0.0 == "v" }.map(\.1)
            var params: [(String, String)] = []
            for i in f.indices where i < op.count && i < v.count {
                let o = op[i]
                if o.hasSuffix("__null__") || o.hasSuffix("__true__") { params.append((f[i], o)) } else if !v[i].isEmpty { params.append((f[i], o + v[i])) }
            }
            params += query.filter { Self.pageParameters.contains($0.0) && !$0.1.isEmpty }
            return Self.redirect("/search/?" + Self.queryString(params))
        }
        let fields = api.search.fields.filter { api.search.allowed($0.name, visitor.caller) }
        let byName = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
        query = query.filter { $0.0 != "_return_query" }
        let filters = query.filter { byName[$0.0] != nil }
        // Every filter becomes a form row holding every field: bounded, so a long URL cannot
        // make a page of hundreds of megabytes (the API itself takes up to 2,000 parameters).
        guard filters.count <= Self.maxFilterRows else {
            return errorPage(.badRequest, "Super Search", "Too many filters (at most \(Self.maxFilterRows) on this page; the API takes more).")
        }
        // Rows: the current filters (operator split from the value), then an empty one.
        func row(_ field: String, _ raw: String) -> [String: Any] {
            let type = byName[field]?.type ?? .string
            let ops = Self.operators(type)
            let op = ops.map(\.0).filter { !$0.isEmpty && raw.hasPrefix($0) }.max { $0.count < $1.count } ?? ""
            return ["fields": fields.map { ["name": $0.name, "selected": $0.name == field] },
                    "operators": ops.map { ["value": $0.0, "label": $0.1, "selected": $0.0 == op] },
                    "value": op.hasSuffix("__null__") || op.hasSuffix("__true__") ? "" : String(raw.dropFirst(op.count))]
        }
        var rows = filters.map { row($0.0, $0.1) }
        rows.append(row("signature", ""))
        let columns = query.filter { $0.0 == "_columns" }.map(\.1).filter { byName[$0] != nil }
        let shownColumns = columns.isEmpty ? SuperSearch.metaDefaults.columns : columns
        let facets = query.filter { $0.0 == "_facets" }.map(\.1)
        let sort = query.first { $0.0 == "_sort" }?.1 ?? ""
        let number = query.first { $0.0 == "_results_number" }.flatMap { Int($0.1) }.map { min(1000, max(1, $0)) } ?? 50
        let offset = query.first { $0.0 == "_results_offset" }.flatMap { Int($0.1) }.map { min(10_000, max(0, $0)) } ?? 0
        var context: [String: Any] = [
            "title": "Super Search", "rows": rows, "number": number,
            "columnChoices": fields.map { ["name": $0.name, "selected": shownColumns.contains($0.name)] },
            "facetChoices": fields.map { ["name": $0.name, "selected": facets.contains($0.name)] },
            "sortChoices": [["value": "", "label": "newest first", "selected": sort.isEmpty]]
                + fields.flatMap { f in [["value": f.name, "label": "\(f.name) ↑", "selected": sort == f.name],
                                         ["value": "-" + f.name, "label": "\(f.name) ↓", "selected": sort == "-" + f.name]] },
        ]
        guard !query.isEmpty else { return page(.ok, "search", context, visitor: visitor) }

        var apiQuery = query.filter { !["_results_number", "_results_offset", "_columns"].contains($0.0) }
        apiQuery += shownColumns.map { ("_columns", $0) } + [("_results_number", String(number)), ("_results_offset", String(offset))]
        if facets.isEmpty, !query.contains(where: { $0.0 == "_facets" }) { apiQuery.append(("_facets", "signature")) }
        let answer = await api.handle(APIRequest(method: "GET", endpoint: "SuperSearch", query: apiQuery), caller: visitor.caller)
        guard answer.status == 200, let doc = JSONValue.parse(answer.body) else {
            context["error"] = Self.failureMessage(answer)
            return page(Self.failureStatus(answer), "search", context, visitor: visitor)
        }
        let total = doc["total"]?.intValue ?? 0
        let base = query.filter { $0.0 != "_results_offset" }
        context["searched"] = true
        context["total"] = total
        context["permalink"] = "/search/?" + Self.queryString(query)
        context["apiURL"] = "/api/SuperSearch/?" + Self.queryString(apiQuery)
        context["columns"] = shownColumns
        context["hits"] = Self.resultRows(doc, columns: shownColumns, filters: filters)
        if case .object(let pairs)? = doc["facets"] {
            context["facets"] = pairs.compactMap { name, value -> [String: Any]? in
                guard let buckets = value.arrayValue, byName[name] != nil else { return nil }
                return ["name": name, "buckets": buckets.enumerated().map { i, b -> [String: Any] in
                    let term = b["term"].map { $0.stringValue ?? $0.serialized() } ?? ""
                    let count = b["count"]?.intValue ?? 0
                    let type = byName[name]?.type ?? .string
                    let filter = type == .string ? "=" + term : type == .boolean ? (term == "T" ? "__true__" : "!__true__") : term
                    return ["rank": i + 1, "term": term, "count": count,
                            "percent": total > 0 ? String(format: "%.2f%%", Double(count) * 100 / Double(total)) : "",
                            "url": "/search/?" + Self.queryString(query + [(name, filter)])]
                }]
            }
        }
        let pages = max(1, Int((total + Int64(number) - 1) / Int64(number)))
        context["pageLabel"] = "page \(offset / number + 1) of \(pages)"
        if offset > 0 { context["previousURL"] = "/search/?" + Self.queryString(base + [("_results_offset", String(max(0, offset - number)))]) }
        if Int64(offset + number) < total, offset + number < 10_000 {
            context["nextURL"] = "/search/?" + Self.queryString(base + [("_results_offset", String(offset + number))])
        }
        return page(.ok, "search", context, visitor: visitor)
    }
}
