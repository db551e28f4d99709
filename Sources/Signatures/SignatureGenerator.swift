import Foundation
import JSONSupport

/// The outcome of signature generation.
public struct SignatureResult: Sendable {
    public var signature = ""
    public var notes: [String] = []
    public var debugLog: [String] = []
    /// All normalized frames of the crashing thread joined with ` | ` (C/C++/Rust crashes;
    /// empty otherwise).
    public var protoSignature: String { normalizedFrames?.joined(separator: " | ") ?? "" }
    public var normalizedFrames: [String]?
    /// Identifies the rules and lists that produced the signature.
    public var rulesVersion = ""

    /// False when nobody will read the debug log (bulk runs without `-v`): it is not built.
    var keepsDebugLog = true

    mutating func setSignature(_ rule: String, _ new: String) {
        if keepsDebugLog { debugLog.append("\(rule): change signature: \"\(signature)\" -> \"\(new)\"") }
        signature = new
    }

    mutating func info(_ rule: String, _ message: String) { notes.append("\(rule): \(message)") }
    mutating func debug(_ rule: String, _ message: @autoclosure () -> String) {
        if keepsDebugLog { debugLog.append("\(rule): \(message())") }
    }
}

extension SignatureResult {
    /// The result as `postmortem signature` prints it: signature, proto_signature, notes,
    /// rules_version and, with `debugLog`, the debug log.
    public func write(into out: inout JSONOutput, debugLog withLog: Bool) {
        out.raw("{\"signature\": ")
        out.string(signature)
        out.raw(", \"proto_signature\": ")
        out.joinedString(normalizedFrames ?? [], separator: " | ")
        out.raw(", \"notes\": ")
        out.strings(notes)
        out.raw(", \"rules_version\": ")
        out.string(rulesVersion)
        if withLog {
            out.raw(", \"debug_log\": ")
            out.strings(debugLog)
        }
        out.raw("}")
    }
}

extension SignatureGenerator {
    /// Bulk generation over JSON lines (one crash-data document or processed crash per line, one
    /// result per line), on all cores.
    public func jsonLinesMapper(debugLog: Bool, workers: Int = ProcessInfo.processInfo.activeProcessorCount) -> JSONLinesMapper {
        let pool = SignatureWorkerPool(lists: lists, memo: memo)
        return JSONLinesMapper(workers: workers, lineTransform: { line, out in
            let worker = pool.take()
            defer { pool.put(worker) }
            guard worker.tape.parse(line) else { return false }
            let result = worker.generator.generate(worker.crashInput() ?? CrashInput(data: Self.crashData(from: worker.tape.value(worker.tape.root))),
                                  keepDebugLog: debugLog)
            result.write(into: &out, debugLog: debugLog)
            out.newline()
            return true
        })
    }
}

/// Idle JSON-lines workers, one per thread in use, so their memos stay warm across lines.
final class SignatureWorkerPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [SignatureWorker] = []
    private let lists: SignatureLists
    private let memo: NormalizationMemo

    init(lists: SignatureLists, memo: NormalizationMemo) {
        self.lists = lists
        self.memo = memo
    }

    /// The idle worker this thread used last, if any: a worker that stays on one core keeps its
    /// memo tables in that core's cache and its strings' reference counts off the other cores.
    func take() -> SignatureWorker {
        let thread = pthread_self()
        lock.lock(); defer { lock.unlock() }
        if let i = idle.lastIndex(where: { pthread_equal($0.lastThread, thread) != 0 }) ?? idle.indices.last {
            let worker = idle.remove(at: i)
            worker.lastThread = thread
            return worker
        }
        let worker = SignatureWorker(generator: SignatureGenerator(lists: lists.independentCopy(), memo: memo))
        worker.lastThread = thread
        return worker
    }

    func put(_ worker: SignatureWorker) {
        lock.lock(); defer { lock.unlock() }
        idle.append(worker)
    }
}

/// One step of the pipeline.
protocol SignatureRule: Sendable {
    var name: String { get }
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure)
}

