import CrashModel
import Synchronization
import Foundation
import JSONSupport
import SQLKit
import Storage

/// Super Search (`crash-stats-api.md` §3) over the MetadataStore crash index: filters with the
/// reference's operators, `_columns`, `_sort`, paging, terms facets and cardinalities. The same
/// SQL runs on SQLite and PostgreSQL; string operators compare bytes exactly on both.
struct SuperSearch: Sendable {
    let metadata: MetadataStore
    let schema: CrashSchema
    /// `product` values must name one of these (when there are product files).
    let products: ProductCatalog
    /// How long one search may take, waiting for a slot included (`api.query_timeout`).
    var timeout: Duration = .seconds(10)
    /// Searches run at once (`api.max_concurrent_searches`); the others wait for a slot until
    /// their time is up. Keeps database connections and cores for crash intake and processing.
    let slots: SearchSlots

    /// A grouped query returns at most this many groups: facets and aggregations never read an
    /// unbounded set of groups into memory, whatever the field's cardinality.
    static let maxGroups = 50_000
    /// The end of the search running in this task, and the same as `pm_regexp`'s deadline.
    @TaskLocal static var deadline: ContinuousClock.Instant?
    @TaskLocal static var regexDeadline: Int64 = .max

    enum FieldType: String, Sendable {
        case string, integer, date, boolean
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

    struct Field: Sendable {
        let name: String
        let type: FieldType
        /// The indexed column, or nil for a member of the JSON document.
        let column: String?
        let description: String
        /// The processed-crash field it comes from (its schema permissions apply).
        let source: String
    }

    /// The crash id, the date, and the index's typed columns (`CrashIndexRow.fields`) under their
    /// Super Search names; types and descriptions come from the schema.
    static func columnFields(_ schema: CrashSchema) -> [Field] {
        var out = [
            Field(name: "uuid", type: .string, column: "crash_id", description: schema.field("uuid")?.description.nonEmpty ?? "The crash id.", source: "uuid"),
            Field(name: "date", type: .date, column: "date_processed",
                  description: schema.field("date_processed")?.description.nonEmpty ?? "When the crash was received.", source: "date_processed"),
        ]
        for f in CrashIndexRow.fields {
            guard let name = f.searchName else { continue }
            let type: FieldType
            switch f.kind {
            case .text: type = .string
            case .integer: type = .integer
            case .time: type = .date
            }
            out.append(Field(name: name, type: type, column: f.column, description: schema.field(f.processedField)?.description ?? "", source: f.processedField))
        }
        return out
    }

    /// Searchable fields, generated from the processed crash schema: the typed columns, and every
    /// other top-level field with a scalar type as a member of the index document. Descriptions
    /// and permissions come from the schema.
    let fields: [Field]
    let byName: [String: Field]

    init(metadata: MetadataStore, schema: CrashSchema, products: ProductCatalog = ProductCatalog(products: []), timeout: Duration = .seconds(10), maxConcurrent: Int = 4) {
        self.metadata = metadata
        self.schema = schema
        self.products = products
        self.timeout = timeout
        slots = SearchSlots(maxConcurrent)
        var fields = Self.columnFields(schema)
        let covered = Set(fields.map(\.source)).union(["crash_id"])
        for name in schema.fieldNames.sorted() where !covered.contains(name) {
            guard let node = schema.field(name) else { continue }
            let type: FieldType
            switch node.types.first(where: { $0 != "null" }) {
            case "string": type = .string
            case "integer", "number": type = .integer
            case "boolean": type = .boolean
            default: continue
            }
            fields.append(Field(name: name, type: type, column: nil, description: node.description, source: name))
        }
        self.fields = fields
        byName = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
    }

    static let metaDefaults = (columns: ["uuid", "date", "signature", "product", "version"], facets: ["signature"])

    struct BadRequest: Error { let message: String }
    /// A parameter the form validation refuses (400 `{"errors": {name: [message]}}`).
    struct InvalidParameter: Error {
        let name: String
        let message: String
    }

