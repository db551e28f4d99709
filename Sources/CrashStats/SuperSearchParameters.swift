import CrashModel
import Foundation
import JSONSupport
import Storage

/// A Super Search request, parsed and checked: what it selects (`CrashSearch.Query`), the page of
/// hits, and the facet work in the order the response lists it. Fields the caller may not use are
/// dropped silently here, as Socorro does, so nothing below ever sees them.
struct SuperSearchRequest: Sendable {
    var query: CrashSearch.Query
    var columns: [SuperSearch.Field]
    var sort: [CrashSearch.Sort]
    var number: Int
    var offset: Int
    var facetsSize: Int
    var returnQuery: Bool
    var facetJobs: [FacetJob]

    struct FacetJob: Sendable {
        enum Work: Sendable {
            case cardinality(SuperSearch.Field)
            case buckets([SuperSearch.Dimension], [SuperSearch.Sub])
        }
        /// The response key (`signature`, `histogram_date`, `cardinality_x`); a later job with the
        /// same key replaces an earlier one.
        let key: String
        let work: Work
    }
}

extension SuperSearch {
    static let metaDefaults = (columns: ["uuid", "date", "signature", "product", "version"], facets: ["signature"])

    struct BadRequest: Error { let message: String }
    /// A parameter the form validation refuses (400 `{"errors": {name: [message]}}`).
    struct InvalidParameter: Error {
        let name: String
        let message: String
    }

    /// The request's parameters as a typed search.
    func parse(_ r: APIRequest, caller: Caller) throws -> SuperSearchRequest {
        // Bounds: every filter value becomes SQL and every facet a query.
        guard r.query.count <= 2_000 else { throw BadRequest(message: "Too many parameters (at most 2000).") }
        let facetCount = r.values("_facets").count + r.query.filter { $0.0.hasPrefix("_aggs.") || $0.0.hasPrefix("_histogram.") }.count
        guard facetCount <= 50 else { throw BadRequest(message: "Too many facets and aggregations (at most 50).") }
        if products.isRestricted {
            // Exact product names only (Crash Stats validates the choices the same way).
            let unknown = r.query.filter { $0.0 == "product" }.map(\.1).map { $0.hasPrefix("!") ? String($0.dropFirst()) : $0 }
                .map { $0.hasPrefix("=") ? String($0.dropFirst()) : $0 }.filter { !products.accepts($0) }
            if !unknown.isEmpty { throw InvalidParameter(name: "product", message: "Not valid products: \(unknown.joined(separator: ", "))") }
        }
        var filters: [CrashSearch.Filter] = []
        var from: Int64?, to: Int64?
        for field in fields {
            let values = r.query.filter { $0.0 == field.name }.map(\.1)
            guard !values.isEmpty, allowed(field.name, caller) else { continue }
            if field.type == .date {
                for v in values {
                    let (op, text) = Self.splitOperator(v)
                    guard [">", ">=", "<", "<="].contains(op), let seconds = Self.parseDate(text),
                          let micros = Int64(exactly: (seconds * 1_000_000).rounded(.down)) else {
                        throw BadRequest(message: "Date value '\(v)' needs a range operator (>, >=, <, <=) and a date.")
                    }
                    switch op {
                    case ">": from = max(from ?? .min, micros + 1)
                    case ">=": from = max(from ?? .min, micros)
                    case "<": to = min(to ?? .max, micros)
                    default: to = min(to ?? .max, micros + 1)
                    }
                }
                continue
            }
            filters.append(try filter(field, values))
        }
        // The date window: the last 7 days by default, 7 days before an upper bound, at most 365.
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let day: Int64 = 86_400_000_000
        let upper = to ?? (now + 1)
        let lower = from ?? (upper - 7 * day)
        guard upper - lower <= 365 * day else { throw BadRequest(message: "The date range is longer than 365 days.") }

        // Meta parameters.
        let number = try Self.integer(r.value("_results_number"), name: "_results_number", default: 100, range: 0...1000)
        let offset = try Self.integer(r.value("_results_offset"), name: "_results_offset", default: 0, range: 0...10_000)
        guard offset + number <= 10_000 else { throw BadRequest(message: "_results_offset + _results_number must be at most 10000.") }
        let facetsSize = try Self.integer(r.value("_facets_size"), name: "_facets_size", default: 50, range: 0...10_000)
        let requested = r.values("_columns").isEmpty ? Self.metaDefaults.columns : r.values("_columns").filter { allowed($0, caller) }
        let columns = requested.compactMap { byName[$0] }
        var sort: [CrashSearch.Sort] = []
        for s in r.values("_sort") {
            let descending = s.hasPrefix("-")
            let name = descending ? String(s.dropFirst()) : s
            guard let f = byName[name], allowed(name, caller) else { continue }
            sort.append(CrashSearch.Sort(field: f.search, descending: descending))
        }
        let returnQuery = r.value("_return_query").map { ["1", "true", "True", "yes"].contains($0) } ?? false
        return SuperSearchRequest(query: CrashSearch.Query(filters: filters, from: lower, to: upper), columns: columns, sort: sort,
                                  number: number, offset: offset, facetsSize: facetsSize, returnQuery: returnQuery,
                                  facetJobs: try facetJobs(r, caller: caller, size: facetsSize))
    }

