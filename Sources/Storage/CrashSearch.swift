import Foundation
import JSONSupport
import SQLKit

/// A typed crash search and its SQL for both databases: the filters, the date window, the page
/// of hits and the grouped counts Super Search needs. The search layer (CrashStats) turns request
/// parameters into a `CrashSearch.Query` and renders the answers; only this file writes search
/// SQL. Every value is bound; the only names written into SQL are index columns
/// (`CrashIndexRow.fields`) and document members whose names are plain identifiers.
public enum CrashSearch {
    public enum FieldType: String, Sendable {
        case string, integer, date, boolean
    }

    /// A searchable field: an index column, or a member of the row's JSON document: a top-level
    /// member (`uptime`), a member of an object member (`memory_measures.explicit`), or an array
    /// of strings (`addons`), which matches when one of its elements does.
    public struct Field: Sendable {
        public let name: String
        public let type: FieldType
        /// The indexed column (`crash_id`, `date_processed` or one of `CrashIndexRow.fields`), or
        /// nil for a document member.
        public let column: String?
        /// The document member's path (`["memory_measures", "explicit"]`); empty for columns.
        public let path: [String]
        /// A document member holding an array of strings.
        public let isArray: Bool

        /// nil when the field cannot be searched: a column the index does not have, or a member
        /// path of more than two names or with names other than `[A-Za-z0-9_-]` (they are written
        /// into JSON paths), or an array of anything but strings.
        public init?(name: String, type: FieldType, column: String?, path: [String]? = nil, isArray: Bool = false) {
            if let column {
                guard column == "crash_id" || column == "date_processed" || CrashIndexRow.fields.contains(where: { $0.column == column }), !isArray else { return nil }
                self.path = []
            } else {
                let path = path ?? [name]
                guard (1...2).contains(path.count), path.allSatisfy(Self.isPlainName), !isArray || (type == .string && path.count == 1) else { return nil }
                self.path = path
            }
            self.name = name
            self.type = type
            self.column = column
            self.isArray = isArray
        }

        static func isPlainName(_ s: String) -> Bool {
            !s.isEmpty && s.utf8.count <= 64
                && s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
        }
    }

    /// One value's test.
    public enum Match: Sendable {
        case isNull
        /// Every word occurs in the field (case-insensitive): "has terms".
        case words([String])
        case equals(String)
        /// Equal to one of the values (an `IN` list: one index seek per value).
        case oneOf([String])
        case contains(String)
        case prefix(String)
        case suffix(String)
        /// A regular expression matching the whole value.
        case regex(String)
        case integerEquals(Int64)
        /// `>`, `>=`, `<`, `<=` against a number.
        case compare(String, Int64)
        case boolean(Bool)
    }

    public struct Condition: Sendable {
        public var match: Match
        public var negated: Bool
        public init(_ match: Match, negated: Bool = false) {
            self.match = match
            self.negated = negated
        }
    }

    /// One field's conditions: ranges AND-ed, the others OR-ed.
    public struct Filter: Sendable {
        public let field: Field
        public var all: [Condition]
        public var any: [Condition]
        public init(field: Field, all: [Condition] = [], any: [Condition] = []) {
            self.field = field
            self.all = all
            self.any = any
        }
    }

    /// What a search selects: the filters (AND-ed across fields) inside `[from, to)` of
    /// `date_processed` (microseconds).
    public struct Query: Sendable {
        public var filters: [Filter]
        public var from: Int64
        public var to: Int64
        public init(filters: [Filter], from: Int64, to: Int64) {
            self.filters = filters
            self.from = from
            self.to = to
        }
    }

    /// One level of grouping: the terms of a field, or a histogram with a bucket width
    /// (microseconds for dates).
    public struct Dimension: Sendable {
        public let field: Field
        public let interval: Int64?
        public init(field: Field, interval: Int64?) {
            self.field = field
            self.interval = interval
        }
    }

    public struct Sort: Sendable {
        public let field: Field
        public let descending: Bool
        public init(field: Field, descending: Bool) {
            self.field = field
            self.descending = descending
        }
    }

