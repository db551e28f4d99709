import ArgumentParser
import AsyncHTTPClient
import CrashModel
import Foundation
import JSONSupport
import Logging
import NIOCore
import Processor
import ServiceSupport
import Storage
import SymbolServer
import SymbolSources
import ZIPFoundation

/// The symbol server's settings from `symbols.*` keys (docs/configuration.md).
func symbolServerSettings(_ configuration: PostmortemConfiguration) -> SymbolServerSettings {
    let r = configuration.reader
    var s = SymbolServerSettings(temporaryDirectory: r.string(forKey: "symbols.temporary_directory", default: configuration.dataDirectory + "/tmp/uploads"))
    s.maxUploadSize = Int64(max(1, r.int(forKey: "symbols.max_upload_size_mb", default: 2048))) << 20
    s.allowedDownloadHosts = r.string(forKey: "symbols.upload_by_url.allowed_hosts", default: "")
        .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    s.allowInsecureDownloads = r.bool(forKey: "symbols.upload_by_url.allow_http", default: false)
    s.bucketName = r.string(forKey: "symbols.bucket_name", default: configuration.s3?.bucket ?? "symbols")
    s.redirectExpiry = max(1, min(604_800, r.int(forKey: "symbols.redirect_expiry", default: 300)))
    let base = r.string(forKey: "symbols.public_base_url", default: "")
    s.publicBaseURL = base.isEmpty ? nil : base
    s.archiveLimits.maxMembers = max(1, r.int(forKey: "symbols.max_archive_members", default: 20_000))
    s.archiveLimits.maxUncompressedBytes = UInt64(max(1, r.int(forKey: "symbols.max_archive_uncompressed_mb", default: 4096))) << 20
    s.tryRetention = .seconds(max(1, r.int(forKey: "symbols.retention.try_days", default: 30)) * 86_400)
    s.regularRetention = .seconds(max(1, r.int(forKey: "symbols.retention.regular_days", default: 730)) * 86_400)
    return s
}

/// The symbol server on the service's storage; uploads wake the crashes waiting for them.
func makeSymbolServer(_ configuration: PostmortemConfiguration, store: SymbolStore, watcher: LateSymbolsWatcher) -> SymbolServer {
    let logger = Logger(label: "postmortem.symbols")
    return SymbolServer(store: store, settings: symbolServerSettings(configuration)) { records in
        do {
            try await watcher.symbolsArrived(records.compactMap { r in r.debugFilename.flatMap { f in r.debugId.map { (f, $0) } } })
        } catch {
            logger.error("cannot queue crashes waiting for uploaded symbols", metadata: ["error": "\(error)"])
        }
    }
}

struct SymbolsServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "symbols-server",
        abstract: "Run the symbol server alone (Tecken-compatible upload, download, code-id lookup) on shared storage.")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let (configuration, logger, storage) = try await options.start(logger: "postmortem.symbols-server")
        let store = SymbolStore(blobs: storage.blobs, metadata: storage.metadata)
        // No symbol sources of its own: it only forgets misses and queues waiting crashes.
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(cacheDirectory: configuration.symbolCacheDirectory))
        let server = makeSymbolServer(configuration, store: store, watcher: makeLateSymbolsWatcher(configuration, storage: storage, supplier: supplier))
        let jobs: ProcessJobs
        do { jobs = try ProcessJobs.make(configuration, storage: storage, parts: [.symbols]) } catch {
            await storage.close()
            throw ValidationError("\(error)")
        }
        let service = HTTPService(name: "symbols-server", host: configuration.host, port: configuration.port, healthChecks: storage.healthChecks + jobs.healthChecks,
                                  services: jobs.jobs, limits: configuration.httpLimits, logger: logger) { router in
            jobs.mount(on: router)
            SymbolServer.mount(server, on: router)
        }
        try await runHTTPService(service) {
            await supplier.shutdown()
            await storage.close()
        }
    }
}

struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup", abstract: "Retention jobs (they also run inside serve and symbols-server).",
        subcommands: [Uploads.self, Crashes.self])

    struct Crashes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crashes",
            abstract: "Delete crashes received before a cutoff (raw crash, dumps, processed crash, index and missing-symbol rows), old dead letters and payload records, and tokens expired 90 days ago.")
        @OptionGroup var storage: StorageOptions
        @Option(name: .customLong("older-than"), help: "Days of crashes kept, counted back from today (UTC); older days are deleted.") var olderThan: Int
        @Option(name: .customLong("scan-days"), help: "How many days before the cutoff are looked at.") var scanDays = 366
        @Flag(name: .customLong("dry-run"), help: "Count what would be deleted; delete nothing.") var dryRun = false

        func validate() throws {
            guard (1...36_500).contains(olderThan) else { throw ValidationError("--older-than must be 1…36500 days") }
            guard (1...36_500).contains(scanDays) else { throw ValidationError("--scan-days must be 1…36500") }
        }

        func run() async throws {
            let context = try await storage.open()
            var retention = CrashRetention(blobs: context.blobs, metadata: context.metadata, queue: context.queue, retentionDays: olderThan)
            retention.scanDays = scanDays
            let o: CrashRetention.Outcome
            do { o = try await retention.runOnce(dryRun: dryRun) } catch { await context.close(); throw fail("\(error)") }
            await context.close()
            FileHandleOutput.stdout("""
                \(dryRun ? "would delete" : "deleted") before \(CrashID.dayStamp(retention.cutoffDay(now: Date()))): \(o.crashes) crashes \
                (\(o.blobs) objects, \(o.indexRows) index rows, \(o.missingSymbolRows) missing-symbol rows, \(o.otherRows) other rows), \
                \(o.deadLetters) dead letters, \(o.payloadRecords) payload records, \(o.expiredTokens) expired tokens, \(o.expiredSessions) expired sessions

                """)
        }
    }

    struct Uploads: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "uploads",
            abstract: "Delete symbol upload records past retention (try 30 days, regular 2 years) and orphaned temporary upload files.")
        @Option(help: "Data directory of the embedded default. Default: ./postmortem-data or POSTMORTEM_DATA_DIR.") var data: String?
        @Option(help: "A JSON configuration file. Default: POSTMORTEM_CONFIG_FILE.") var config: String?
        @Flag(name: .customLong("dry-run"), help: "Count what would be deleted; delete nothing.") var dryRun = false

        func run() async throws {
            var configuration: PostmortemConfiguration
            do { configuration = try await PostmortemConfiguration.load(file: config) } catch { throw ValidationError("\(error)") }
            configuration.resolve(dataDirectory: data)
            Observability.bootstrapLogging(format: "text", level: "warning")
            let storage: StorageContext
            do { storage = try await StorageContext.open(configuration.storage, logger: Logger(label: "postmortem.cli")) } catch {
                throw fail("cannot open storage: \(error)")
            }
            let cleanup = SymbolUploadCleanup(metadata: storage.metadata, settings: symbolServerSettings(configuration))
            let outcome: SymbolUploadCleanup.Outcome
            do { outcome = try await cleanup.runOnce(dryRun: dryRun) } catch { await storage.close(); throw fail("\(error)") }
            await storage.close()
            let verb = dryRun ? "would delete" : "deleted"
            FileHandleOutput.stdout("\(verb) \(outcome.uploads) upload\(outcome.uploads == 1 ? "" : "s") (\(outcome.files) file records) "
                                    + "and \(outcome.temporaryFiles) orphaned temporary file\(outcome.temporaryFiles == 1 ? "" : "s")\n")
        }
    }
}

