import Foundation
import JSONSupport

/// What the rules read: the crash data and, on the JSON-lines path, the taped line it came from.
///
/// On that path the crash data holds every member decoded except the stack frames: each thread
/// object keeps its other members, with `frames` set to `null`, and the frame-based rule reads
/// the frames of the one thread it needs straight from the tape. Decoding all threads' frames
/// into `JSONValue`s cost more than generating the signature itself.
struct CrashInput {
    var data: JSONValue
    var tapeThreads: TapeThreads?

    init(data: JSONValue, tapeThreads: TapeThreads? = nil) {
        self.data = data
        self.tapeThreads = tapeThreads
    }

    func get(_ key: String) -> JSONValue? { data.get(key) }

    /// The normalized frames of thread `index` (Python indexing: negative counts from the end;
    /// a missing thread has no frames).
    func frameList(thread index: Int64, tool: CSignatureTool, lowercaseModules: Bool) throws(RuleFailure) -> [String] {
        guard let tapeThreads else {
            return try tool.frameList(thread(data, index) ?? .object([]), lowercaseModules: lowercaseModules)
        }
        let items = tapeThreads.items
        let i = index < 0 ? Int64(items.count) + index : index
        guard i >= 0, i < Int64(items.count) else { return try tool.frameList(.object([]), lowercaseModules: lowercaseModules) }
        let item = items[Int(i)]
        if let fast = tapeThreads.worker.frameList(item, tool: tool, lowercaseModules: lowercaseModules) { return fast }
        // Anything unusual (a thread or frame that is not an object, non-string names, escaped
        // keys): decode the thread and take the general path, which raises as siggen does.
        return try tool.frameList(tapeThreads.worker.tape.value(item), lowercaseModules: lowercaseModules)
    }
}

/// The taped `threads` array of a JSON line: the tape index of each item.
struct TapeThreads {
    let worker: SignatureWorker
    let items: [Int]
}

/// What one JSON-lines worker reuses from line to line: the tape, and memos of normalized names
/// keyed by the bytes of the name as written (no `String` is built for a name seen before).
final class SignatureWorker {
    /// This worker's own generator: its lists, caches and memos are not shared with other threads.
    let generator: SignatureGenerator
    /// The thread that used this worker last (see `SignatureWorkerPool.take`).
    var lastThread = pthread_self()
    var tape = JSONTape()
    var cpp = BytesMemo<NormalizationMemo.Entry>()
    var rust = BytesMemo<NormalizationMemo.Entry>()

    init(generator: SignatureGenerator) { self.generator = generator }

    /// The crash data of the taped line with frames left on the tape; nil when the line needs the
    /// general path (not an object, a processed crash, escaped keys at the top).
    func crashInput() -> CrashInput? {
        let root = tape.root
        guard tape.kind(root) == .object, !tape.hasEscapedKey(root) else { return nil }
        var pairs: [(String, JSONValue)] = []
        var threads: [Int]?
        var failed = false
        tape.forEachMember(root) { k, v in
            if tape.key(k, is: "json_dump") { failed = true }
            if tape.key(k, is: "threads"), tape.kind(v) == .array {
                let items = tape.items(v)
                threads = items
                Self.set(&pairs, "threads", .array(items.map(placeholder)))
            } else {
                if tape.key(k, is: "threads") { threads = nil }
                Self.set(&pairs, tape.string(k), tape.value(v))
            }
        }
        if failed { return nil }
        return CrashInput(data: .object(pairs), tapeThreads: threads.map { TapeThreads(worker: self, items: $0) })
    }

    /// A thread as the rules other than frame-based generation see it: its members, with `frames`
    /// (when present) set to `null`.
    private func placeholder(_ item: Int) -> JSONValue {
        guard tape.kind(item) == .object, !tape.hasEscapedKey(item) else { return tape.value(item) }
        var pairs: [(String, JSONValue)] = []
        tape.forEachMember(item) { k, v in
            Self.set(&pairs, tape.string(k), tape.key(k, is: "frames") ? .null : tape.value(v))
        }
        return .object(pairs)
    }

    /// Python's dict semantics for a repeated key: first position, last value.
    private static func set(_ pairs: inout [(String, JSONValue)], _ key: String, _ value: JSONValue) {
        if let at = pairs.firstIndex(where: { $0.0 == key }) { pairs[at].1 = value } else { pairs.append((key, value)) }
    }

    /// Tape indexes of the members of a frame the normalizer reads (the last of a repeated key).
    struct FrameMembers {
        var function: Int?, module: Int?, file: Int?, line: Int?, offset: Int?, inlines: Int?, unloaded: Int?
    }

    func members(_ frame: Int) -> FrameMembers? {
        guard tape.kind(frame) == .object, !tape.hasEscapedKey(frame) else { return nil }
        var m = FrameMembers()
        tape.forEachMember(frame) { k, v in
            switch tape.raw(k).count {
            case 4: if tape.key(k, is: "file") { m.file = v } else if tape.key(k, is: "line") { m.line = v }
            case 6: if tape.key(k, is: "module") { m.module = v } else if tape.key(k, is: "offset") { m.offset = v }
            case 7: if tape.key(k, is: "inlines") { m.inlines = v }
            case 8: if tape.key(k, is: "function") { m.function = v }
            case 16: if tape.key(k, is: "unloaded_modules") { m.unloaded = v }
            default: break
            }
        }
        return m
    }

