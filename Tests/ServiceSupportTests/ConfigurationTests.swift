import Foundation
import ServiceSupport
import Storage
import Testing
import TestSupport

@Suite struct ConfigurationTests {
    @Test func defaultsAreTheEmbeddedSetUp() async throws {
        var c = try await PostmortemConfiguration.load(environment: [:])
        c.resolve(dataDirectory: "/srv/pm")
        #expect(c.isEmbedded)
        #expect(c.host == "127.0.0.1" && c.port == 8000)
        #expect(c.databaseURL == "sqlite:///srv/pm/postmortem.sqlite")
        #expect(c.symbolCacheDirectory == "/srv/pm/cache")
        #expect(c.s3 == nil && c.queueMaxAttempts == 5 && c.logFormat == "json")
    }

    @Test func environmentVariablesSelectScaleOut() async throws {
        let env = [
            "POSTMORTEM_DATABASE_URL": "postgres://pm:secret@db.internal:5432/postmortem", "POSTMORTEM_DATABASE_POOL_SIZE": "20",
            "POSTMORTEM_S3_BUCKET": "crashes", "POSTMORTEM_S3_REGION": "eu-central-1", "POSTMORTEM_S3_ACCESS_KEY": "AK",
            "POSTMORTEM_S3_SECRET_KEY": "SK", "POSTMORTEM_S3_ADDRESSING": "virtual-host", "POSTMORTEM_S3_KEY_PREFIX": "prod/",
            "POSTMORTEM_HTTP_PORT": "9000", "POSTMORTEM_QUEUE_MAX_ATTEMPTS": "7", "POSTMORTEM_QUEUE_VISIBILITY_TIMEOUT": "30",
            "POSTMORTEM_SYMBOLS_URLS": "https://symbols.example.com/,https://mirror.example.com/",
        ]
        var c = try await PostmortemConfiguration.load(environment: env)
        c.resolve()
        #expect(!c.isEmbedded)
        #expect(c.databaseURL == "postgres://pm:secret@db.internal:5432/postmortem" && c.databasePoolSize == 20)
        let s3 = try #require(c.s3)
        #expect(s3.bucket == "crashes" && s3.region == "eu-central-1" && s3.endpoint == "https://s3.eu-central-1.amazonaws.com")
        #expect(s3.addressing == .virtualHost && s3.keyPrefix == "prod/" && s3.accessKey == "AK" && s3.secretKey == "SK")
        #expect(c.port == 9000 && c.queueMaxAttempts == 7 && c.queueVisibilityTimeout == .seconds(30))
        #expect(c.symbolURLs == ["https://symbols.example.com/", "https://mirror.example.com/"])
    }

    @Test func aConfigFileIsReadAndTheEnvironmentWins() async throws {
        let file = TestData.temporaryDirectory("config") + "/postmortem.json"
        try Data(#"{"http": {"port": 8123, "host": "0.0.0.0"}, "queue": {"max_attempts": 2}, "log": {"level": "debug"}}"#.utf8)
            .write(to: URL(fileURLWithPath: file))
        let c = try await PostmortemConfiguration.load(environment: ["POSTMORTEM_HTTP_PORT": "8200"], file: file)
        #expect(c.port == 8200 && c.host == "0.0.0.0" && c.queueMaxAttempts == 2 && c.logLevel == "debug")
        let viaEnv = try await PostmortemConfiguration.load(environment: ["POSTMORTEM_CONFIG_FILE": file])
        #expect(viaEnv.port == 8123)
    }

    @Test func invalidValuesAreRefusedWithTheKey() async throws {
        for (env, key) in [
            (["POSTMORTEM_HTTP_PORT": "70000"], "http.port"),
            (["POSTMORTEM_LOG_FORMAT": "xml"], "log.format"),
            (["POSTMORTEM_S3_BUCKET": "b"], "s3.access_key"),
            (["POSTMORTEM_S3_BUCKET": "b", "POSTMORTEM_S3_ACCESS_KEY": "a", "POSTMORTEM_S3_SECRET_KEY": "s", "POSTMORTEM_S3_ADDRESSING": "dns"], "s3.addressing"),
            (["POSTMORTEM_CONFIG_FILE": "/nonexistent/pm.json"], "does not exist"),
        ] {
            let error = await #expect(throws: (any Error).self) { _ = try await PostmortemConfiguration.load(environment: env) }
            #expect("\(error.map { "\($0)" } ?? "")".contains(key), "\(env)")
        }
    }

    @Test func heartbeatReportsEachCheckAndTimesOut() async {
        struct Down: Error, CustomStringConvertible { var description: String { "connection refused" } }
        let (ok, body, failures) = await HealthCheck.report([
            HealthCheck(name: "database") {},
            HealthCheck(name: "blob_store") { throw Down() },
            HealthCheck(name: "queue") { try await Task.sleep(for: .seconds(30)) },
        ], timeout: .milliseconds(200))
        #expect(!ok)
        // The public body names checks and statuses only; messages (paths, hosts, buckets) are for the log.
        #expect(body.serialized() == #"{"status": "error", "checks": {"database": "ok", "blob_store": "error", "queue": "error"}, "details": {"blob_store": {"status": "error"}, "queue": {"status": "error"}}}"#)
        #expect(failures.map(\.name) == ["blob_store", "queue"])
        #expect(failures.map(\.message) == ["connection refused", "no answer within 0.2 seconds"])
    }
}