    func sql(_ field: Field, _ kind: DatabaseKind) -> String {
        if let c = field.column { return c }
        // Document members; the name is one of the fixed field names above, never user text.
        // Booleans read as 1/0 on both backends.
        if field.type == .boolean {
            return kind == .sqlite ? "json_extract(document, '$.\(field.name)')"
                : "(CASE (document->>'\(field.name)') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
        }
        if field.type == .integer, kind == .postgres {
            // Text on PostgreSQL: numbers only (a value that is not one is no match, not an error).
            return "(CASE WHEN (document->>'\(field.name)') ~ '^-?[0-9]{1,18}$' THEN CAST(document->>'\(field.name)' AS BIGINT) END)"
        }
        return kind == .sqlite ? "json_extract(document, '$.\(field.name)')" : "(document->>'\(field.name)')"
    }

    func allowed(_ name: String, _ caller: Caller) -> Bool {
        guard let f = byName[name] else { return false }
        return schema.permissionsNeeded(f.source).allSatisfy(caller.dataPermissions.contains)
    }

    func run(_ r: APIRequest, caller: Caller, unredacted: Bool, pretty: Bool) async throws -> APIResponse {
        if unredacted, !caller.permissions.contains("view_pii") {
            return .error(403, "Use of this endpoint requires the 'View Personal Identifiable Information' permission")
        }
        let deadline = ContinuousClock.now + timeout
        do {
            guard await slots.acquire(until: deadline) else { throw QueryTimedOut() }
            defer { slots.release() }
            let result = try await Self.$deadline.withValue(deadline) {
                try await Self.$regexDeadline.withValue(MetadataStore.regexDeadline(deadline - ContinuousClock.now)) {
                    try await search(r, caller: caller)
                }
            }
            return .json(200, result, pretty: pretty)
        } catch let e as BadRequest {
            return .error(400, "Bad request: BadArgumentError: \(e.message)")
        } catch let e as InvalidParameter {
            return .formErrors([(e.name, e.message)])
        } catch is QueryTimedOut {
            return .error(504, "The search did not finish within \(timeout.components.seconds) seconds; narrow it down (a shorter date range, fewer facets, a simpler regular expression).")
        }
    }

    /// A search query with what is left of this search's time.
    func query(_ q: SQLQueryString) async throws -> [any SQLRow] {
        var left: Duration?
        if let deadline = Self.deadline {
            left = deadline - ContinuousClock.now
            guard let l = left, l > .zero else { throw QueryTimedOut() }
        }
        return try await metadata.search(q, timeout: left)
    }

