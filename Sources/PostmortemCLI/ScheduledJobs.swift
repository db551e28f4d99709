import ArgumentParser
import Configuration
import CrashModel
import CrashStats
import Foundation
import Logging
import Processor
import ServiceSupport
import Storage
import SymbolServer

/// The scheduled jobs of a process, by the part of the system it runs: `serve` runs all of them,
/// the separate services their own (`webapp` the access audit, `symbols-server` the upload
/// cleanup, `processor` retention, republishing and the daily export). Every job's interval is
/// `jobs.<name>.interval_seconds`.
struct ProcessJobs {
    enum Part { case access, symbols, crashes }

    let jobs: [ScheduledJob]
    /// When this process started its jobs (microseconds): lateness counts from here at the earliest.
    let started: Int64
    let metadata: MetadataStore

    var healthChecks: [HealthCheck] { jobs.isEmpty ? [] : [ScheduledJob.healthCheck(jobs, metadata: metadata, since: started)] }

    /// `/monitoring/cron/`: the jobs' state as JSON (times and results; error texts stay in the
    /// log and on the site-status page).
    func mount(on router: ServiceRouter) {
        let jobs = self.jobs, metadata = self.metadata, started = self.started
        router.get("/monitoring/cron") { _, _ in
            let status = try await ScheduledJob.status(jobs, metadata: metadata, since: started)
            return HTTPService.json(status["status"]?.stringValue == "ok" ? .ok : .internalServerError, status.serialized())
        }
    }

    static func interval(_ configuration: PostmortemConfiguration, _ name: String, default seconds: Int) -> Duration {
        .seconds(min(max(1, configuration.reader.int(forKey: ConfigKey("jobs.\(name).interval_seconds"), default: seconds)), 366 * 86_400))
    }

    static func make(_ configuration: PostmortemConfiguration, storage: StorageContext, parts: Set<Part>, runsWorkers: Bool = true) throws -> ProcessJobs {
        let metadata = storage.metadata
        var jobs: [ScheduledJob] = []
        if parts.contains(.access) {
            let audit = try accessAudit(configuration, metadata: metadata)
            jobs.append(ScheduledJob(name: "audit", interval: interval(configuration, "audit", default: 86_400), metadata: metadata) {
                let removals = try await audit.run(dryRun: false)
                return "\(removals.count) protected-group membership\(removals.count == 1 ? "" : "s") removed"
            })
        }
        if parts.contains(.symbols) {
            let cleanup = SymbolUploadCleanup(metadata: metadata, settings: symbolServerSettings(configuration))
            jobs.append(ScheduledJob(name: "symbol_cleanup", interval: interval(configuration, "symbol_cleanup", default: 3600), metadata: metadata) {
                let o = try await cleanup.runOnce(dryRun: false)
                return "\(o.uploads) uploads, \(o.files) file records, \(o.temporaryFiles) temporary files removed"
            })
        }
        if parts.contains(.crashes) {
            let retentionDays = configuration.reader.int(forKey: "retention.crashes_days", default: 0)
            if retentionDays > 0 {
                let retention = CrashRetention(blobs: storage.blobs, metadata: metadata, queue: storage.queue, retentionDays: min(retentionDays, 36_500))
                jobs.append(ScheduledJob(name: "retention", interval: interval(configuration, "retention", default: 86_400), metadata: metadata) {
                    let o = try await retention.runOnce(dryRun: false)
                    return "\(o.crashes) crashes, \(o.blobs) files, \(o.indexRows) index rows, \(o.expiredTokens) expired tokens, \(o.expiredSessions) sessions removed"
                })
            }
            let hours = configuration.reader.int(forKey: "republish.interval_hours", default: 24)
            if runsWorkers, hours > 0, hours <= 24 * 365 {
                let republisher = Republisher(blobs: storage.blobs, metadata: metadata, queue: storage.queue)
                jobs.append(ScheduledJob(name: "republish", interval: interval(configuration, "republish", default: hours * 3600), metadata: metadata,
                                         initialDelay: .seconds(configuration.reader.int(forKey: "republish.initial_delay", default: 300))) {
                    let day = BlobKeys.dayStamp(Date().addingTimeInterval(-86_400))
                    let r = try await republisher.republish(day: day)
                    return "\(day): \(r.stored) stored, \(r.processed) processed, \(r.waiting) waiting, \(r.queued.count) queued again"
                })
            }
            if configuration.reader.bool(forKey: "export.enabled", default: false) {
                let exporter = CrashExporter(source: storage.blobs, target: try exportStore(configuration), schemas: try crashSchemas(configuration))
                jobs.append(ScheduledJob(name: "export", interval: interval(configuration, "export", default: 86_400), metadata: metadata) {
                    // The previous UTC day, complete by now.
                    let day = BlobKeys.dayStamp(Date().addingTimeInterval(-86_400))
                    let o = try await exporter.exportDay(day)
                    return "\(day): \(o.crashes) crashes exported, daily file \(o.bytes) bytes"
                })
            }
        }
        return ProcessJobs(jobs: jobs, started: metadata.now, metadata: metadata)
    }
}

/// The access audit, asking the OpenID Connect issuer about disabled users when
/// `web.oidc.user_status_url` is set.
func accessAudit(_ configuration: PostmortemConfiguration, metadata: MetadataStore) throws -> AccessAudit {
    var issuerDisabled: (@Sendable (String) async throws -> Bool?)?
    if let settings = try openIDSettings(configuration), !settings.userStatusURL.isEmpty {
        let client = OpenIDClient(settings: settings)
        issuerDisabled = { subject in try await client.isDisabled(subject: subject) }
    }
    return AccessAudit(metadata: metadata, settings: accessAuditSettings(configuration), issuerDisabled: issuerDisabled)
}

/// `access.*`: the protected groups, the employee domains and the inactivity limit of the audit.
func accessAuditSettings(_ configuration: PostmortemConfiguration) -> AccessAudit.Settings {
    let r = configuration.reader
    func list(_ key: String, _ fallback: String) -> [String] {
        r.string(forKey: ConfigKey(key), default: fallback).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    return AccessAudit.Settings(protectedGroups: list("access.protected_groups", "Hackers,Hackers Plus"),
                                employeeDomains: list("access.employee_domains", ""),
                                inactiveDays: min(max(1, r.int(forKey: "access.inactive_days", default: 365)), 36_500))
}
