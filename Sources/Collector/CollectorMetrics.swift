import Foundation
import Prometheus
import ServiceSupport

/// The collector's Prometheus metrics: incoming submissions, results by reason and rule,
/// payload sizes as received and decompressed, save and queue times.
final class CollectorMetrics: Sendable {
    static let shared = CollectorMetrics(registry: Observability.registry)

    let incoming: Counter
    let handleTime: DurationHistogram
    let saveTime: DurationHistogram
    let queueTime: DurationHistogram
    let receivedSize: ValueHistogram
    let uncompressedSize: ValueHistogram
    private let registry: PrometheusCollectorRegistry

    static let sizeBuckets: [Double] = {
        let kib: [Int] = [16, 64, 256, 512, 1024, 2048, 5120, 10240, 25600, 102_400]
        return kib.map { Double($0 * 1024) }
    }()
    static let timeBuckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                          .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        incoming = registry.makeCounter(name: "collector_incoming_total", help: "Submissions received by the collector")
        handleTime = registry.makeDurationHistogram(name: "collector_handle_seconds", buckets: Self.timeBuckets, help: "Time from request to answer")
        saveTime = registry.makeDurationHistogram(name: "collector_save_seconds", buckets: Self.timeBuckets, help: "Time to store dumps and the raw crash")
        queueTime = registry.makeDurationHistogram(name: "collector_queue_seconds", buckets: Self.timeBuckets, help: "Time to queue a saved crash")
        receivedSize = registry.makeValueHistogram(name: "collector_payload_bytes", labels: [("encoding", "as_received")], buckets: Self.sizeBuckets)
        uncompressedSize = registry.makeValueHistogram(name: "collector_payload_bytes", labels: [("encoding", "uncompressed")], buckets: Self.sizeBuckets)
    }

    /// `accept`, `defer`, `fakeaccept`, `rule_<name>`, `malformed_<reason>`, `too_large`, `save_failed`, …
    func result(_ outcome: String) {
        registry.makeCounter(name: "collector_results_total", labels: [("result", outcome)]).increment()
    }

    func payloadSize(received: Int, uncompressed: Int, compressed: Bool) {
        receivedSize.record(Double(received))
        uncompressedSize.record(Double(uncompressed))
    }
}
