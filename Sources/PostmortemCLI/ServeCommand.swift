import CrashModel
import ArgumentParser
import Collector
import CrashStats
import Processor
import ServiceLifecycle
import Signatures
import Stackwalker
import Foundation
import Logging
import ServiceSupport
import Storage
import SymbolSources
import Symbolication
import SymbolServer

/// Flags every server command shares; they override the configuration (environment, file).
struct ServerOptions: ParsableArguments {
    @Option(help: "Data directory of the embedded default (SQLite database, blobs, symbols, caches). Default: ./postmortem-data or POSTMORTEM_DATA_DIR.")
    var data: String?

    @Option(help: "Address to listen on. Default: 127.0.0.1 or POSTMORTEM_HTTP_HOST.")
    var host: String?

    @Option(help: "Port to listen on (0 picks a free one). Default: 8000 or POSTMORTEM_HTTP_PORT.")
    var port: Int?

    @Option(help: "A JSON configuration file (see docs/configuration.md). Default: POSTMORTEM_CONFIG_FILE.")
    var config: String?

    @Option(name: .customLong("symbols-path"), help: "A local symbol tree. Repeatable. Adds to POSTMORTEM_SYMBOLS_PATHS.")
    var symbolsPaths: [String] = []

    @Option(name: .customLong("symbols-url"), help: "A symbol server base URL. Repeatable; tried in order. Adds to POSTMORTEM_SYMBOLS_URLS.")
    var symbolsURLs: [String] = []

    func load() async throws -> PostmortemConfiguration {
        var configuration: PostmortemConfiguration
        do {
            configuration = try await PostmortemConfiguration.load(file: config)
        } catch {
            throw ValidationError("\(error)")
        }
        if let host { configuration.host = host }
        if let port {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
            configuration.port = port
        }
        configuration.symbolPaths += symbolsPaths
        configuration.symbolURLs += symbolsURLs
        configuration.resolve(dataDirectory: data)
        return configuration
    }

    /// Configuration, logging and storage for a service that uses storage.
    func start(logger label: String) async throws -> (PostmortemConfiguration, Logger, StorageContext) {
        let configuration = try await load()
        Observability.bootstrapLogging(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: label)
        // A broken schema or product directory stops the service before it touches storage,
        // with every problem listed.
        do {
            _ = try crashSchemas(configuration)
            _ = try productCatalog(configuration)
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            return (configuration, logger, try await StorageContext.open(configuration.storage, logger: logger))
        } catch {
            throw fail("cannot open storage: \(error)")
        }
    }
}

