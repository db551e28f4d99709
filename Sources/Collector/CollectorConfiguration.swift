import Configuration
import Foundation
import ServiceSupport

/// The collector's settings (`collector.*` keys; docs/configuration.md).
public struct CollectorConfiguration: Sendable {
    public enum ResponseDialect: String, Sendable {
        /// `CrashID=bp-<id>` for Socorro/Firefox clients, 16 hex digits for Crashpad-style ones.
        case auto
        case socorro
        /// 16 lowercase hex digits: Chromium's Breakpad uploader accepts nothing else.
        case crashpad
    }

    /// Largest request body as received (compressed or not): 413 above it.
    public var maxPayloadSize = 25 << 20
    /// Largest body after gzip decompression: 413 above it (zip bombs).
    public var maxDecompressedSize = 100 << 20
    /// Largest single part: `Discarded=malformed_invalid_payload_structure` above it.
    public var maxPartSize = 20 << 20
    public var maxParts = 200
    /// Annotations removed before saving, each with a collector note.
    public var removedFields = ["Email", "TelemetryClientId", "TelemetryServerURL", "TelemetrySessionId"]
    /// Accepted products for the default throttle rules; empty accepts every product.
    public var products: [String] = []
    /// A JSON rules file replacing the default rules (see `Throttler`).
    public var throttleRulesFile: String?
    public var responseDialect = ResponseDialect.auto
    /// Bearer token of the trusted replay submitter, which may set the crash id (`uuid`).
    public var replayToken: String?
    /// Tries to save a crash before answering 500, and the pause between them.
    public var saveAttempts = 5
    public var saveRetryDelay: Duration = .seconds(2)
    /// Submissions read at once, gzip ones among them, and the body bytes they may buffer
    /// together; beyond any of them a submission is answered 503 with `Retry-After`.
    public var maxConcurrentSubmissions = 256
    public var maxConcurrentDecompressions = 32
    public var maxBufferedBytes = 512 << 20
    public var busyRetryAfter = 10
    /// Longest time a body may take to arrive (408 after it).
    public var bodyTimeout: Duration = .seconds(120)

    public init() {}

    public init(_ configuration: PostmortemConfiguration) throws {
        let c = configuration.reader
        maxPayloadSize = c.int(forKey: "collector.max_payload_size", default: maxPayloadSize)
        maxDecompressedSize = c.int(forKey: "collector.max_decompressed_size", default: maxDecompressedSize)
        maxPartSize = c.int(forKey: "collector.max_part_size", default: maxPartSize)
        maxParts = c.int(forKey: "collector.max_parts", default: maxParts)
        removedFields = c.stringArray(forKey: "collector.removed_fields", default: removedFields)
        products = c.stringArray(forKey: "collector.products", default: [])
        throttleRulesFile = c.string(forKey: "collector.throttle_rules")
        let dialect = c.string(forKey: "collector.response_dialect", default: "auto")
        guard let d = ResponseDialect(rawValue: dialect) else {
            throw PostmortemConfiguration.Invalid(description: "collector.response_dialect must be auto, socorro or crashpad, not \"\(dialect)\"")
        }
        responseDialect = d
        replayToken = c.string(forKey: "collector.replay_token", isSecret: true)
        saveAttempts = max(1, c.int(forKey: "collector.save_attempts", default: saveAttempts))
        saveRetryDelay = .milliseconds(c.int(forKey: "collector.save_retry_delay_ms", default: 2000))
        maxConcurrentSubmissions = c.int(forKey: "collector.max_concurrent_submissions", default: maxConcurrentSubmissions)
        maxConcurrentDecompressions = c.int(forKey: "collector.max_concurrent_decompressions", default: maxConcurrentDecompressions)
        maxBufferedBytes = c.int(forKey: "collector.max_buffered_bytes", default: maxBufferedBytes)
        busyRetryAfter = c.int(forKey: "collector.busy_retry_after", default: busyRetryAfter)
        bodyTimeout = .seconds(c.int(forKey: "collector.body_timeout", default: 120))
        guard maxConcurrentSubmissions >= 1, maxConcurrentDecompressions >= 1, maxBufferedBytes >= maxPayloadSize,
              (0...86_400).contains(busyRetryAfter), bodyTimeout >= .seconds(1) else {
            throw PostmortemConfiguration.Invalid(description:
                "collector.max_concurrent_submissions and max_concurrent_decompressions must be ≥ 1, max_buffered_bytes ≥ max_payload_size, busy_retry_after 0…86400, body_timeout ≥ 1")
        }
        guard maxPayloadSize > 0, maxPartSize > 0, maxDecompressedSize >= maxPayloadSize else {
            throw PostmortemConfiguration.Invalid(description: "collector size limits must be positive and max_decompressed_size ≥ max_payload_size")
        }
    }

    /// The throttler these settings describe.
    public func throttler() throws -> Throttler {
        guard let file = throttleRulesFile else { return .standard(products: products) }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ThrottleRuleError(description: "cannot read throttle rules \(file)")
        }
        return try Throttler.load(json: data)
    }
}
