import Foundation

/// A JSON document as parsed from a request: numbers keep the integer/float distinction the
/// validation rules depend on (`1` is an int, `1.5` and `true` are not), and objects keep key order
/// on output.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.int(x), .double(y)), let (.double(y), .int(x)): return Double(x) == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            guard x.count == y.count else { return false }
            let dy = Dictionary(y, uniquingKeysWith: { a, _ in a })
            return x.allSatisfy { dy[$0.0] == $0.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first(where: { $0.0 == key })?.1
    }

    /// Parses JSON text; nil when it is not valid JSON.
    public static func parse(_ data: Data) -> JSONValue? {
        data.withUnsafeBytes { raw -> JSONValue? in
            guard !raw.isEmpty else { return nil }
            var parser = JSONParser(raw.bindMemory(to: UInt8.self))
            return try? parser.parseDocument()
        }
    }

    /// Serializes in Python's `json.dumps` style (`", "` and `": "` separators), which is what
    /// Eliot's clients have always received.
    public func serialized() -> String {
        var out = ""
        write(into: &out)
        return out
    }

    /// Serializes as serde_json does for rust-minidump: object keys sorted; compact (no spaces) or
    /// pretty (2-space indentation, `"key": value`, `[]`/`{}` for empty containers).
    public func sortedSerialization(pretty: Bool) -> String {
        var out = ""
        writeSorted(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func writeSorted(into out: inout String, pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            if pretty { out += "\n" + String(repeating: "  ", count: level) }
        }
        switch self {
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                newline(indent + 1)
                v.writeSorted(into: &out, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            out += "]"
        case .object(let pairs):
            if pairs.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (k, v)) in pairs.sorted(by: { $0.0 < $1.0 }).enumerated() {
                if i > 0 { out += "," }
                newline(indent + 1)
                JSONValue.escape(k, into: &out)
                out += pretty ? ": " : ":"
                v.writeSorted(into: &out, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            out += "}"
        default:
            write(into: &out)
        }
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): JSONValue.escape(s, into: &out)
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += ", " }
                v.write(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += ", " }
                JSONValue.escape(k, into: &out)
                out += ": "
                v.write(into: &out)
            }
            out += "}"
        }
    }

    static func escape(_ s: String, into out: inout String) {
        // Fast path: printable ASCII without quotes or backslashes is written as is.
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) {
            out += "\""
            out += s
            out += "\""
            return
        }
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value > 0x7E:
                if u.value > 0xFFFF {
                    let v = u.value - 0x10000
                    out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                } else {
                    out += String(format: "\\u%04x", u.value)
                }
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
