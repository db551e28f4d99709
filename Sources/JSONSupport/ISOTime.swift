import Foundation

/// The timestamps crash documents carry: `2026-11-29T05:00:00.123456+00:00` (UTC, microseconds),
/// as Socorro writes `submitted_timestamp`, `date_processed` and the processing times.
public enum ISOTime {
    public static func string(_ seconds: Double) -> String {
        let micros = Int64((seconds * 1_000_000).rounded(.down))
        var t = time_t(micros / 1_000_000)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(micros % 1_000_000))
    }

    public static func string(_ date: Date) -> String { string(date.timeIntervalSince1970) }

    /// Seconds since 1970 of such a time (fractional seconds optional); nil when it is not one.
    public static func parse(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)?.timeIntervalSince1970
    }
}
