import Foundation
import JSONSupport

/// Turns stack frames into the normalized strings signatures are made of (`signatures.md` §4).
struct FrameNormalizer: Sendable {
    let lists: SignatureLists

    /// `vcs:root:path:rev` → path; `C:\path` → path; `/abs` → itself; anything else → nil.
    static func parseSourceFile(_ file: String) -> String? {
        guard !file.isEmpty else { return nil }
        var colons = 0
        for b in file.utf8 where b == 0x3A { colons += 1 }
        if colons == 3 || colons == 1 {
            let parts = file.split(separator: ":", omittingEmptySubsequences: false)
            return String(parts[colons == 3 ? 2 : 1])
        }
        if file.utf8.first == UInt8(ascii: "/") { return file }
        return nil
    }

    /// Whether `parseSourceFile(file)` ends in `.rs` (Rust frames are normalized differently),
    /// without building the path: `.rs` holds no colon, so it ends the text (one colon, or an
    /// absolute path) or comes right before the third colon.
    static func isRustSource(_ file: String) -> Bool { isRustSource(utf8: file.utf8) }

    static func isRustSource<Bytes: Sequence<UInt8>>(utf8 file: Bytes) -> Bool {
        var colons = 0, thirdColon = 0, n = 0
        var first: UInt8?
        var last3: (UInt8, UInt8, UInt8) = (0, 0, 0), beforeThird: (UInt8, UInt8, UInt8) = (0, 0, 0)
        for b in file {
            if first == nil { first = b }
            if b == 0x3A {
                colons += 1
                if colons == 3 { thirdColon = n; beforeThird = last3 }
            }
            last3 = (last3.1, last3.2, b)
            n += 1
        }
        func isRs(_ t: (UInt8, UInt8, UInt8)) -> Bool { t == (0x2E, 0x72, 0x73) }
        switch colons {
        case 1: return isRs(last3)
        case 3: return thirdColon >= 3 && isRs(beforeThird)
        case 0: return first == UInt8(ascii: "/") && isRs(last3)
        default: return false
        }
    }

    func normalize(function: JSONValue?, module: JSONValue?, file: JSONValue?, line: JSONValue?,
                   offset: JSONValue?, unloadedModules: JSONValue?) -> String {
        if let function, function.isTruthy {
            let name = function.pythonString
            if let file, file.isTruthy, Self.isRustSource(file.pythonString) {
                return normalizeRust(name, line: line)
            }
            return normalizeCpp(name, line: line)
        }
        if let file, file.isTruthy, let line, line.isTruthy {
            var path = file.pythonString
            while let last = path.last, last == "/" || last == "\\" { path.removeLast() }
            let separator: Character = path.containsBytes("\\") ? "\\" : "/"
            let component = path.split(separator: separator, omittingEmptySubsequences: false).last.map(String.init) ?? path
            return "\(component)#\(line.pythonString)"
        }
        if let module, module.isTruthy {
            var m = Substring(module.pythonString)
            while let f = m.first, f == "[" || f == "]" { m = m.dropFirst() }
            while let l = m.last, l == "[" || l == "]" { m = m.dropLast() }
            return String(m)
        }
        if let unloaded = unloadedModules, unloaded.isTruthy, case .array(let list) = unloaded, let first = list.first {
            return "(unloaded \((first.get("module") ?? .null).pythonString))"
        }
        if let offset, offset.isTruthy {
            return "@" + Self.stripLeadingZeros(offset.pythonString)
        }
        return ""
    }

    /// `0x00001234` → `0x1234` (Python `hex(int(text, 16))`); unparsable text is kept.
    static func stripLeadingZeros(_ text: String) -> String {
        // Fast path for the usual `0x<hex digits>`.
        var fast: [UInt8] = [0x30, 0x78]
        var fastOK = text.utf8.count > 2
        for (n, b) in text.utf8.enumerated() {
            if n == 0 { if b != 0x30 { fastOK = false; break }; continue }
            if n == 1 { if b != 0x78 && b != 0x58 { fastOK = false; break }; continue }
            switch b {
            case 0x30 where fast.count == 2: continue
            case 0x30...0x39, 0x61...0x66: fast.append(b)
            case 0x41...0x46: fast.append(b + 0x20)
            default: fastOK = false
            }
            if !fastOK { break }
        }
        if fastOK { return fast.count == 2 ? "0x0" : String(decoding: fast, as: UTF8.self) }
        var t = pythonStrip(text).replacingOccurrences(of: "_", with: "")
        var negative = false
        if t.hasPrefix("-") { negative = true; t.removeFirst() } else if t.hasPrefix("+") { t.removeFirst() }
        if t.lowercased().hasPrefix("0x") { t.removeFirst(2) }
        guard !t.isEmpty, t.allSatisfy(\.isHexDigit) else { return text }
        let digits = String(t.drop { $0 == "0" }).lowercased()
        return (negative && !digits.isEmpty ? "-" : "") + "0x" + (digits.isEmpty ? "0" : digits)
    }

