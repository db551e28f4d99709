import Crypto
import Foundation
import JSONSupport
import SQLKit

/// Modules crashes needed and no store had (late symbols; the report is in SymbolRecords.swift).
extension MetadataStore {
    // MARK: - late symbols

    public struct MissingModule: Sendable, Equatable, Hashable {
        public var debugFile: String
        public var debugId: String
        public var codeFile: String
        public var codeId: String
        public var checks: Int
        public init(debugFile: String, debugId: String, codeFile: String = "", codeId: String = "", checks: Int = 0) {
            self.debugFile = debugFile
            self.debugId = debugId
            self.codeFile = codeFile
            self.codeId = codeId
            self.checks = checks
        }
    }

    /// Records which modules of a crash lacked symbols (replacing what an earlier run recorded).
    public func recordMissingSymbols(crashID: String, modules: [MissingModule], firstCheckAfter: Duration) async throws {
        let now = clock()
        let next = now + firstCheckAfter.components.seconds * 1_000_000
        // Module names come from the dump: no NUL reaches PostgreSQL's text columns.
        let modules = modules.map { m in
            MissingModule(debugFile: CrashIndexRow.removingNUL(m.debugFile), debugId: CrashIndexRow.removingNUL(m.debugId),
                          codeFile: CrashIndexRow.removingNUL(m.codeFile), codeId: CrashIndexRow.removingNUL(m.codeId), checks: m.checks)
        }
        try await database.withTransaction { db in
            let previous = try await db.raw("SELECT debug_file, debug_id FROM missing_symbol_crashes WHERE crash_id = \(bind: crashID)").all()
            try await db.raw("DELETE FROM missing_symbol_crashes WHERE crash_id = \(bind: crashID)").run()
            for m in modules {
                try await db.raw("""
                    INSERT INTO missing_symbols (debug_file, debug_id, code_file, code_id, first_seen, next_check, checks, last_seen)
                    VALUES (\(bind: m.debugFile), \(bind: m.debugId), \(bind: m.codeFile), \(bind: m.codeId), \(bind: now), \(bind: next), 0, \(bind: now))
                    ON CONFLICT (debug_file, debug_id) DO UPDATE SET last_seen = excluded.last_seen,
                    next_check = CASE WHEN missing_symbols.next_check < excluded.next_check THEN missing_symbols.next_check ELSE excluded.next_check END
                    """).run()
                try await db.raw("""
                    INSERT INTO missing_symbol_crashes (debug_file, debug_id, crash_id, processed_at)
                    VALUES (\(bind: m.debugFile), \(bind: m.debugId), \(bind: crashID), \(bind: now)) ON CONFLICT DO NOTHING
                    """).run()
            }
            // Modules this crash needed before and no longer does (it found their symbols):
            // forgotten when no other crash waits for them and no download asked for them.
            for row in previous {
                let file = try row.decode(column: "debug_file", as: String.self), id = try row.decode(column: "debug_id", as: String.self)
                try await db.raw("""
                    DELETE FROM missing_symbols WHERE debug_file = \(bind: file) AND debug_id = \(bind: id) AND download_misses = 0
                    AND NOT EXISTS (SELECT 1 FROM missing_symbol_crashes c WHERE c.debug_file = \(bind: file) AND c.debug_id = \(bind: id))
                    """).run()
            }
        }
    }

    /// Modules waiting for symbols: those due for a check (`dueOnly`), or all, most recent first.
    public func missingModules(dueOnly: Bool, limit: Int) async throws -> [MissingModule] {
        let now = clock()
        var query: SQLQueryString = "SELECT debug_file, debug_id, code_file, code_id, checks FROM missing_symbols"
        if dueOnly { query += " WHERE next_check <= \(bind: now)" }
        query += " ORDER BY first_seen DESC LIMIT \(bind: limit)"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map { row in
            MissingModule(debugFile: try row.decode(column: "debug_file", as: String.self), debugId: try row.decode(column: "debug_id", as: String.self),
                          codeFile: try row.decode(column: "code_file", as: String.self), codeId: try row.decode(column: "code_id", as: String.self),
                          checks: try row.decode(column: "checks", as: Int.self))
        }
    }

    public func rescheduleMissingModule(_ m: MissingModule, after delay: Duration) async throws {
        let next = clock() + delay.components.seconds * 1_000_000
        try await database.write { db in
            try await db.raw("""
                UPDATE missing_symbols SET next_check = \(bind: next), checks = checks + 1
                WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)
                """).run()
        }
    }

    /// The module has symbols now: forgets it and returns the crashes it affected that were
    /// processed since `since` (microseconds), at most `limit`.
    public func resolveMissingModule(_ m: MissingModule, since: Int64, limit: Int) async throws -> [String] {
        try await database.withTransaction { db in
            let rows = try await db.raw("""
                SELECT crash_id FROM missing_symbol_crashes WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)
                AND processed_at >= \(bind: since) ORDER BY processed_at DESC LIMIT \(bind: limit)
                """).all()
            try await db.raw("DELETE FROM missing_symbol_crashes WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)").run()
            try await db.raw("DELETE FROM missing_symbols WHERE debug_file = \(bind: m.debugFile) AND debug_id = \(bind: m.debugId)").run()
            return try rows.map { try $0.decode(column: "crash_id", as: String.self) }
        }
    }
}