    /// One hit: the crash id, its date, and the requested columns' values in order.
    public struct Hit: Sendable {
        public let crashID: String
        public let dateProcessed: Int64
        public let values: [JSONValue]
    }
}

extension MetadataStore {
    /// How many crashes the query selects.
    public func searchTotal(_ query: CrashSearch.Query, deadline: ContinuousClock.Instant?) async throws -> Int64 {
        let w = try searchWhere(query, deadline: deadline)
        return try await searchRows("SELECT COUNT(*) AS n FROM crashes WHERE \(w)", deadline: deadline).first?.decode(column: "n", as: Int64.self) ?? 0
    }

    /// A page of hits, sorted by `sort` then newest first.
    public func searchHits(_ query: CrashSearch.Query, columns: [CrashSearch.Field], sort: [CrashSearch.Sort], limit: Int, offset: Int,
                           deadline: ContinuousClock.Instant?) async throws -> [CrashSearch.Hit] {
        let kind = database.kind
        var select: SQLQueryString = "SELECT crash_id, date_processed"
        for (i, f) in columns.enumerated() {
            let type = !f.isArray && (f.type == .integer || f.type == .boolean) ? "BIGINT" : "TEXT"
            select += ", CAST(\(unsafeRaw: Self.searchExpression(f, kind)) AS \(unsafeRaw: type)) AS c\(unsafeRaw: String(i))"
        }
        let w = try searchWhere(query, deadline: deadline)
        let rows = try await searchRows(select + " FROM crashes WHERE \(w) ORDER BY \(searchOrder(sort)) LIMIT \(bind: limit) OFFSET \(bind: offset)",
                                        deadline: deadline)
        return try rows.map { row in
            var values: [JSONValue] = []
            for (i, f) in columns.enumerated() {
                if f.isArray {
                    let text = try row.decode(column: "c\(i)", as: String?.self)
                    values.append(text.flatMap { JSONValue.parse(Data($0.utf8)) } ?? .null)
                    continue
                }
                switch f.type {
                case .boolean: values.append((try row.decode(column: "c\(i)", as: Int64?.self)).map { .bool($0 != 0) } ?? .null)
                case .integer: values.append((try row.decode(column: "c\(i)", as: Int64?.self)).map { .int($0) } ?? .null)
                case .string, .date: values.append((try row.decode(column: "c\(i)", as: String?.self)).map { .string($0) } ?? .null)
                }
            }
            return CrashSearch.Hit(crashID: try row.decode(column: "crash_id", as: String.self),
                                   dateProcessed: try row.decode(column: "date_processed", as: Int64.self), values: values)
        }
    }

    /// Counts per combination of the chain's keys (NULL keys included), largest first, at most
    /// `limit` groups. Keys are text: histogram keys are bucket starts, booleans `1`/`0`.
    public func searchGroups(_ query: CrashSearch.Query, chain: [CrashSearch.Dimension], limit: Int,
                             deadline: ContinuousClock.Instant?) async throws -> [([String?], Int64)] {
        let kind = database.kind
        var select: SQLQueryString = "SELECT "
        for (i, d) in chain.enumerated() {
            if i > 0 { select += ", " }
            select += "CAST(\(unsafeRaw: Self.groupExpression(d, i, kind)) AS TEXT) AS k\(unsafeRaw: String(i))"
        }
        let w = try searchWhere(query, deadline: deadline)
        // A crash counts once per term, even when an array holds the term twice.
        let count = chain.contains { $0.field.isArray } ? "COUNT(DISTINCT crashes.crash_id)" : "COUNT(*)"
        select += ", \(unsafeRaw: count) AS n FROM \(unsafeRaw: Self.searchFrom(chain, kind)) WHERE \(w) GROUP BY \(unsafeRaw: (1...chain.count).map(String.init).joined(separator: ", "))"
        select += " ORDER BY n DESC, 1 LIMIT \(bind: max(1, limit))"
        return try await searchRows(select, deadline: deadline).map { row in
            (try (0..<chain.count).map { try row.decode(column: "k\($0)", as: String?.self) }, try row.decode(column: "n", as: Int64.self))
        }
    }

