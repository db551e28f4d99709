import CrashModel
import Foundation
import JSONSupport
import Storage
import Synchronization

/// Super Search (`crash-stats-api.md` §3) over the crash index: the searchable fields (from the
/// processed schema and the index's field table), the run with its time limit and slots, and the
/// rendering of hits, facets and aggregations. Parameters are parsed into a typed query by
/// `SuperSearchParameters.swift`; the SQL is Storage's (`CrashSearch`), the same on SQLite and
/// PostgreSQL.
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

    typealias FieldType = CrashSearch.FieldType

    struct Field: Sendable {
        /// The field as the index stores it (name, type, column or document member).
        let search: CrashSearch.Field
        let description: String
        /// The processed-crash field it comes from.
        let source: String
        /// The data permissions needed to use it (the schema's, for a nested member its own and
        /// its parent's).
        let permissions: [String]
        var name: String { search.name }
        var type: FieldType { search.type }
    }

    /// The crash id, the date, and the index's typed columns (`CrashIndexRow.fields`) under their
    /// Super Search names; types and descriptions come from the schema.
    static func columnFields(_ schema: CrashSchema) -> [Field] {
        var out: [Field] = []
        func add(_ name: String, _ type: FieldType, _ column: String, _ source: String, _ fallback: String = "") {
            guard let f = CrashSearch.Field(name: name, type: type, column: column) else { return }
            out.append(Field(search: f, description: schema.field(source)?.description.nonEmpty ?? fallback, source: source,
                             permissions: schema.permissionsNeeded(source)))
        }
        add("uuid", .string, "crash_id", "uuid", "The crash id.")
        add("date", .date, "date_processed", "date_processed", "When the crash was received.")
        for f in CrashIndexRow.fields {
            guard let name = f.searchName else { continue }
            switch f.kind {
            case .text: add(name, .string, f.column, f.processedField)
            case .integer: add(name, .integer, f.column, f.processedField)
            case .time: add(name, .date, f.column, f.processedField)
            }
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
        for name in schema.fieldNames.sorted() where !covered.contains(name) && !CrashIndexRow.documentExcluded.contains(name) {
            guard let node = schema.field(name) else { continue }
            let needed = schema.permissionsNeeded(name)
            func scalarType(_ type: String?) -> FieldType? {
                switch type {
                case "string": return .string
                case "integer", "number": return .integer
                case "boolean": return .boolean
                default: return nil
                }
            }
            if let type = scalarType(node.primaryType) {
                // A name that cannot be a JSON path member is not searchable (CrashSearch.Field).
                guard let f = CrashSearch.Field(name: name, type: type, column: nil) else { continue }
                fields.append(Field(search: f, description: node.description, source: name, permissions: needed))
            } else if node.primaryType == "array", node.itemType == nil || node.itemType == "string",
                      let f = CrashSearch.Field(name: name, type: .string, column: nil, isArray: true) {
                // Arrays of strings (`addons`): a value matches when one element does.
                fields.append(Field(search: f, description: node.description, source: name, permissions: needed))
            } else if node.primaryType == "object" {
                // Declared scalar members of an object (`memory_measures.explicit`).
                for (member, child) in node.members {
                    guard let type = scalarType(child.primaryType),
                          let f = CrashSearch.Field(name: name + "." + member, type: type, column: nil, path: [name, member]) else { continue }
                    let permissions = Array(Set(needed + (child.permissions ?? [])).sorted())
                    fields.append(Field(search: f, description: child.description, source: name, permissions: permissions))
                }
            }
        }
        self.fields = fields
        byName = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
    }

    func allowed(_ name: String, _ caller: Caller) -> Bool {
        guard let f = byName[name] else { return false }
        return f.permissions.allSatisfy(caller.dataPermissions.contains)
    }

    func run(_ r: APIRequest, caller: Caller, unredacted: Bool, pretty: Bool) async throws -> APIResponse {
        if unredacted, !caller.permissions.contains("view_pii") {
            return .error(403, "Use of this endpoint requires the 'View Personal Identifiable Information' permission")
        }
        let deadline = ContinuousClock.now + timeout
        do {
            let request = try parse(r, caller: caller)
            guard await slots.acquire(until: deadline) else { throw QueryTimedOut() }
            defer { slots.release() }
            return .json(200, try await execute(request, deadline: deadline), pretty: pretty)
        } catch let e as BadRequest {
            return .error(400, "Bad request: BadArgumentError: \(e.message)")
        } catch let e as InvalidParameter {
            return .formErrors([(e.name, e.message)])
        } catch is QueryTimedOut {
            return .error(504, "The search did not finish within \(timeout.components.seconds) seconds; narrow it down (a shorter date range, fewer facets, a simpler regular expression).")
        }
    }

    func execute(_ request: SuperSearchRequest, deadline: ContinuousClock.Instant) async throws -> JSONValue {
        if request.returnQuery {
            // The backend query instead of results: the filter as the database receives it.
            let (text, binds) = try await metadata.describeSearch(request.query, sort: request.sort)
            return .object([("query", .object([("sql", .string(text)), ("binds", .array(binds.map { .string($0) }))])),
                            ("indices", .array([.string("crashes")]))])
        }
        let total = try await metadata.searchTotal(request.query, deadline: deadline)
        var hits: [JSONValue] = []
        if request.number > 0 {
            let selected = request.columns.filter { $0.name != "uuid" && $0.name != "date" }
            let rows = try await metadata.searchHits(request.query, columns: selected.map(\.search), sort: request.sort,
                                                     limit: request.number, offset: request.offset, deadline: deadline)
            for row in rows {
                var members: [(String, JSONValue)] = []
                var next = 0
                for c in request.columns {
                    switch c.name {
                    case "uuid": members.append(("uuid", .string(row.crashID)))
                    case "date": members.append(("date", .string(ISOTime.string(Double(row.dateProcessed) / 1_000_000))))
                    default:
                        members.append((c.name, row.values[next]))
                        next += 1
                    }
                }
                hits.append(.object(members))
            }
        }
        var facets: [(String, JSONValue)] = []
        for job in request.facetJobs {
            let value: JSONValue
            switch job.work {
            case .cardinality(let f):
                let n = try await metadata.searchCardinality(request.query, field: f.search, deadline: deadline)[[]] ?? 0
                value = .object([("value", .int(n))])
            case .buckets(let path, let subs):
                value = try await buckets(path, subs: subs, query: request.query, size: request.facetsSize, deadline: deadline)
            }
            if let i = facets.firstIndex(where: { $0.0 == job.key }) { facets[i].1 = value } else { facets.append((job.key, value)) }
        }
        return .object([("hits", .array(hits)), ("total", .int(total)), ("facets", .object(facets)), ("errors", .array([]))])
    }

    // MARK: - facets, aggregations, histograms, cardinalities

    /// One level of bucketing: the terms of a field, or a histogram over it.
    struct Dimension: Sendable {
        let field: Field
        /// A histogram's bucket width (microseconds for dates), nil for terms.
        let interval: Int64?
        var key: String { interval == nil ? field.name : "histogram_\(field.name)" }
        var search: CrashSearch.Dimension { CrashSearch.Dimension(field: field.search, interval: interval) }
    }

    /// What is computed inside each bucket of the deepest level.
    enum Sub: Sendable {
        case dimension(Dimension)
        case cardinality(Field)
    }

    /// Nested buckets for `path` (1–3 levels) with `subs` in each deepest bucket. Each level is
    /// one grouped query; levels below the first are limited to the kept terms above them.
    func buckets(_ path: [Dimension], subs: [Sub], query original: CrashSearch.Query, size: Int, deadline: ContinuousClock.Instant) async throws -> JSONValue {
        let subDims = subs.compactMap { if case .dimension(let d) = $0 { return d } else { return nil } }
        var query = original
        // Nested facets of terms: the top `size` terms of the first level first (one indexed
        // grouped query), then everything below only over the crashes of those terms. Top
        // crashers' sub-facets then read the top signatures' crashes, not the whole window.
        if path[0].interval == nil, path.count > 1 || !subs.isEmpty, let restriction = Self.restriction(path[0].field,
            try await metadata.searchGroups(query, chain: [path[0].search], limit: size + 1, deadline: deadline).compactMap { $0.0[0] }.prefix(size)) {
            query.filters.append(restriction)
        }
        // One grouped query per chain (the path, or the path plus one sub-dimension), NULL keys
        // included, so every level above the deepest is summed from the same rows instead of
        // scanning the window again. The largest groups only: exactly the top `size` for one
        // level of terms, a cap of `maxGroups` otherwise (histogram buckets and nested levels
        // are then summed from it).
        func grouped(_ chain: [Dimension]) async throws -> [([String?], Int64)] {
            let exact = chain.count == 1 && chain[0].interval == nil
            return try await metadata.searchGroups(query, chain: chain.map(\.search), limit: exact ? max(1, size) : Self.maxGroups, deadline: deadline)
        }
        /// Buckets at `depth` per parent prefix: rows whose keys down to `depth` are all present.
        /// Histograms in bucket order; terms by count, keeping `size` per parent.
        func rollup(_ rows: [([String?], Int64)], depth: Int, histogram: Bool) -> [[String]: [(String, Int64)]] {
            var sums: [[String]: [String: Int64]] = [:]
            for (keys, n) in rows {
                let head = keys[0...depth].compactMap { $0 }
                guard head.count == depth + 1, let last = head.last else { continue }
                sums[Array(head.dropLast()), default: [:]][last, default: 0] += n
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
            cardinalities.append((f, try await metadata.searchCardinality(query, field: f.search, path: path.map(\.search), deadline: deadline)))
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