/// Runs one HTTP service until SIGTERM/SIGINT; prints `Listening on http://host:port` once
/// the socket is bound.
func runHTTPService(_ service: HTTPService, cleanup: @Sendable () async -> Void) async throws {
    let app = service.makeApplication { port in
        service.logger.info("listening", metadata: ["host": "\(service.host)", "port": "\(port)"])
        FileHandleOutput.stdout("Listening on http://\(service.host):\(port)\n")
    }
    do {
        try await app.runService()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    service.logger.info("stopped")
}

/// `stores`: symbol stores read directly (serve's own symbol server).
func symbolSupplier(_ configuration: PostmortemConfiguration, stores: [any SymbolObjectSource] = []) -> SymbolSupplier {
    SymbolSupplier(configuration: SymbolSourcesConfiguration(
        symbolPaths: configuration.symbolPaths + [configuration.dataDirectory + "/symbols/v1"].filter { FileManager.default.fileExists(atPath: $0) },
        symbolURLs: configuration.symbolURLs, cacheDirectory: configuration.symbolCacheDirectory,
        cacheSizeLimit: Int64(configuration.symbolCacheSizeMiB) << 20, negativeCacheTTL: .seconds(300)), stores: stores)
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run every Postmortem service in one process on the embedded default (SQLite + local files), or on PostgreSQL/S3 when configured.",
        discussion: """
        Runs the processor workers and serves the collector (POST /submit), the symbolication API (/symbolicate/v5, \
        /symbolicate/v4) and the operations endpoints (/__heartbeat__, /__lbheartbeat__, /__version__, /metrics). SIGINT or SIGTERM \
        stops accepting connections, finishes in-flight requests and exits.
        """)

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let (configuration, logger, storage) = try await options.start(logger: "postmortem.serve")
        // Symbols uploaded to this process's symbol server are used by its processor and its
        // symbolication service directly.
        let symbolStore = SymbolStore(blobs: storage.blobs, metadata: storage.metadata)
        let supplier = symbolSupplier(configuration, stores: [symbolStore])
        let symbolServer = makeSymbolServer(configuration, store: symbolStore,
                                            watcher: makeLateSymbolsWatcher(configuration, storage: storage, supplier: supplier))
        let collector: Collector
        do {
            collector = try makeCollector(configuration, storage: storage)
        } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        // processor.workers = 0 runs serve without processing (a separate `postmortem processor` may).
        let workerCount = configuration.reader.int(forKey: "processor.workers", default: ProcessInfo.processInfo.activeProcessorCount)
        let workers: [any Service] = workerCount > 0
            ? [try makeProcessorWorkers(configuration, storage: storage, supplier: supplier), makeLateSymbolsWatcher(configuration, storage: storage, supplier: supplier)]
            : []
        // The access audit, upload cleanup, retention (when `retention.crashes_days` is set),
        // republishing (with workers) and the daily export (when `export.enabled`).
        let jobs: ProcessJobs
        do {
            jobs = try ProcessJobs.make(configuration, storage: storage, parts: [.access, .symbols, .crashes], runsWorkers: workerCount > 0)
        } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        let api: CrashStatsAPI
        do {
            api = try makeCrashStatsAPI(configuration, storage: storage)
        } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        let web: CrashStatsWeb
        do {
            web = try makeCrashStatsWeb(configuration, api: api, storage: storage, healthChecks: storage.healthChecks + jobs.healthChecks)
        } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        let service = HTTPService(name: "serve", host: configuration.host, port: configuration.port,
                                  healthChecks: storage.healthChecks + jobs.healthChecks, services: workers + jobs.jobs, limits: configuration.httpLimits,
                                  logger: logger) { router in
            jobs.mount(on: router)
            CollectorService.mount(collector, on: router)
            SymbolicationService.mount(Symbolicator(supplier: supplier), on: router)
            CrashStatsService.mount(api, on: router)
            CrashStatsWeb.mount(web, on: router, tokenPageRoutes: false)
            SymbolServer.mount(symbolServer, on: router, tokenPage: { await web.browserTokenRequest($0) })
        }
        logger.info("starting", metadata: ["data": "\(configuration.dataDirectory)", "embedded": "\(configuration.isEmbedded)",
                                            "blobs": "\(storage.blobs.description)", "database": "\(storage.database.kind)"])
        try await runHTTPService(service) {
            await supplier.shutdown()
            await storage.close()
        }
    }
}

struct SymbolicationServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "symbolication-server",
        abstract: "Run the symbolication service alone (/symbolicate/v5 and v4); it needs no database.")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let configuration = try await options.load()
        Observability.bootstrapLogging(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "postmortem.symbolication")
        let supplier = symbolSupplier(configuration)
        let cache = configuration.symbolCacheDirectory
        let service = HTTPService(
            name: "symbolication", host: configuration.host, port: configuration.port,
            healthChecks: [HealthCheck(name: "symbol_cache") {
                try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
                guard FileManager.default.isWritableFile(atPath: cache) else { throw ValidationError("\(cache) is not writable") }
            }],
            limits: configuration.httpLimits, logger: logger) { router in
                SymbolicationService.mount(Symbolicator(supplier: supplier), on: router)
            }
        try await runHTTPService(service) { await supplier.shutdown() }
    }
}

func makeCollector(_ configuration: PostmortemConfiguration, storage: StorageContext) throws -> Collector {
    var settings = try CollectorConfiguration(configuration)
    // Without collector.products, the product files decide which products are accepted.
    if settings.products.isEmpty { settings.products = try productCatalog(configuration).names }
    return Collector(configuration: settings, throttler: try settings.throttler(), blobs: storage.blobs, queue: storage.queue,
                     metadata: storage.metadata, logger: Logger(label: "postmortem.collector"))
}