/// Socorro-compatible signature generation (`signatures.md`): the default rule pipeline over
/// crash data, with signature lists loaded from a directory.
public struct SignatureGenerator: Sendable {
    /// Bumped whenever a rule changes the signatures it produces.
    public static let rulesVersion = "postmortem-siggen-1"

    let rules: [any SignatureRule]
    public let lists: SignatureLists

    /// Normalized names, shared by the generators of all threads (see `SignatureWorker`).
    let memo: NormalizationMemo
    let tool: CSignatureTool

    public init(lists: SignatureLists) {
        self.init(lists: lists, memo: NormalizationMemo())
    }

    init(lists: SignatureLists, memo: NormalizationMemo) {
        self.lists = lists
        self.memo = memo
        tool = CSignatureTool(lists: lists, memo: memo)
        let generation = SignatureGenerationRule(tool: tool)
        rules = [
            generation, StackwalkerErrorRule(), BadHardwareRule(), OOMRule(), AbortRule(), ShutdownTimeoutRule(),
            RunWatchdogRule(generation: generation), IPCChannelErrorRule(), IPCMessageNameRule(), StackOverflowRule(),
            HungProcessRule(), FixWhitespaceRule(), TruncateRule(),
        ]
    }

    /// Generates the signature of `crashData` (siggen's crash-data shape).
    public func generate(_ crashData: JSONValue) -> SignatureResult {
        generate(CrashInput(data: crashData))
    }

    func generate(_ input: CrashInput, keepDebugLog: Bool = true) -> SignatureResult {
        var result = SignatureResult()
        result.keepsDebugLog = keepDebugLog
        result.rulesVersion = Self.rulesVersion
        for rule in rules {
            do {
                if try rule.predicate(input, result) { try rule.action(input, &result) }
            } catch {
                result.info(rule.name, "Rule failed: \(error.message)")
            }
        }
        return result
    }

    /// Accepts siggen crash data as is, or a processed crash (it has `json_dump`), which is
    /// converted the way siggen's `convert_to_crash_data` does.
    public static func crashData(from document: JSONValue) -> JSONValue {
        guard case .object = document, document["json_dump"] != nil else { return document }
        func at(_ path: [String]) -> JSONValue {
            var v: JSONValue? = document
            for key in path { v = v?.get(key) }
            return v ?? .null
        }
        var pairs: [(String, JSONValue)] = [
            ("hang", at(["hang"])),
            ("oom_allocation_size", (try? pythonInt(at(["oom_allocation_size"]))).flatMap { $0.map { .int($0) } } ?? .null),
            ("js_large_allocation_failure", at(["js_large_allocation_failure"])),
            ("abort_message", at(["abort_message"])),
            ("mdsw_status_string", at(["mdsw_status_string"])),
            ("async_shutdown_timeout", at(["async_shutdown_timeout"])),
            ("ipc_channel_error", at(["ipc_channel_error"])),
            ("ipc_message_name", at(["ipc_message_name"])),
            ("additional_minidumps", document["additional_minidumps"] ?? .array([])),
            ("original_signature", document["signature"] ?? .string("")),
            ("crashing_thread", at(["json_dump", "crash_info", "crashing_thread"])),
            ("reason", at(["json_dump", "crash_info", "type"])),
            ("threads", at(["json_dump", "threads"])),
            ("os", at(["json_dump", "system_info", "os"])),
        ]
        if let j = document["java_exception"] { pairs.append(("java_exception", j)) }
        if let j = document["java_stack_trace"] { pairs.append(("java_stack_trace", j)) }
        return .object(pairs)
    }
}

// MARK: - helpers over crash data

/// `int(crash_data.get("crashing_thread", 0))`, 0 when that fails.
func crashingThread(_ data: JSONValue) -> Int64 {
    guard let v = data.get("crashing_thread") else { return 0 }
    return ((try? pythonInt(v)) ?? nil) ?? 0
}

/// `glom(crash_data, "threads.<n>", default={})`: a negative index counts from the end.
func thread(_ data: JSONValue, _ index: Int64) -> JSONValue? {
    guard case .array(let threads)? = data.get("threads") else { return nil }
    let i = index < 0 ? Int64(threads.count) + index : index
    guard i >= 0, i < Int64(threads.count) else { return nil }
    return threads[Int(i)]
}
