import Crypto
import Foundation
import JSONSupport
import SQLKit

/// One row of the crash index: the searchable fields of a processed crash.
public struct CrashIndexRow: Sendable, Equatable {
    public var crashID: String
    /// Microseconds since 1970 (UTC).
    public var dateProcessed: Int64
    public var clientCrashDate: Int64?
    public var product: String?
    public var version: String?
    public var releaseChannel: String?
    public var platform: String?
    public var platformVersion: String?
    public var cpuArch: String?
    public var processType: String?
    public var signature: String?
    public var buildID: String?
    public var reason: String?
    public var uptime: Int64?
    public var installAge: Int64?
    /// Every searchable field, as a JSON object.
    public var document: JSONValue

    public init(crashID: String, dateProcessed: Int64, clientCrashDate: Int64? = nil, product: String? = nil, version: String? = nil,
                releaseChannel: String? = nil, platform: String? = nil, platformVersion: String? = nil, cpuArch: String? = nil,
                processType: String? = nil, signature: String? = nil, buildID: String? = nil, reason: String? = nil,
                uptime: Int64? = nil, installAge: Int64? = nil, document: JSONValue = .object([])) {
        self.crashID = crashID
        self.dateProcessed = dateProcessed
        self.clientCrashDate = clientCrashDate
        self.product = product
        self.version = version
        self.releaseChannel = releaseChannel
        self.platform = platform
        self.platformVersion = platformVersion
        self.cpuArch = cpuArch
        self.processType = processType
        self.signature = signature
        self.buildID = buildID
        self.reason = reason
        self.uptime = uptime
        self.installAge = installAge
        self.document = document
    }

    /// One typed column of the crash index. This table is the only list of them: the insert, the
    /// select, the decoding, the sanitizing, the row built from a processed crash and Super
    /// Search's column fields all read it (the migrations create the same columns).
    public struct Field: Sendable {
        public enum Kind: Sendable {
            case text(WritableKeyPath<CrashIndexRow, String?> & Sendable, maxBytes: Int)
            case integer(WritableKeyPath<CrashIndexRow, Int64?> & Sendable)
            /// Microseconds since 1970, from an ISO 8601 text field.
            case time(WritableKeyPath<CrashIndexRow, Int64?> & Sendable)
        }
        /// The SQL column.
        public let column: String
        /// The processed-crash field the value comes from.
        public let processedField: String
        /// The Super Search field it answers (nil: not searchable by itself).
        public let searchName: String?
        public let kind: Kind
    }

    public static let fields: [Field] = [
        Field(column: "client_crash_date", processedField: "client_crash_date", searchName: nil, kind: .time(\.clientCrashDate)),
        Field(column: "product", processedField: "product", searchName: "product", kind: .text(\.product, maxBytes: maxColumnBytes)),
        Field(column: "version", processedField: "version", searchName: "version", kind: .text(\.version, maxBytes: maxColumnBytes)),
        Field(column: "release_channel", processedField: "release_channel", searchName: "release_channel", kind: .text(\.releaseChannel, maxBytes: maxColumnBytes)),
        Field(column: "platform", processedField: "os_name", searchName: "platform", kind: .text(\.platform, maxBytes: maxColumnBytes)),
        Field(column: "platform_version", processedField: "os_version", searchName: "platform_version", kind: .text(\.platformVersion, maxBytes: maxColumnBytes)),
        Field(column: "cpu_arch", processedField: "cpu_arch", searchName: "cpu_arch", kind: .text(\.cpuArch, maxBytes: maxColumnBytes)),
        Field(column: "process_type", processedField: "process_type", searchName: "process_type", kind: .text(\.processType, maxBytes: maxColumnBytes)),
        Field(column: "signature", processedField: "signature", searchName: "signature", kind: .text(\.signature, maxBytes: maxSignatureBytes)),
        Field(column: "build_id", processedField: "build", searchName: "build_id", kind: .text(\.buildID, maxBytes: maxColumnBytes)),
        Field(column: "reason", processedField: "reason", searchName: "reason", kind: .text(\.reason, maxBytes: maxColumnBytes)),
        Field(column: "uptime", processedField: "uptime", searchName: "uptime", kind: .integer(\.uptime)),
        Field(column: "install_age", processedField: "install_age", searchName: "install_age", kind: .integer(\.installAge)),
    ]

