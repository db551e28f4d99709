import AsyncHTTPClient
import BreakpadSymbols
import CSystemShims
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Why a module's symbols are not available.
public enum SymbolNotFoundReason: Sendable, Equatable, CustomStringConvertible {
    /// No source had the file.
    case missing
    /// Remembered as missing (negative cache).
    case recentlyMissing
    /// The file's MODULE debug id differs from the requested one.
    case debugIdMismatch(found: String)
    /// The file could not be parsed.
    case malformed(String)
    /// Every source that could have it failed (server errors, timeouts, too large).
    case fetchFailed(String)
    /// The module names no usable debug id or code id.
    case notLookedUp

    public var description: String {
        switch self {
        case .missing: return "not found"
        case .recentlyMissing: return "not found (cached)"
        case .debugIdMismatch(let id): return "MODULE debug id \(id) differs from the requested id"
        case .malformed(let m): return "malformed symbol file: \(m)"
        case .fetchFailed(let m): return "fetch failed: \(m)"
        case .notLookedUp: return "no debug id or code id to look up"
        }
    }
}

/// What one lookup cost; symbolication's `Debug` statistics are made of these.
public struct SymbolFetchReport: Sendable {
    public var cacheHit = false
    public var cacheLookupSeconds = 0.0
    /// Bytes and seconds of a download (after decompression), when one happened.
    public var downloadBytes: Int64?
    public var downloadSeconds: Double?
    public var downloadFailedSeconds: Double?
    public var parseSeconds: Double?
    public var parseFailedSeconds: Double?
    public var saveSeconds: Double?
    /// The local path or URL the symbols came from.
    public var source: String?
    public init() {}
}

public struct SymbolFetch: Sendable {
    public var table: SymbolTable?
    public var notFound: SymbolNotFoundReason?
    public var report: SymbolFetchReport
}

/// A symbol store read directly rather than over HTTP: `serve`'s own symbol server, so symbols
/// uploaded to it are used by its processor and symbolication service with no configuration.
public protocol SymbolObjectSource: Sendable {
    /// The uncompressed `.sym` for `file`/`id`/`name` (a debug file and id, or a code file and
    /// id), nil when the store has none.
    func symbolFile(file: String, id: String, name: String) async throws -> Data?
    var description: String { get }
}

