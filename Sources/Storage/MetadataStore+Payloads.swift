import Crypto
import Foundation
import JSONSupport
import SQLKit

/// Collector payload sizes, for `postmortem collector stats`.
extension MetadataStore {
    // MARK: - collector payload statistics

    public struct PayloadRecord: Sendable {
        public var size: Int
        public var uncompressedSize: Int
        public var compressed: Bool
        public var outcome: String
        public init(size: Int, uncompressedSize: Int, compressed: Bool, outcome: String) {
            self.size = size
            self.uncompressedSize = uncompressedSize
            self.compressed = compressed
            self.outcome = outcome
        }
    }

    public func recordPayloads(_ records: [PayloadRecord]) async throws {
        guard !records.isEmpty else { return }
        let now = clock()
        try await database.write { db in
            for chunk in stride(from: 0, to: records.count, by: 200) {
                var query: SQLQueryString = "INSERT INTO collector_payloads (received_at, payload_size, uncompressed_size, compressed, outcome) VALUES "
                for (n, r) in records[chunk..<min(records.count, chunk + 200)].enumerated() {
                    if n > 0 { query += ", " }
                    query += "(\(bind: now), \(bind: Int64(r.size)), \(bind: Int64(r.uncompressedSize)), \(bind: r.compressed ? 1 : 0), \(bind: r.outcome))"
                }
                try await db.raw(query).run()
            }
        }
    }

    public func recordPayload(size: Int, uncompressedSize: Int, compressed: Bool, outcome: String) async throws {
        try await recordPayloads([PayloadRecord(size: size, uncompressedSize: uncompressedSize, compressed: compressed, outcome: outcome)])
    }

    public struct SizeStatistics: Sendable, Equatable {
        public var count = 0
        public var median = 0
        public var mean = 0.0
        public var p95 = 0
        public var max = 0
    }

    /// Payload sizes received since `since` (microseconds): as received and after decompression.
    public func payloadStatistics(since: Int64) async throws -> (received: SizeStatistics, uncompressed: SizeStatistics, compressedShare: Double) {
        try await database.withConnection { db in
            func stats(_ column: String) async throws -> SizeStatistics {
                guard let row = try await db.raw("""
                    SELECT COUNT(*) AS n, CAST(AVG(\(unsafeRaw: column)) AS DOUBLE PRECISION) AS mean, MAX(\(unsafeRaw: column)) AS largest
                    FROM collector_payloads WHERE received_at >= \(bind: since)
                    """).first() else { return SizeStatistics() }
                let n = Int(try row.decode(column: "n", as: Int64.self))
                guard n > 0 else { return SizeStatistics() }
                func at(_ fraction: Double) async throws -> Int {
                    let offset = Swift.min(n - 1, Swift.max(0, Int((Double(n) * fraction).rounded(.up)) - 1))
                    let r = try await db.raw("""
                        SELECT \(unsafeRaw: column) AS v FROM collector_payloads WHERE received_at >= \(bind: since)
                        ORDER BY \(unsafeRaw: column) LIMIT 1 OFFSET \(bind: offset)
                        """).first()
                    return Int(try r?.decode(column: "v", as: Int64.self) ?? 0)
                }
                return SizeStatistics(count: n, median: try await at(0.5), mean: try row.decode(column: "mean", as: Double?.self) ?? 0,
                                      p95: try await at(0.95), max: Int(try row.decode(column: "largest", as: Int64?.self) ?? 0))
            }
            let received = try await stats("payload_size")
            let uncompressed = try await stats("uncompressed_size")
            let compressed = try await db.raw("""
                SELECT COUNT(*) AS n FROM collector_payloads WHERE received_at >= \(bind: since) AND compressed = 1
                """).first()?.decode(column: "n", as: Int64.self) ?? 0
            return (received, uncompressed, received.count == 0 ? 0 : Double(compressed) / Double(received.count))
        }
    }
}