    /// `CSignatureTool.frameList` read from the tape; nil when the thread needs the general path.
    func frameList(_ thread: Int, tool: CSignatureTool, lowercaseModules: Bool) -> [String]? {
        guard tape.kind(thread) == .object, !tape.hasEscapedKey(thread) else { return nil }
        guard let frames = tape.member(thread, "frames") else { return [] }
        guard tape.kind(frames) == .array else { return nil }
        var out: [String] = []
        out.reserveCapacity(CSignatureTool.maximumFrames)
        for frame in tape.items(frames) {
            guard let f = members(frame) else { return nil }
            if let inlines = f.inlines, isTruthy(inlines) {
                guard tape.kind(inlines) == .array else { return nil }
                for inline in tape.items(inlines) {
                    guard var i = members(inline) else { return nil }
                    i.module = f.module
                    i.offset = f.offset
                    i.unloaded = nil
                    guard let name = normalize(i, tool: tool, lowercaseModules: lowercaseModules) else { return nil }
                    out.append(name)
                    if out.count >= CSignatureTool.maximumFrames { return out }
                }
            }
            guard let name = normalize(f, tool: tool, lowercaseModules: lowercaseModules) else { return nil }
            out.append(name)
            if out.count >= CSignatureTool.maximumFrames { break }
        }
        return out
    }

    private func isTruthy(_ i: Int) -> Bool {
        switch tape.kind(i) {
        case .object, .array: return tape.entries[i].next > Int32(i + 1)
        case .string: return tape.raw(i).count > 0
        case .number, .literal: return tape.value(i).isTruthy
        }
    }

    /// The entry for the function name at tape index `function` from the memo all threads share,
    /// computed there when new, copied into new storage for this worker.
    private func sharedEntry(rust: Bool, _ function: Int) -> NormalizationMemo.Entry {
        let name = tape.string(function)
        let normalizer = generator.tool.normalizer
        return normalizer.memo.entry(cpp: !rust, name) { rust ? normalizer.rustEntry(name) : normalizer.cppEntry(name) }.ownCopy()
    }

    /// One frame normalized. A string function name goes through the byte-keyed memo; any other
    /// frame is decoded and normalized as the general path does.
    private func normalize(_ f: FrameMembers, tool: CSignatureTool, lowercaseModules: Bool) -> String? {
        if let function = f.function, tape.kind(function) == .string, tape.raw(function).count > 0 {
            let rawName = tape.raw(function)
            // Rust 1.34 panic names are rewritten from the file: leave them to the general path.
            let special = rawName.count <= 22 && CSignatureTool.rust134Names.contains(tape.string(function))
            if !special {
                var isRust = false
                if let file = f.file {
                    if tape.kind(file) == .string {
                        isRust = tape.entries[file].escaped ? FrameNormalizer.isRustSource(tape.string(file))
                            : FrameNormalizer.isRustSource(utf8: tape.raw(file))
                    } else {
                        let v = tape.value(file)
                        isRust = v.isTruthy && FrameNormalizer.isRustSource(v.pythonString)
                    }
                }
                // A name this thread has not seen may be known to the memo all threads share. The
                // worker keeps its own copy of the result: strings used by two threads at once
                // cost cross-core reference counting on every use.
                // (The closures capture only this worker: copying the tool would retain the
                // shared memo, a contended reference count, on every frame.)
                let entry = isRust
                    ? rust.value(for: rawName) { sharedEntry(rust: true, function) }
                    : cpp.value(for: rawName) { sharedEntry(rust: false, function) }
                if case .done(let name) = entry { return name }
                let line = f.line.map { tape.value($0) }
                return isRust ? FrameNormalizer.finishRust(entry, line: line) : FrameNormalizer.finishCpp(entry, line: line)
            }
        }
        // Module-only frames are common: their name is read from the bytes.
        if !(f.function.map(isTruthy) ?? false), !((f.file.map(isTruthy) ?? false) && (f.line.map(isTruthy) ?? false)),
           let module = f.module, tape.kind(module) == .string, !tape.entries[module].escaped {
            var name = tape.raw(module)[...]
            while let b = name.first, b == UInt8(ascii: "[") || b == UInt8(ascii: "]") { name = name.dropFirst() }
            while let b = name.last, b == UInt8(ascii: "[") || b == UInt8(ascii: "]") { name = name.dropLast() }
            if !tape.raw(module).isEmpty, !lowercaseModules || name.allSatisfy({ $0 < 0x80 }) {
                return String(decoding: name.lazy.map { lowercaseModules && $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
            }
        }
        var raw = CSignatureTool.RawFrame()
        raw.function = f.function.map { tape.value($0) }
        raw.module = f.module.map { tape.value($0) }
        raw.file = f.file.map { tape.value($0) }
        raw.line = f.line.map { tape.value($0) }
        raw.offset = f.offset.map { tape.value($0) }
        raw.unloaded = f.unloaded.map { tape.value($0) }
        return tool.normalize(raw, lowercaseModules: lowercaseModules)
    }
}

extension NormalizationMemo.Entry {
    /// The same entry with its text in new storage.
    func ownCopy() -> Self {
        func copy(_ s: String) -> String { String(decoding: Array(s.utf8), as: UTF8.self) }
        switch self {
        case .done(let s): return .done(copy(s))
        case .withLine(let s): return .withLine(copy(s))
        }
    }
}
