import Foundation
import JSONSupport
import SQLKit

/// A symbol upload (Tecken's `Upload`): who sent which archive, when, and what became of it.
public struct SymbolUploadRecord: Sendable, Equatable {
    public var id: Int64
    public var accountID: Int64?
    public var user: String?
    public var filename: String
    public var size: Int64
    public var contentHash: String
    public var isTry: Bool
    public var bucket: String
    public var downloadURL: String?
    public var redirectURLs: [String]
    public var skippedKeys: [String]
    public var ignoredKeys: [String]
    /// Keys stored by this upload.
    public var files: [String]
    public var createdAt: Int64
    public var completedAt: Int64?
}

/// One stored file of an upload (Tecken's `FileUpload`), with the `.sym` header's ids.
public struct SymbolFileRecord: Sendable, Equatable {
    public var id: Int64 = 0
    public var uploadID: Int64?
    public var key: String
    public var isTry: Bool
    public var size: Int64
    public var compressed: Bool
    public var debugFilename: String?
    public var debugId: String?
    public var codeFile: String?
    public var codeId: String?
    public var generator: String?
    public var createdAt: Int64 = 0

    public init(uploadID: Int64?, key: String, isTry: Bool, size: Int64, compressed: Bool, debugFilename: String? = nil,
                debugId: String? = nil, codeFile: String? = nil, codeId: String? = nil, generator: String? = nil) {
        self.uploadID = uploadID
        self.key = key
        self.isTry = isTry
        self.size = size
        self.compressed = compressed
        self.debugFilename = debugFilename
        self.debugId = debugId
        self.codeFile = codeFile
        self.codeId = codeId
        self.generator = generator
    }
}

/// What the store holds under a symbol key: the size stored and the original's size and MD5
/// (Tecken keeps these as S3 object metadata; here one table serves both stores).
public struct SymbolObjectInfo: Sendable, Equatable {
    public var key: String
    public var size: Int64
    public var originalSize: Int64
    public var originalMD5: String
    public var compressed: Bool
    public init(key: String, size: Int64, originalSize: Int64, originalMD5: String, compressed: Bool) {
        self.key = key
        self.size = size
        self.originalSize = originalSize
        self.originalMD5 = originalMD5
        self.compressed = compressed
    }
}

/// A comparison from a listing filter (`>=100`, `!foo`, `2026-01-01`).
public struct RecordFilter: Sendable, Equatable {
    public enum Operator: String, Sendable { case eq = "=", lt = "<", le = "<=", gt = ">", ge = ">=" }
    public var op: Operator
    public var negate: Bool
    public var value: String

    /// `[!][op]value`; operators `>= <= = < >`.
    public static func parse(_ text: String) -> RecordFilter {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var negate = false
        if rest.first == "!" { negate = true; rest = rest.dropFirst() }
        for op in [Operator.ge, .le, .eq, .lt, .gt] where rest.hasPrefix(op.rawValue) {
            return RecordFilter(op: op, negate: negate, value: String(rest.dropFirst(op.rawValue.count)).trimmingCharacters(in: .whitespaces))
        }
        return RecordFilter(op: .eq, negate: negate, value: String(rest))
    }
}

extension MetadataStore {
    // MARK: - uploads

    static func jsonText(_ strings: [String]) -> String { JSONValue.array(strings.map { .string($0) }).serialized() }

    static func strings(_ text: String?) -> [String] {
        guard let text, case .array(let items)? = JSONValue.parse(Data(text.utf8)) else { return [] }
        return items.compactMap(\.stringValue)
    }

