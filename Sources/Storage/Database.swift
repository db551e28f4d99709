import Foundation
import Synchronization
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit

/// The two SQL backends. Queries are written once with SQLKit binds; the few places where the
/// dialects differ (DDL types, `FOR UPDATE SKIP LOCKED`, data-modifying CTEs) ask `kind`.
public enum DatabaseKind: String, Sendable { case sqlite, postgres }

public struct DatabaseError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A pool of connections to one database. `withConnection` lends a connection for the duration
/// of `body`; `withTransaction` wraps `body` in a transaction on one connection.
public final class Database: Sendable {
    public let kind: DatabaseKind
    let backend: Backend
    let logger: Logger

    enum Backend: Sendable {
        case sqlite(SQLitePool)
        case postgres(PostgresClient, Task<Void, Never>)
    }

    /// Opens `url`: `sqlite:///abs/path.sqlite` (or a plain file path) or `postgres://user:pass@host:port/db`.
    public static func open(url: String, poolSize: Int = 8, logger: Logger = Logger(label: "postmortem.database")) async throws -> Database {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try Database(postgresURL: url, poolSize: poolSize, logger: logger)
        }
        var path = url
        if path.hasPrefix("sqlite://") { path = String(path.dropFirst("sqlite://".count)) }
        guard !path.isEmpty else { throw DatabaseError("empty SQLite path in database URL") }
        return try await Database(sqlitePath: path, poolSize: poolSize, logger: logger)
    }

    init(sqlitePath: String, poolSize: Int, logger: Logger) async throws {
        kind = .sqlite
        self.logger = logger
        let pool = SQLitePool(path: sqlitePath, size: max(1, poolSize), logger: logger)
        try await pool.prepare()
        backend = .sqlite(pool)
    }

    init(postgresURL: String, poolSize: Int, logger: Logger) throws {
        kind = .postgres
        self.logger = logger
        guard let sqlConfiguration = try? SQLPostgresConfiguration(url: postgresURL) else {
            throw DatabaseError("invalid PostgreSQL URL")
        }
        let core = sqlConfiguration.coreConfiguration
        let tls: PostgresClient.Configuration.TLS
        switch (core.tls.isEnforced, core.tls.isAllowed) {
        case (true, _): tls = .require(.makeClientConfiguration())
        case (_, true): tls = .prefer(.makeClientConfiguration())
        default: tls = .disable
        }
        var configuration: PostgresClient.Configuration
        if let host = core.host, let port = core.port {
            configuration = .init(host: host, port: port, username: core.username, password: core.password, database: core.database, tls: tls)
        } else if let socket = core.unixSocketPath {
            configuration = .init(unixSocketPath: socket, username: core.username, password: core.password, database: core.database)
        } else {
            throw DatabaseError("the PostgreSQL URL names neither a host nor a socket")
        }
        configuration.options.maximumConnections = max(1, poolSize)
        configuration.options.minimumConnections = 0
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let task = Task { await client.run() }
        backend = .postgres(client, task)
    }

    public func withConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite(let pool):
            return try await pool.withConnection { try await body($0.sql(queryLogLevel: nil)) }
        case .postgres(let client, _):
            return try await client.withConnection { try await body($0.sql(queryLogLevel: nil)) }
        }
    }

    /// Runs statements that write. SQLite has one writer at a time: writers queue here, in
    /// order, instead of busy-waiting on SQLite's lock while holding a thread.
    public func write<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite(let pool):
            return try await pool.writeGate.locked { try await withConnection(body) }
        case .postgres:
            return try await withConnection(body)
        }
    }

    /// Runs `body` in a transaction (SQLite: behind the write gate, with `BEGIN IMMEDIATE`);
    /// rolls back when it throws.
    public func withTransaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let begin = kind == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN"
        return try await write { db in
            try await db.raw(SQLQueryString(begin)).run()
            do {
                let result = try await body(db)
                try await db.raw("COMMIT").run()
                return result
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    public func shutdown() async {
        switch backend {
        case .sqlite(let pool): await pool.close()
        case .postgres(_, let task): task.cancel(); _ = await task.value
        }
    }

    /// Runs one statement with no parameters (administration: `CREATE DATABASE`, `VACUUM`, …).
    public func execute(_ sql: String) async throws {
        try await withConnection { try await $0.raw(SQLQueryString(sql)).run() }
    }

    /// `SELECT 1` (for `/__heartbeat__`).
    public func check() async throws {
        _ = try await withConnection { try await $0.raw("SELECT 1 AS ok").first() }
    }
}

/// A fixed set of SQLite connections (WAL mode, busy timeout) lent one at a time. Each has a
/// thread of its own pool, so a connection waiting for SQLite's lock never starves the one that
/// holds it.
actor SQLitePool {
    let path: String
    let size: Int
    let logger: Logger
    let threads: NIOThreadPool
    nonisolated let writeGate = AsyncGate()
    private var idle: [SQLiteConnection] = []
    private var all: [SQLiteConnection] = []
    private var waiters: [CheckedContinuation<SQLiteConnection, Never>] = []
    private var closed = false

    init(path: String, size: Int, logger: Logger) {
        self.path = path
        self.size = size
        self.logger = logger
        threads = NIOThreadPool(numberOfThreads: size)
        threads.start()
    }

    func prepare() async throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        for n in 0..<size {
            let c = try await SQLiteConnection.open(storage: .file(path: path), threadPool: threads, logger: logger,
                                                    on: MultiThreadedEventLoopGroup.singleton.any())
            let db = c.sql(queryLogLevel: nil)
            // WAL lets readers run beside the one writer; the busy timeout makes writers wait.
            if n == 0 { _ = try await db.raw("PRAGMA journal_mode=WAL").all() }
            try await db.raw("PRAGMA busy_timeout=10000").run()
            // FULL: a commit is on disk before the collector answers "accepted" (NORMAL in WAL mode
            // can lose the last commits on power loss).
            try await db.raw("PRAGMA synchronous=FULL").run()
            try await db.raw("PRAGMA foreign_keys=ON").run()
            try await c.install(customFunction: RegexMatch.sqliteFunction)
            all.append(c)
            idle.append(c)
        }
    }

    private func acquire() async throws -> SQLiteConnection {
        if closed { throw DatabaseError("the database is closed") }
        if let c = idle.popLast() { return c }
        return await withCheckedContinuation { waiters.append($0) }
    }

    private func release(_ c: SQLiteConnection) {
        if !waiters.isEmpty { waiters.removeFirst().resume(returning: c) } else { idle.append(c) }
    }

    nonisolated func withConnection<T: Sendable>(_ body: @Sendable (SQLiteConnection) async throws -> T) async throws -> T {
        let c = try await acquire()
        do {
            let r = try await body(c)
            await release(c)
            return r
        } catch {
            await release(c)
            throw error
        }
    }

    func close() async {
        closed = true
        for c in all { try? await c.close() }
        all = []
        idle = []
        try? await threads.shutdownGracefully()
    }
}