    /// The number of distinct values of `field`, overall (empty `path`) or per combination of the
    /// path's keys (rows with a NULL key left out).
    public func searchCardinality(_ query: CrashSearch.Query, field: CrashSearch.Field, path: [CrashSearch.Dimension] = [],
                                  deadline: ContinuousClock.Instant?) async throws -> [[String]: Int64] {
        let kind = database.kind
        let w = try searchWhere(query, deadline: deadline)
        // The counted field is one more (last) dimension of the joins, so arrays count elements.
        let counted = CrashSearch.Dimension(field: field, interval: nil)
        let all = path + [counted]
        let distinct = Self.groupExpression(counted, path.count, kind)
        guard !path.isEmpty else {
            let n = try await searchRows("SELECT COUNT(DISTINCT \(unsafeRaw: distinct)) AS n FROM \(unsafeRaw: Self.searchFrom(all, kind)) WHERE \(w)", deadline: deadline)
                .first?.decode(column: "n", as: Int64.self) ?? 0
            return [[]: n]
        }
        var select: SQLQueryString = "SELECT "
        var notNull: SQLQueryString = ""
        for (i, d) in path.enumerated() {
            let e = Self.groupExpression(d, i, kind)
            if i > 0 { select += ", " }
            select += "CAST(\(unsafeRaw: e) AS TEXT) AS k\(unsafeRaw: String(i))"
            notNull += " AND \(unsafeRaw: e) IS NOT NULL"
        }
        select += ", COUNT(DISTINCT \(unsafeRaw: distinct)) AS n FROM \(unsafeRaw: Self.searchFrom(all, kind)) WHERE \(w)\(notNull) GROUP BY \(unsafeRaw: (1...path.count).map(String.init).joined(separator: ", "))"
        var values: [[String]: Int64] = [:]
        for row in try await searchRows(select, deadline: deadline) {
            values[try (0..<path.count).map { try row.decode(column: "k\($0)", as: String.self) }] = try row.decode(column: "n", as: Int64.self)
        }
        return values
    }

    /// The SQL and bound values of the query's hit selection, as the database receives them
    /// (Super Search's `_return_query`).
    public func describeSearch(_ query: CrashSearch.Query, sort: [CrashSearch.Sort]) async throws -> (sql: String, binds: [String]) {
        try await describe("SELECT crash_id FROM crashes WHERE \(try searchWhere(query, deadline: nil)) ORDER BY \(searchOrder(sort))")
    }

    // MARK: - SQL

    /// Runs a search query with what is left of the search's time.
    func searchRows(_ q: SQLQueryString, deadline: ContinuousClock.Instant?) async throws -> [any SQLRow] {
        var left: Duration?
        if let deadline {
            left = deadline - ContinuousClock.now
            guard let l = left, l > .zero else { throw QueryTimedOut() }
        }
        return try await search(q, timeout: left)
    }

    func searchOrder(_ sort: [CrashSearch.Sort]) -> SQLQueryString {
        var order: SQLQueryString = ""
        for s in sort where !s.field.isArray { order += "\(unsafeRaw: Self.searchExpression(s.field, database.kind)) \(unsafeRaw: s.descending ? "DESC" : "ASC"), " }
        return order + "crashes.date_processed DESC, crashes.crash_id"
    }

