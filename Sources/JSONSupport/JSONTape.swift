import CSystemShims
import Foundation

/// A validated JSON document as a flat list of value positions ("tape"), for hot paths that read
/// a few members of large documents: building it allocates nothing per value, and a value is
/// turned into a `JSONValue` or `String` only when asked for.
///
/// It accepts exactly what `JSONParser` accepts (same grammar, the same depth limit, Python's
/// `NaN`/`Infinity`), so code may switch between the two on the same input.
/// The tape borrows the bytes it was built from; it must not outlive them. Copies of a tape share
/// its storage (one tape per thread).
public struct JSONTape {
    public enum Kind: UInt8 { case object, array, string, number, literal }

    public struct Entry {
        public var kind: Kind
        /// A string holding at least one escape sequence.
        public var escaped: Bool
        /// Byte range of the value in the document (strings include their quotes).
        public var start: Int32
        public var end: Int32
        /// Index of the entry after this value and everything inside it.
        public var next: Int32
    }

    /// Entry memory, reused from document to document.
    final class Storage {
        var pointer: UnsafeMutablePointer<Entry>
        var capacity: Int
        var count = 0
        init(capacity: Int) {
            self.capacity = capacity
            pointer = .allocate(capacity: capacity)
        }
        deinit { pointer.deallocate() }
    }

    private let storage = Storage(capacity: 1024)
    public private(set) var bytes = UnsafeRawBufferPointer(start: nil, count: 0)

    public var entries: UnsafeBufferPointer<Entry> { UnsafeBufferPointer(start: storage.pointer, count: storage.count) }

    public init() {}

    /// Tapes `document` (reusing this tape's storage); false when it is not valid JSON.
    public mutating func parse(_ document: UnsafeRawBufferPointer) -> Bool {
        storage.count = 0
        bytes = document
        guard document.count < Int(Int32.max) else { return false }
        // Every value starts at its own byte: the tape never holds more entries than bytes.
        if storage.capacity < document.count + 1 {
            storage.pointer.deallocate()
            storage.capacity = max(document.count + 1, storage.capacity * 2)
            storage.pointer = .allocate(capacity: storage.capacity)
        }
        var scanner = Scanner(bytes: document.bindMemory(to: UInt8.self), out: storage.pointer)
        let ok = scanner.document()
        storage.count = scanner.n
        return ok
    }

    public var root: Int { 0 }

    public func kind(_ i: Int) -> Kind { entries[i].kind }

