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

    /// Longest value of a text column, in UTF-8 bytes: the covering index's columns together stay
    /// under PostgreSQL's B-tree entry limit (2704 bytes), whatever a client sent.
    public static let maxColumnBytes = 256
    public static let maxSignatureBytes = 1024

    /// The row as the index stores it: NUL characters removed everywhere (PostgreSQL's text and
    /// JSONB refuse them) and over-long text columns cut to `maxColumnBytes` (the document keeps
    /// the whole value).
    public func sanitizedForIndex() -> CrashIndexRow {
        var row = self
        func column(_ value: String?, _ limit: Int = Self.maxColumnBytes) -> String? {
            guard let value else { return nil }
            return Self.truncated(Self.removingNUL(value), toUTF8Bytes: limit)
        }
        row.crashID = Self.removingNUL(crashID)
        row.product = column(product)
        row.version = column(version)
        row.releaseChannel = column(releaseChannel)
        row.platform = column(platform)
        row.platformVersion = column(platformVersion)
        row.cpuArch = column(cpuArch)
        row.processType = column(processType)
        row.signature = column(signature, Self.maxSignatureBytes)
        row.buildID = column(buildID)
        row.reason = column(reason)
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
            var query: SQLQueryString = """
                INSERT INTO crashes (crash_id, date_processed, client_crash_date, product, version, release_channel, platform,
                    platform_version, cpu_arch, process_type, signature, build_id, reason, uptime, install_age, document)
                VALUES 
                """
            for (i, original) in chunk.enumerated() {
                let row = original.sanitizedForIndex()
                let json = row.document.serialized()
                let jsonValue: SQLQueryString = database.kind == .postgres ? "CAST(\(bind: json) AS JSONB)" : "\(bind: json)"
                if i > 0 { query += ", " }
                query += """
                    (\(bind: row.crashID), \(bind: row.dateProcessed), \(bind: row.clientCrashDate), \(bind: row.product),
                    \(bind: row.version), \(bind: row.releaseChannel), \(bind: row.platform), \(bind: row.platformVersion),
                    \(bind: row.cpuArch), \(bind: row.processType), \(bind: row.signature), \(bind: row.buildID), \(bind: row.reason),
                    \(bind: row.uptime), \(bind: row.installAge), \(jsonValue))
                    """
            }
            query += """
                 ON CONFLICT (crash_id) DO UPDATE SET date_processed = excluded.date_processed,
                    client_crash_date = excluded.client_crash_date, product = excluded.product, version = excluded.version,
                    release_channel = excluded.release_channel, platform = excluded.platform,
                    platform_version = excluded.platform_version, cpu_arch = excluded.cpu_arch,
                    process_type = excluded.process_type, signature = excluded.signature, build_id = excluded.build_id,
                    reason = excluded.reason, uptime = excluded.uptime, install_age = excluded.install_age,
                    document = excluded.document
                """
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

    /// Counts per value of `column` in `[from, to)`, largest first (the facet query shape).
    public func facet(_ column: CrashColumn, from: Int64, to: Int64, limit: Int = 50) async throws -> [(String?, Int)] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT \(unsafeRaw: column.rawValue) AS term, COUNT(*) AS n FROM crashes
                WHERE date_processed >= \(bind: from) AND date_processed < \(bind: to)
                GROUP BY \(unsafeRaw: column.rawValue) ORDER BY n DESC, term LIMIT \(bind: limit)
                """).all()
        }.map { (try $0.decode(column: "term", as: String?.self), Int(try $0.decode(column: "n", as: Int64.self))) }
    }

    /// Removes index rows processed before `cutoff`; returns how many.
    public func deleteCrashes(processedBefore cutoff: Int64) async throws -> Int {
        try await database.write { db in
            try await db.raw("DELETE FROM crashes WHERE date_processed < \(bind: cutoff) RETURNING crash_id").all().count
        }
    }

    /// Columns that may be faceted (never interpolated from user text).
    public enum CrashColumn: String, Sendable, CaseIterable {
        case product, version, releaseChannel = "release_channel", platform, platformVersion = "platform_version",
             cpuArch = "cpu_arch", processType = "process_type", signature, buildID = "build_id", reason
    }

    static let selectCrash = """
        SELECT crash_id, date_processed, client_crash_date, product, version, release_channel, platform, platform_version,
            cpu_arch, process_type, signature, build_id, reason, uptime, install_age, CAST(document AS TEXT) AS document FROM crashes
        """

    static func decodeCrash(_ row: any SQLRow) throws -> CrashIndexRow {
        CrashIndexRow(
            crashID: try row.decode(column: "crash_id", as: String.self),
            dateProcessed: try row.decode(column: "date_processed", as: Int64.self),
            clientCrashDate: try row.decode(column: "client_crash_date", as: Int64?.self),
            product: try row.decode(column: "product", as: String?.self),
            version: try row.decode(column: "version", as: String?.self),
            releaseChannel: try row.decode(column: "release_channel", as: String?.self),
            platform: try row.decode(column: "platform", as: String?.self),
            platformVersion: try row.decode(column: "platform_version", as: String?.self),
            cpuArch: try row.decode(column: "cpu_arch", as: String?.self),
            processType: try row.decode(column: "process_type", as: String?.self),
            signature: try row.decode(column: "signature", as: String?.self),
            buildID: try row.decode(column: "build_id", as: String?.self),
            reason: try row.decode(column: "reason", as: String?.self),
            uptime: try row.decode(column: "uptime", as: Int64?.self),
            installAge: try row.decode(column: "install_age", as: Int64?.self),
            document: JSONValue.parse(Data(try row.decode(column: "document", as: String.self).utf8)) ?? .object([]))
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
    public func describe(_ query: SQLQueryString) async throws -> (sql: String, binds: [String]) {
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