    /// Starts an upload record (completed by `completeSymbolUpload`).
    public func createSymbolUpload(accountID: Int64?, filename: String, size: Int64, contentHash: String, isTry: Bool, bucket: String,
                                   downloadURL: String? = nil, redirectURLs: [String] = []) async throws -> Int64 {
        let now = clock()
        let emptyFiles: SQLQueryString = database.kind == .postgres ? "CAST('[]' AS JSONB)" : "'[]'"
        return try await database.write { db in
            try await db.raw("""
                INSERT INTO symbol_uploads (account_id, filename, size, content_hash, is_try, created_at, files, bucket_name, download_url, redirect_urls)
                VALUES (\(bind: accountID), \(bind: CrashIndexRow.removingNUL(filename)), \(bind: size), \(bind: contentHash), \(bind: isTry ? 1 : 0),
                        \(bind: now), \(emptyFiles), \(bind: bucket), \(bind: downloadURL), \(bind: Self.jsonText(redirectURLs)))
                RETURNING id
                """).first()!.decode(column: "id", as: Int64.self)
        }
    }

    public func completeSymbolUpload(id: Int64, stored: [String], skipped: [String], ignored: [String]) async throws {
        let now = clock()
        let files = Self.jsonText(stored)
        let filesValue: SQLQueryString = database.kind == .postgres ? "CAST(\(bind: files) AS JSONB)" : "\(bind: files)"
        try await database.write { db in
            try await db.raw("""
                UPDATE symbol_uploads SET completed_at = \(bind: now), files = \(filesValue), skipped_keys = \(bind: Self.jsonText(skipped)),
                ignored_keys = \(bind: Self.jsonText(ignored)) WHERE id = \(bind: id)
                """).run()
        }
    }

    static let uploadColumns: SQLQueryString = """
        u.id, u.account_id, a.email, u.filename, u.size, u.content_hash, u.is_try, u.bucket_name, u.download_url, u.redirect_urls,
        u.skipped_keys, u.ignored_keys, CAST(u.files AS TEXT) AS files, u.created_at, u.completed_at
        """

    static func decodeUpload(_ row: any SQLRow) throws -> SymbolUploadRecord {
        SymbolUploadRecord(
            id: try row.decode(column: "id", as: Int64.self), accountID: try row.decode(column: "account_id", as: Int64?.self),
            user: try row.decode(column: "email", as: String?.self), filename: try row.decode(column: "filename", as: String.self),
            size: try row.decode(column: "size", as: Int64.self), contentHash: try row.decode(column: "content_hash", as: String.self),
            isTry: try row.decode(column: "is_try", as: Int.self) != 0, bucket: try row.decode(column: "bucket_name", as: String.self),
            downloadURL: try row.decode(column: "download_url", as: String?.self),
            redirectURLs: strings(try row.decode(column: "redirect_urls", as: String?.self)),
            skippedKeys: strings(try row.decode(column: "skipped_keys", as: String?.self)),
            ignoredKeys: strings(try row.decode(column: "ignored_keys", as: String?.self)),
            files: strings(try row.decode(column: "files", as: String?.self)),
            createdAt: try row.decode(column: "created_at", as: Int64.self), completedAt: try row.decode(column: "completed_at", as: Int64?.self))
    }