    /// The raw bytes of a value; for a string, its content between the quotes, escapes as written.
    public func raw(_ i: Int) -> UnsafeRawBufferPointer {
        let e = entries[i]
        return e.kind == .string
            ? UnsafeRawBufferPointer(rebasing: bytes[Int(e.start) + 1..<Int(e.end) - 1])
            : UnsafeRawBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)])
    }

    /// The value at `i`, decoded.
    public func value(_ i: Int) -> JSONValue {
        let e = entries[i]
        // The tape validated it, so parsing cannot fail.
        return JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)])) ?? .null
    }

    /// The decoded text of the string at `i`.
    public func string(_ i: Int) -> String {
        let e = entries[i]
        if !e.escaped { return String(decoding: raw(i), as: UTF8.self) }
        var parser = JSONParser(UnsafeRawBufferPointer(rebasing: bytes[Int(e.start)..<Int(e.end)]).bindMemory(to: UInt8.self))
        return (try? parser.string()) ?? ""
    }

    /// Whether the value at `i` is `null`.
    public func isNull(_ i: Int) -> Bool {
        let e = entries[i]
        return e.kind == .literal && bytes[Int(e.start)] == UInt8(ascii: "n")
    }

    /// The number of items of an array or members of an object.
    public func count(_ i: Int) -> Int {
        var n = 0
        var c = i + 1
        let end = Int(entries[i].next)
        while c < end {
            n += 1
            c = Int(entries[c].next)
            if entries[i].kind == .object { c = Int(entries[c].next) }
        }
        return n
    }

    /// The items of the array at `i`, by index.
    public func items(_ i: Int) -> [Int] {
        var out: [Int] = []
        var c = i + 1
        let end = Int(entries[i].next)
        while c < end { out.append(c); c = Int(entries[c].next) }
        return out
    }

    /// Calls `body` with (key index, value index) for each member of the object at `i`, in
    /// document order (a repeated key is seen once per occurrence; Python keeps the last value).
    @inline(__always)
    public func forEachMember(_ i: Int, _ body: (Int, Int) throws -> Void) rethrows {
        var c = i + 1
        let end = Int(entries[i].next)
        while c < end {
            let v = c + 1
            try body(c, v)
            c = Int(entries[v].next)
        }
    }

    /// Whether the key at `k` is `name` (compared as written; keys with escapes never match).
    @inline(__always)
    public func key(_ k: Int, is name: StaticString) -> Bool {
        let e = entries[k]
        guard !e.escaped, Int(e.end - e.start) - 2 == name.utf8CodeUnitCount else { return false }
        return memcmp(bytes.baseAddress! + Int(e.start) + 1, name.utf8Start, name.utf8CodeUnitCount) == 0
    }

    /// The value of the last member named `name` in the object at `i`.
    public func member(_ i: Int, _ name: StaticString) -> Int? {
        var found: Int?
        forEachMember(i) { k, v in if key(k, is: name) { found = v } }
        return found
    }

    /// Whether a key with an escape sequence occurs in the object at `i` (such keys may spell a
    /// known name differently, so callers that match names as written fall back to decoding).
    public func hasEscapedKey(_ i: Int) -> Bool {
        var any = false
        forEachMember(i) { k, _ in if entries[k].escaped { any = true } }
        return any
    }

    /// A validating scanner with `JSONParser`'s grammar that records positions only.
    struct Scanner: JSONCursor {
        let bytes: UnsafeBufferPointer<UInt8>
        let out: UnsafeMutablePointer<Entry>
        var i = 0
        var n = 0

        @inline(__always) mutating func append(_ e: Entry) {
            out[n] = e
            n += 1
        }

        mutating func document() -> Bool {
            skipSpace()
            guard value(depth: 0) else { return false }
            skipSpace()
            return i == bytes.count
        }

        mutating func value(depth: Int) -> Bool {
            guard depth < JSONParser.maxDepth, i < bytes.count else { return false }
            let at = n
            let start = Int32(i)
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = c == UInt8(ascii: "{")
                let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                append(Entry(kind: isObject ? .object : .array, escaped: false, start: start, end: 0, next: 0))
                i += 1
                skipSpace()
                if i < bytes.count, bytes[i] == close {
                    i += 1
                } else {
                    while true {
                        skipSpace()
                        if isObject {
                            guard i < bytes.count, bytes[i] == UInt8(ascii: "\""), string() else { return false }
                            skipSpace()
                            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return false }
                            i += 1
                            skipSpace()
                        }
                        guard value(depth: depth + 1) else { return false }
                        skipSpace()
                        guard i < bytes.count else { return false }
                        let next = bytes[i]
                        i += 1
                        if next == close { break }
                        guard next == UInt8(ascii: ",") else { return false }
                    }
                }
                out[at].end = Int32(i)
                out[at].next = Int32(n)
                return true
            case UInt8(ascii: "\""):
                return string()
            case UInt8(ascii: "t"): guard literal("true") else { return false }
            case UInt8(ascii: "f"): guard literal("false") else { return false }
            case UInt8(ascii: "n"): guard literal("null") else { return false }
            case UInt8(ascii: "N"): guard literal("NaN") else { return false }
            case UInt8(ascii: "I"): guard literal("Infinity") else { return false }
            default:
                if c == UInt8(ascii: "-"), literal("-Infinity") { break }
                guard number() else { return false }
                append(Entry(kind: .number, escaped: false, start: start, end: Int32(i), next: Int32(at + 1)))
                return true
            }
            append(Entry(kind: .literal, escaped: false, start: start, end: Int32(i), next: Int32(at + 1)))
            return true
        }

        @inline(__always) mutating func digits() -> Bool {
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { return false }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            return true
        }

        mutating func number() -> Bool {
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { return false }
            if bytes[i] == 0x30 { i += 1 } else { _ = digits() }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() else { return false }
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() else { return false }
            }
            return true
        }

        mutating func string() -> Bool {
            let start = Int32(i)
            i += 1
            var escaped = false
            while true {
                i += pm_json_string_run(bytes.baseAddress! + i, bytes.count - i)
                guard i < bytes.count else { return false }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { return false }
                i += 1
                guard c == UInt8(ascii: "\\") else { continue }
                escaped = true
                guard i < bytes.count else { return false }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"):
                    guard bytes.count - i >= 4 else { return false }
                    for _ in 0..<4 {
                        switch bytes[i] {
                        case 0x30...0x39, 0x61...0x66, 0x41...0x46: i += 1
                        default: return false
                        }
                    }
                default:
                    return false
                }
            }
            i += 1
            append(Entry(kind: .string, escaped: escaped, start: start, end: Int32(i), next: Int32(n + 1)))
            return true
        }
    }
}