    /// `_facets`, then `_aggs.a[.b[.c]]=sub`, then `_histogram.f=sub`, in that order.
    func facetJobs(_ r: APIRequest, caller: Caller, size: Int) throws -> [SuperSearchRequest.FacetJob] {
        typealias Job = SuperSearchRequest.FacetJob
        var jobs: [Job] = []
        func subs(_ specs: [String]) throws -> [Sub] {
            try specs.compactMap { spec in
                if spec.hasPrefix("_cardinality.") {
                    let name = String(spec.dropFirst("_cardinality.".count))
                    guard let f = byName[name], allowed(name, caller) else { return nil }
                    return .cardinality(f)
                }
                return try dimension(spec, r, caller).map { .dimension($0) }
            }
        }
        let facetNames = r.values("_facets").isEmpty && !r.query.contains(where: { $0.0 == "_facets" }) ? Self.metaDefaults.facets : r.values("_facets")
        for name in facetNames where !name.isEmpty {
            if name.hasPrefix("_cardinality.") {
                guard case .cardinality(let f)? = try subs([name]).first else { continue }
                jobs.append(Job(key: "cardinality_\(f.name)", work: .cardinality(f)))
            } else if let d = try dimension(name, r, caller), size > 0 {
                jobs.append(Job(key: d.key, work: .buckets([d], [])))
            }
        }
        var seen = Set<String>()
        let params = r.query.map(\.0).filter { seen.insert($0).inserted }
        for param in params where param.hasPrefix("_aggs.") {
            let names = param.dropFirst("_aggs.".count).split(separator: ".").map(String.init)
            guard (1...3).contains(names.count), size > 0 else { continue }
            let path = try names.compactMap { try dimension($0, r, caller) }
            guard path.count == names.count else { continue }
            jobs.append(Job(key: names[0], work: .buckets(path, try subs(r.values(param)))))
        }
        for param in params where param.hasPrefix("_histogram.") {
            guard let d = try dimension(param, r, caller) else { continue }
            jobs.append(Job(key: d.key, work: .buckets([d], try subs(r.values(param).filter { !$0.isEmpty }))))
        }
        return jobs
    }

    func dimension(_ spec: String, _ r: APIRequest, _ caller: Caller) throws -> Dimension? {
        if spec.hasPrefix("_histogram.") {
            let name = String(spec.dropFirst("_histogram.".count))
            guard let f = byName[name], allowed(name, caller) else { return nil }
            return Dimension(field: f, interval: try Self.interval(r.value("_histogram_interval.\(name)"), type: f.type))
        }
        guard let f = byName[spec], allowed(spec, caller) else { return nil }
        return Dimension(field: f, interval: nil)
    }

    /// One field's values as conditions: OR-ed, except ranges (AND-ed); `!` negates.
    func filter(_ f: Field, _ values: [String]) throws -> CrashSearch.Filter {
        var filter = CrashSearch.Filter(field: f.search)
        for raw in values {
            var text = raw
            let negated = text.hasPrefix("!")
            if negated { text.removeFirst() }
            let match: CrashSearch.Match
            var isRange = false
            if text == "__null__" {
                match = .isNull
            } else {
                let (op, value) = Self.splitOperator(text)
                switch (f.type, op) {
                case (.integer, ">"), (.integer, ">="), (.integer, "<"), (.integer, "<="):
                    guard let n = Int64(value) else { throw BadRequest(message: "'\(value)' is not an integer for \(f.name).") }
                    match = .compare(op, n)
                    isRange = true
                case (.integer, ""):
                    guard let n = Int64(value) else { throw BadRequest(message: "'\(value)' is not an integer for \(f.name).") }
                    match = .integerEquals(n)
                case (.integer, _):
                    throw BadRequest(message: "Operator '\(op)' is not valid for \(f.name).")
                case (.string, "="): match = .equals(value)
                case (.string, "~"): match = .contains(value)
                case (.string, "^"): match = .prefix(value)
                case (.string, "$"): match = .suffix(value)
                case (.string, ""):
                    if f.name == "version", value.hasSuffix("b") {
                        // `68.0b` means every 68.0 beta.
                        match = .prefix(value)
                    } else {
                        // "Has terms": every word of the value occurs in the field (case-insensitive).
                        let words = value.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
                        guard !words.isEmpty else { throw BadRequest(message: "An empty value for \(f.name).") }
                        match = .words(words)
                    }
                case (.string, "@"):
                    // A regular expression matching the whole value (as on Socorro's keyword fields).
                    guard (try? NSRegularExpression(pattern: value)) != nil else { throw BadRequest(message: "'\(value)' is not a valid regular expression.") }
                    match = .regex(value)
                case (.string, _):
                    throw BadRequest(message: "Operator '\(op)' is not supported for \(f.name).")
                case (.date, _):
                    throw BadRequest(message: "Dates need a range operator.")
                case (.boolean, _):
                    // `__true__`; a bare value is read as a boolean too.
                    let truth: Bool
                    switch value.lowercased() {
                    case "__true__", "true", "t", "1", "yes": truth = true
                    case "false", "f", "0", "no": truth = false
                    default: throw BadRequest(message: "'\(value)' is not a boolean for \(f.name).")
                    }
                    guard op.isEmpty else { throw BadRequest(message: "Operator '\(op)' is not valid for \(f.name).") }
                    match = .boolean(truth)
                }
            }
            let condition = CrashSearch.Condition(match, negated: negated)
            if isRange { filter.all.append(condition) } else { filter.any.append(condition) }
        }
        return filter
    }