    func search(_ r: APIRequest, caller: Caller) async throws -> JSONValue {
        let kind = metadata.database.kind
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
        var whereSQL: SQLQueryString = "1 = 1"
        // Filters: every known field present as a parameter; fields the caller may not use are
        // dropped silently, as Socorro does.
        var from: Int64?, to: Int64?
        for field in fields {
            let values = r.query.filter { $0.0 == field.name }.map(\.1)
            guard !values.isEmpty, allowed(field.name, caller) else { continue }
            if field.type == .date {
                for v in values {
                    let (op, text) = Self.splitOperator(v)
                    guard [">", ">=", "<", "<="].contains(op), let seconds = Self.parseDate(text) else {
                        throw BadRequest(message: "Date value '\(v)' needs a range operator (>, >=, <, <=) and a date.")
                    }
                    let micros = Int64(seconds * 1_000_000)
                    switch op {
                    case ">": from = max(from ?? .min, micros + 1)
                    case ">=": from = max(from ?? .min, micros)
                    case "<": to = min(to ?? .max, micros)
                    default: to = min(to ?? .max, micros + 1)
                    }
                }
                continue
            }
            whereSQL += " AND "
            whereSQL += try condition(field, values, kind)
        }
        // The date window: the last 7 days by default, 7 days before an upper bound, at most 365.
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let day: Int64 = 86_400_000_000
        let upper = to ?? (now + 1)
        let lower = from ?? (upper - 7 * day)
        guard upper - lower <= 365 * day else { throw BadRequest(message: "The date range is longer than 365 days.") }
        whereSQL += " AND date_processed >= \(bind: lower) AND date_processed < \(bind: upper)"

        // Meta parameters.
        let number = try Self.integer(r.value("_results_number"), name: "_results_number", default: 100, range: 0...1000)
        let offset = try Self.integer(r.value("_results_offset"), name: "_results_offset", default: 0, range: 0...10_000)
        guard offset + number <= 10_000 else { throw BadRequest(message: "_results_offset + _results_number must be at most 10000.") }
        let facetsSize = try Self.integer(r.value("_facets_size"), name: "_facets_size", default: 50, range: 0...10_000)
        var columns = r.values("_columns").filter { byName[$0] != nil && allowed($0, caller) }
        if r.values("_columns").isEmpty { columns = Self.metaDefaults.columns }
        var order: SQLQueryString = ""
        for s in r.values("_sort") {
            let descending = s.hasPrefix("-")
            let name = descending ? String(s.dropFirst()) : s
            guard let f = byName[name], allowed(name, caller) else { continue }
            order += "\(unsafeRaw: sql(f, kind)) \(unsafeRaw: descending ? "DESC" : "ASC"), "
        }
        order += "date_processed DESC, crash_id"

        if let flag = r.value("_return_query"), ["1", "true", "True", "yes"].contains(flag) {
            // The backend query instead of results: the filter as the database receives it.
            let (text, binds) = try await metadata.describe("SELECT crash_id FROM crashes WHERE \(whereSQL) ORDER BY \(order)")
            return .object([("query", .object([("sql", .string(text)), ("binds", .array(binds.map { .string($0) }))])),
                            ("indices", .array([.string("crashes")]))])
        }
        let total = try await query("SELECT COUNT(*) AS n FROM crashes WHERE \(whereSQL)").first?.decode(column: "n", as: Int64.self) ?? 0
        var hits: [JSONValue] = []
        if number > 0 {
            var select: SQLQueryString = "SELECT crash_id, date_processed"
            for (i, c) in columns.enumerated() {
                guard let f = byName[c], f.name != "uuid", f.name != "date" else { continue }
                select += ", CAST(\(unsafeRaw: sql(f, kind)) AS \(unsafeRaw: f.type == .integer || f.type == .boolean ? "BIGINT" : "TEXT")) AS c\(unsafeRaw: String(i))"
            }
            let rows = try await query(select + " FROM crashes WHERE \(whereSQL) ORDER BY \(order) LIMIT \(bind: number) OFFSET \(bind: offset)")
            for row in rows {
                var members: [(String, JSONValue)] = []
                for (i, c) in columns.enumerated() {
                    guard let f = byName[c] else { continue }
                    switch f.name {
                    case "uuid": members.append(("uuid", .string(try row.decode(column: "crash_id", as: String.self))))
                    case "date": members.append(("date", .string(ISOTime.string(Double(try row.decode(column: "date_processed", as: Int64.self)) / 1_000_000))))
                    default:
                        if f.type == .boolean {
                            members.append((c, (try row.decode(column: "c\(i)", as: Int64?.self)).map { .bool($0 != 0) } ?? .null))
                        } else if f.type == .integer {
                            members.append((c, (try row.decode(column: "c\(i)", as: Int64?.self)).map { .int($0) } ?? .null))
                        } else {
                            members.append((c, (try row.decode(column: "c\(i)", as: String?.self)).map { .string($0) } ?? .null))
                        }
                    }
                }
                hits.append(.object(members))
            }
        }

        let facets = try await aggregations(r, caller: caller, whereSQL: whereSQL, size: facetsSize, kind: kind)
        return .object([("hits", .array(hits)), ("total", .int(total)), ("facets", .object(facets)), ("errors", .array([]))])
    }

    // MARK: - facets, aggregations, histograms, cardinalities

    /// One level of bucketing: the terms of a field, or a histogram over it.
    struct Dimension {
        let field: Field
        /// A histogram's bucket width (microseconds for dates), nil for terms.
        let interval: Int64?
        var key: String { interval == nil ? field.name : "histogram_\(field.name)" }
    }

    /// What is computed inside each bucket of the deepest level.
    enum Sub {
        case dimension(Dimension)
        case cardinality(Field)
    }