/// Finds symbols for modules: an in-memory table cache, then local symbol trees, the on-disk index
/// cache, symbol stores and HTTP symbol servers. Concurrent requests for one module share a single fetch; misses
/// are remembered for `negativeCacheTTL`.
public actor SymbolSupplier {
    public nonisolated let configuration: SymbolSourcesConfiguration
    private let fetcher: Fetcher
    private let ownsClient: Bool
    private var memory: [ModuleIdentity: (table: SymbolTable, used: UInt64)] = [:]
    private var useCounter: UInt64 = 0
    private var negative: [ModuleIdentity: ContinuousClock.Instant] = [:]
    private var inFlight: [ModuleIdentity: Task<SymbolFetch, Never>] = [:]

    /// With no `httpClient`, the supplier creates one and `shutdown()` must be called.
    public init(configuration: SymbolSourcesConfiguration, httpClient: HTTPClient? = nil, stores: [any SymbolObjectSource] = []) {
        self.configuration = configuration
        let client: HTTPClient?
        if let httpClient {
            client = httpClient
            ownsClient = false
        } else if configuration.symbolURLs.isEmpty {
            client = nil
            ownsClient = false
        } else {
            var c = HTTPClient.Configuration(redirectConfiguration: .follow(max: 5, allowCycles: false),
                                             decompression: .enabled(limit: .none))
            c.timeout = .init(connect: .seconds(10), read: .seconds(60))
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
            ownsClient = true
        }
        fetcher = Fetcher(configuration: configuration, client: client, stores: stores,
                          cache: DiskCache(root: configuration.cacheDirectory, sizeLimit: configuration.cacheSizeLimit,
                                           staging: configuration.stagingDirectory))
    }

    public func shutdown() async {
        if ownsClient, let client = fetcher.client { try? await client.shutdown() }
    }

    /// The symbols of `module`, or why there are none.
    public func symbols(for module: ModuleIdentity) async -> SymbolFetch {
        let clock = ContinuousClock()
        let start = clock.now
        if let hit = memory[module] {
            useCounter += 1
            memory[module] = (hit.table, useCounter)
            var report = SymbolFetchReport()
            report.cacheHit = true
            report.cacheLookupSeconds = (clock.now - start).inSeconds
            return SymbolFetch(table: hit.table, notFound: nil, report: report)
        }
        if let until = negative[module] {
            if clock.now < until { return SymbolFetch(table: nil, notFound: .recentlyMissing, report: SymbolFetchReport()) }
            negative[module] = nil
        }
        if let running = inFlight[module] { return await running.value }
        let fetcher = self.fetcher
        let task = Task.detached { await fetcher.fetch(module) }
        inFlight[module] = task
        let result = await task.value
        inFlight[module] = nil
        if let table = result.table {
            remember(module, table)
        } else if configuration.negativeCacheTTL > .zero, result.notFound != .notLookedUp {
            if negative.count >= max(1, configuration.negativeCacheEntries) { pruneNegativeCache() }
            // A miss in local trees alone is cheap to repeat, and a file copied into a tree must be
            // seen by the next crash: such misses are remembered for seconds, not minutes.
            let ttl = hasServers ? configuration.negativeCacheTTL : min(configuration.negativeCacheTTL, configuration.localNegativeCacheTTL)
            negative[module] = clock.now + ttl
        }
        return result
    }

    /// Forgets that `file`/`id` was missing (a symbol upload just stored it).
    public func forgetMissing(debugFile: String, debugId: String) {
        let file = baseName(debugFile), id = debugId.uppercased()
        negative = negative.filter { !(baseName($0.key.debugFile) == file && $0.key.debugId.uppercased() == id) }
    }

    /// Entries in the negative cache (for tests and metrics).
    public var negativeCacheCount: Int { negative.count }

    /// Drops expired entries, then, if that is not enough, the half that expires soonest (the
    /// oldest): amortized, each insertion pays O(log n).
    private func pruneNegativeCache() {
        let now = ContinuousClock().now
        negative = negative.filter { $0.value > now }
        let limit = max(1, configuration.negativeCacheEntries)
        guard negative.count >= limit else { return }
        let keep = negative.sorted { $0.value > $1.value }.prefix(limit / 2)
        negative = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
    }

    /// Looks `module` up again, past the negative cache (late-symbol checks). True when its
    /// symbols are now available (and cached).
    public func recheck(_ module: ModuleIdentity) async -> Bool {
        // Callers may spell the same module differently (a code file path vs. its name).
        let file = baseName(module.debugFile), id = module.debugId.uppercased()
        negative = negative.filter { !(baseName($0.key.debugFile) == file && $0.key.debugId.uppercased() == id) }
        return await symbols(for: module).table != nil
    }

    /// Whether a local symbol tree has a file for `module`, a `.sym` or a native debug file (a
    /// cheap existence check, no parse).
    public nonisolated func existsLocally(_ module: ModuleIdentity) -> Bool {
        let debugFile = baseName(module.debugFile)
        guard !module.debugId.isEmpty, isSafePathComponent(debugFile), isSafePathComponent(module.debugId) else { return false }
        let symName = ModuleIdentity.symbolFileName(for: debugFile)
        let names = [symName] + NativeDebugFiles.fileNames(for: debugFile)
        return configuration.symbolPaths.contains { root in
            [module.debugId.uppercased(), module.debugId].contains { id in
                names.contains { FileManager.default.isReadableFile(atPath: "\(root)/\(debugFile)/\(id)/\($0)") }
            }
        }
    }

    /// Whether any symbol server is configured (late-symbol checks then also ask the network).
    public nonisolated var hasServers: Bool { !configuration.symbolURLs.isEmpty || !fetcher.stores.isEmpty }

    private func remember(_ module: ModuleIdentity, _ table: SymbolTable) {
        useCounter += 1
        memory[module] = (table, useCounter)
        if memory.count > configuration.memoryCacheEntries,
           let oldest = memory.min(by: { $0.value.used < $1.value.used })?.key {
            memory[oldest] = nil
        }
    }
}

public extension Duration {
    /// The duration as floating-point seconds (for reports and statistics).
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// The stateless part of a lookup, run off the actor (parsing is CPU-bound).
struct Fetcher: Sendable {
    let configuration: SymbolSourcesConfiguration
    let client: HTTPClient?
    let stores: [any SymbolObjectSource]
    let cache: DiskCache

    func fetch(_ module: ModuleIdentity) async -> SymbolFetch {
        var report = SymbolFetchReport()
        let debugFile = baseName(module.debugFile)
        if !module.debugId.isEmpty, isSafePathComponent(debugFile), isSafePathComponent(module.debugId) {
            let id = module.debugId.uppercased()
            return await find(
                key: (debugFile, id), symName: ModuleIdentity.symbolFileName(for: debugFile),
                requestedId: module.debugId, expectedDebugId: id, code: codeQuery(module), report: &report)
        }
        let codeFile = baseName(module.codeFile)
        if !module.codeId.isEmpty, isSafePathComponent(codeFile), isSafePathComponent(module.codeId) {
            let symName = debugFile.isEmpty ? ModuleIdentity.symbolFileName(forCodeFile: codeFile)
                                            : ModuleIdentity.symbolFileName(for: debugFile)
            return await find(key: (codeFile, module.codeId.uppercased()), symName: symName,
                              requestedId: module.codeId, expectedDebugId: nil, code: codeQuery(module), report: &report)
        }
        return SymbolFetch(table: nil, notFound: .notLookedUp, report: report)
    }

