import Foundation
import JSONSupport
import Logging
import ServiceLifecycle
import Storage

/// A job `serve` runs every `interval` (the access audit, symbol-upload cleanup, crash
/// retention, the daily export, republishing): the first run at start, each run recorded in
/// `job_runs` (start, end, result, the work's summary) so the site-status page, `/monitoring/cron/`
/// and `/__heartbeat__` can tell a job that stopped succeeding.
public struct ScheduledJob: Service {
    public let name: String
    public let interval: Duration
    /// The wait before the first run (republishing lets the day's processing settle first).
    public let initialDelay: Duration
    let metadata: MetadataStore
    let work: @Sendable () async throws -> String
    let logger: Logger

    public init(name: String, interval: Duration, metadata: MetadataStore, initialDelay: Duration = .zero, logger: Logger? = nil,
                work: @escaping @Sendable () async throws -> String) {
        self.name = name
        self.interval = interval
        self.initialDelay = initialDelay
        self.metadata = metadata
        self.work = work
        self.logger = logger ?? Logger(label: "postmortem.job.\(name)")
    }

    /// One recorded run: the summary, or the error (the run is then recorded as failed).
    @discardableResult
    public func runOnce() async -> (ok: Bool, summary: String) {
        let id = try? await metadata.startJobRun(name)
        let result: (Bool, String)
        do {
            result = (true, try await work())
            logger.info("job finished", metadata: ["job": "\(name)", "summary": "\(result.1)"])
        } catch {
            result = (false, "\(error)")
            logger.error("job failed", metadata: ["job": "\(name)", "error": "\(error)"])
        }
        if let id {
            do { try await metadata.finishJobRun(id, ok: result.0, summary: result.1) } catch {
                logger.error("job run not recorded", metadata: ["job": "\(name)", "error": "\(error)"])
            }
        }
        return result
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            if initialDelay > .zero { try await Task.sleep(for: initialDelay) }
            while !Task.isCancelled {
                await runOnce()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// Jobs whose last success is older than twice their interval (or who never succeeded while
    /// the process has run that long). `since` is when the jobs were started.
    public static func overdue(_ jobs: [ScheduledJob], metadata: MetadataStore, since started: Int64) async throws -> [String] {
        let now = metadata.now
        var late: [String] = []
        for job in jobs {
            func micros(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000 }
            let allowed = 2 * micros(job.interval)
            // Counted from the last success, or from this process's first run when that is later
            // (a job that never ran here yet is not late at once).
            let reference = max(try await metadata.lastSuccess(of: job.name) ?? 0, started + micros(job.initialDelay))
            if now - reference > allowed { late.append(job.name) }
        }
        return late
    }

    /// The `/__heartbeat__` check: fails naming the overdue jobs.
    public static func healthCheck(_ jobs: [ScheduledJob], metadata: MetadataStore, since started: Int64) -> HealthCheck {
        HealthCheck(name: "scheduled_jobs") {
            let late = try await overdue(jobs, metadata: metadata, since: started)
            if !late.isEmpty { throw OverdueJobs(jobs: late) }
        }
    }

    public struct OverdueJobs: Error, CustomStringConvertible {
        public let jobs: [String]
        public var description: String { "no success within twice the interval: \(jobs.joined(separator: ", "))" }
    }

    /// `/monitoring/cron/`: every job's interval, last run and last success, as JSON.
    public static func status(_ jobs: [ScheduledJob], metadata: MetadataStore, since started: Int64) async throws -> JSONValue {
        let late = Set(try await overdue(jobs, metadata: metadata, since: started))
        var entries: [(String, JSONValue)] = []
        for job in jobs {
            let last = try await metadata.jobRuns(job.name, limit: 1).first
            let success = try await metadata.lastSuccess(of: job.name)
            func time(_ micros: Int64?) -> JSONValue { micros.map { .string(ISOTime.string(Double($0) / 1_000_000)) } ?? .null }
            entries.append((job.name, .object([
                ("interval_seconds", .int(job.interval.components.seconds)),
                ("last_run", last.map { r in .object([("started", time(r.startedAt)), ("finished", time(r.finishedAt)),
                                                      ("ok", r.ok.map(JSONValue.bool) ?? .null), ("summary", .string(r.summary))]) } ?? .null),
                ("last_success", time(success)),
                ("overdue", .bool(late.contains(job.name))),
            ])))
        }
        return .object([("status", .string(late.isEmpty ? "ok" : "error")), ("jobs", .object(entries))])
    }
}