    func expression(_ d: Dimension, _ kind: DatabaseKind) -> String {
        let column = d.field.type == .date ? "date_processed" : sql(d.field, kind)
        guard let width = d.interval else { return column }
        // Floor division (values may be negative); the width is a number computed here.
        let w = String(width)
        return "(CASE WHEN \(column) >= 0 THEN \(column) / \(w) ELSE -((-\(column) - 1) / \(w)) - 1 END) * \(w)"
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

    func aggregations(_ r: APIRequest, caller: Caller, whereSQL: SQLQueryString, size: Int, kind: DatabaseKind) async throws -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        func put(_ key: String, _ value: JSONValue) {
            if let i = out.firstIndex(where: { $0.0 == key }) { out[i].1 = value } else { out.append((key, value)) }
        }
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
                let n = try await query("SELECT COUNT(DISTINCT \(unsafeRaw: sql(f, kind))) AS n FROM crashes WHERE \(whereSQL)")
                    .first?.decode(column: "n", as: Int64.self) ?? 0
                put("cardinality_\(f.name)", .object([("value", .int(n))]))
            } else if let d = try dimension(name, r, caller), size > 0 {
                put(d.key, try await buckets([d], subs: [], whereSQL: whereSQL, size: size, kind: kind))
            }
        }
        // `_aggs.a=b`, `_aggs.a.b=c`, `_aggs.a.b.c=d`: sub-facets per term, nested.
        var seen = Set<String>()
        let params = r.query.map(\.0).filter { seen.insert($0).inserted }
        for param in params where param.hasPrefix("_aggs.") {
            let names = param.dropFirst("_aggs.".count).split(separator: ".").map(String.init)
            guard (1...3).contains(names.count), size > 0 else { continue }
            let path = try names.compactMap { try dimension($0, r, caller) }
            guard path.count == names.count else { continue }
            let inner = try subs(r.values(param))
            put(names[0], try await buckets(path, subs: inner, whereSQL: whereSQL, size: size, kind: kind))
        }
        // `_histogram.f=sub`: buckets over f with sub-facets.
        for param in params where param.hasPrefix("_histogram.") {
            guard let d = try dimension(param, r, caller) else { continue }
            put(d.key, try await buckets([d], subs: try subs(r.values(param).filter { !$0.isEmpty }), whereSQL: whereSQL, size: size, kind: kind))
        }
        return out
    }

    /// Nested buckets for `path` (1–3 levels) with `subs` in each deepest bucket. Each level is
    /// one grouped query; levels below the first are limited to the kept terms above them.
    func buckets(_ path: [Dimension], subs: [Sub], whereSQL: SQLQueryString, size: Int, kind: DatabaseKind) async throws -> JSONValue {
        let subDims = subs.compactMap { if case .dimension(let d) = $0 { return d } else { return nil } }
        // One grouped query per chain (the path, or the path plus one sub-dimension), NULL keys
        // included, so every level above the deepest is summed from the same rows instead of
        // scanning the window again.
        func grouped(_ chain: [Dimension]) async throws -> [([String?], Int64)] {
            var select: SQLQueryString = "SELECT "
            for (i, c) in chain.enumerated() {
                if i > 0 { select += ", " }
                select += "CAST(\(unsafeRaw: expression(c, kind)) AS TEXT) AS k\(unsafeRaw: String(i))"
            }
            select += ", COUNT(*) AS n FROM crashes WHERE \(whereSQL) GROUP BY \(unsafeRaw: (1...chain.count).map(String.init).joined(separator: ", "))"
            // The largest groups only: exactly the top `size` for one level of terms, a cap of
            // `maxGroups` otherwise (histogram buckets and nested levels are then summed from it).
            let exact = chain.count == 1 && chain[0].interval == nil
            select += " ORDER BY n DESC, 1 LIMIT \(bind: exact ? max(1, size) : Self.maxGroups)"
            return try await query(select).map { row in
                (try (0..<chain.count).map { try row.decode(column: "k\($0)", as: String?.self) }, try row.decode(column: "n", as: Int64.self))
            }
        }
        /// Buckets at `depth` per parent prefix: rows whose keys down to `depth` are all present.
        /// Histograms in bucket order; terms by count, keeping `size` per parent.
        func rollup(_ rows: [([String?], Int64)], depth: Int, histogram: Bool) -> [[String]: [(String, Int64)]] {
            var sums: [[String]: [String: Int64]] = [:]
            for (keys, n) in rows {
                let head = keys[0...depth].compactMap { $0 }
                guard head.count == depth + 1 else { continue }
                sums[Array(head.dropLast()), default: [:]][head.last!, default: 0] += n
            }
            return sums.mapValues { counts in
                histogram ? counts.sorted { (Int64($0.key) ?? 0) < (Int64($1.key) ?? 0) }.map { ($0.key, $0.value) }
                    : Array(counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(size)).map { ($0.key, $0.value) }
            }
        }
        let base = try await grouped(subDims.isEmpty ? path : path + [subDims[0]])
        let levels = (0..<path.count).map { rollup(base, depth: $0, histogram: path[$0].interval != nil) }
        var subLevels: [[[String]: [(String, Int64)]]] = []
        for (i, d) in subDims.enumerated() {
            let rows = i == 0 ? base : try await grouped(path + [d])
            subLevels.append(rollup(rows, depth: path.count, histogram: d.interval != nil))
        }
        // Cardinalities per deepest path bucket.
        var cardinalities: [(Field, [[String]: Int64])] = []
        for case .cardinality(let f) in subs {
            var select: SQLQueryString = "SELECT "
            var nn: SQLQueryString = ""
            for (i, c) in path.enumerated() {
                let e = expression(c, kind)
                if i > 0 { select += ", " }
                select += "CAST(\(unsafeRaw: e) AS TEXT) AS k\(unsafeRaw: String(i))"
                nn += " AND \(unsafeRaw: e) IS NOT NULL"
            }
            select += ", COUNT(DISTINCT \(unsafeRaw: sql(f, kind))) AS n FROM crashes WHERE \(whereSQL)\(nn) GROUP BY \(unsafeRaw: (1...path.count).map(String.init).joined(separator: ", "))"
            var values: [[String]: Int64] = [:]
            for row in try await query(select) {
                values[try (0..<path.count).map { try row.decode(column: "k\($0)", as: String.self) }] = try row.decode(column: "n", as: Int64.self)
            }
            cardinalities.append((f, values))
        }
        func render(_ d: Dimension, _ key: String) -> JSONValue {
            if d.field.type == .boolean { return .string(key == "1" ? "T" : "F") }
            if d.interval != nil, d.field.type == .date, let micros = Int64(key) { return .string(ISOTime.string(Double(micros) / 1_000_000, fraction: false)) }
            if d.field.type == .integer || d.interval != nil { return Int64(key).map { .int($0) } ?? .string(key) }
            return .string(key)
        }
        func level(_ depth: Int, _ prefix: [String]) -> JSONValue {
            let d = path[depth]
            let list = levels[depth][prefix] ?? []
            return .array(list.map { key, count in
                var bucket: [(String, JSONValue)] = [("term", render(d, key)), ("count", .int(count))]
                let keys = prefix + [key]
                var inner: [(String, JSONValue)] = []
                if depth + 1 < path.count {
                    inner.append((path[depth + 1].key, level(depth + 1, keys)))
                } else {
                    for (sd, groups) in zip(subDims, subLevels) {
                        inner.append((sd.key, .array((groups[keys] ?? []).map { k, n in .object([("term", render(sd, k)), ("count", .int(n))]) })))
                    }
                    for (f, values) in cardinalities { inner.append(("cardinality_\(f.name)", .object([("value", .int(values[keys] ?? 0))]))) }
                }
                if !inner.isEmpty { bucket.append(("facets", .object(inner))) }
                return .object(bucket)
            })
        }
        return level(0, [])
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

    /// The SQL condition for one field's values: OR-ed, except ranges (AND-ed); `!` negates.
    func condition(_ f: Field, _ values: [String], _ kind: DatabaseKind) throws -> SQLQueryString {
        let column = sql(f, kind)
        var any: [SQLQueryString] = [], all: [SQLQueryString] = []
        for raw in values {
            var text = raw
            let negated = text.hasPrefix("!")
            if negated { text.removeFirst() }
            var clause: SQLQueryString
            var isRange = false
            if text == "__null__" {
                clause = "\(unsafeRaw: column) IS NULL"
            } else {
                let (op, value) = Self.splitOperator(text)
                switch (f.type, op) {
                case (.integer, ">"), (.integer, ">="), (.integer, "<"), (.integer, "<="):
                    guard let n = Int64(value) else { throw BadRequest(message: "'\(value)' is not an integer for \(f.name).") }
                    clause = "\(unsafeRaw: column) \(unsafeRaw: op) \(bind: n)"
                    isRange = true
                case (.integer, ""):
                    guard let n = Int64(value) else { throw BadRequest(message: "'\(value)' is not an integer for \(f.name).") }
                    clause = "\(unsafeRaw: column) = \(bind: n)"
                case (.integer, _):
                    throw BadRequest(message: "Operator '\(op)' is not valid for \(f.name).")
                case (.string, "="):
                    clause = "\(unsafeRaw: column) = \(bind: value)"
                case (.string, "~"):
                    clause = kind == .sqlite ? "instr(\(unsafeRaw: column), \(bind: value)) > 0" : "strpos(\(unsafeRaw: column), \(bind: value)) > 0"
                case (.string, "^"):
                    clause = kind == .sqlite ? "substr(\(unsafeRaw: column), 1, \(bind: value.unicodeScalars.count)) = \(bind: value)"
                        : "left(\(unsafeRaw: column), CAST(\(bind: value.unicodeScalars.count) AS INTEGER)) = \(bind: value)"
                case (.string, "$"):
                    clause = kind == .sqlite ? "substr(\(unsafeRaw: column), -\(bind: value.unicodeScalars.count)) = \(bind: value)"
                        : "right(\(unsafeRaw: column), CAST(\(bind: value.unicodeScalars.count) AS INTEGER)) = \(bind: value)"
                case (.string, ""):
                    if f.name == "version", value.hasSuffix("b") {
                        // `68.0b` means every 68.0 beta.
                        clause = kind == .sqlite ? "substr(\(unsafeRaw: column), 1, \(bind: value.unicodeScalars.count)) = \(bind: value)"
                            : "left(\(unsafeRaw: column), CAST(\(bind: value.unicodeScalars.count) AS INTEGER)) = \(bind: value)"
                    } else {
                        // "Has terms": every word of the value occurs in the field (case-insensitive).
                        let words = value.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
                        guard !words.isEmpty else { throw BadRequest(message: "An empty value for \(f.name).") }
                        clause = "1 = 1"
                        for w in words {
                            clause += kind == .sqlite ? " AND instr(lower(\(unsafeRaw: column)), \(bind: w)) > 0"
                                : " AND strpos(lower(\(unsafeRaw: column)), \(bind: w)) > 0"
                        }
                    }
                case (.string, "@"):
                    // A regular expression matching the whole value (as on Socorro's keyword fields).
                    guard (try? NSRegularExpression(pattern: value)) != nil else { throw BadRequest(message: "'\(value)' is not a valid regular expression.") }
                    clause = kind == .sqlite ? "pm_regexp(\(bind: value), \(unsafeRaw: column), \(bind: Self.regexDeadline)) = 1"
                        : "\(unsafeRaw: column) ~ ('^(?:' || \(bind: value) || ')$')"
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
                    clause = "\(unsafeRaw: column) = \(bind: truth ? 1 : 0)"
                }
            }
            if negated { clause = "NOT (COALESCE((\(clause)), \(unsafeRaw: kind == .sqlite ? "0" : "FALSE")))" }
            if isRange { all.append(clause) } else { any.append(clause) }
        }
        var out: SQLQueryString = "("
        var first = true
        for c in all {
            if !first { out += " AND " }
            out += "(\(c))"
            first = false
        }
        if !any.isEmpty {
            if !first { out += " AND " }
            out += "("
            for (i, c) in any.enumerated() {
                if i > 0 { out += " OR " }
                out += "(\(c))"
            }
            out += ")"
        }
        out += ")"
        return out
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

/// A counter of searches in progress; waiting polls (searches are few and long, so a 20 ms poll
/// costs nothing and needs no continuation bookkeeping for waiters that time out).
final class SearchSlots: Sendable {
    private let limit: Int
    private let used = Mutex(0)

    init(_ limit: Int) { self.limit = max(1, limit) }

    func acquire(until deadline: ContinuousClock.Instant) async -> Bool {
        while true {
            if used.withLock({ n in n < limit ? { n += 1; return true }() : false }) { return true }
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func release() { used.withLock { $0 -= 1 } }
}