    /// The value of a field in SQL. Document members: booleans read as 1/0 and, on PostgreSQL,
    /// integers only when the text is a number (anything else is no match, not an error).
    static func searchExpression(_ field: CrashSearch.Field, _ kind: DatabaseKind) -> String {
        if let c = field.column { return "crashes." + c }
        // The member's JSON path: names are plain identifiers (CrashSearch.Field checks).
        let sqlitePath = "json_extract(crashes.document, '$." + field.path.joined(separator: ".") + "')"
        let pgText = "(crashes.document" + field.path.dropLast().map { "->'\($0)'" }.joined() + "->>'\(field.path.last ?? field.name)')"
        if field.isArray {
            // The array as JSON text (a column of hits).
            return kind == .sqlite ? sqlitePath : "(crashes.document->'\(field.path[0])')"
        }
        if field.type == .boolean {
            return kind == .sqlite ? sqlitePath : "(CASE \(pgText) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
        }
        if field.type == .integer {
            // Numbers only: a value of another type is no match (not text compared with a number,
            // not an error).
            if kind == .sqlite {
                return "(CASE json_type(crashes.document, '$.\(field.path.joined(separator: "."))') WHEN 'integer' THEN \(sqlitePath) END)"
            }
            return "(CASE WHEN \(pgText) ~ '^-?[0-9]{1,18}$' THEN CAST(\(pgText) AS BIGINT) END)"
        }
        return kind == .sqlite ? sqlitePath : pgText
    }

    /// The elements of an array field as rows with a `value` column, for `EXISTS` and joins.
    static func arrayElements(_ field: CrashSearch.Field, alias: String, _ kind: DatabaseKind) -> String {
        let name = field.path[0]
        return kind == .sqlite ? "json_each(crashes.document, '$.\(name)') AS \(alias)"
            // A single value counts as a one-element array, as json_each reads it on SQLite.
            : "jsonb_array_elements_text(COALESCE(CASE jsonb_typeof(crashes.document->'\(name)') WHEN 'array' THEN crashes.document->'\(name)' "
              + "WHEN 'string' THEN jsonb_build_array(crashes.document->'\(name)') WHEN 'number' THEN jsonb_build_array(crashes.document->'\(name)') "
              + "WHEN 'boolean' THEN jsonb_build_array(crashes.document->'\(name)') END, '[]'::jsonb)) AS \(alias)(value)"
    }

    /// The FROM clause of a grouped query: the crashes, joined with the elements of each array
    /// dimension (`a<i>`).
    static func searchFrom(_ chain: [CrashSearch.Dimension], _ kind: DatabaseKind) -> String {
        var from = "crashes"
        for (i, d) in chain.enumerated() where d.field.isArray {
            from += kind == .sqlite ? ", " + arrayElements(d.field, alias: "a\(i)", kind) : " CROSS JOIN LATERAL " + arrayElements(d.field, alias: "a\(i)", kind)
        }
        return from
    }

    /// A grouping key at position `i` of a chain: an array dimension's element, else the field.
    static func groupExpression(_ d: CrashSearch.Dimension, _ i: Int, _ kind: DatabaseKind) -> String {
        d.field.isArray ? "a\(i).value" : searchExpression(d, kind)
    }

    /// A grouping key: the field, or its histogram bucket (floor division; the width is a number
    /// computed by the caller, never text).
    static func searchExpression(_ d: CrashSearch.Dimension, _ kind: DatabaseKind) -> String {
        let column = d.field.type == .date ? "crashes.date_processed" : searchExpression(d.field, kind)
        guard let width = d.interval, width > 0 else { return column }
        let w = String(width)
        return "(CASE WHEN \(column) >= 0 THEN \(column) / \(w) ELSE -((-\(column) - 1) / \(w)) - 1 END) * \(w)"
    }

    func searchWhere(_ query: CrashSearch.Query, deadline: ContinuousClock.Instant?) throws -> SQLQueryString {
        let kind = database.kind
        // `pm_regexp` stops matching at the search's deadline (SQLite); PostgreSQL cancels the
        // statement itself.
        let regexDeadline = deadline.map { Self.regexDeadline($0 - ContinuousClock.now) } ?? Int64.max
        var w: SQLQueryString = "1 = 1"
        for filter in query.filters {
            w += " AND "
            w += condition(filter, kind, regexDeadline: regexDeadline)
        }
        w += " AND crashes.date_processed >= \(bind: query.from) AND crashes.date_processed < \(bind: query.to)"
        return w
    }