struct CollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Run the crash collector alone (POST /submit) on shared storage, or show payload statistics.",
        subcommands: [Run.self, Stats.self], defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the collector service.")
        @OptionGroup var options: ServerOptions

        func run() async throws {
            let (configuration, logger, storage) = try await options.start(logger: "postmortem.collector")
            let collector: Collector
            do { collector = try makeCollector(configuration, storage: storage) } catch {
                await storage.close()
                throw ValidationError("\(error)")
            }
            let service = HTTPService(name: "collector", host: configuration.host, port: configuration.port,
                                      healthChecks: storage.healthChecks, limits: configuration.httpLimits, logger: logger) { router in
                CollectorService.mount(collector, on: router)
            }
            try await runHTTPService(service) { await storage.close() }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stats", abstract: "Payload sizes received over a window: count, median, mean, 95th percentile, maximum.")
        @OptionGroup var storage: StorageOptions
        @Option(help: "The window, in hours back from now.") var hours: Double = 24

        func run() async throws {
            let context = try await storage.open()
            let since = Int64((Date().timeIntervalSince1970 - hours * 3600) * 1_000_000)
            let stats: (received: MetadataStore.SizeStatistics, uncompressed: MetadataStore.SizeStatistics, compressedShare: Double)
            do { stats = try await context.metadata.payloadStatistics(since: since) } catch { await context.close(); throw fail("\(error)") }
            await context.close()
            func kb(_ n: Int) -> String { String(format: "%.1f KB", Double(n) / 1000) }
            var out = "payloads in the last \(hours) h: \(stats.received.count) (\(String(format: "%.0f", stats.compressedShare * 100)) % gzip)\n"
            out += "              median       mean        p95        max\n"
            for (label, s) in [("as received", stats.received), ("uncompressed", stats.uncompressed)] {
                out += label.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + [kb(s.median), kb(Int(s.mean)), kb(s.p95), kb(s.max)].map { $0.leftPadded(11) }.joined() + "\n"
            }
            FileHandleOutput.stdout(out)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// The signature lists of the deployment: `signatures.lists_dir` (Socorro's list files, so a team
/// moving from Socorro keeps its signatures), else the bundled defaults. The processor, the
/// Crash Stats API and `postmortem signature` read the same lists.
func signatureLists(_ configuration: PostmortemConfiguration) throws -> SignatureLists {
    let directory = configuration.reader.string(forKey: "signatures.lists_dir", default: "")
    return directory.isEmpty ? try SignatureLists.bundled() : try SignatureLists(directory: directory)
}

/// The Crash Stats API, configured by `api.*` keys.
func makeCrashStatsAPI(_ configuration: PostmortemConfiguration, storage: StorageContext) throws -> CrashStatsAPI {
    let r = configuration.reader
    let exports = r.bool(forKey: "export.enabled", default: false) ? try exportStore(configuration) : nil
    return try CrashStatsAPI(blobs: storage.blobs, metadata: storage.metadata, queue: storage.queue,
                             signatures: SignatureGenerator(lists: try signatureLists(configuration)),
                             anonymousPerMinute: r.int(forKey: "api.rate_limit.anonymous_per_minute", default: 100),
                             authenticatedPerMinute: r.int(forKey: "api.rate_limit.authenticated_per_minute", default: 1000),
                             queryTimeout: .seconds(max(1, min(3600, r.int(forKey: "api.query_timeout", default: 10)))),
                             maxConcurrentSearches: max(1, r.int(forKey: "api.max_concurrent_searches", default: max(1, configuration.databasePoolSize / 2))),
                             schemas: try crashSchemas(configuration), products: try productCatalog(configuration), exportStore: exports,
                             baseURL: r.string(forKey: "crashstats.base_url", default: ""))
}

/// The web pages, configured by `web.*` keys.
/// The web app; the site administration gets the process's health checks and crash deletion.
func makeCrashStatsWeb(_ configuration: PostmortemConfiguration, api: CrashStatsAPI, storage: StorageContext, healthChecks: [HealthCheck]) throws -> CrashStatsWeb {
    let r = configuration.reader
    let retention = CrashRetention(blobs: storage.blobs, metadata: storage.metadata, queue: storage.queue, retentionDays: 0)
    let admin = SiteAdminHooks(healthChecks: healthChecks, deleteCrash: { try await retention.deleteCrash($0) },
                               protectedGroups: accessAuditSettings(configuration).protectedGroups)
    return try CrashStatsWeb(api: api, siteName: r.string(forKey: "web.site_name", default: "Postmortem Crash Stats"),
                             sourceLinkTemplate: r.string(forKey: "web.source_link_template", default: ""),
                             secureCookies: r.bool(forKey: "web.secure_cookies", default: true),
                             loginAttemptsPerFiveMinutes: max(1, r.int(forKey: "web.login_attempts_per_5_minutes", default: 10)),
                             canonicalHost: r.string(forKey: "web.canonical_host", default: ""),
                             protectedDataPolicyFile: r.string(forKey: "web.protected_data_policy_file", default: ""),
                             openID: try openIDSettings(configuration), admin: admin)
}

/// `web.oidc.*`: OpenID Connect sign-in, on when an issuer is set (then a client id and secret are required).
func openIDSettings(_ configuration: PostmortemConfiguration) throws -> OpenIDSettings? {
    let r = configuration.reader
    let issuer = r.string(forKey: "web.oidc.issuer", default: "")
    guard !issuer.isEmpty else { return nil }
    guard issuer.lowercased().hasPrefix("https://") || issuer.lowercased().hasPrefix("http://") else {
        throw ValidationError("web.oidc.issuer must be an http(s) URL, not \(issuer)")
    }
    let clientID = r.string(forKey: "web.oidc.client_id", default: ""), secret = r.string(forKey: "web.oidc.client_secret", default: "")
    guard !clientID.isEmpty, !secret.isEmpty else { throw ValidationError("web.oidc.issuer needs web.oidc.client_id and web.oidc.client_secret") }
    return OpenIDSettings(issuer: issuer, clientID: clientID, clientSecret: secret, redirectURL: r.string(forKey: "web.oidc.redirect_url", default: ""),
                          displayName: r.string(forKey: "web.oidc.display_name", default: "single sign-on"),
                          createAccounts: r.bool(forKey: "web.oidc.create_accounts", default: true),
                          userStatusURL: r.string(forKey: "web.oidc.user_status_url", default: ""),
                          userStatusToken: r.string(forKey: "web.oidc.user_status_token", default: ""))
}

/// `postmortem webapp`: Crash Stats alone — the web pages and the API — on shared storage.
struct WebappCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webapp", abstract: "Run Crash Stats alone: the web pages and the /api/ models, on shared storage.")
    @OptionGroup var options: ServerOptions

    func run() async throws {
        let (configuration, logger, storage) = try await options.start(logger: "postmortem.webapp")
        let api: CrashStatsAPI, web: CrashStatsWeb, jobs: ProcessJobs
        do {
            api = try makeCrashStatsAPI(configuration, storage: storage)
            jobs = try ProcessJobs.make(configuration, storage: storage, parts: [.access])
            web = try makeCrashStatsWeb(configuration, api: api, storage: storage, healthChecks: storage.healthChecks + jobs.healthChecks)
        } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        let service = HTTPService(name: "webapp", host: configuration.host, port: configuration.port, healthChecks: storage.healthChecks + jobs.healthChecks,
                                  services: jobs.jobs, limits: configuration.httpLimits, logger: logger) { router in
            jobs.mount(on: router)
            CrashStatsService.mount(api, on: router)
            CrashStatsWeb.mount(web, on: router)
        }
        try await runHTTPService(service) { await storage.close() }
    }
}

/// The processor and its queue workers, configured by `processor.*` keys.
func makeCrashProcessor(_ configuration: PostmortemConfiguration, storage: StorageContext, supplier: SymbolSupplier) throws -> CrashProcessor {
    let limit = configuration.reader.int(forKey: "processor.stackwalk_time_limit_ms", default: 120_000)
    let schemas = try crashSchemas(configuration)
    return try CrashProcessor(blobs: storage.blobs, metadata: storage.metadata, walker: Stackwalker(supplier: supplier),
                          signatures: SignatureGenerator(lists: try signatureLists(configuration)), stackwalkTimeLimit: .milliseconds(limit),
                          betaVersionProducts: Set(configuration.reader.string(forKey: "processor.beta_version_products", default: "")
                              .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }),
                          schemas: schemas, exporter: try crashExporter(configuration, storage: storage, schemas: schemas),
                          logger: Logger(label: "postmortem.processor"))
}