    /// Processed fields that stay out of the index document: bulky (stacks, history, logs) or
    /// nested beyond what search reads.
    public static let documentExcluded: Set<String> = ["json_dump", "processor_history", "signature_debug", "breadcrumbs",
                                                       "java_stack_trace_raw", "collector_metadata", "memory_report"]

    /// The index row of a processed crash: the table's columns, and every other field (except the
    /// excluded ones and additional dumps' results) in the document, which search reads for
    /// fields without a column.
    public init(crashID: String, processed p: JSONValue, fallbackDate: Int64) {
        func micros(_ key: String) -> Int64? {
            p[key]?.stringValue.flatMap(ISOTime.parse).flatMap { $0.isFinite ? Int64(exactly: ($0 * 1_000_000).rounded()) : nil }
        }
        var searchable: [(String, JSONValue)] = []
        if case .object(let pairs) = p {
            for (k, v) in pairs where !Self.documentExcluded.contains(k) {
                if case .object = v, k.hasPrefix("upload_file_minidump") { continue }
                searchable.append((k, v))
            }
        }
        self.init(crashID: crashID, dateProcessed: micros("date_processed") ?? fallbackDate, document: .object(searchable))
        for field in Self.fields {
            switch field.kind {
            case .text(let path, _): self[keyPath: path] = p[field.processedField]?.stringValue
            case .integer(let path): self[keyPath: path] = p[field.processedField]?.intValue
            case .time(let path): self[keyPath: path] = micros(field.processedField)
            }
        }
    }

    /// Longest value of a text column, in UTF-8 bytes: the covering index's columns together stay
    /// under PostgreSQL's B-tree entry limit (2704 bytes), whatever a client sent.
    public static let maxColumnBytes = 256
    public static let maxSignatureBytes = 1024

    /// The row as the index stores it: NUL characters removed everywhere (PostgreSQL's text and
    /// JSONB refuse them) and over-long text columns cut to `maxColumnBytes` (the document keeps
    /// the whole value).
    public func sanitizedForIndex() -> CrashIndexRow {
        var row = self
        row.crashID = Self.removingNUL(crashID)
        for field in Self.fields {
            guard case .text(let path, let limit) = field.kind, let value = row[keyPath: path] else { continue }
            row[keyPath: path] = Self.truncated(Self.removingNUL(value), toUTF8Bytes: limit)
        }
        row.document = Self.removingNUL(document)
        return row
    }

    static func removingNUL(_ s: String) -> String {
        s.utf8.contains(0) ? String(String.UnicodeScalarView(s.unicodeScalars.filter { $0 != "\u{0}" })) : s
    }

    static func removingNUL(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let s): return .string(removingNUL(s))
        case .array(let items): return .array(items.map(removingNUL))
        case .object(let pairs): return .object(pairs.map { (removingNUL($0.0), removingNUL($0.1)) })
        default: return value
        }
    }

    /// At most `limit` UTF-8 bytes, cut at a character boundary.
    static func truncated(_ s: String, toUTF8Bytes limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        var out = ""
        var used = 0
        for c in s {
            let n = c.utf8.count
            if used + n > limit { break }
            out.append(c)
            used += n
        }
        return out
    }
}

/// The metadata database: crash index, accounts and API tokens, symbol upload records (and the
/// work queue's tables, used through `WorkQueue`). One set of queries for SQLite and PostgreSQL.
public struct MetadataStore: Sendable {
    public let database: Database
    let clock: @Sendable () -> Int64
    /// The store's clock (microseconds since 1970): what it stamps records with.
    public var now: Int64 { clock() }

    /// Opens the store and applies pending migrations.
    public static func open(_ database: Database, clock: @escaping @Sendable () -> Int64 = WorkQueue.systemClock) async throws -> MetadataStore {
        _ = try await Migrations.apply(database, now: clock())
        return MetadataStore(database: database, clock: clock)
    }