    func condition(_ filter: CrashSearch.Filter, _ kind: DatabaseKind, regexDeadline: Int64) -> SQLQueryString {
        // An array field's tests run on each element (`e.value`): one matching element matches.
        let column = filter.field.isArray ? "e.value" : Self.searchExpression(filter.field, kind)
        func clause(_ c: CrashSearch.Condition) -> SQLQueryString {
            var s: SQLQueryString
            if filter.field.isArray {
                if case .isNull = c.match {
                    s = "NOT EXISTS (SELECT 1 FROM \(unsafeRaw: Self.arrayElements(filter.field, alias: "e", kind)))"
                } else {
                    s = "EXISTS (SELECT 1 FROM \(unsafeRaw: Self.arrayElements(filter.field, alias: "e", kind)) WHERE \(test(c.match)))"
                }
            } else {
                s = test(c.match)
            }
            if c.negated { s = "NOT (COALESCE((\(s)), \(unsafeRaw: kind == .sqlite ? "0" : "FALSE")))" }
            return s
        }
        func test(_ match: CrashSearch.Match) -> SQLQueryString {
            var s: SQLQueryString
            switch match {
            case .isNull: s = "\(unsafeRaw: column) IS NULL"
            case .words(let words):
                s = "1 = 1"
                for w in words {
                    s += kind == .sqlite ? " AND instr(lower(\(unsafeRaw: column)), \(bind: w)) > 0" : " AND strpos(lower(\(unsafeRaw: column)), \(bind: w)) > 0"
                }
            case .equals(let v): s = "\(unsafeRaw: column) = \(bind: v)"
            case .oneOf(let values):
                if values.isEmpty {
                    s = "1 = 0"
                } else {
                    s = "\(unsafeRaw: column) IN ("
                    for (i, v) in values.enumerated() { s += i == 0 ? "\(bind: v)" : ", \(bind: v)" }
                    s += ")"
                }
            case .contains(let v):
                s = kind == .sqlite ? "instr(\(unsafeRaw: column), \(bind: v)) > 0" : "strpos(\(unsafeRaw: column), \(bind: v)) > 0"
            case .prefix(let v):
                s = kind == .sqlite ? "substr(\(unsafeRaw: column), 1, \(bind: v.unicodeScalars.count)) = \(bind: v)"
                    : "left(\(unsafeRaw: column), CAST(\(bind: v.unicodeScalars.count) AS INTEGER)) = \(bind: v)"
            case .suffix(let v):
                s = kind == .sqlite ? "substr(\(unsafeRaw: column), -\(bind: v.unicodeScalars.count)) = \(bind: v)"
                    : "right(\(unsafeRaw: column), CAST(\(bind: v.unicodeScalars.count) AS INTEGER)) = \(bind: v)"
            case .regex(let v):
                s = kind == .sqlite ? "pm_regexp(\(bind: v), \(unsafeRaw: column), \(bind: regexDeadline)) = 1"
                    : "\(unsafeRaw: column) ~ ('^(?:' || \(bind: v) || ')$')"
            case .integerEquals(let n): s = "\(unsafeRaw: column) = \(bind: n)"
            case .compare(let op, let n):
                let safe = [">", ">=", "<", "<="].contains(op) ? op : "="
                s = "\(unsafeRaw: column) \(unsafeRaw: safe) \(bind: n)"
            case .boolean(let truth): s = "\(unsafeRaw: column) = \(bind: truth ? 1 : 0)"
            }
            return s
        }
        var out: SQLQueryString = "("
        var first = true
        for c in filter.all {
            if !first { out += " AND " }
            out += "(\(clause(c)))"
            first = false
        }
        if !filter.any.isEmpty {
            if !first { out += " AND " }
            out += "("
            for (i, c) in filter.any.enumerated() {
                if i > 0 { out += " OR " }
                out += "(\(clause(c)))"
            }
            out += ")"
        }
        if first && filter.any.isEmpty { out += "1 = 1" }
        out += ")"
        return out
    }
}
