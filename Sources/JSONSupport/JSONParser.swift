/// A byte-level JSON parser for `JSONValue`: objects keep their key order (a repeated key keeps
/// its first position and its last value, as Python's `json` does), integers that fit 64 bits stay
/// integers, and nesting is limited so hostile input cannot exhaust the stack. Python's `NaN`,
/// `Infinity` and `-Infinity` are accepted, since Python clients send them.
struct JSONParser: JSONCursor {
    static let maxDepth = 512

    let bytes: UnsafeBufferPointer<UInt8>
    var i = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    struct Failure: Error {}

    mutating func parseDocument() throws(Failure) -> JSONValue {
        skipSpace()
        let v = try value(depth: 0)
        skipSpace()
        guard i == bytes.count else { throw Failure() }
        return v
    }


    @inline(__always) func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func value(depth: Int) throws(Failure) -> JSONValue {
        guard depth < Self.maxDepth, let c = peek() else { throw Failure() }
        switch c {
        case UInt8(ascii: "{"):
            i += 1
            var pairs: [(String, JSONValue)] = []
            // Repeated keys are rare: small objects find them by a linear scan, larger ones build
            // a dictionary once they pass 16 keys.
            var index: [String: Int]? = nil
            skipSpace()
            if peek() == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw Failure() }
                let key = try string()
                skipSpace()
                guard peek() == UInt8(ascii: ":") else { throw Failure() }
                i += 1
                skipSpace()
                let v = try value(depth: depth + 1)
                if let at = Self.position(of: key, in: pairs, index: &index) { pairs[at].1 = v } else {
                    index?[key] = pairs.count
                    pairs.append((key, v))
                }
                skipSpace()
                guard let next = peek() else { throw Failure() }
                i += 1
                if next == UInt8(ascii: "}") { return .object(pairs) }
                guard next == UInt8(ascii: ",") else { throw Failure() }
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipSpace()
            if peek() == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard let next = peek() else { throw Failure() }
                i += 1
                if next == UInt8(ascii: "]") { return .array(items) }
                guard next == UInt8(ascii: ",") else { throw Failure() }
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            guard literal("true") else { throw Failure() }
            return .bool(true)
        case UInt8(ascii: "f"):
            guard literal("false") else { throw Failure() }
            return .bool(false)
        case UInt8(ascii: "n"):
            guard literal("null") else { throw Failure() }
            return .null
        case UInt8(ascii: "N"):
            guard literal("NaN") else { throw Failure() }
            return .double(.nan)
        case UInt8(ascii: "I"):
            guard literal("Infinity") else { throw Failure() }
            return .double(.infinity)
        default:
            if c == UInt8(ascii: "-"), literal("-Infinity") { return .double(-.infinity) }
            return try number()
        }
    }

    static func position(of key: String, in pairs: [(String, JSONValue)], index: inout [String: Int]?) -> Int? {
        if index == nil {
            if pairs.count < 16 { return pairs.firstIndex { $0.0 == key } }
            var built: [String: Int] = [:]
            for (n, p) in pairs.enumerated() { built[p.0] = n }
            index = built
        }
        return index?[key]
    }

    mutating func number() throws(Failure) -> JSONValue {
        let start = i
        if peek() == UInt8(ascii: "-") { i += 1 }
        guard let first = peek(), first >= 0x30, first <= 0x39 else { throw Failure() }
        if first == 0x30 { i += 1 } else { while let d = peek(), d >= 0x30, d <= 0x39 { i += 1 } }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard let d = peek(), d >= 0x30, d <= 0x39 else { throw Failure() }
            while let d = peek(), d >= 0x30, d <= 0x39 { i += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { i += 1 }
            guard let d = peek(), d >= 0x30, d <= 0x39 else { throw Failure() }
            while let d = peek(), d >= 0x30, d <= 0x39 { i += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int64(text) { return .int(v) }
        guard let d = Double(text) else { throw Failure() }
        return .double(d)
    }

    mutating func hex4() throws(Failure) -> UInt32 {
        guard bytes.count - i >= 4 else { throw Failure() }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            default: throw Failure()
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws(Failure) -> String {
        i += 1 // opening quote
        let start = i
        // Fast path: no escapes.
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") {
            guard bytes[i] >= 0x20 else { throw Failure() }
            i += 1
        }
        guard i < bytes.count else { throw Failure() }
        if bytes[i] == UInt8(ascii: "\"") {
            let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            i += 1
            return s
        }
        var out = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        var run = i
        while true {
            guard i < bytes.count else { throw Failure() }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                out += String(decoding: UnsafeBufferPointer(rebasing: bytes[run..<i]), as: UTF8.self)
                i += 1
                return out
            }
            if c < 0x20 { throw Failure() }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            out += String(decoding: UnsafeBufferPointer(rebasing: bytes[run..<i]), as: UTF8.self)
            i += 1
            guard i < bytes.count else { throw Failure() }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out += "\""
            case UInt8(ascii: "\\"): out += "\\"
            case UInt8(ascii: "/"): out += "/"
            case UInt8(ascii: "b"): out += "\u{8}"
            case UInt8(ascii: "f"): out += "\u{C}"
            case UInt8(ascii: "n"): out += "\n"
            case UInt8(ascii: "r"): out += "\r"
            case UInt8(ascii: "t"): out += "\t"
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code), bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                    let save = i
                    i += 2
                    let low = try hex4()
                    if (0xDC00...0xDFFF).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        i = save
                    }
                }
                // A lone surrogate cannot be a Swift string: it becomes U+FFFD.
                out.unicodeScalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default:
                throw Failure()
            }
            run = i
        }
    }
}

/// A position in JSON text, shared by the parser and the tape's scanner.
protocol JSONCursor {
    var bytes: UnsafeBufferPointer<UInt8> { get }
    var i: Int { get set }
}

extension JSONCursor {
    @inline(__always) mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    /// Consumes `text` when the input continues with it.
    @inline(__always) mutating func literal(_ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard bytes.count - i >= n else { return false }
        let p = text.utf8Start
        for k in 0..<n where bytes[i + k] != p[k] { return false }
        i += n
        return true
    }
}