    public func schemaVersion() async throws -> Int {
        try await database.withConnection { db in
            try await db.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decode(column: "v", as: Int?.self) ?? 0
        }
    }

    // MARK: - crash index

    /// Inserts or replaces the row of `row.crashID` (reprocessing replaces).
    public func index(_ row: CrashIndexRow) async throws {
        try await index([row])
    }

    /// Inserts or replaces rows, in one transaction per 500 rows (bulk loads and imports).
    public func index(_ rows: [CrashIndexRow]) async throws {
        for start in stride(from: 0, to: rows.count, by: 500) {
            let chunk = rows[start..<min(rows.count, start + 500)]
            let columns = CrashIndexRow.fields.map(\.column)
            var query: SQLQueryString = "INSERT INTO crashes (crash_id, date_processed, \(unsafeRaw: columns.joined(separator: ", ")), document) VALUES "
            for (i, original) in chunk.enumerated() {
                let row = original.sanitizedForIndex()
                let json = row.document.serialized()
                let jsonValue: SQLQueryString = database.kind == .postgres ? "CAST(\(bind: json) AS JSONB)" : "\(bind: json)"
                if i > 0 { query += ", " }
                query += "(\(bind: row.crashID), \(bind: row.dateProcessed)"
                for field in CrashIndexRow.fields {
                    switch field.kind {
                    case .text(let path, _): query += ", \(bind: row[keyPath: path])"
                    case .integer(let path), .time(let path): query += ", \(bind: row[keyPath: path])"
                    }
                }
                query += ", \(jsonValue))"
            }
            query += " ON CONFLICT (crash_id) DO UPDATE SET date_processed = excluded.date_processed, "
            query += "\(unsafeRaw: columns.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")), document = excluded.document"
            let q = query
            try await database.write { db in try await db.raw(q).run() }
        }
    }

    public func crash(_ crashID: String) async throws -> CrashIndexRow? {
        try await database.withConnection { db in
            try await db.raw("\(unsafeRaw: Self.selectCrash) WHERE crash_id = \(bind: crashID)").first()
        }.map(Self.decodeCrash)
    }

    /// Crashes in `[from, to)` (microseconds), newest first, optionally with an exact product
    /// and a signature prefix (a byte-order range scan on the signature index).
    public func crashes(from: Int64, to: Int64, product: String? = nil, signaturePrefix: String? = nil, limit: Int = 100) async throws -> [CrashIndexRow] {
        var query: SQLQueryString = "\(unsafeRaw: Self.selectCrash) WHERE date_processed >= \(bind: from) AND date_processed < \(bind: to)"
        if let product { query += " AND product = \(bind: product)" }
        if let signaturePrefix, !signaturePrefix.isEmpty {
            query += " AND signature >= \(bind: signaturePrefix)"
            if let upper = Self.prefixUpperBound(signaturePrefix) { query += " AND signature < \(bind: upper)" }
        }
        query += " ORDER BY date_processed DESC, crash_id LIMIT \(bind: limit)"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map(Self.decodeCrash)
    }

    /// The versions of `product` in the index since `since` (microseconds), with their crash
    /// counts, most crashes first (featured versions `auto`).
    public func recentVersions(product: String, since: Int64, limit: Int = 200) async throws -> [(version: String, count: Int64)] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT version, COUNT(*) AS n FROM crashes
                WHERE product = \(bind: product) AND date_processed >= \(bind: since) AND version IS NOT NULL
                GROUP BY version ORDER BY n DESC, version LIMIT \(bind: limit)
                """).all()
        }.map { (try $0.decode(column: "version", as: String.self), try $0.decode(column: "n", as: Int64.self)) }
    }

    /// Removes index rows processed before `cutoff`; returns how many.
    public func deleteCrashes(processedBefore cutoff: Int64) async throws -> Int {
        try await database.write { db in
            try await db.raw("DELETE FROM crashes WHERE date_processed < \(bind: cutoff) RETURNING crash_id").all().count
        }
    }

    static let selectCrash = "SELECT crash_id, date_processed, \(CrashIndexRow.fields.map(\.column).joined(separator: ", ")), CAST(document AS TEXT) AS document FROM crashes"

    static func decodeCrash(_ row: any SQLRow) throws -> CrashIndexRow {
        var crash = CrashIndexRow(
            crashID: try row.decode(column: "crash_id", as: String.self),
            dateProcessed: try row.decode(column: "date_processed", as: Int64.self),
            document: JSONValue.parse(Data(try row.decode(column: "document", as: String.self).utf8)) ?? .object([]))
        for field in CrashIndexRow.fields {
            switch field.kind {
            case .text(let path, _): crash[keyPath: path] = try row.decode(column: field.column, as: String?.self)
            case .integer(let path), .time(let path): crash[keyPath: path] = try row.decode(column: field.column, as: Int64?.self)
            }
        }
        return crash
    }

    /// The smallest string greater than every string starting with `prefix` (byte order), nil
    /// when there is none (the prefix is all 0xFF bytes, impossible in UTF-8 text).
    static func prefixUpperBound(_ prefix: String) -> String? {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0x7F { bytes[bytes.count - 1] = last + 1; return String(decoding: bytes, as: UTF8.self) }
            bytes.removeLast()
        }
        return nil
    }

    // MARK: - search

    /// Rows of a read-only query built by the search layer (binds only, no user text as SQL).
    /// Runs a search query. With `timeout`, PostgreSQL cancels it then (`statement_timeout`);
    /// on SQLite the caller binds `regexDeadline(timeout)` into its `pm_regexp` calls, the one
    /// thing there whose cost a request controls. Past the limit: `QueryTimedOut`.
    public func search(_ query: SQLQueryString, timeout: Duration? = nil) async throws -> [any SQLRow] {
        do {
            if let timeout, database.kind == .postgres {
                let (seconds, attoseconds) = timeout.components
                let ms = max(1, min(Int64(86_400_000), seconds.multipliedReportingOverflow(by: 1000).partialValue + attoseconds / 1_000_000_000_000_000))
                return try await database.withTransaction { db in
                    try await db.raw("SET LOCAL statement_timeout = \(unsafeRaw: String(ms))").run()
                    return try await db.raw(query).all()
                }
            }
            return try await database.withConnection { db in try await db.raw(query).all() }
        } catch {
            throw Database.isTimeout(error) ? QueryTimedOut() : error
        }
    }

    /// The value to bind as `pm_regexp`'s third argument so matching stops `timeout` from now.
    public static func regexDeadline(_ timeout: Duration) -> Int64 {
        let (seconds, attoseconds) = timeout.components
        return RegexMatch.nowMilliseconds() + min(Int64(86_400_000), max(0, seconds) * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// The SQL text and bound values of a query, as the database would receive it (Super
    /// Search's `_return_query`).
    func describe(_ query: SQLQueryString) async throws -> (sql: String, binds: [String]) {
        try await database.withConnection { db in
            var serializer = SQLSerializer(database: db)
            query.serialize(to: &serializer)
            return (serializer.sql, serializer.binds.map { String(describing: $0) })
        }
    }

    /// The first time each signature was seen in the index, with the build of that crash.
    public func signatureFirstDates(_ signatures: [String]) async throws -> [(signature: String, firstDate: Int64, firstBuild: String?)] {
        // One index seek per signature on (signature, date_processed), on one connection: a single
        // grouped query would read every row of each signature (millions for a top crasher).
        try await database.withConnection { db in
            var out: [(String, Int64, String?)] = []
            for signature in signatures {
                let row = try await db.raw("""
                    SELECT date_processed, build_id FROM crashes WHERE signature = \(bind: signature)
                    ORDER BY date_processed, crash_id LIMIT 1
                    """).first()
                if let row {
                    out.append((signature, try row.decode(column: "date_processed", as: Int64.self), try row.decode(column: "build_id", as: String?.self)))
                }
            }
            return out
        }
    }

}
