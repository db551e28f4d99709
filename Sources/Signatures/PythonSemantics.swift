import Foundation
import JSONSupport

/// Crash data is untyped JSON, and Socorro's generator decides with Python's truthiness and
/// `str()`; these helpers give the same answers so that odd inputs group the same way.
extension JSONValue {
    /// Python truthiness: null, false, 0, 0.0, "" and empty containers are false.
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }


    /// Python `str()` of the value.
    var pythonString: String {
        switch self {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloat(d)
        case .string(let s): return s
        case .array, .object: return pythonRepr
        }
    }

    /// Python `repr()` of the value.
    var pythonRepr: String {
        switch self {
        case .string(let s):
            let quote = s.contains("'") && !s.contains("\"") ? "\"" : "'"
            var out = quote
            for u in s.unicodeScalars {
                switch u {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if String(u) == quote { out += "\\" + quote }
                    else if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\x%02x", u.value) }
                    else { out.unicodeScalars.append(u) }
                }
            }
            return out + quote
        case .array(let items): return "[" + items.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .object(let pairs): return "{" + pairs.map { JSONValue.string($0.0).pythonRepr + ": " + $0.1.pythonRepr }.joined(separator: ", ") + "}"
        default: return pythonString
        }
    }

    /// `value.get(key)` for dictionaries; nil for other types and missing keys.
    func get(_ key: String) -> JSONValue? {
        guard case .object = self else { return nil }
        return self[key]
    }
}

func pythonFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d > 0 ? "inf" : "-inf" }
    if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
    let s = "\(d)"
    return s.replacingOccurrences(of: "e+", with: "e+").replacingOccurrences(of: "e-0", with: "e-0")
}

/// A rule raised an error, as a Python exception would; its message becomes the note
/// `<Rule>: Rule failed: <message>`.
struct RuleFailure: Error {
    let message: String
}

/// Python `int(value)`: ints, bools, floats (truncated) and decimal strings; otherwise TypeError
/// (nil) or ValueError (thrown) as Python would raise.
func pythonInt(_ v: JSONValue) throws(RuleFailure) -> Int64? {
    switch v {
    case .int(let i): return i
    case .bool(let b): return b ? 1 : 0
    case .double(let d):
        guard d.isFinite, abs(d) < 9.2e18 else { throw RuleFailure(message: "cannot convert float \(pythonFloat(d)) to integer") }
        return Int64(d)
    case .string(let s):
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "_", with: "")
        if let i = Int64(t) { return i }
        throw RuleFailure(message: "invalid literal for int() with base 10: \(v.pythonRepr)")
    default: return nil
    }
}

/// Python's `str.isspace()` for one scalar (Unicode White_Space plus the information separators).
func isPythonSpace(_ u: Unicode.Scalar) -> Bool {
    u.properties.isWhitespace || (0x1C...0x1F).contains(u.value)
}

/// Python `str.strip()`.
func pythonStrip(_ s: String) -> String {
    let scalars = s.unicodeScalars
    var lo = scalars.startIndex, hi = scalars.endIndex
    while lo < hi, isPythonSpace(scalars[lo]) { lo = scalars.index(after: lo) }
    while hi > lo, isPythonSpace(scalars[scalars.index(before: hi)]) { hi = scalars.index(before: hi) }
    if lo == scalars.startIndex && hi == scalars.endIndex { return s }
    return String(scalars[lo..<hi])
}

/// Lengths and slices in Unicode code points, as Python counts them.
extension String {
    var codePointCount: Int { unicodeScalars.count }

    func codePointPrefix(_ n: Int) -> String {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: unicodeScalars.prefix(n))
        return String(out)
    }
}

extension String {
    /// Substring search on UTF-8 bytes (Python's `in` for strings), without Foundation.
    func containsBytes(_ needle: String) -> Bool {
        var haystack = self, needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                guard !n.isEmpty else { return true }
                guard h.count >= n.count, let first = n.first else { return false }
                var i = 0
                let last = h.count - n.count
                while i <= last {
                    if h[i] == first {
                        var k = 1
                        while k < n.count, h[i + k] == n[k] { k += 1 }
                        if k == n.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }
}