func makeProcessorWorkers(_ configuration: PostmortemConfiguration, storage: StorageContext, supplier: SymbolSupplier) throws -> ProcessorWorkers {
    let count = configuration.reader.int(forKey: "processor.workers", default: ProcessInfo.processInfo.activeProcessorCount)
    return ProcessorWorkers(processor: try makeCrashProcessor(configuration, storage: storage, supplier: supplier), queue: storage.queue,
                            workers: count, logger: Logger(label: "postmortem.processor"))
}

func makeLateSymbolsWatcher(_ configuration: PostmortemConfiguration, storage: StorageContext, supplier: SymbolSupplier) -> LateSymbolsWatcher {
    let r = configuration.reader
    return LateSymbolsWatcher(metadata: storage.metadata, queue: storage.queue, supplier: supplier,
                              interval: .seconds(r.int(forKey: "processor.late_symbols.interval", default: 30)),
                              maxBackoff: .seconds(r.int(forKey: "processor.late_symbols.max_backoff", default: 6 * 3600)),
                              lookBack: .seconds(r.int(forKey: "processor.late_symbols.look_back_days", default: 14) * 86_400),
                              maxPerModule: r.int(forKey: "processor.late_symbols.max_crashes_per_module", default: 10_000),
                              logger: Logger(label: "postmortem.late-symbols"))
}

