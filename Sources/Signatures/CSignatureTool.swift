import Foundation
import JSONSupport

/// Signatures from C/C++/Rust stacks: normalize the crashing thread's frames (inlines first),
/// cut at a sentinel, then walk them through the irrelevant and prefix lists.
struct CSignatureTool: Sendable {
    static let maximumFrames = 40
    let lists: SignatureLists
    let normalizer: FrameNormalizer
    /// Sentinels, and which UTF-8 lengths they have (most frames are ruled out by length alone).
    let sentinels: Set<String>
    let sentinelLengths: Set<Int>

    init(lists: SignatureLists, memo: NormalizationMemo = NormalizationMemo()) {
        self.lists = lists
        normalizer = FrameNormalizer(lists: lists, memo: memo)
        sentinels = Set(lists.sentinels)
        sentinelLengths = Set(lists.sentinels.map(\.utf8.count))
    }

    /// Rust 1.34 panic symbols that lost their module path, keyed by (source file, function).
    static let rust134Fixes: [String: String] = [
        "src/liballoc/raw_vec.rs\u{0}capacity_overflow": "alloc::raw_vec::capacity_overflow",
        "src/libcore/option.rs\u{0}expect_failed": "core::option::expect_failed",
        "src/libcore/panicking.rs\u{0}panic_bounds_check": "core::panicking::panic_bounds_check",
        "src/libcore/panicking.rs\u{0}panic_fmt": "core::panicking::panic_fmt",
        "src/libcore/panicking.rs\u{0}panic": "core::panicking::panic",
        "src/libcore/slice/mod.rs\u{0}slice_index_order_fail": "core::slice::slice_index_order_fail",
        "src/libstd/panicking.rs\u{0}begin_panic_fmt": "std::panicking::begin_panic_fmt",
        "src/libstd/panicking.rs\u{0}continue_panic_fmt": "std::panicking::continue_panic_fmt",
        "src/libstd/panicking.rs\u{0}rust_panic_with_hook": "std::panicking::rust_panic_with_hook",
    ]

    static let rust134Names: Set<String> = Set(rust134Fixes.keys.map { String($0.split(separator: "\u{0}").last ?? "") })

    struct RawFrame {
        var module: JSONValue?
        var function: JSONValue?
        var file: JSONValue?
        var line: JSONValue?
        var offset: JSONValue?
        var unloaded: JSONValue?
        var inlines: JSONValue?

        init() {}

        /// The members a frame is read for, in one pass over its keys.
        init(_ pairs: [(String, JSONValue)]) {
            for (key, value) in pairs {
                switch key {
                case "function": function = value
                case "module": module = value
                case "file": file = value
                case "line": line = value
                case "offset": offset = value
                case "inlines": inlines = value
                case "unloaded_modules": unloaded = value
                default: break
                }
            }
        }
    }

    /// The normalized frames of a thread (`thread.frames`), inlines expanded before their frame,
    /// at most 40.
    func frameList(_ thread: JSONValue, lowercaseModules: Bool) throws(RuleFailure) -> [String] {
        guard case .object = thread else { throw RuleFailure(message: "'\(pythonTypeName(thread))' object has no attribute 'get'") }
        let frames = try Self.iterate(thread["frames"] ?? .array([]))
        var raw: [RawFrame] = []
        raw.reserveCapacity(min(frames.count, Self.maximumFrames))
        outer: for frame in frames {
            guard case .object(let members) = frame else { throw RuleFailure(message: "'\(pythonTypeName(frame))' object has no attribute 'get'") }
            var f = RawFrame(members)
            if let inlines = f.inlines, inlines.isTruthy {
                for inline in try Self.iterate(inlines) {
                    guard case .object(let inlineMembers) = inline else { throw RuleFailure(message: "'\(pythonTypeName(inline))' object has no attribute 'get'") }
                    var i = RawFrame(inlineMembers)
                    i.module = f.module
                    i.offset = f.offset
                    i.unloaded = nil
                    raw.append(i)
                    if raw.count >= Self.maximumFrames { break outer }
                }
            }
            f.inlines = nil
            raw.append(f)
            if raw.count >= Self.maximumFrames { break }
        }
        return raw.prefix(Self.maximumFrames).map { normalize($0, lowercaseModules: lowercaseModules) }
    }

