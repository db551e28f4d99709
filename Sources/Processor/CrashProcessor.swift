import CrashModel
import Foundation
import JSONSupport
import Logging
import ServiceLifecycle
import Signatures
import Stackwalker
import Storage
import SymbolSources

public struct ProcessorError: Error, CustomStringConvertible {
    public let description: String
    /// Trying again cannot help (the stored raw crash is missing or not JSON): the message goes
    /// to the dead letters at once instead of being retried.
    public var permanent = false
}

/// Turns a stored raw crash into a processed crash (`processor.md`): loads the raw crash and
/// dumps, runs the ruleset, saves `v1/processed_crash/<id>` and the crash index row.
public struct CrashProcessor: Sendable {
    let blobs: any BlobStore
    let metadata: MetadataStore
    /// How long a claim lasts if its run dies: past the stackwalk time limit with room to save.
    let claimLease: Duration
    let rulesets: [Ruleset: [any ProcessorRule]]
    let walker: Stackwalker
    /// The public export, written on a crash's first processing (`export.enabled`).
    let exporter: CrashExporter?
    let host: String
    let logger: Logger

    public init(blobs: any BlobStore, metadata: MetadataStore, walker: Stackwalker, signatures: SignatureGenerator,
                stackwalkTimeLimit: Duration = .seconds(120), betaVersionProducts: Set<String> = [],
                schemas: CrashSchemas? = nil, exporter: CrashExporter? = nil,
                logger: Logger = Logger(label: "postmortem.processor")) throws {
        self.blobs = blobs
        self.metadata = metadata
        self.walker = walker
        claimLease = stackwalkTimeLimit * 2 + .seconds(60)
        rulesets = Ruleset.rules(metadata: metadata, walker: walker, signatures: signatures, stackwalkTimeLimit: stackwalkTimeLimit,
                                 betaVersionProducts: betaVersionProducts, schemas: try schemas ?? CrashSchemas.bundled())
        self.exporter = exporter
        host = ProcessInfo.processInfo.hostName
        self.logger = logger
    }

    /// Another run is processing this crash now (`processing_claims`); try again later.
    public struct Busy: Error, CustomStringConvertible {
        public let crashID: String
        public var description: String { "\(crashID) is being processed by another run" }
    }

    /// Processes one crash and saves it; returns the processed crash. Only one run per crash
    /// at a time, in any process: a concurrent one throws `Busy` (and its caller retries), so a
    /// run that started earlier can never save over a later one's result.
    @discardableResult
    public func process(_ crashID: String, ruleset: Ruleset = .default) async throws -> JSONValue {
        let token = UUID().uuidString
        guard try await metadata.claimProcessing(crashID, token: token, lease: claimLease) else { throw Busy(crashID: crashID) }
        do {
            let document = try await processClaimed(crashID, ruleset: ruleset)
            try? await metadata.releaseProcessing(crashID, token: token)
            return document
        } catch {
            try? await metadata.releaseProcessing(crashID, token: token)
            throw error
        }
    }

    /// Whether the blob store and the database answer their health checks.
    public func storageIsHealthy() async -> Bool {
        async let blobsOK = (try? await blobs.check()) != nil
        async let databaseOK = (try? await metadata.database.check()) != nil
        let (b, d) = await (blobsOK, databaseOK)
        return b && d
    }

    func processClaimed(_ crashID: String, ruleset: Ruleset) async throws -> JSONValue {
        guard let rawData = try await blobs.get(BlobKeys.rawCrash(crashID)) else {
            throw ProcessorError(description: "no raw crash for \(crashID)", permanent: true)
        }
        guard case .object(let rawPairs)? = JSONValue.parse(rawData) else { throw ProcessorError(description: "the raw crash of \(crashID) is not a JSON object", permanent: true) }
        let previous = try await blobs.get(BlobKeys.processedCrash(crashID)).flatMap { JSONValue.parse($0) }
        var dumps: [(name: String, data: Data)] = []
        if ruleset != .regenerateSignature, let namesData = try await blobs.get(BlobKeys.dumpNames(crashID)), case .array(let names)? = JSONValue.parse(namesData) {
            for case .string(let name) in names {
                if let data = try await blobs.get(BlobKeys.dump(crashID, name: name)) { dumps.append((name, data)) }
            }
        }
        var state = ProcessingState(crashID: crashID, raw: Dictionary(rawPairs, uniquingKeysWith: { $1 }), dumps: dumps)
        if ruleset == .regenerateSignature, case .object(let pairs)? = previous {
            state.processed = Dictionary(pairs, uniquingKeysWith: { $1 })
        }
        let started = ISOTime.string(Date())
        state.processed["success"] = .bool(false)
        state.processed["started_datetime"] = .string(started)
        state.processed["signature"] = .string("EMPTY: crash failed to process")
        state.notes = [">>> Start processing: \(started) (\(host))"]
        if ruleset == .lateSymbols {
            state.notes.append("reprocessed: symbols for a module this crash lacked became available")
            // The symbols arrived since this process last looked: skip its negative cache for
            // the modules the previous run lacked (the upload may have reached another process).
            if let supplier = walker.symbols as? SymbolSupplier, let previous {
                for m in Self.missingModulesInStack(previous) { await supplier.forgetMissing(debugFile: m.debugFile, debugId: m.debugId) }
            }
        }
        for rule in rulesets[ruleset] ?? [] {
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
        state.processed["completed_datetime"] = .string(ISOTime.string(Date()))
        let document = state.document
        try await blobs.put(BlobKeys.processedCrash(crashID), Data(document.sortedSerialization(pretty: false).utf8))
        try await metadata.index(Self.indexRow(crashID, document))
        if previous == nil, let exporter {
            // The third destination, on first processing only (reprocessing never changes the
            // export). A failure is logged; `postmortem export --date` fills the gap.
            do { try await exporter.exportCrash(crashID, processed: document) } catch {
                logger.warning("export failed", metadata: ["crash_id": "\(crashID)", "error": "\(error)"])
            }
        }
        if ruleset != .regenerateSignature {
            // Remembered so the crash is reprocessed when those symbols arrive.
            try await metadata.recordMissingSymbols(crashID: crashID, modules: Self.missingModulesInStack(document),
                                                    firstCheckAfter: .seconds(30))
        }
        return document
    }

    /// Modules of the crashing thread's frames whose symbols were missing.
    static func missingModulesInStack(_ p: JSONValue) -> [MetadataStore.MissingModule] {
        guard let dump = p["json_dump"], let modules = dump["modules"]?.arrayValue else { return [] }
        let inStack = Set((dump["crashing_thread"]?["frames"]?.arrayValue ?? []).compactMap { $0["module"]?.stringValue })
        var out: [MetadataStore.MissingModule] = []
        for m in modules where m["missing_symbols"] == .bool(true) {
            guard let file = m["filename"]?.stringValue, inStack.contains(file),
                  let debugFile = m["debug_file"]?.stringValue, let debugId = m["debug_id"]?.stringValue, !debugFile.isEmpty, !debugId.isEmpty else { continue }
            out.append(MetadataStore.MissingModule(debugFile: debugFile, debugId: debugId, codeFile: file, codeId: m["code_id"]?.stringValue ?? ""))
        }
        return out
    }

    /// The crash index row of a processed crash (`CrashIndexRow.fields` decides the columns).
    static func indexRow(_ id: String, _ p: JSONValue) -> CrashIndexRow {
        CrashIndexRow(crashID: id, processed: p, fallbackDate: Int64(Date().timeIntervalSince1970 * 1_000_000))
    }
}