/// `postmortem symbols upload`: what a build's CI runs after `dump_syms`.
struct SymbolsUploadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Upload a symbol tree (<debug_file>/<id>/<file>) or zip archives to a Tecken-compatible symbol server.")

    @Argument(help: "A directory laid out <debug_file>/<debug_id>/<file>, or .zip archives.") var paths: [String]
    @Option(help: "The symbol server's base URL (it receives POST <url>/upload/).") var url: String
    @Option(name: .customLong("token-file"), help: "A file holding the Auth-Token. Default: POSTMORTEM_AUTH_TOKEN.") var tokenFile: String?
    @Flag(name: .customLong("try"), help: "Upload as try symbols.") var isTry = false
    @Option(name: .customLong("max-size-mb"), help: "Split a directory into archives of at most this many MB (uncompressed).") var maxSizeMB = 512
    @Option(help: "Attempts per archive for 429 and 5xx answers and connection errors.") var attempts = 5

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("name a directory or .zip archives") }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw ValidationError("--url must be an http(s) URL") }
        guard (1...4096).contains(maxSizeMB) else { throw ValidationError("--max-size-mb must be 1…4096") }
        guard (1...20).contains(attempts) else { throw ValidationError("--attempts must be 1…20") }
    }

    func run() async throws {
        let token: String
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else { throw fail("cannot read \(tokenFile)") }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let env = ProcessInfo.processInfo.environment["POSTMORTEM_AUTH_TOKEN"], !env.isEmpty {
            token = env
        } else {
            throw ValidationError("give --token-file or set POSTMORTEM_AUTH_TOKEN")
        }
        let work = NSTemporaryDirectory() + "postmortem-upload-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        var archives: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw fail("\(path) does not exist") }
            if isDirectory.boolValue {
                archives += try SymbolTreeArchiver.archives(of: path, into: work, maxBytes: Int64(maxSizeMB) << 20)
            } else {
                archives.append(path)
            }
        }
        guard !archives.isEmpty else { throw fail("no symbol files found") }
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        var totals = (stored: 0, skipped: 0, ignored: 0)
        for (n, archive) in archives.enumerated() {
            let size = (try? FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int) ?? 0
            FileHandleOutput.stderr("[\(n + 1)/\(archives.count)] uploading \((archive as NSString).lastPathComponent) (\(size / 1024) KiB)\n")
            let answer = try await post(archive, to: base + "/upload/", token: token)
            guard let upload = JSONValue.parse(answer)?["upload"] else { throw fail("unexpected answer: \(String(decoding: answer.prefix(500), as: UTF8.self))") }
            let stored = upload["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let skipped = upload["skipped_keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let ignored = upload["ignored_keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
            totals.stored += stored.count
            totals.skipped += skipped.count
            totals.ignored += ignored.count
            for key in stored { FileHandleOutput.stdout("stored   \(key)\n") }
            for key in skipped { FileHandleOutput.stdout("skipped  \(key)\n") }
            for key in ignored { FileHandleOutput.stdout("ignored  \(key)\n") }
        }
        FileHandleOutput.stderr("done: \(totals.stored) stored, \(totals.skipped) skipped (already there), \(totals.ignored) ignored\n")
    }

    /// POSTs one archive, retrying 429/5xx and connection errors with exponential backoff.
    func post(_ archive: String, to endpoint: String, token: String) async throws -> Data {
        guard let zip = FileManager.default.contents(atPath: archive) else { throw fail("cannot read \(archive)") }
        let boundary = "postmortem-\(UUID().uuidString)"
        var body = Data()
        if isTry { body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"try\"\r\n\r\n1\r\n".utf8)) }
        let name = (archive as NSString).lastPathComponent.replacingOccurrences(of: "\"", with: "")
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(name)\"\r\nContent-Type: application/zip\r\n\r\n".utf8))
        body.append(zip)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        var delay: Duration = .seconds(1)
        for attempt in 1...attempts {
            var request = HTTPClientRequest(url: endpoint)
            request.method = .POST
            request.headers.add(name: "Auth-Token", value: token)
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            request.headers.add(name: "User-Agent", value: "postmortem-symbols-upload")
            let bar = ByteProgress(total: body.count)
            request.body = .stream(ProgressChunks(data: body, progress: bar), length: .known(Int64(body.count)))
            var problem: String
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(1800))
                let answer = Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
                let status = Int(response.status.code)
                if status == 201 || status == 200 { return answer }
                let message = JSONValue.parse(answer)?["error"]?.stringValue ?? String(decoding: answer.prefix(300), as: UTF8.self)
                guard status == 429 || status >= 500 else { throw fail("\(archive): HTTP \(status): \(message)") }
                problem = "HTTP \(status): \(message)"
            } catch let exit as ExitCode {
                throw exit
            } catch {
                problem = "\(error)"
            }
            guard attempt < attempts else { throw fail("\(archive): \(problem) after \(attempts) attempts") }
            FileHandleOutput.stderr("  \(problem); retrying in \(delay.components.seconds) s\n")
            try await Task.sleep(for: delay)
            delay *= 2
        }
        throw fail("\(archive): no attempt made")
    }
}