/// An async mutual-exclusion gate with first-come, first-served waiters.
public actor AsyncGate {
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    private func acquire() async {
        if !held { held = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty { held = false } else { waiters.removeFirst().resume() }
    }

    public nonisolated func locked<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        do {
            let r = try await body()
            await release()
            return r
        } catch {
            await release()
            throw error
        }
    }
}

/// `pm_regexp(pattern, text)`: whether the whole text matches the pattern (ICU syntax), for Super
/// Search's `@` operator on SQLite, which has no regular expressions of its own. PostgreSQL uses
/// `~` with the pattern anchored the same way. Compiled patterns are cached (bounded); an invalid
/// pattern matches nothing.
enum RegexMatch {
    private static let cache = Mutex<[String: NSRegularExpression?]>([:])

    /// Milliseconds of a monotonic clock: the deadlines callers bind into `pm_regexp`.
    static func nowMilliseconds() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }

    /// Whether `pattern` matches all of `text`; throws `QueryTimedOut` once `deadline` (from
    /// `nowMilliseconds`) has passed — checked before each row and while ICU backtracks, so a
    /// catastrophic pattern costs at most the query's time limit, not minutes per row.
    static func matches(_ pattern: String, _ text: String, deadline: Int64 = .max) throws -> Bool {
        let regex: NSRegularExpression? = cache.withLock { c in
            if let hit = c[pattern] { return hit }
            if c.count >= 1_000 { c.removeAll() }
            let compiled = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$")
            c[pattern] = compiled
            return compiled
        }
        guard let regex else { return false }
        guard nowMilliseconds() < deadline else { throw QueryTimedOut() }
        var matched = false, timedOut = false
        regex.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(text.startIndex..., in: text)) { match, _, stop in
            if match != nil { matched = true; stop.pointee = true }
            else if nowMilliseconds() >= deadline { timedOut = true; stop.pointee = true }
        }
        if timedOut { throw QueryTimedOut() }
        return matched
    }

    static let sqliteFunction = SQLiteCustomFunction("pm_regexp", argumentCount: 3, pure: false) { args in
        guard let pattern = args[0].string, let text = args[1].string else { return nil as Int? }
        return try matches(pattern, text, deadline: args[2].integer.map(Int64.init) ?? .max) ? 1 : 0
    }
}

extension Database {
    /// Whether a query failed for its time limit: PostgreSQL's query_canceled (57014), or
    /// `pm_regexp` giving up on SQLite.
    static func isTimeout(_ error: any Error) -> Bool {
        if error is QueryTimedOut { return true }
        if let e = error as? PSQLError, e.serverInfo?[.sqlState] == "57014" { return true }
        return String(describing: error).contains("pm_query_timed_out")
    }
}

/// A query ran past its time limit (`statement_timeout` on PostgreSQL, the regex deadline on SQLite).
public struct QueryTimedOut: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "pm_query_timed_out: the query ran past its time limit" }
}