    /// `?code_file=…&code_id=…` for symbol-server requests: a Tecken-style server records a miss
    /// with them (Postmortem's missing-symbols report), as Mozilla's stackwalker sends them.
    private func codeQuery(_ module: ModuleIdentity) -> String {
        let file = baseName(module.codeFile)
        guard !file.isEmpty, !module.codeId.isEmpty else { return "" }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let f = file.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        let i = module.codeId.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        return "?code_file=\(f)&code_id=\(i)"
    }

    /// `key` is (file, upper-cased id) for local trees and the cache; servers get the id as requested.
    private func find(key: (String, String), symName: String, requestedId: String,
                      expectedDebugId: String?, code: String, report: inout SymbolFetchReport) async -> SymbolFetch {
        let clock = ContinuousClock()
        var lastProblem: SymbolNotFoundReason = .missing

        // 1. Local trees (authoritative, and their indexes are checked against the file's mtime).
        for (n, root) in configuration.symbolPaths.enumerated() {
            // The tree's directories are upper-case ids; a request's own spelling is tried second.
            let ids = requestedId == key.1 ? [key.1] : [key.1, requestedId]
            let candidates = ids.map { "\(root)/\(key.0)/\($0)/\(symName)" }
            // Without a `.sym`, a native debug file under the debug id (read without a text step).
            let native = expectedDebugId == nil ? [] : ids.flatMap { id in NativeDebugFiles.fileNames(for: key.0).map { "\(root)/\(key.0)/\(id)/\($0)" } }
            let symbolFile = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) })
            let nativeFile = symbolFile == nil ? native.first(where: { FileManager.default.isReadableFile(atPath: $0) && NativeDebugFiles.looksNative($0) }) : nil
            guard let path = symbolFile ?? nativeFile else { continue }
            let indexPath = cache.path(key.0, key.1, suffix: "local\(n).symc") ?? ""
            let start = clock.now
            do {
                let (table, fromIndex) = nativeFile == nil
                    ? try SymbolTable.load(symbolFile: path, indexPath: indexPath)
                    : try SymbolTable.load(source: path, indexPath: indexPath) {
                        try NativeDebugFiles.table(path: path, debugFile: key.0, debugId: expectedDebugId)
                    }
                let elapsed = (clock.now - start).inSeconds
                if fromIndex { report.cacheHit = true; report.cacheLookupSeconds += elapsed } else { report.parseSeconds = elapsed }
                report.source = path
                if let problem = mismatch(table, expectedDebugId) { lastProblem = problem; continue }
                return SymbolFetch(table: table, notFound: nil, report: report)
            } catch {
                report.parseFailedSeconds = (clock.now - start).inSeconds
                lastProblem = .malformed("\(path): \(error)")
            }
        }

        // 2. Symbol stores read directly (serve's own symbol server), parsed into the index cache.
        for store in stores {
            let loadStart = clock.now
            let data: Data?
            do { data = try await store.symbolFile(file: key.0, id: requestedId, name: symName) } catch {
                report.downloadFailedSeconds = (clock.now - loadStart).inSeconds
                lastProblem = .fetchFailed("\(store.description): \(error)")
                continue
            }
            guard let data else { continue }
            report.downloadBytes = Int64(data.count)
            report.downloadSeconds = (clock.now - loadStart).inSeconds
            let parseStart = clock.now
            do {
                let table = try data.withUnsafeBytes { try SymbolFileParser().parse(bytes: $0) }
                report.parseSeconds = (clock.now - parseStart).inSeconds
                if let problem = mismatch(table, expectedDebugId) { lastProblem = problem; continue }
                report.source = store.description
                return SymbolFetch(table: table, notFound: nil, report: report)
            } catch {
                report.parseFailedSeconds = (clock.now - parseStart).inSeconds
                lastProblem = .malformed("\(store.description): \(error)")
            }
        }

        // 3. Indexes of earlier downloads.
        guard !configuration.symbolURLs.isEmpty, let client else {
            return SymbolFetch(table: nil, notFound: lastProblem, report: report)
        }
        let indexPath = cache.path(key.0, key.1, suffix: "symc")
        let lookupStart = clock.now
        if let indexPath, let table = try? SymbolIndexFile.open(indexPath) {
            cache.touch(indexPath)
            report.cacheHit = true
            report.cacheLookupSeconds += (clock.now - lookupStart).inSeconds
            report.source = table.module.url
            return SymbolFetch(table: table, notFound: nil, report: report)
        }
        report.cacheLookupSeconds += (clock.now - lookupStart).inSeconds

        // 4. Symbol servers, in order.
        for base in configuration.symbolURLs {
            let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
            let url = "\(trimmed)/\(percentEncode(key.0))/\(percentEncode(requestedId))/\(percentEncode(symName))\(code)"
            let staging = cache.stagingPath()
            defer { unlink(staging) }
            let downloadStart = clock.now
            let outcome = await download(client, url: url, to: staging)
            switch outcome {
            case .notFound:
                report.downloadFailedSeconds = (clock.now - downloadStart).inSeconds
                continue
            case .failed(let message):
                report.downloadFailedSeconds = (clock.now - downloadStart).inSeconds
                lastProblem = .fetchFailed("\(url): \(message)")
                continue
            case .saved(let bytes):
                report.downloadBytes = bytes
                report.downloadSeconds = (clock.now - downloadStart).inSeconds
            }
            let parseStart = clock.now
            let parsed: SymbolTable
            do {
                parsed = try SymbolFileParser().parse(path: staging)
            } catch {
                report.parseFailedSeconds = (clock.now - parseStart).inSeconds
                lastProblem = .malformed("\(url): \(error)")
                continue
            }
            report.parseSeconds = (clock.now - parseStart).inSeconds
            if let problem = mismatch(parsed, expectedDebugId) { lastProblem = problem; continue }
            report.source = url
            var table = parsed
            if let indexPath {
                let saveStart = clock.now
                if (try? SymbolIndexFile.write(parsed, to: indexPath, sourceURL: url)) != nil {
                    report.saveSeconds = (clock.now - saveStart).inSeconds
                    cache.evictIfNeeded()
                    // Serve from the mapping so the parse tables can be freed.
                    if let mapped = try? SymbolIndexFile.open(indexPath) { table = mapped }
                }
            }
            return SymbolFetch(table: table, notFound: nil, report: report)
        }
        return SymbolFetch(table: nil, notFound: lastProblem, report: report)
    }

    private func mismatch(_ table: SymbolTable, _ expected: String?) -> SymbolNotFoundReason? {
        guard let expected, table.module.debugId.uppercased() != expected else { return nil }
        return .debugIdMismatch(found: table.module.debugId)
    }

    enum DownloadOutcome { case saved(Int64), notFound, failed(String) }

    /// GETs `url` into `path`, retrying 429/500/503/504 and connection errors with exponential backoff.
    private func download(_ client: HTTPClient, url: String, to path: String) async -> DownloadOutcome {
        var delay = configuration.retryBaseDelay
        var last = "no attempt"
        for attempt in 1...configuration.attempts {
            if attempt > 1 {
                try? await Task.sleep(for: delay)
                delay *= 2
            }
            do {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "Accept-Encoding", value: "gzip")
                request.headers.add(name: "User-Agent", value: "postmortem-symbols")
                let response = try await client.execute(request, timeout: .seconds(Int64(configuration.requestTimeout.inSeconds)))
                switch response.status.code {
                case 200:
                    return try await save(response.body, to: path)
                case 404:
                    return .notFound
                case 429, 500, 502, 503, 504:
                    last = "HTTP \(response.status.code)"
                    continue
                default:
                    return .failed("HTTP \(response.status.code)")
                }
            } catch let error as TooLarge {
                return .failed(error.description)
            } catch {
                last = "\(error)"
            }
        }
        return .failed("\(last) after \(configuration.attempts) attempts")
    }

    struct TooLarge: Error, CustomStringConvertible {
        let limit: Int64
        var description: String { "larger than \(limit) bytes" }
    }

    private func save(_ body: HTTPClientResponse.Body, to path: String) async throws -> DownloadOutcome {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return .failed("cannot create \(path)") }
        defer { close(fd) }
        var total: Int64 = 0
        for try await chunk in body {
            total += Int64(chunk.readableBytes)
            if total > configuration.maxSymbolFileSize { throw TooLarge(limit: configuration.maxSymbolFileSize) }
            let written = chunk.withUnsafeReadableBytes { pm_write_all(fd, $0.baseAddress, $0.count) }
            if written != 0 { return .failed("cannot write \(path)") }
        }
        return .saved(total)
    }

    private func percentEncode(_ s: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#%")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