    /// The same function names recur across crashes, so the work that depends on the name alone
    /// is memoized: the collapsed name, and whether the line-number list asks for `:<line>`.
    let memo: NormalizationMemo

    init(lists: SignatureLists, memo: NormalizationMemo = NormalizationMemo()) {
        self.lists = lists
        self.memo = memo
    }

    func normalizeCpp(_ input: String, line: JSONValue?) -> String {
        Self.finishCpp(memo.entry(cpp: true, input) { cppEntry(input) }, line: line)
    }

    func normalizeRust(_ input: String, line: JSONValue?) -> String {
        Self.finishRust(memo.entry(cpp: false, input) { rustEntry(input) }, line: line)
    }

    /// The part of a C/C++ name's normalization that depends on the name alone.
    func cppEntry(_ input: String) -> NormalizationMemo.Entry {
        var f = input
        for ref in ["const", "const&", "const &", "&&", "&"] where f.hasSuffix(ref) {
            f = pythonStrip(String(f.dropLast(ref.count)))
        }
        if !f.containsBytes("::operator") { f = Self.dropPrefixAndReturnType(f) }
        if f.utf8.contains(0x60) { f = f.replacingOccurrences(of: "`anonymous namespace'", with: "(anonymous namespace)") }
        f = Self.replaceLambdaNumbers(f)
        f = Self.collapse(f, open: "<", close: ">", replacement: "<T>", exceptions: ["name omitted", "IPC::ParamTraits", " in "])
        f = Self.collapse(f, open: "(", close: ")", replacement: "", exceptions: ["anonymous namespace", "operator"])
        if f.containsBytes("clone .cold") { f = Self.collapse(f, open: "[", close: "]", replacement: "", exceptions: []) }
        return lists.lineNumbers.matches(f) ? .withLine(f) : .done(Self.fixSpacesAndCommas(f))
    }

    /// The part of a Rust name's normalization that depends on the name alone.
    func rustEntry(_ input: String) -> NormalizationMemo.Entry {
        var f = Self.dropPrefixAndReturnType(input)
        f = Self.collapse(f, open: "<", close: ">", replacement: "<T>", exceptions: [" as "])
        f = Self.collapse(f, open: "(", close: ")", replacement: "", exceptions: [])
        return lists.lineNumbers.matches(f) ? .withLine(f) : .done(Self.dropRustHash(Self.fixSpacesAndCommas(f)))
    }

    static func finishCpp(_ entry: NormalizationMemo.Entry, line: JSONValue?) -> String {
        switch entry {
        case .done(let result): return result
        case .withLine(let f): return fixSpacesAndCommas(f + ":" + (line ?? .null).pythonString)
        }
    }

    static func finishRust(_ entry: NormalizationMemo.Entry, line: JSONValue?) -> String {
        switch entry {
        case .done(let result): return result
        case .withLine(let f): return dropRustHash(fixSpacesAndCommas(f + ":" + (line ?? .null).pythonString))
        }
    }

    /// Removes a space before `*`, `&` and `,`; then makes every comma followed by a space
    /// (two passes, as the two substitutions run one after the other).
    static func fixSpacesAndCommas(_ s: String) -> String {
        let chars = Array(s.unicodeScalars)
        var first: [Unicode.Scalar] = []
        first.reserveCapacity(chars.count)
        for (i, c) in chars.enumerated() {
            if c == " ", i + 1 < chars.count, chars[i + 1] == "*" || chars[i + 1] == "&" || chars[i + 1] == "," { continue }
            first.append(c)
        }
        var out = String.UnicodeScalarView()
        for (i, c) in first.enumerated() {
            out.append(c)
            if c == ",", i + 1 >= first.count || first[i + 1] != " " { out.append(" ") }
        }
        return String(out)
    }

