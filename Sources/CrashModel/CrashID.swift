import Foundation

/// Socorro crash ids: a random UUID whose last 7 hex digits are replaced by the throttle digit
/// (0 accept, 1 defer) and the UTC date of receipt as `YYMMDD`
/// (`de1bb258-cbbf-4589-a673-34f800160918`: accepted on 2016-09-18).
public enum CrashID {
    public static func make(throttleDigit: Int, date: Date, uuid: UUID = UUID()) -> String {
        let text = uuid.uuidString.lowercased()
        return String(text.prefix(text.count - 7)) + String(throttleDigit) + dayStamp(date).dropFirst(2)
    }

    /// `YYYYMMDD` of `date` in UTC: the day folder of raw crashes; its last six digits end a
    /// crash id.
    public static func dayStamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d%02d%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday)
    }

    /// `^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{6}[0-9]{6}$`; `strict` also
    /// requires the throttle digit to be 0 or 1.
    public static func isValid(_ id: String, strict: Bool = false) -> Bool {
        let b = Array(id.utf8)
        guard b.count == 36 else { return false }
        for (i, c) in b.enumerated() {
            switch i {
            case 8, 13, 18, 23: if c != UInt8(ascii: "-") { return false }
            case 30...35: if !(0x30...0x39).contains(c) { return false }
            default: if !((0x30...0x39).contains(c) || (0x61...0x66).contains(c)) { return false }
            }
        }
        if strict, b[29] != UInt8(ascii: "0"), b[29] != UInt8(ascii: "1") { return false }
        return true
    }

    /// `20` + the last six digits: the raw crash's storage date (`YYYYMMDD`).
    public static func date(of id: String) -> String { "20" + id.suffix(6) }

    /// The UTC day the crash was received (midnight), from the id's last six digits; nil when
    /// they are not a date.
    public static func receivedDay(of id: String) -> Date? {
        let digits = Array(id.utf8.suffix(6))
        guard digits.count == 6, digits.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let n = digits.map { Int($0) - 0x30 }
        let year = 2000 + n[0] * 10 + n[1], month = n[2] * 10 + n[3], day = n[4] * 10 + n[5]
        guard (1...12).contains(month), (1...31).contains(day) else { return nil }
        var parts = DateComponents()
        (parts.year, parts.month, parts.day) = (year, month, day)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: parts), calendar.component(.day, from: date) == day else { return nil }
        return date
    }

    /// The throttle digit (0 accepted, 1 deferred), the seventh character from the end.
    public static func throttleDigit(of id: String) -> Int? {
        let b = Array(id.utf8)
        guard b.count == 36, (0x30...0x39).contains(b[29]) else { return nil }
        return Int(b[29]) - 0x30
    }

    /// Accepts a `bp-` prefix, as crash report links carry it.
    public static func normalize(_ text: String) -> String {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        return t.hasPrefix("bp-") ? String(t.dropFirst(3)) : t
    }

    /// The id Crashpad/Chromium clients keep: 16 lowercase hex digits (the first 16 of the id).
    public static func hex16(_ id: String) -> String { String(id.replacingOccurrences(of: "-", with: "").prefix(16)) }
}