    public func symbolUpload(id: Int64) async throws -> SymbolUploadRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT \(Self.uploadColumns) FROM symbol_uploads u LEFT JOIN accounts a ON a.id = u.account_id WHERE u.id = \(bind: id)").first()
        }.map(Self.decodeUpload)
    }

    /// Uploads with the same size and content hash as `upload` (Tecken's "related uploads").
    public func relatedSymbolUploads(_ upload: SymbolUploadRecord, limit: Int = 20) async throws -> [SymbolUploadRecord] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT \(Self.uploadColumns) FROM symbol_uploads u LEFT JOIN accounts a ON a.id = u.account_id
                WHERE u.size = \(bind: upload.size) AND u.content_hash = \(bind: upload.contentHash) AND u.id <> \(bind: upload.id)
                ORDER BY u.id DESC LIMIT \(bind: limit)
                """).all()
        }.map(Self.decodeUpload)
    }

    /// A page of uploads, newest first (or by `sort`), with the total matching. `user` and the
    /// numeric/date filters follow Tecken's listing (`symbols-server.md` §6).
    public func symbolUploads(accountID: Int64? = nil, user: RecordFilter? = nil, size: [RecordFilter] = [], createdAt: [RecordFilter] = [],
                              completedAt: [RecordFilter] = [], sortBy: String = "created_at", descending: Bool = true,
                              limit: Int = 20, offset: Int = 0) async throws -> (records: [SymbolUploadRecord], total: Int) {
        var conditions: [SQLQueryString] = []
        if let accountID { conditions.append("u.account_id = \(bind: accountID)") }
        if let user {
            let pattern = "%" + user.value.lowercased() + "%"
            conditions.append(user.negate ? "LOWER(COALESCE(a.email, '')) NOT LIKE \(bind: pattern)" : "LOWER(COALESCE(a.email, '')) LIKE \(bind: pattern)")
        }
        for f in size { conditions.append(Self.comparison("u.size", f)) }
        for f in createdAt { conditions.append(Self.comparison("u.created_at", f)) }
        for f in completedAt { conditions.append(Self.comparison("u.completed_at", f)) }
        let whereClause = Self.whereClause(conditions)
        let order: SQLQueryString = sortBy == "size" ? "u.size" : "u.created_at"
        let direction: SQLQueryString = descending ? " DESC" : " ASC"
        let (rows, total) = try await database.withConnection { db in
            let rows = try await db.raw("""
                SELECT \(Self.uploadColumns) FROM symbol_uploads u LEFT JOIN accounts a ON a.id = u.account_id\(whereClause)
                ORDER BY \(order)\(direction), u.id\(direction) LIMIT \(bind: limit) OFFSET \(bind: offset)
                """).all()
            let count = try await db.raw("SELECT COUNT(*) AS n FROM symbol_uploads u LEFT JOIN accounts a ON a.id = u.account_id\(whereClause)").first()
            return (rows, try count?.decode(column: "n", as: Int.self) ?? 0)
        }
        return (try rows.map(Self.decodeUpload), total)
    }

    /// `column <op> value` for an integer column; a value that is not a number matches nothing.
    static func comparison(_ column: String, _ f: RecordFilter) -> SQLQueryString {
        guard let n = Int64(f.value) else { return "1 = 0" }
        let test: SQLQueryString = "\(unsafeRaw: column) \(unsafeRaw: f.op.rawValue) \(bind: n)"
        return f.negate ? "NOT (\(test))" : test
    }

    static func whereClause(_ conditions: [SQLQueryString]) -> SQLQueryString {
        guard var clause = conditions.first.map({ " WHERE " + $0 }) else { return "" }
        for c in conditions.dropFirst() { clause += " AND " + c }
        return clause
    }

    // MARK: - files

    static func insertFile(_ record: SymbolFileRecord, at now: Int64, _ db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO symbol_files (upload_id, key, is_try, size, compressed, debug_filename, debug_id, code_file, code_id, generator, created_at)
            VALUES (\(bind: record.uploadID), \(bind: record.key), \(bind: record.isTry ? 1 : 0), \(bind: record.size), \(bind: record.compressed ? 1 : 0),
                    \(bind: record.debugFilename.map(CrashIndexRow.removingNUL)), \(bind: record.debugId.map(CrashIndexRow.removingNUL)),
                    \(bind: record.codeFile.map(CrashIndexRow.removingNUL)), \(bind: record.codeId.map(CrashIndexRow.removingNUL)),
                    \(bind: record.generator.map(CrashIndexRow.removingNUL)), \(bind: now))
            """).run()
    }

    /// Records stored files — what each key now holds and its file record — in one
    /// transaction (one sync for a whole batch of an upload's files).
    public func recordSymbolFiles(_ items: [(object: SymbolObjectInfo, file: SymbolFileRecord)]) async throws {
        guard !items.isEmpty else { return }
        let now = clock()
        try await database.withTransaction { db in
            for item in items {
                try await Self.upsertObject(item.object, at: now, db)
                try await Self.insertFile(item.file, at: now, db)
            }
        }
    }

    static let fileColumns: SQLQueryString = """
        f.id, f.upload_id, f.key, f.is_try, f.size, f.compressed, f.debug_filename, f.debug_id, f.code_file, f.code_id, f.generator, f.created_at
        """

    static func decodeFile(_ row: any SQLRow) throws -> SymbolFileRecord {
        var r = SymbolFileRecord(uploadID: try row.decode(column: "upload_id", as: Int64?.self), key: try row.decode(column: "key", as: String.self),
                                 isTry: try row.decode(column: "is_try", as: Int.self) != 0, size: try row.decode(column: "size", as: Int64.self),
                                 compressed: try row.decode(column: "compressed", as: Int.self) != 0,
                                 debugFilename: try row.decode(column: "debug_filename", as: String?.self),
                                 debugId: try row.decode(column: "debug_id", as: String?.self), codeFile: try row.decode(column: "code_file", as: String?.self),
                                 codeId: try row.decode(column: "code_id", as: String?.self), generator: try row.decode(column: "generator", as: String?.self))
        r.id = try row.decode(column: "id", as: Int64.self)
        r.createdAt = try row.decode(column: "created_at", as: Int64.self)
        return r
    }

    /// The newest file record naming `file`/`id` as its debug file and id, or as its code file
    /// and id (Tecken's code-id lookup); try uploads only when `includeTry`.
    public func latestSymbolFile(file: String, id: String, includeTry: Bool) async throws -> SymbolFileRecord? {
        let id = id.uppercased()
        let tryCondition: SQLQueryString = includeTry ? "" : " AND f.is_try = 0"
        return try await database.withConnection { db in
            try await db.raw("""
                SELECT \(Self.fileColumns) FROM symbol_files f
                WHERE ((f.debug_filename = \(bind: file) AND f.debug_id = \(bind: id)) OR (f.code_file = \(bind: file) AND f.code_id = \(bind: id)))\(tryCondition)
                ORDER BY f.id DESC LIMIT 1
                """).first()
        }.map(Self.decodeFile)
    }

    public func symbolFile(id: Int64) async throws -> SymbolFileRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT \(Self.fileColumns) FROM symbol_files f WHERE f.id = \(bind: id)").first()
        }.map(Self.decodeFile)
    }

    public func symbolFiles(uploadID: Int64) async throws -> [SymbolFileRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT \(Self.fileColumns) FROM symbol_files f WHERE f.upload_id = \(bind: uploadID) ORDER BY f.id").all()
        }.map(Self.decodeFile)
    }

    /// A page of file records, newest first. `key` substrings must all occur; `isTry` filters
    /// by upload type; `accountID` limits to one uploader's files.
    public func symbolFiles(keyContains: [RecordFilter] = [], size: [RecordFilter] = [], bucket: RecordFilter? = nil, isTry: Bool? = nil,
                            accountID: Int64? = nil, limit: Int = 40, offset: Int = 0) async throws -> (records: [SymbolFileRecord], total: Int) {
        var conditions: [SQLQueryString] = []
        for k in keyContains {
            let pattern = "%" + k.value.replacingOccurrences(of: "%", with: "") + "%"
            conditions.append(k.negate ? "f.key NOT LIKE \(bind: pattern)" : "f.key LIKE \(bind: pattern)")
        }
        for f in size { conditions.append(Self.comparison("f.size", f)) }
        if let isTry { conditions.append("f.is_try = \(bind: isTry ? 1 : 0)") }
        if let accountID { conditions.append("f.upload_id IN (SELECT id FROM symbol_uploads WHERE account_id = \(bind: accountID))") }
        if let bucket {
            let test: SQLQueryString = "f.upload_id IN (SELECT id FROM symbol_uploads WHERE bucket_name = \(bind: bucket.value))"
            conditions.append(bucket.negate ? "NOT (\(test))" : test)
        }
        let whereClause = Self.whereClause(conditions)
        let (rows, total) = try await database.withConnection { db in
            let rows = try await db.raw("""
                SELECT \(Self.fileColumns) FROM symbol_files f\(whereClause) ORDER BY f.id DESC LIMIT \(bind: limit) OFFSET \(bind: offset)
                """).all()
            let count = try await db.raw("SELECT COUNT(*) AS n FROM symbol_files f\(whereClause)").first()
            return (rows, try count?.decode(column: "n", as: Int.self) ?? 0)
        }
        return (try rows.map(Self.decodeFile), total)
    }

    // MARK: - objects

    public func symbolObject(key: String) async throws -> SymbolObjectInfo? {
        try await database.withConnection { db in
            try await db.raw("SELECT key, size, original_size, original_md5, compressed FROM symbol_objects WHERE key = \(bind: key)").first()
        }.map { row in
            SymbolObjectInfo(key: try row.decode(column: "key", as: String.self), size: try row.decode(column: "size", as: Int64.self),
                             originalSize: try row.decode(column: "original_size", as: Int64.self),
                             originalMD5: try row.decode(column: "original_md5", as: String.self),
                             compressed: try row.decode(column: "compressed", as: Int.self) != 0)
        }
    }

    static func upsertObject(_ info: SymbolObjectInfo, at now: Int64, _ db: any SQLDatabase) async throws {
        try await db.raw("""
            INSERT INTO symbol_objects (key, size, original_size, original_md5, compressed, stored_at)
            VALUES (\(bind: info.key), \(bind: info.size), \(bind: info.originalSize), \(bind: info.originalMD5), \(bind: info.compressed ? 1 : 0), \(bind: now))
            ON CONFLICT (key) DO UPDATE SET size = excluded.size, original_size = excluded.original_size,
            original_md5 = excluded.original_md5, compressed = excluded.compressed, stored_at = excluded.stored_at
            """).run()
    }

    // MARK: - statistics and retention

    public struct SymbolUploadTotals: Sendable, Equatable {
        public var uploads = 0
        public var bytes: Int64 = 0
        public var files = 0
        public var skipped = 0
    }

    /// Uploads, bytes and stored files created in `[from, to)` (microseconds).
    public func symbolUploadTotals(from: Int64, to: Int64, accountID: Int64? = nil) async throws -> SymbolUploadTotals {
        let accountCondition: SQLQueryString = accountID.map { " AND account_id = \(bind: $0)" } ?? ""
        return try await database.withConnection { db in
            let u = try await db.raw("""
                SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM symbol_uploads
                WHERE created_at >= \(bind: from) AND created_at < \(bind: to)\(accountCondition)
                """).first()
            let f = try await db.raw("""
                SELECT COUNT(*) AS n FROM symbol_files WHERE created_at >= \(bind: from) AND created_at < \(bind: to)
                AND upload_id IN (SELECT id FROM symbol_uploads WHERE 1 = 1\(accountCondition))
                """).first()
            var t = SymbolUploadTotals()
            t.uploads = try u?.decode(column: "n", as: Int.self) ?? 0
            t.bytes = try u?.decode(column: "bytes", as: Int64.self) ?? 0
            t.files = try f?.decode(column: "n", as: Int.self) ?? 0
            return t
        }
    }

    /// Deletes (or with `dryRun` counts) try uploads created before `tryCutoff` and regular ones
    /// before `regularCutoff`, with their file records, in bulk. Returns (uploads, files).
    public func deleteSymbolUploads(tryBefore tryCutoff: Int64, regularBefore regularCutoff: Int64, dryRun: Bool) async throws -> (uploads: Int, files: Int) {
        let condition: SQLQueryString = """
            (is_try = 1 AND created_at < \(bind: tryCutoff)) OR (is_try = 0 AND created_at < \(bind: regularCutoff))
            """
        return try await database.withTransaction { db in
            // Files first: their condition names the uploads.
            let files = try await countAndDelete(db, from: "symbol_files", where: "upload_id IN (SELECT id FROM symbol_uploads WHERE \(condition))",
                                                 dryRun: dryRun)
            let uploads = try await countAndDelete(db, from: "symbol_uploads", where: condition, dryRun: dryRun)
            return (uploads, files)
        }
    }

    // MARK: - missing symbols

    /// A symbol-server request for a module nobody uploaded: counted in the missing-symbols
    /// report (a module first seen this way is not checked by the late-symbols watcher until a
    /// crash needs it).
    /// Anyone may ask a symbol server for anything: past `maxEntries` waiting modules, misses of
    /// modules not yet listed are not recorded (those already listed still count).
    public func recordDownloadMiss(debugFile: String, debugId: String, codeFile: String, codeId: String, maxEntries: Int = 100_000) async throws {
        let now = clock()
        let far = Int64.max / 2
        try await database.write { db in
            let updated = try await db.raw("""
                UPDATE missing_symbols SET download_misses = download_misses + 1, last_seen = \(bind: now)
                WHERE debug_file = \(bind: debugFile) AND debug_id = \(bind: debugId) RETURNING debug_id
                """).first()
            guard updated == nil else { return }
            let count = try await db.raw("SELECT COUNT(*) AS n FROM missing_symbols").first()?.decode(column: "n", as: Int.self) ?? 0
            guard count < maxEntries else { return }
            try await db.raw("""
                INSERT INTO missing_symbols (debug_file, debug_id, code_file, code_id, first_seen, next_check, checks, download_misses, last_seen)
                VALUES (\(bind: CrashIndexRow.removingNUL(debugFile)), \(bind: CrashIndexRow.removingNUL(debugId)), \(bind: CrashIndexRow.removingNUL(codeFile)),
                        \(bind: CrashIndexRow.removingNUL(codeId)), \(bind: now), \(bind: far), 0, 1, \(bind: now))
                ON CONFLICT (debug_file, debug_id) DO UPDATE SET download_misses = missing_symbols.download_misses + 1, last_seen = excluded.last_seen
                """).run()
        }
    }

    /// Forgets modules only symbol downloads asked for (no crash waits for them) not asked for
    /// since `cutoff`.
    @discardableResult
    public func deleteStaleDownloadMisses(before cutoff: Int64) async throws -> Int {
        try await database.withTransaction { db in
            try await countAndDelete(db, from: "missing_symbols", where: """
                last_seen < \(bind: cutoff) AND NOT EXISTS (SELECT 1 FROM missing_symbol_crashes c
                WHERE c.debug_file = missing_symbols.debug_file AND c.debug_id = missing_symbols.debug_id)
                """, dryRun: false)
        }
    }

    public struct MissingSymbolsEntry: Sendable, Equatable {
        public var module: MissingModule
        /// Crashes processed since the report's start that lacked these symbols.
        public var crashes: Int
        public var downloadMisses: Int64
        public var firstSeen: Int64
        public var lastSeen: Int64
    }

    /// Modules crashes (processed since `since`) or symbol downloads needed and no store had,
    /// most crashes first.
    public func missingSymbolsReport(since: Int64, limit: Int = 500) async throws -> [MissingSymbolsEntry] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT m.debug_file, m.debug_id, m.code_file, m.code_id, m.checks, m.download_misses, m.first_seen, m.last_seen,
                       (SELECT COUNT(*) FROM missing_symbol_crashes c WHERE c.debug_file = m.debug_file AND c.debug_id = m.debug_id
                        AND c.processed_at >= \(bind: since)) AS crashes
                FROM missing_symbols m WHERE (m.last_seen >= \(bind: since) OR m.first_seen >= \(bind: since))
                AND (m.download_misses > 0 OR EXISTS (SELECT 1 FROM missing_symbol_crashes c2 WHERE c2.debug_file = m.debug_file
                     AND c2.debug_id = m.debug_id AND c2.processed_at >= \(bind: since)))
                ORDER BY crashes DESC, m.download_misses DESC, m.debug_file, m.debug_id LIMIT \(bind: limit)
                """).all()
        }.map { row in
            MissingSymbolsEntry(
                module: MissingModule(debugFile: try row.decode(column: "debug_file", as: String.self), debugId: try row.decode(column: "debug_id", as: String.self),
                                      codeFile: try row.decode(column: "code_file", as: String.self), codeId: try row.decode(column: "code_id", as: String.self),
                                      checks: try row.decode(column: "checks", as: Int.self)),
                crashes: try row.decode(column: "crashes", as: Int.self), downloadMisses: try row.decode(column: "download_misses", as: Int64.self),
                firstSeen: try row.decode(column: "first_seen", as: Int64.self), lastSeen: try row.decode(column: "last_seen", as: Int64.self))
        }
    }

    /// Waiting modules named `debugFile` whose id equals `debugId` ignoring case.
    public func waitingModules(debugFile: String, debugId: String) async throws -> [MissingModule] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT debug_file, debug_id, code_file, code_id, checks FROM missing_symbols
                WHERE debug_file = \(bind: debugFile) AND UPPER(debug_id) = \(bind: debugId.uppercased())
                """).all()
        }.map { row in
            MissingModule(debugFile: try row.decode(column: "debug_file", as: String.self), debugId: try row.decode(column: "debug_id", as: String.self),
                          codeFile: try row.decode(column: "code_file", as: String.self), codeId: try row.decode(column: "code_id", as: String.self),
                          checks: try row.decode(column: "checks", as: Int.self))
        }
    }
}

