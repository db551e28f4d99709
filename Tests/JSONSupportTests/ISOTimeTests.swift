import Foundation
import JSONSupport
import Testing

/// The byte-level RFC 3339 parser agrees with Foundation's ISO 8601 formatter.
@Suite struct ISOTimeTests {
    @Test func parsesWhatFoundationParses() {
        let oracle = ISO8601DateFormatter()
        oracle.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        func foundation(_ s: String) -> Double? { (oracle.date(from: s) ?? plain.date(from: s))?.timeIntervalSince1970 }
        let samples = [
            "2026-11-29T05:00:00.123456+00:00", "2026-11-29T05:00:00Z", "1970-01-01T00:00:00+00:00", "2000-02-29T23:59:59.5-07:30",
            "1999-12-31T23:59:59+14:00", "2024-02-29T12:00:00Z", "2100-03-01T00:00:00Z", "1969-07-20T20:17:40Z",
        ]
        for s in samples {
            let ours = ISOTime.parse(s), theirs = foundation(s)
            #expect(ours != nil && theirs != nil && abs(ours! - theirs!) < 0.001, "\(s): \(String(describing: ours)) vs \(String(describing: theirs))")
        }
        for bad in ["", "2026-11-29", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T05:00:00",
                    "2026-11-29T05:00:00.Z", "2026-11-29T05:00:00+0000", "x026-11-29T05:00:00Z", "2026-11-29T05:00:00Zjunk"] {
            #expect(ISOTime.parse(bad) == nil, "\(bad)")
        }
        // Round trip with the writer.
        let now = 1_795_000_000.25
        #expect(abs(ISOTime.parse(ISOTime.string(now))! - now) < 0.000_001)
    }
}