    /// One raw frame (or inline) normalized: Rust 1.34 fix-ups, Windows module case, then
    /// `FrameNormalizer`.
    func normalize(_ frame: RawFrame, lowercaseModules: Bool) -> String {
        var f = frame
        // Rust 1.34 panic symbols: fill in the missing module path.
        if let file = f.file, let function = f.function, case .string(let name) = function, Self.rust134Names.contains(name) {
            let parsed = file.stringValue.flatMap(FrameNormalizer.parseSourceFile) ?? ""
            if let fixed = Self.rust134Fixes[parsed + "\u{0}" + name] { f.function = .string(fixed) }
        }
        if lowercaseModules, let m = f.module, m.isTruthy, case .string(let s) = m { f.module = .string(s.lowercased()) }
        return normalizer.normalize(function: f.function, module: f.module, file: f.file, line: f.line,
                                    offset: f.offset, unloadedModules: f.unloaded)
    }

    /// What Python's `for x in value` yields: list items, a string's characters, a dict's keys;
    /// other values are not iterable.
    static func iterate(_ value: JSONValue) throws(RuleFailure) -> [JSONValue] {
        switch value {
        case .array(let items): return items
        case .string(let s): return s.map { .string(String($0)) }
        case .object(let pairs): return pairs.map { .string($0.0) }
        default: throw RuleFailure(message: "'\(pythonTypeName(value))' object is not iterable")
        }
    }

    /// The signature from normalized frames, with notes and debug notes.
    /// `keepDebugLog: false` skips building the debug notes (bulk runs without `-v`).
    func generate(_ frames: [String], crashingThread: Int64, keepDebugLog: Bool = true) -> (String, [String], [String]) {
        var notes: [String] = []
        var log: [String] = []
        func debug(_ message: @autoclosure () -> String) { if keepDebugLog { log.append(message()) } }
        debug("using " + (lists.source.map { "signature lists from \($0)" } ?? "included signature lists"))
        var list = frames[...]
        // The first frame that is any sentinel: the earliest of each sentinel's first occurrence.
        let first = frames.firstIndex { sentinelLengths.contains($0.utf8.count) && sentinels.contains($0) }
        if let first {
            debug("sentinel; starting at \"\(frames[first])\" index \(first)")
            list = frames[first...]
        }
        var kept: [String] = []
        for frame in list {
            if frame.isEmpty { debug("empty string; ignoring: \"\(frame)\""); continue }
            if lists.irrelevant.matches(frame) { debug("irrelevant; ignoring: \"\(frame)\""); continue }
            if !frame.hasPrefix("(unloaded") {
                let lower = frame.lowercased()
                let library = lower.hasSuffix(".dll") || lower.hasSuffix(".so") || frame == "XUL"
                    || frame == "<name omitted>" || frame.hasPrefix("<unknown in")
                if library, let last = kept.last, last == frame { continue }
            }
            kept.append(frame)
            if !lists.prefix.matches(frame) { debug("not a prefix; stop: \"\(frame)\""); break }
            debug("prefix; continue iterating: \"\(frame)\"")
        }
        var signature = kept.joined(separator: " | ")
        if signature.isEmpty {
            notes.append("CSignatureTool: no frame data for crashing thread (\(crashingThread))")
            signature = list.first ?? "EMPTY: no frame data available"
        }
        return (signature, notes, log)
    }
}

func pythonTypeName(_ v: JSONValue) -> String {
    switch v {
    case .null: return "NoneType"
    case .bool: return "bool"
    case .int: return "int"
    case .double: return "float"
    case .string: return "str"
    case .array: return "list"
    case .object: return "dict"
    }
}