/// A file an upload-v2 manifest announced, waiting for its bytes (a direct PUT).
public struct PendingSymbolFile: Sendable, Equatable {
    public var uploadID: Int64
    /// The blob key it will be stored under.
    public var key: String
    /// Size and MD5 of the original (uncompressed) file.
    public var size: Int64
    public var md5: String
    /// Whether the client sends it gzip-compressed (`.sym`).
    public var compressed: Bool
    public var expiresAt: Int64
    public init(uploadID: Int64, key: String, size: Int64, md5: String, compressed: Bool, expiresAt: Int64) {
        self.uploadID = uploadID
        self.key = key
        self.size = size
        self.md5 = md5
        self.compressed = compressed
        self.expiresAt = expiresAt
    }
}

extension MetadataStore {
    public func addPendingSymbolFiles(_ files: [PendingSymbolFile]) async throws {
        guard !files.isEmpty else { return }
        try await database.withTransaction { db in
            for f in files {
                try await db.raw("""
                    INSERT INTO symbol_pending_files (upload_id, key, size, md5, compressed, expires_at)
                    VALUES (\(bind: f.uploadID), \(bind: f.key), \(bind: f.size), \(bind: f.md5), \(bind: f.compressed ? 1 : 0), \(bind: f.expiresAt))
                    ON CONFLICT (upload_id, key) DO NOTHING
                    """).run()
            }
        }
    }