    /// `::h<hex>` at the end (or before a final newline, as Python's `$` allows).
    static func dropRustHash(_ s: String) -> String {
        var body = Substring(s)
        var tail = ""
        if body.hasSuffix("\n") { body = body.dropLast(); tail = "\n" }
        guard let range = body.range(of: "::h", options: .backwards) else { return s }
        let hex = body[range.upperBound...]
        guard !hex.isEmpty, hex.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return s }
        return String(body[..<range.lowerBound]) + tail
    }

    /// `::$_<digits>::` → `::$::`.
    static func replaceLambdaNumbers(_ s: String) -> String {
        guard s.containsBytes("::$_") else { return s }
        let chars = Array(s)
        var out = ""
        var i = 0
        while i < chars.count {
            if i + 4 <= chars.count, chars[i] == ":", chars[i + 1] == ":", chars[i + 2] == "$", chars[i + 3] == "_" {
                var j = i + 4
                while j < chars.count, chars[j].isNumber, chars[j].unicodeScalars.allSatisfy({ $0.properties.numericType == .decimal }) { j += 1 }
                if j > i + 4, j + 1 < chars.count, chars[j] == ":", chars[j + 1] == ":" {
                    out += "::$::"
                    i = j + 2
                    continue
                }
            }
            out.append(chars[i])
            i += 1
        }
        return out
    }

    /// Tokenizes on spaces outside `()`, `{}`, `[]`, `<>` and `` `' `` and keeps the last token,
    /// rejoined with the previous one while it starts with `(` or `[clone`.
    static func dropPrefixAndReturnType(_ function: String) -> String {
        guard function.utf8.contains(0x20) else { return function }
        var tokens: [String.UnicodeScalarView] = []
        var levels: [Unicode.Scalar] = []
        var current = String.UnicodeScalarView()
        for c in function.unicodeScalars {
            switch c {
            case "(", "{", "[", "<", "`":
                levels.append(c)
                current.append(c)
            case ")", "}", "]", ">", "'":
                if let last = levels.last, closing(last) == c { levels.removeLast() }
                current.append(c)
            case " " where levels.isEmpty:
                tokens.append(current)
                current = String.UnicodeScalarView()
            default:
                current.append(c)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        while tokens.count > 1, let last = tokens.last, last.first == "(" || String(last).hasPrefix("[clone") {
            var joined = tokens[tokens.count - 2]
            joined.append(" ")
            joined.append(contentsOf: last)
            tokens.removeLast(2)
            tokens.append(joined)
        }
        return tokens.last.map(String.init) ?? ""
    }

    private static func closing(_ open: Unicode.Scalar) -> Unicode.Scalar {
        switch open { case "(": return ")"; case "{": return "}"; case "[": return "]"; case "<": return ">"; default: return "'" }
    }

    /// Replaces each outermost `open…close` with `replacement`, unless the text before it ends
    /// with an exception string or the bracketed text contains one. Works on code points, as
    /// Python does, without building intermediate strings.
    static func collapse(_ function: String, open: Unicode.Scalar, close: Unicode.Scalar, replacement: String, exceptions: [String]) -> String {
        let chars = Array(function.unicodeScalars)
        guard chars.contains(open) else { return function }
        let patterns = exceptions.map { Array($0.unicodeScalars) }
        func endsWith(_ end: Int, _ p: [Unicode.Scalar]) -> Bool {
            guard end >= p.count else { return false }
            var k = 0
            while k < p.count { if chars[end - p.count + k] != p[k] { return false }; k += 1 }
            return true
        }
        func contains(_ from: Int, _ to: Int, _ p: [Unicode.Scalar]) -> Bool {
            guard to - from >= p.count, !p.isEmpty else { return false }
            var s = from
            while s + p.count <= to {
                var k = 0
                while k < p.count, chars[s + k] == p[k] { k += 1 }
                if k == p.count { return true }
                s += 1
            }
            return false
        }
        // `before` is the text up to index `end` (exclusive); the token is chars[tokenStart..<tokenEnd].
        func isException(_ end: Int, _ tokenStart: Int, _ tokenEnd: Int) -> Bool {
            patterns.contains { endsWith(end, $0) || contains(tokenStart, tokenEnd, $0) }
        }
        var out = String.UnicodeScalarView()
        var depth = 0
        var tokenStart = 0
        for (i, c) in chars.enumerated() {
            if depth == 0 {
                if c == open, !isException(i, 0, 0) {
                    depth = 1
                    tokenStart = i
                } else {
                    out.append(c)
                }
            } else if c == open {
                depth += 1
            } else if c == close {
                depth -= 1
                if depth == 0 {
                    if isException(i, tokenStart, i + 1) { out.append(contentsOf: chars[tokenStart...i]) }
                    else { out.append(contentsOf: replacement.unicodeScalars) }
                }
            }
        }
        if depth > 0 {
            if isException(chars.count - 1, tokenStart, chars.count) { out.append(contentsOf: chars[tokenStart...]) }
            else { out.append(contentsOf: replacement.unicodeScalars) }
        }
        return String(out)
    }
}

/// Memoized name normalizations, shared by the threads using one generator (bounded; cleared
/// when full).
final class NormalizationMemo: @unchecked Sendable {
    enum Entry {
        /// The final normalized name.
        case done(String)
        /// The collapsed name before `:<line>` and the final fix-ups (the line-number list matched).
        case withLine(String)
    }

    private let lock = NSLock()
    private var cpp: [String: Entry] = [:]
    private var rust: [String: Entry] = [:]
    static let capacity = 200_000

    func entry(cpp isCpp: Bool, _ key: String, compute: () -> Entry) -> Entry {
        lock.lock()
        if let e = isCpp ? cpp[key] : rust[key] { lock.unlock(); return e }
        lock.unlock()
        let e = compute()
        lock.lock()
        if isCpp {
            if cpp.count >= Self.capacity { cpp.removeAll(keepingCapacity: true) }
            cpp[key] = e
        } else {
            if rust.count >= Self.capacity { rust.removeAll(keepingCapacity: true) }
            rust[key] = e
        }
        lock.unlock()
        return e
    }
}
