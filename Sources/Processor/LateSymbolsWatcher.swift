import CrashModel
import Foundation
import JSONSupport
import Logging
import ServiceLifecycle
import Signatures
import Stackwalker
import Storage
import SymbolSources

/// Late symbols: crashes processed while a module in their stack lacked symbols are reprocessed
/// once the symbols appear. Local symbol trees are checked every `interval` (a file that arrives
/// is noticed within that); symbol servers are asked again with exponential backoff
/// (`interval` × 2ⁿ up to `maxBackoff`). Affected crashes from the last `lookBack` are queued on the
/// reprocessing queue, at most `maxPerModule` per module, with the `late_symbols` ruleset.
public struct LateSymbolsWatcher: Service {
    let metadata: MetadataStore
    let queue: WorkQueue
    let supplier: SymbolSupplier
    let interval: Duration
    let maxBackoff: Duration
    let lookBack: Duration
    let maxPerModule: Int
    let logger: Logger

    public init(metadata: MetadataStore, queue: WorkQueue, supplier: SymbolSupplier, interval: Duration = .seconds(30),
                maxBackoff: Duration = .seconds(6 * 3600), lookBack: Duration = .seconds(14 * 86_400), maxPerModule: Int = 10_000,
                logger: Logger = Logger(label: "postmortem.late-symbols")) {
        self.metadata = metadata
        self.queue = queue
        self.supplier = supplier
        self.interval = interval
        self.maxBackoff = maxBackoff
        self.lookBack = lookBack
        self.maxPerModule = maxPerModule
        self.logger = logger
    }

    public func run() async throws {
        // Graceful shutdown cancels the loop, including its sleep.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { _ = try await checkOnce() } catch { logger.error("late-symbol check failed", metadata: ["error": "\(error)"]) }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One round of checks; returns the crash ids queued.
    public func checkOnce() async throws -> [String] {
        var found: [MetadataStore.MissingModule] = []
        // Local trees: a cheap existence check for every waiting module.
        // A file that appeared is loaded now, which also clears the supplier's negative cache.
        for m in try await metadata.missingModules(dueOnly: false, limit: 5000) where supplier.existsLocally(Self.identity(m)) {
            if await supplier.recheck(Self.identity(m)) { found.append(m) }
        }
        // Symbol servers: only modules that are due, with backoff.
        if supplier.hasServers {
            for m in try await metadata.missingModules(dueOnly: true, limit: 200) where !found.contains(m) {
                if await supplier.recheck(Self.identity(m)) {
                    found.append(m)
                } else {
                    let delay = min(maxBackoff, interval * Double(1 << min(m.checks + 1, 20)))
                    try await metadata.rescheduleMissingModule(m, after: delay)
                }
            }
        }
        var queued: [String] = []
        let since = Int64(Date().timeIntervalSince1970 * 1_000_000) - lookBack.components.seconds * 1_000_000
        for m in found {
            let ids = try await metadata.resolveMissingModule(m, since: since, limit: maxPerModule)
            try await queue.enqueue(ids.map { QueueItem(crashID: $0, ruleset: Ruleset.lateSymbols.rawValue) }, queue: .reprocessing)
            logger.info("symbols arrived; reprocessing", metadata: ["module": "\(m.debugFile)/\(m.debugId)", "crashes": "\(ids.count)"])
            queued += ids
        }
        return queued
    }

    /// An upload stored symbols for these modules: the crashes waiting for them (processed in
    /// the look-back window) are queued for reprocessing now, without waiting for a check.
    @discardableResult
    public func symbolsArrived(_ modules: [(debugFile: String, debugId: String)]) async throws -> [String] {
        var queued: [String] = []
        let since = Int64(Date().timeIntervalSince1970 * 1_000_000) - lookBack.components.seconds * 1_000_000
        for (file, id) in modules {
            await supplier.forgetMissing(debugFile: file, debugId: id)
            for m in try await metadata.waitingModules(debugFile: file, debugId: id) {
                let ids = try await metadata.resolveMissingModule(m, since: since, limit: maxPerModule)
                try await queue.enqueue(ids.map { QueueItem(crashID: $0, ruleset: Ruleset.lateSymbols.rawValue) }, queue: .reprocessing)
                if !ids.isEmpty {
                    logger.info("symbols uploaded; reprocessing", metadata: ["module": "\(m.debugFile)/\(m.debugId)", "crashes": "\(ids.count)"])
                }
                queued += ids
            }
        }
        return queued
    }

    static func identity(_ m: MetadataStore.MissingModule) -> ModuleIdentity {
        ModuleIdentity(debugFile: m.debugFile, debugId: m.debugId, codeFile: m.codeFile, codeId: m.codeId)
    }
}
