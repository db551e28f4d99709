import Configuration
import Foundation
import NIOCore
import Storage
import SystemPackage

/// The typed configuration every Postmortem service reads at start: environment variables
/// `POSTMORTEM_*`, then an optional JSON config file, then defaults (command-line flags override
/// all of them). Keys are dotted (`database.url`); the environment spelling is upper case with
/// `_` and the `POSTMORTEM_` prefix (`POSTMORTEM_DATABASE_URL`); the file nests them
/// (`{"database": {"url": …}}`). Every key is listed in docs/configuration.md.
public struct PostmortemConfiguration: Sendable {
    /// The embedded default's directory: SQLite database, blobs, symbols, caches.
    public var dataDirectory: String
    public var host: String
    public var port: Int
    /// `sqlite:///path` (default `<data>/postmortem.sqlite`) or `postgres://user:pass@host:5432/db`.
    public var databaseURL: String
    public var databasePoolSize: Int
    /// Set when blobs live in S3; nil for the filesystem under `<data>/blobs`.
    public var s3: S3Configuration?
    public var queueVisibilityTimeout: Duration
    public var queueMaxAttempts: Int
    public var logLevel: String
    /// `json` (one object per line, the default for services) or `text`.
    public var logFormat: String
    public var symbolPaths: [String]
    public var symbolURLs: [String]
    public var symbolCacheDirectory: String
    public var symbolCacheSizeMiB: Int
    /// Time-outs, connection cap, trusted proxies, who may read `/metrics`.
    public var httpLimits: HTTPLimits
    /// The underlying reader, for the keys of individual services (`collector.*`, …).
    public let reader: ConfigReader

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Reads the configuration. `file` (or `POSTMORTEM_CONFIG_FILE`) names a JSON file.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            file: String? = nil) async throws -> PostmortemConfiguration {
        let env = EnvironmentVariablesProvider(environmentVariables: environment,
                                               secretsSpecifier: .specific(["POSTMORTEM_S3_SECRET_KEY", "POSTMORTEM_S3_SESSION_TOKEN", "POSTMORTEM_DATABASE_URL"]))
        var providers: [any ConfigProvider] = [env.prefixKeys(with: "postmortem")]
        if let path = file ?? environment["POSTMORTEM_CONFIG_FILE"], !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path) else { throw Invalid(description: "config file \(path) does not exist") }
            do {
                providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
            } catch {
                throw Invalid(description: "config file \(path): \(error)")
            }
        }
        return try PostmortemConfiguration(reader: ConfigReader(providers: providers))
    }

    init(reader config: ConfigReader) throws {
        reader = config
        dataDirectory = config.string(forKey: "data.dir", default: "./postmortem-data")
        host = config.string(forKey: "http.host", default: "127.0.0.1")
        port = config.int(forKey: "http.port", default: 8000)
        databaseURL = config.string(forKey: "database.url", isSecret: true) ?? ""
        databasePoolSize = config.int(forKey: "database.pool_size", default: 8)
        if let bucket = config.string(forKey: "s3.bucket"), !bucket.isEmpty {
            let region = config.string(forKey: "s3.region", default: "us-east-1")
            guard let accessKey = config.string(forKey: "s3.access_key"), let secretKey = config.string(forKey: "s3.secret_key", isSecret: true) else {
                throw Invalid(description: "s3.bucket is set but s3.access_key or s3.secret_key is missing")
            }
            let addressingText = config.string(forKey: "s3.addressing", default: "path")
            guard let addressing = S3Configuration.Addressing(rawValue: addressingText) else {
                throw Invalid(description: "s3.addressing must be \"path\" or \"virtual-host\", not \"\(addressingText)\"")
            }
            s3 = S3Configuration(
                endpoint: config.string(forKey: "s3.endpoint", default: "https://s3.\(region).amazonaws.com"), region: region,
                bucket: bucket, accessKey: accessKey, secretKey: secretKey, sessionToken: config.string(forKey: "s3.session_token", isSecret: true),
                addressing: addressing, keyPrefix: config.string(forKey: "s3.key_prefix", default: ""),
                multipartThreshold: config.int(forKey: "s3.multipart_threshold", default: 8 << 20),
                partSize: config.int(forKey: "s3.part_size", default: 8 << 20),
                maxAttempts: config.int(forKey: "s3.max_attempts", default: 4),
                timeout: .seconds(Int64(config.int(forKey: "s3.timeout", default: 60))))
        } else {
            s3 = nil
        }
        queueVisibilityTimeout = .seconds(config.int(forKey: "queue.visibility_timeout", default: 300))
        queueMaxAttempts = config.int(forKey: "queue.max_attempts", default: 5)
        logLevel = config.string(forKey: "log.level", default: "info")
        logFormat = config.string(forKey: "log.format", default: "json")
        symbolPaths = config.stringArray(forKey: "symbols.paths", default: [])
        symbolURLs = config.stringArray(forKey: "symbols.urls", default: [])
        symbolCacheDirectory = config.string(forKey: "symbols.cache_dir") ?? ""
        symbolCacheSizeMiB = config.int(forKey: "symbols.cache_size_mib", default: 20 * 1024)
        httpLimits = HTTPLimits()
        httpLimits.idleTimeout = .seconds(config.int(forKey: "http.idle_timeout", default: 30))
        httpLimits.maxConnections = config.int(forKey: "http.max_connections", default: httpLimits.maxConnections)
        httpLimits.trustedProxies = try IPAddressRange.list(config.stringArray(forKey: "http.trusted_proxies", default: []), key: "http.trusted_proxies")
        httpLimits.metricsAllowedFrom = try IPAddressRange.list(config.stringArray(forKey: "http.metrics_allow", default: []), key: "http.metrics_allow")
        try validate()
    }

    /// Applies `--data`, then fills the defaults that depend on the data directory.
    public mutating func resolve(dataDirectory override: String? = nil) {
        if let override { dataDirectory = override }
        dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
        if databaseURL.isEmpty { databaseURL = "sqlite://\(dataDirectory)/postmortem.sqlite" }
        if symbolCacheDirectory.isEmpty { symbolCacheDirectory = dataDirectory + "/cache" }
    }

    /// Embedded (SQLite + files) or scale-out (PostgreSQL and/or S3), chosen by configuration alone.
    public var isEmbedded: Bool { s3 == nil && !databaseURL.hasPrefix("postgres") }

    func validate() throws {
        guard (0...65535).contains(port) else { throw Invalid(description: "http.port must be 0…65535, not \(port)") }
        guard httpLimits.idleTimeout >= .seconds(1), httpLimits.maxConnections >= 1 else {
            throw Invalid(description: "http.idle_timeout and http.max_connections must be at least 1")
        }
        guard databasePoolSize >= 1 else { throw Invalid(description: "database.pool_size must be at least 1") }
        guard queueMaxAttempts >= 1 else { throw Invalid(description: "queue.max_attempts must be at least 1") }
        guard ["json", "text"].contains(logFormat) else { throw Invalid(description: "log.format must be \"json\" or \"text\"") }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw Invalid(description: "log.level \"\(logLevel)\" is not a level")
        }
        if let s3, s3.partSize > 5 << 30 { throw Invalid(description: "s3.part_size is over S3's 5 GiB limit") }
    }
}
