import Foundation
import JSONSupport
import Logging
import ServiceLifecycle
import Signatures
import Stackwalker
import Storage

public enum Ruleset: String, Sendable, CaseIterable {
    /// Every rule.
    case `default`
    /// Only signature generation, on the existing processed crash.
    case regenerateSignature = "regenerate_signature"
}

public struct ProcessorError: Error, CustomStringConvertible {
    public let description: String
}

/// Turns a stored raw crash into a processed crash (`processor.md`): loads the raw crash and
/// dumps, runs the ruleset, saves `v1/processed_crash/<id>` and the crash index row.
public struct CrashProcessor: Sendable {
    let blobs: any BlobStore
    let metadata: MetadataStore
    let rules: [any ProcessorRule]
    let signatureRule: SignatureRule
    let host: String
    let logger: Logger

    public init(blobs: any BlobStore, metadata: MetadataStore, walker: Stackwalker, signatures: SignatureGenerator,
                stackwalkTimeLimit: Duration = .seconds(120), logger: Logger = Logger(label: "postmortem.processor")) {
        self.blobs = blobs
        self.metadata = metadata
        signatureRule = SignatureRule(generator: signatures)
        rules = [
            DeNullRule(), CrashReportKeysRule(), CopyFromRawCrashRule(fields: CopyFromRawCrashRule.load()), IdentifierRule(),
            StackwalkRule(walker: walker, timeLimit: stackwalkTimeLimit), CrashingThreadInfoRule(), TruncateStacksRule(),
            ProcessTypeRule(), DatesAndTimesRule(), BreadcrumbsRule(), JavaRule(), PlatformInfoRule(), StackSummaryRule(), signatureRule,
        ]
        host = ProcessInfo.processInfo.hostName
        self.logger = logger
    }

    /// Processes one crash and saves it; returns the processed crash.
    @discardableResult
    public func process(_ crashID: String, ruleset: Ruleset = .default) async throws -> JSONValue {
        guard let rawData = try await blobs.get(BlobKeys.rawCrash(crashID, date: "20" + crashID.suffix(6))) else {
            throw ProcessorError(description: "no raw crash for \(crashID)")
        }
        guard case .object(let rawPairs)? = JSONValue.parse(rawData) else { throw ProcessorError(description: "the raw crash of \(crashID) is not a JSON object") }
        let previous = try await blobs.get(BlobKeys.processedCrash(crashID)).flatMap { JSONValue.parse($0) }
        var dumps: [(name: String, data: Data)] = []
        if ruleset == .default, let namesData = try await blobs.get(BlobKeys.dumpNames(crashID)), case .array(let names)? = JSONValue.parse(namesData) {
            for case .string(let name) in names {
                if let data = try await blobs.get(BlobKeys.dump(crashID, name: name)) { dumps.append((name, data)) }
            }
        }
        var state = ProcessingState(crashID: crashID, raw: Dictionary(rawPairs, uniquingKeysWith: { $1 }), dumps: dumps)
        if ruleset == .regenerateSignature, case .object(let pairs)? = previous {
            state.processed = Dictionary(pairs, uniquingKeysWith: { $1 })
        }
        let started = ProcessingTime.iso(Date().timeIntervalSince1970)
        state.processed["success"] = .bool(false)
        state.processed["started_datetime"] = .string(started)
        state.processed["signature"] = .string("EMPTY: crash failed to process")
        state.notes = [">>> Start processing: \(started) (\(host))"]
        for rule in ruleset == .default ? rules : [signatureRule] {
            do {
                try await rule.run(&state)
            } catch {
                state.notes.append("ruleset '\(ruleset.rawValue)' rule '\(rule.name)' failed: \(error)")
            }
        }
        // The previous run's notes go to the history, newest first.
        var history = previous?["processor_history"]?.arrayValue ?? []
        if let old = previous?["processor_notes"]?.stringValue { history.insert(.string(old), at: 0) }
        state.processed["processor_history"] = .array(history)
        state.processed["processor_notes"] = .string(state.notes.joined(separator: "\n"))
        if state.processed["mdsw_status_string"] == nil || state.processed["success"] == .bool(true) || ruleset == .regenerateSignature {
            state.processed["success"] = .bool(true)
        }
        state.processed["completed_datetime"] = .string(ProcessingTime.iso(Date().timeIntervalSince1970))
        let document = state.document
        try await blobs.put(BlobKeys.processedCrash(crashID), Data(document.sortedSerialization(pretty: false).utf8))
        try await metadata.index(Self.indexRow(crashID, document))
        return document
    }

