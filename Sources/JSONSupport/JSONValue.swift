import Foundation

/// A JSON document as parsed from a request: numbers keep the integer/float distinction the
/// validation rules depend on (`1` is an int, `1.5` and `true` are not), and objects keep key order
/// on output.
public enum JSONValue: Sendable, Equatable {
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

    /// The string, when this is a string.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The integer, when this is an integer or a float with an integral value.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e18: return Int64(d)
        default: return nil
        }
    }
    /// The items, when this is an array.
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }

    /// Parses JSON text; nil when it is not valid JSON.
    public static func parse(_ data: Data) -> JSONValue? {
        data.withUnsafeBytes { raw -> JSONValue? in
            guard !raw.isEmpty else { return nil }
            var parser = JSONParser(raw.bindMemory(to: UInt8.self))
            return try? parser.parseDocument()
        }
    }

    /// Parses JSON text in memory; nil when it is not valid JSON.
    public static func parse(_ raw: UnsafeRawBufferPointer) -> JSONValue? {
        guard !raw.isEmpty else { return nil }
        var parser = JSONParser(raw.bindMemory(to: UInt8.self))
        return try? parser.parseDocument()
    }

    /// Serializes in Python's `json.dumps` style (`", "` and `": "` separators), which is what
    /// Eliot's clients have always received.
    public func serialized() -> String {
        var out = JSONOutput()
        out.write(self)
        return out.string
    }

    /// Serializes as serde_json does for rust-minidump: object keys sorted; compact (no spaces) or
    /// pretty (2-space indentation, `"key": value`, `[]`/`{}` for empty containers).
    public func sortedSerialization(pretty: Bool) -> String {
        var out = JSONOutput()
        out.writeSorted(self, pretty: pretty, indent: 0)
        return out.string
    }
}

/// A UTF-8 byte buffer that JSON is written into; bulk writers (JSONL) append many documents to
/// one buffer and flush it in large blocks.
public struct JSONOutput: Sendable {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    @inline(__always) public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func newline() { bytes.append(0x0A) }

    /// Python's `json.dumps` style (`", "` and `": "`).
    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: raw("null")
        case .bool(let b): if b { raw("true") } else { raw("false") }
        case .int(let i): bytes.append(contentsOf: String(i).utf8)
        case .double(let d): if d.isFinite { bytes.append(contentsOf: "\(d)".utf8) } else { raw("null") }
        case .string(let s): string(s)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { raw(", ") }
                write(v)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let pairs):
            bytes.append(UInt8(ascii: "{"))
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { raw(", ") }
                string(k)
                raw(": ")
                write(v)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// An object of string-valued and string-array-valued members, without building a `JSONValue`.
    public mutating func object(_ members: [(String, JSONMember)]) {
        bytes.append(UInt8(ascii: "{"))
        for (i, (k, v)) in members.enumerated() {
            if i > 0 { raw(", ") }
            string(k)
            raw(": ")
            switch v {
            case .string(let s): string(s)
            case .strings(let items): strings(items)
            }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// A JSON array of strings.
    public mutating func strings(_ items: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (n, item) in items.enumerated() {
            if n > 0 { raw(", ") }
            string(item)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// One JSON string holding `items` joined with `separator` (plain ASCII without quotes or
    /// backslashes), without building the joined text.
    public mutating func joinedString(_ items: [String], separator: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        for (n, item) in items.enumerated() {
            if n > 0 { bytes.append(contentsOf: UnsafeBufferPointer(start: separator.utf8Start, count: separator.utf8CodeUnitCount)) }
            stringContent(item)
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func writeSorted(_ value: JSONValue, pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            guard pretty else { return }
            bytes.append(0x0A)
            bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * level))
        }
        switch value {
        case .array(let items):
            if items.isEmpty { raw("[]"); return }
            bytes.append(UInt8(ascii: "["))
            for (i, v) in items.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                writeSorted(v, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            bytes.append(UInt8(ascii: "]"))
        case .object(let pairs):
            if pairs.isEmpty { raw("{}"); return }
            bytes.append(UInt8(ascii: "{"))
            for (i, (k, v)) in pairs.sorted(by: { $0.0 < $1.0 }).enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                string(k)
                if pretty { raw(": ") } else { raw(":") }
                writeSorted(v, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            bytes.append(UInt8(ascii: "}"))
        default:
            write(value)
        }
    }

    /// A JSON string with Python's `ensure_ascii` escaping (non-ASCII as `\uXXXX`, astral code
    /// points as surrogate pairs).
    public mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        stringContent(s)
        bytes.append(UInt8(ascii: "\""))
    }

    /// The escaped text of a JSON string, without the quotes.
    mutating func stringContent(_ s: String) {
        var s = s
        let simple = s.withUTF8 { utf8 -> Bool in
            // Fast path: printable ASCII without quotes or backslashes is copied as is.
            for b in utf8 where b < 0x20 || b >= 0x7F || b == 0x22 || b == 0x5C { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if !simple {
            for u in s.unicodeScalars {
                switch u {
                case "\"": raw("\\\"")
                case "\\": raw("\\\\")
                case "\n": raw("\\n")
                case "\r": raw("\\r")
                case "\t": raw("\\t")
                case _ where u.value < 0x20 || u.value > 0x7E:
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        hexEscape(0xD800 + (v >> 10))
                        hexEscape(0xDC00 + (v & 0x3FF))
                    } else {
                        hexEscape(u.value)
                    }
                default: bytes.append(UInt8(u.value))
                }
            }
        }
    }

    @inline(__always) mutating func hexEscape(_ v: UInt32) {
        let digits: StaticString = "0123456789abcdef"
        raw("\\u")
        digits.withUTF8Buffer { d in
            for shift in stride(from: 12, through: 0, by: -4) { bytes.append(d[Int((v >> UInt32(shift)) & 0xF)]) }
        }
    }
}

/// A member value for `JSONOutput.object`.
public enum JSONMember: Sendable {
    case string(String)
    case strings([String])
}
