import Foundation
import JSONSupport
import Logging
import Metrics
import Prometheus

/// Process-wide metrics and logging set-up. swift-metrics and swift-log may be bootstrapped once
/// per process; several servers in one process (tests, `serve`) share the registry.
public enum Observability {
    public static let registry = PrometheusCollectorRegistry()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var metricsReady = false
    nonisolated(unsafe) private static var loggingReady = false

    public static func bootstrapMetrics() {
        lock.withLock {
            guard !metricsReady else { return }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            metricsReady = true
        }
    }

    /// JSON lines (services) or swift-log's text format, on standard error.
    public static func bootstrapLogging(format: String, level: String) {
        lock.withLock {
            guard !loggingReady else { return }
            let parsed = Logger.Level(rawValue: level) ?? .info
            LoggingSystem.bootstrap { label in
                var handler: any LogHandler = format == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
                handler.logLevel = parsed
                return handler
            }
            loggingReady = true
        }
    }

    /// The Prometheus text exposition of every metric.
    public static func prometheusText() -> [UInt8] { registry.emitToBuffer() }
}

/// One JSON object per log line: `time`, `level`, `logger`, `message` and the metadata.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    private static let lock = NSLock()

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, JSONMember)] = [
            ("time", .string(Self.timestamp())), ("level", .string(event.level.rawValue)), ("logger", .string(label)),
            ("message", .string(event.message.description)),
        ]
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) { fields.append((k, .string("\(v)"))) }
        if event.level >= .error { fields.append(("source", .string("\(event.file):\(event.line)"))) }
        var out = JSONOutput()
        out.object(fields)
        out.newline()
        Self.lock.withLock { out.bytes.withUnsafeBytes { FileHandle.standardError.write(Data($0)) } }
    }

    static func timestamp() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        var parts = tm()
        var seconds = t.tv_sec
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(t.tv_nsec / 1_000_000))
    }
}

