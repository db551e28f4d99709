import Foundation

/// One list of Socorro's signature-list format: one entry per line, blank lines and `#` comments
/// ignored. Regex lists are joined with `|` and matched like Python's `re.match` (anchored at the
/// start only).
public struct SignatureListError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String
    public var description: String { "\(file):\(line): \(reason)" }
}

/// A compiled regex list. Results are memoized: the same frame names recur across crashes.
public struct RegexList: @unchecked Sendable {
    public let entries: [String]
    let regex: NSRegularExpression?
    private let cache = MatchCache()

    /// The cache of the list this one was copied from, consulted when the own cache misses.
    private let sharedCache: MatchCache?

    public init(entries: [String]) throws {
        try self.init(entries: entries, sharedCache: nil)
    }

    private init(entries: [String], sharedCache: MatchCache?) throws {
        self.entries = entries
        self.sharedCache = sharedCache
        regex = entries.isEmpty ? nil : try NSRegularExpression(pattern: entries.map(Self.icuPattern).joined(separator: "|"))
    }

    /// The same list with its own compiled regex and cache, for one thread (shared objects cost
    /// lock and reference-count traffic between cores); results are still shared through this
    /// list's cache, so each thread does not learn every name again.
    func independentCopy() -> RegexList {
        (try? RegexList(entries: entries, sharedCache: cache)) ?? self
    }

    /// Python's `re` reads a `{` that does not open a valid quantifier as a literal
    /// (`{{closure}}` in Rust names) and accepts `{,n}`; ICU rejects both. Escapes such braces
    /// and writes `{,n}` as `{0,n}`; everything else is passed through.
    static func icuPattern(_ pattern: String) -> String {
        let c = Array(pattern)
        var out = ""
        var i = 0
        var inClass = false
        while i < c.count {
            let ch = c[i]
            if ch == "\\", i + 1 < c.count {
                out.append(ch); out.append(c[i + 1]); i += 2; continue
            }
            if inClass {
                if ch == "]" { inClass = false }
                out.append(ch); i += 1; continue
            }
            if ch == "[" {
                inClass = true
                out.append(ch); i += 1
                if i < c.count, c[i] == "^" { out.append("^"); i += 1 }
                if i < c.count, c[i] == "]" { out.append("\\]"); i += 1 }
                continue
            }
            if ch == "{" {
                var j = i + 1
                var lo = "", hi = ""
                while j < c.count, c[j].isASCII, c[j].isNumber { lo.append(c[j]); j += 1 }
                var comma = false
                if j < c.count, c[j] == "," {
                    comma = true
                    j += 1
                    while j < c.count, c[j].isASCII, c[j].isNumber { hi.append(c[j]); j += 1 }
                }
                if j < c.count, c[j] == "}", !(lo.isEmpty && !comma) {
                    out += "{" + (lo.isEmpty ? "0" : lo) + (comma ? "," + hi : "") + "}"
                    i = j + 1
                    continue
                }
                out += "\\{"
                i += 1
                continue
            }
            if ch == "}" { out += "\\}"; i += 1; continue }
            out.append(ch)
            i += 1
        }
        return out
    }

    /// Python `re.match`: a match that starts at the beginning of `text`.
    public func matches(_ text: String) -> Bool {
        guard let regex else { return false }
        if let known = cache.lookup(text) { return known }
        if let known = sharedCache?.lookup(text) {
            cache.store(text, known)
            return known
        }
        let ns = text as NSString
        let result = regex.firstMatch(in: text, options: [.anchored], range: NSRange(location: 0, length: ns.length)) != nil
        cache.store(text, result)
        sharedCache?.store(text, result)
        return result
    }
}

/// The four lists signature generation uses.
public struct SignatureLists: Sendable {
    public let irrelevant: RegexList
    public let prefix: RegexList
    public let lineNumbers: RegexList
    /// Exact strings.
    public let sentinels: [String]
    /// Where the lists came from, for the debug log; nil for the lists shipped with the program.
    public let source: String?

    /// The same lists with their own compiled regexes and caches (see `RegexList.independentCopy`).
    func independentCopy() -> SignatureLists {
        SignatureLists(irrelevant: irrelevant.independentCopy(), prefix: prefix.independentCopy(),
                       lineNumbers: lineNumbers.independentCopy(), sentinels: sentinels, source: source)
    }

    private init(irrelevant: RegexList, prefix: RegexList, lineNumbers: RegexList, sentinels: [String], source: String?) {
        self.irrelevant = irrelevant
        self.prefix = prefix
        self.lineNumbers = lineNumbers
        self.sentinels = sentinels
        self.source = source
    }

    /// Postmortem's own lists, shipped with the program (`Resources/siglists`).
    public static func bundled() throws -> SignatureLists {
        guard let url = Bundle.module.url(forResource: "siglists", withExtension: nil) else {
            throw SignatureListError(file: "siglists", line: 0, reason: "the bundled signature lists are missing")
        }
        return try SignatureLists(directory: url.path, includedLists: true)
    }

    public static let fileNames = ["irrelevant_signature_re", "prefix_signature_re", "signature_sentinels", "signatures_with_line_numbers_re"]

    /// Loads `<dir>/<name>.txt` for the four lists; a regex that does not compile is reported with
    /// its file, line (1-based) and the reason.
    /// With `includedLists`, the debug log reports "included signature lists" (the lists that
    /// ship with the program) instead of the directory.
    public init(directory: String, source: String? = nil, includedLists: Bool = false) throws {
        func lines(_ name: String, regex: Bool) throws -> [String] {
            let path = "\(directory)/\(name).txt"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SignatureListError(file: path, line: 0, reason: "cannot read the list")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw SignatureListError(file: path, line: 0, reason: "not UTF-8")
            }
            var out: [String] = []
            for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
                if line.isEmpty || line.hasPrefix("#") { continue }
                if regex {
                    do { _ = try NSRegularExpression(pattern: RegexList.icuPattern(line)) } catch {
                        throw SignatureListError(file: path, line: i + 1, reason: "invalid regular expression: \(line)")
                    }
                }
                out.append(line)
            }
            return out
        }
        irrelevant = try RegexList(entries: lines("irrelevant_signature_re", regex: true))
        prefix = try RegexList(entries: lines("prefix_signature_re", regex: true))
        lineNumbers = try RegexList(entries: lines("signatures_with_line_numbers_re", regex: true))
        sentinels = try lines("signature_sentinels", regex: false)
        self.source = includedLists ? nil : (source ?? directory)
    }
}

/// A bounded, thread-safe memo of regex results (cleared when full).
final class MatchCache: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [String: Bool] = [:]
    static let capacity = 200_000

    func lookup(_ key: String) -> Bool? {
        lock.lock(); defer { lock.unlock() }
        return results[key]
    }

    func store(_ key: String, _ value: Bool) {
        lock.lock(); defer { lock.unlock() }
        if results.count >= Self.capacity { results.removeAll(keepingCapacity: true) }
        results[key] = value
    }
}
