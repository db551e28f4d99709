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

    /// Times from annotations can be anything: out-of-range and non-finite seconds give the
    /// nearest valid RFC 3339 date, never a trap.
    @Test func outOfRangeSecondsAreClampedToValidDates() {
        #expect(ISOTime.string(99_999_999_999_999) == "9999-12-31T23:59:59.999999+00:00")
        #expect(ISOTime.string(1e300) == "9999-12-31T23:59:59.999999+00:00")
        #expect(ISOTime.string(.infinity, fraction: false) == "9999-12-31T23:59:59+00:00")
        #expect(ISOTime.string(-1e300) == "0001-01-01T00:00:00.000000+00:00")
        #expect(ISOTime.string(-.infinity) == "0001-01-01T00:00:00.000000+00:00")
        #expect(ISOTime.string(.nan) == "1970-01-01T00:00:00.000000+00:00")
        #expect(ISOTime.string(Double(Int64.min)) == "0001-01-01T00:00:00.000000+00:00")
        // Before 1970 the fraction still counts up from the whole second below.
        #expect(ISOTime.string(-0.25) == "1969-12-31T23:59:59.750000+00:00")
        #expect(ISOTime.string(-86_400) == "1969-12-31T00:00:00.000000+00:00")
        #expect(ISOTime.string(1_700_000_000.5) == "2023-11-14T22:13:20.500000+00:00")
        // Every clamped string parses back.
        for v in [1e300, -1e300, Double.nan, 99_999_999_999_999, -0.25] { #expect(ISOTime.parse(ISOTime.string(v)) != nil) }
    }
}
