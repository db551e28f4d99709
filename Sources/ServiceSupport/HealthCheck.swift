import Foundation
import JSONSupport

/// One dependency `/__heartbeat__` checks (database, blob store, queue, symbol sources, …).
public struct HealthCheck: Sendable {
    public let name: String
    public let run: @Sendable () async throws -> Void

    public init(name: String, run: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.run = run
    }

    /// Runs all checks concurrently, each bounded by `timeout`. Dockerflow's shape:
    /// `{"status": "ok"|"error", "checks": {name: "ok"|"error"}, "details": {name: {"status"}}}`.
    /// The body is served to anyone, so failure messages (which may name paths, hosts or
    /// buckets) are not in it: they come back in `failures`, for the service's log.
    public static func report(_ checks: [HealthCheck], timeout: Duration = .seconds(5)) async
        -> (ok: Bool, body: JSONValue, failures: [(name: String, message: String)]) {
        let results = await withTaskGroup(of: (Int, String?).self) { group in
            for (n, check) in checks.enumerated() {
                group.addTask {
                    do {
                        try await withThrowingTaskGroup(of: Void.self) { inner in
                            inner.addTask { try await check.run() }
                            inner.addTask {
                                try await Task.sleep(for: timeout)
                                throw HealthCheckTimeout(timeout: timeout)
                            }
                            try await inner.next()
                            inner.cancelAll()
                        }
                        return (n, nil)
                    } catch {
                        return (n, "\(error)")
                    }
                }
            }
            var out = [String?](repeating: nil, count: checks.count)
            for await (n, failure) in group { out[n] = failure }
            return out
        }
        let ok = results.allSatisfy { $0 == nil }
        var statuses: [(String, JSONValue)] = []
        var details: [(String, JSONValue)] = []
        var failures: [(name: String, message: String)] = []
        for (check, failure) in zip(checks, results) {
            statuses.append((check.name, .string(failure == nil ? "ok" : "error")))
            if let failure {
                details.append((check.name, .object([("status", .string("error"))])))
                failures.append((check.name, failure))
            }
        }
        return (ok, .object([("status", .string(ok ? "ok" : "error")), ("checks", .object(statuses)), ("details", .object(details))]), failures)
    }
}

struct HealthCheckTimeout: Error, CustomStringConvertible {
    let timeout: Duration
    var description: String { "no answer within \(timeout)" }
}
