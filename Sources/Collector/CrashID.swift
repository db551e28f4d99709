import Foundation
import Storage

/// Socorro crash ids: a random UUID whose last 7 hex digits are replaced by the throttle digit
/// (0 accept, 1 defer) and the UTC date of receipt as `YYMMDD`
/// (`de1bb258-cbbf-4589-a673-34f800160918`: accepted on 2016-09-18).
public enum CrashID {
    public static func make(throttleDigit: Int, date: Date, uuid: UUID = UUID()) -> String {
        let text = uuid.uuidString.lowercased()
        return String(text.prefix(text.count - 7)) + String(throttleDigit) + dayStamp(date).dropFirst(2)
    }

    /// `YYYYMMDD` of `date` in UTC.
    public static func dayStamp(_ date: Date) -> String { BlobKeys.dayStamp(date) }

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

    /// `20` + the last six digits: the raw crash's storage date.
    public static func date(of id: String) -> String { "20" + id.suffix(6) }

    /// Accepts a `bp-` prefix, as crash report links carry it.
    public static func normalize(_ text: String) -> String {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        return t.hasPrefix("bp-") ? String(t.dropFirst(3)) : t
    }

    /// The id Crashpad/Chromium clients keep: 16 lowercase hex digits (the first 16 of the id).
    public static func hex16(_ id: String) -> String { String(id.replacingOccurrences(of: "-", with: "").prefix(16)) }
}