struct ProcessorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processor",
        abstract: "Run processor workers on the shared queue (no HTTP service besides the operations endpoints).")
    @OptionGroup var options: ServerOptions

    func run() async throws {
        let (configuration, logger, storage) = try await options.start(logger: "postmortem.processor")
        let supplier = symbolSupplier(configuration)
        let workers: ProcessorWorkers, jobs: ProcessJobs
        do {
            workers = try makeProcessorWorkers(configuration, storage: storage, supplier: supplier)
            jobs = try ProcessJobs.make(configuration, storage: storage, parts: [.crashes])
        } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        let service = HTTPService(name: "processor", host: configuration.host, port: configuration.port, healthChecks: storage.healthChecks + jobs.healthChecks,
                                  services: [workers, makeLateSymbolsWatcher(configuration, storage: storage, supplier: supplier)] + jobs.jobs,
                                  limits: configuration.httpLimits, logger: logger) { router in jobs.mount(on: router) }
        try await runHTTPService(service) {
            await supplier.shutdown()
            await storage.close()
        }
    }
}

struct ReprocessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reprocess",
        abstract: "Queue crashes for reprocessing (the processor picks them up from the reprocessing queue).")
    @OptionGroup var storage: StorageOptions
    @Option(help: "default (all rules) or regenerate_signature.") var ruleset = "default"
    @Argument(help: "Crash ids (a bp- prefix is accepted).") var crashIDs: [String]

    func validate() throws {
        guard Ruleset(rawValue: ruleset) != nil else { throw ValidationError("--ruleset must be default or regenerate_signature") }
        for id in crashIDs where !CrashID.isValid(CrashID.normalize(id)) { throw ValidationError("\(id) is not a crash id") }
    }

    func run() async throws {
        let context = try await storage.open()
        let items = crashIDs.map { QueueItem(crashID: CrashID.normalize($0), ruleset: ruleset == "default" ? nil : ruleset) }
        do { try await context.queue.enqueue(items, queue: .reprocessing) } catch { await context.close(); throw fail("\(error)") }
        await context.close()
        FileHandleOutput.stdout("queued \(items.count) crash\(items.count == 1 ? "" : "es") for reprocessing (\(ruleset))\n")
    }
}