    /// The searchable fields of a processed crash (the bulky stack and protected fields stay in
    /// the blob).
    static func indexRow(_ id: String, _ p: JSONValue) -> CrashIndexRow {
        func micros(_ key: String) -> Int64? { p[key]?.stringValue.flatMap(ProcessingTime.parse).map { Int64($0 * 1_000_000) } }
        let excluded: Set<String> = ["json_dump", "processor_history", "signature_debug", "breadcrumbs", "java_stack_trace_raw",
                                     "collector_metadata", "user_comments", "url", "remote_type"]
        var searchable: [(String, JSONValue)] = []
        if case .object(let pairs) = p {
            for (k, v) in pairs where !excluded.contains(k) {
                if case .object = v, k.hasPrefix("upload_file_minidump") { continue }
                searchable.append((k, v))
            }
        }
        return CrashIndexRow(
            crashID: id, dateProcessed: micros("date_processed") ?? Int64(Date().timeIntervalSince1970 * 1_000_000),
            clientCrashDate: micros("client_crash_date"), product: p["product"]?.stringValue, version: p["version"]?.stringValue,
            releaseChannel: p["release_channel"]?.stringValue, platform: p["os_name"]?.stringValue, platformVersion: p["os_version"]?.stringValue,
            cpuArch: p["cpu_arch"]?.stringValue, processType: p["process_type"]?.stringValue, signature: p["signature"]?.stringValue,
            buildID: p["build"]?.stringValue, reason: p["reason"]?.stringValue, uptime: p["uptime"]?.intValue,
            installAge: p["install_age"]?.intValue, document: .object(searchable))
    }
}

/// Queue consumers: `workers` loops that lease a crash id, process it and ack; a failure is
/// retried by the queue and dead-lettered after its attempts. Stops on graceful shutdown after
/// the crashes in hand.
public struct ProcessorWorkers: Service {
    let processor: CrashProcessor
    let queue: WorkQueue
    let workers: Int
    let idleDelay: Duration
    let logger: Logger

    public init(processor: CrashProcessor, queue: WorkQueue, workers: Int, idleDelay: Duration = .milliseconds(200),
                logger: Logger = Logger(label: "postmortem.processor")) {
        self.processor = processor
        self.queue = queue
        self.workers = max(1, workers)
        self.idleDelay = idleDelay
        self.logger = logger
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<workers { group.addTask { await self.loop() } }
            }
        } onGracefulShutdown: {
            logger.info("processor workers stopping")
        }
    }

    func loop() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let leases: [Lease]
            do {
                leases = try await queue.lease(limit: 1)
            } catch {
                logger.error("leasing failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let lease = leases.first else {
                try? await Task.sleep(for: idleDelay)
                continue
            }
            if lease.item.crashID == "test" { _ = try? await queue.ack(lease); continue }
            do {
                try await processor.process(lease.item.crashID, ruleset: Ruleset(rawValue: lease.item.ruleset ?? "default") ?? .default)
                _ = try await queue.ack(lease)
            } catch {
                logger.error("processing failed", metadata: ["crash_id": "\(lease.item.crashID)", "error": "\(error)"])
                try? await queue.fail(lease, error: "\(error)")
            }
        }
    }
}
