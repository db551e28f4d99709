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

/// Client addresses: X-Forwarded-For is believed only from trusted proxies, walked from the right.
@Suite struct ClientAddressTests {
    @Test func networksMatchIPv4IPv6AndMappedAddresses() throws {
        let v4 = try #require(IPAddressRange("10.0.0.0/8"))
        #expect(v4.contains("10.200.3.4") && !v4.contains("11.0.0.1") && v4.contains("::ffff:10.1.2.3"))
        let one = try #require(IPAddressRange("192.168.1.7"))
        #expect(one.contains("192.168.1.7") && !one.contains("192.168.1.8"))
        let v6 = try #require(IPAddressRange("2001:db8::/33"))
        #expect(v6.contains("2001:db8:7fff::1") && !v6.contains("2001:db8:8000::1") && !v6.contains("10.0.0.1"))
        #expect(IPAddressRange("0.0.0.0/0")?.contains("8.8.8.8") == true)
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "example.com", "10.0.0.0/8/8", "1.2.3.4/x", "999.1.1.1"] {
            #expect(IPAddressRange(bad) == nil, "\(bad)")
        }
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let proxies = try IPAddressRange.list(["127.0.0.1", "10.0.0.0/8"], key: "http.trusted_proxies")
        // From a client directly: its own address, whatever it claims.
        #expect(ClientAddress.resolve(peer: "203.0.113.9", forwardedFor: "1.2.3.4", trustedProxies: proxies) == "203.0.113.9")
        // Through two trusted proxies: the first untrusted address from the right; a forged left part is ignored.
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "6.6.6.6, 198.51.100.7, 10.1.1.1", trustedProxies: proxies) == "198.51.100.7")
        // Garbage in the header: the proxy's own address.
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "not-an-ip", trustedProxies: proxies) == "127.0.0.1")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: nil, trustedProxies: proxies) == "127.0.0.1")
        #expect(ClientAddress.resolve(peer: nil, forwardedFor: "1.2.3.4", trustedProxies: proxies) == "unknown")
        // Without trusted proxies the header never counts.
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "1.2.3.4", trustedProxies: []) == "127.0.0.1")
    }

    @Test func badNetworksInTheConfigurationNameTheirKey() async {
        for key in ["POSTMORTEM_HTTP_TRUSTED_PROXIES", "POSTMORTEM_HTTP_METRICS_ALLOW"] {
            let error = await #expect(throws: (any Error).self) { _ = try await PostmortemConfiguration.load(environment: [key: "10.0.0.0/8,nonsense"]) }
            #expect("\(error.map { "\($0)" } ?? "")".contains("nonsense"))
        }
    }
}