    /// A filter keeping the crashes whose field is one of `terms` (as the grouped query returns
    /// them: text), nil where terms cannot be matched back (dates) or there are none.
    static func restriction(_ field: Field, _ terms: some Sequence<String>) -> CrashSearch.Filter? {
        var conditions: [CrashSearch.Condition] = []
        if field.type == .string {
            let values = Array(terms)
            return values.isEmpty ? nil : CrashSearch.Filter(field: field.search, any: [CrashSearch.Condition(.oneOf(values))])
        }
        for term in terms {
            switch field.type {
            case .string: conditions.append(CrashSearch.Condition(.equals(term)))
            case .integer:
                guard let n = Int64(term) else { return nil }
                conditions.append(CrashSearch.Condition(.integerEquals(n)))
            case .boolean: conditions.append(CrashSearch.Condition(.boolean(term == "1")))
            case .date: return nil
            }
        }
        guard !conditions.isEmpty else { return nil }
        return CrashSearch.Filter(field: field.search, any: conditions)
    }

    /// A histogram interval: for dates `day` (default), `week`, `hour`, `minute` or a number with
    /// `s`/`m`/`h`/`d`/`w` (`1h`, `1.5h`), in microseconds; for numbers a positive integer.
    static func interval(_ text: String?, type: FieldType) throws -> Int64 {
        guard type == .date else {
            guard let text, !text.isEmpty else { return 1 }
            guard let n = Int64(text), n > 0 else { throw BadRequest(message: "Histogram interval '\(text)' is not a positive integer.") }
            return n
        }
        let named: [String: Double] = ["day": 86_400, "week": 604_800, "hour": 3_600, "minute": 60, "month": 2_592_000]
        let t = text ?? "day"
        if let s = named[t] { return Int64(s * 1_000_000) }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        // `1e20s`, `inf`, `nan`, negatives and zero are refused, never converted with a trap.
        guard let unit = t.last, let factor = units[unit], let n = Double(t.dropLast()), n.isFinite, n > 0, n * factor >= 1,
              let micros = Int64(exactly: (n * factor * 1_000_000).rounded(.down)) else {
            throw BadRequest(message: "Histogram interval '\(t)' is not valid.")
        }
        return micros
    }

    /// The operator prefix of a filter value and the rest.
    static func splitOperator(_ v: String) -> (String, String) {
        for op in [">=", "<=", ">", "<", "=", "~", "^", "$", "@"] where v.hasPrefix(op) { return (op, String(v.dropFirst(op.count))) }
        return ("", v)
    }

    /// `2024-01-01`, `2024-01-01 00:00:00`, `2024-01-01T00:00:00` (UTC) or an RFC 3339 time.
    static func parseDate(_ text: String) -> Double? {
        if let t = ISOTime.parse(text) { return t }
        var s = text.replacingOccurrences(of: " ", with: "T")
        if s.count == 10 { s += "T00:00:00" }
        return ISOTime.parse(s + "Z")
    }

    static func integer(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text, !text.isEmpty else { return value }
        guard let n = Int(text), range.contains(n) else { throw BadRequest(message: "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound).") }
        return n
    }
}

extension CrashSearch.FieldType {
    /// Crash Stats' names for the field's type and its storage.
    var validationType: String {
        switch self { case .string: "str"; case .integer: "int"; case .date: "datetime"; case .boolean: "bool" }
    }
    /// The value prefixes allowed (`""` is the bare value); `!` may precede any of them.
    var operators: [String] {
        switch self {
        case .string: ["", "=", "~", "^", "$", "@", "__null__"]
        case .integer: ["", ">", ">=", "<", "<=", "__null__"]
        case .date: [">", ">=", "<", "<=", "__null__"]
        case .boolean: ["__true__", "__null__"]
        }
    }
    var storageType: String {
        switch self { case .string: "keyword"; case .integer: "long"; case .date: "date"; case .boolean: "boolean" }
    }
}
