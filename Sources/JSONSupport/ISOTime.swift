import Foundation

/// The timestamps crash documents carry: `2026-11-29T05:00:00.123456+00:00` (UTC, microseconds),
/// as Socorro writes `submitted_timestamp`, `date_processed` and the processing times.
public enum ISOTime {
    /// With `fraction: false`, whole seconds (`2024-01-01T00:00:00+00:00`, as histogram buckets are named).
    /// The first and last second RFC 3339 can write (years 0001 and 9999).
    public static let earliestSeconds: Double = -62_135_596_800
    public static let latestSeconds: Double = 253_402_300_799

    /// `seconds` since 1970 as RFC 3339 in UTC. Times come from untrusted annotations, so values
    /// outside years 1–9999 are clamped to them and NaN is the epoch: never a trap, always a valid date.
    public static func string(_ seconds: Double, fraction: Bool = true) -> String {
        let first = Int64(earliestSeconds) * 1_000_000, last = Int64(latestSeconds) * 1_000_000 + 999_999  // microseconds
        let micros: Int64
        if seconds.isNaN { micros = 0 }
        else if seconds <= earliestSeconds { micros = first }
        else if seconds >= latestSeconds + 1 { micros = last }
        else { micros = min(max(Int64((seconds * 1_000_000).rounded(.down)), first), last) }
        // Floor division, so times before 1970 keep a fraction in 0..<1 s.
        let whole = micros >= 0 ? micros / 1_000_000 : -((-micros + 999_999) / 1_000_000)
        var t = time_t(whole)
        var parts = tm()
        gmtime_r(&t, &parts)
        let date = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                          parts.tm_hour, parts.tm_min, parts.tm_sec)
        return fraction ? date + String(format: ".%06d+00:00", Int(micros - whole * 1_000_000)) : date + "+00:00"
    }

    public static func string(_ date: Date) -> String { string(date.timeIntervalSince1970) }

    /// Seconds since 1970 of an RFC 3339 time (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`);
    /// nil when it is not one. Byte-level: the processor parses several per crash, and
    /// Foundation's ISO 8601 formatter costs microseconds each.
    public static func parse(_ text: String) -> Double? {
        var text = text
        return text.withUTF8 { b -> Double? in
            var i = 0
            func number(_ digits: Int) -> Int? {
                guard i + digits <= b.count else { return nil }
                var v = 0
                for _ in 0..<digits {
                    let c = b[i]
                    guard c >= 0x30, c <= 0x39 else { return nil }
                    v = v * 10 + Int(c - 0x30)
                    i += 1
                }
                return v
            }
            func expect(_ c: UInt8) -> Bool {
                guard i < b.count, b[i] == c else { return false }
                i += 1
                return true
            }
            guard let year = number(4), expect(0x2D), let month = number(2), expect(0x2D), let day = number(2) else { return nil }
            guard i < b.count, b[i] == 0x54 || b[i] == 0x74 else { return nil } // T or t
            i += 1
            guard let hour = number(2), expect(0x3A), let minute = number(2), expect(0x3A), let second = number(2) else { return nil }
            guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour <= 23, minute <= 59, second <= 59 else { return nil }
            var fraction = 0.0
            if i < b.count, b[i] == 0x2E {
                i += 1
                var scale = 0.1
                let start = i
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                    fraction += Double(b[i] - 0x30) * scale
                    scale /= 10
                    i += 1
                }
                guard i > start else { return nil }
            }
            var offset = 0
            guard i < b.count else { return nil }
            switch b[i] {
            case 0x5A, 0x7A: i += 1 // Z or z
            case 0x2B, 0x2D:
                let sign = b[i] == 0x2D ? -1 : 1
                i += 1
                guard let oh = number(2), expect(0x3A), let om = number(2), oh <= 23, om <= 59 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            default: return nil
            }
            guard i == b.count else { return nil }
            let seconds = daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
            return Double(seconds) + fraction
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