/// Zips a symbol tree into archives of at most `maxBytes` uncompressed each.
enum SymbolTreeArchiver {
    static func archives(of root: String, into directory: String, maxBytes: Int64) throws -> [String] {
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        var files: [(relative: String, size: Int64)] = []
        guard let walker = FileManager.default.enumerator(at: rootURL, includingPropertiesForKeys: [.isRegularFileKey, .fileSizeKey]) else { return [] }
        for case let url as URL in walker {
            let values = try url.resourceValues(forKeys: [.isRegularFileKey, .fileSizeKey])
            guard values.isRegularFile == true else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(rootURL.path.count + 1))
            // Only the store's layout: <debug_file>/<id>/<file> (and <name>-symbols.txt listings).
            let depth = relative.split(separator: "/").count
            guard depth == 3 || (depth == 1 && relative.hasSuffix("-symbols.txt")) else { continue }
            files.append((relative, Int64(values.fileSize ?? 0)))
        }
        files.sort { $0.relative < $1.relative }
        var batches: [[(relative: String, size: Int64)]] = [[]]
        var current: Int64 = 0
        for file in files {
            if current + file.size > maxBytes, !batches[batches.count - 1].isEmpty {
                batches.append([])
                current = 0
            }
            batches[batches.count - 1].append(file)
            current += file.size
        }
        var out: [String] = []
        for (n, batch) in batches.enumerated() where !batch.isEmpty {
            let path = "\(directory)/symbols-\(n + 1).zip"
            let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
            for file in batch {
                try archive.addEntry(with: file.relative, relativeTo: rootURL, compressionMethod: .deflate)
            }
            out.append(path)
        }
        return out
    }
}

/// A request body in 1 MiB chunks that reports how much the client has taken (what has gone
/// to the socket, give or take a chunk).
struct ProgressChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let data: Data
    let progress: ByteProgress

    struct AsyncIterator: AsyncIteratorProtocol {
        let data: Data
        let progress: ByteProgress
        var offset = 0
        mutating func next() async -> ByteBuffer? {
            guard offset < data.count else { progress.finish(); return nil }
            let end = Swift.min(data.count, offset + (1 << 20))
            let chunk = ByteBuffer(data: data[data.startIndex + offset..<data.startIndex + end])
            offset = end
            progress.update(offset)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(data: data, progress: progress) }
}

/// A progress bar on standard error: redrawn in place on a terminal, a line per quarter
/// otherwise (CI logs).
final class ByteProgress: @unchecked Sendable {
    let total: Int
    let terminal = isatty(2) != 0
    private let lock = NSLock()
    private var lastQuarter = 0
    private var finished = false

    init(total: Int) { self.total = total }

    func update(_ sent: Int) {
        lock.withLock {
            let fraction = total > 0 ? Double(sent) / Double(total) : 1
            let mb = String(format: "%.1f/%.1f MB", Double(sent) / 1_048_576, Double(total) / 1_048_576)
            if terminal {
                let width = 30, filled = Int(fraction * Double(width))
                FileHandleOutput.stderr("\r  [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                                        + "] " + String(format: "%3.0f%% ", fraction * 100) + mb)
            } else if Int(fraction * 4) > lastQuarter {
                lastQuarter = Int(fraction * 4)
                FileHandleOutput.stderr(String(format: "  sent %3.0f%% ", fraction * 100) + mb + "\n")
            }
        }
    }

    func finish() {
        lock.withLock {
            if terminal && !finished { FileHandleOutput.stderr("\n") }
            finished = true
        }
    }
}