    public func pendingSymbolFiles(uploadID: Int64) async throws -> [PendingSymbolFile] {
        try await database.withConnection { db in
            try await db.raw("""
                SELECT upload_id, key, size, md5, compressed, expires_at FROM symbol_pending_files WHERE upload_id = \(bind: uploadID) ORDER BY key
                """).all()
        }.map { row in
            PendingSymbolFile(uploadID: try row.decode(column: "upload_id", as: Int64.self), key: try row.decode(column: "key", as: String.self),
                              size: try row.decode(column: "size", as: Int64.self), md5: try row.decode(column: "md5", as: String.self),
                              compressed: try row.decode(column: "compressed", as: Int.self) != 0,
                              expiresAt: try row.decode(column: "expires_at", as: Int64.self))
        }
    }

    /// The file is stored (or given up on): no longer pending.
    public func removePendingSymbolFile(uploadID: Int64, key: String) async throws {
        try await database.write { db in
            try await db.raw("DELETE FROM symbol_pending_files WHERE upload_id = \(bind: uploadID) AND key = \(bind: key)").run()
        }
    }

    /// Forgets announced files whose PUT never came.
    @discardableResult
    public func deleteExpiredPendingSymbolFiles(before cutoff: Int64) async throws -> Int {
        try await database.withTransaction { db in
            try await countAndDelete(db, from: "symbol_pending_files", where: "expires_at < \(bind: cutoff)", dryRun: false)
        }
    }
}
