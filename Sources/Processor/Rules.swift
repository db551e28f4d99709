import CrashModel
import Foundation
import JSONSupport
import MinidumpFormat
import Signatures
import Stackwalker

// The default ruleset, in the order of `processor.md` §3 (rules without a Postmortem
// counterpart yet are left out; the list is in `CrashProcessor.defaultRules`).

/// NUL characters out of raw keys and values; raw keys whose value is null dropped.
struct DeNullRule: ProcessorRule {
    let name = "DeNull"
    func run(_ s: inout ProcessingState) async throws {
        var out: [String: JSONValue] = [:]
        for (k, v) in s.raw {
            if case .null = v { continue }
            let key = k.replacingOccurrences(of: "\u{0}", with: "")
            if case .string(let text) = v { out[key] = .string(text.replacingOccurrences(of: "\u{0}", with: "")) } else { out[key] = v }
        }
        s.raw = out
    }
}

/// `crash_report_keys`: annotation and dump names, sanitized, sorted.
struct CrashReportKeysRule: ProcessorRule {
    let name = "CrashReportKeys"
    func run(_ s: inout ProcessingState) async throws {
        var keys = Set<String>()
        for k in Array(s.raw.keys) + s.dumps.map(\.name) {
            let clean = String(k.unicodeScalars.filter { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }.prefix(100).map(Character.init))
            if !clean.isEmpty { keys.insert(clean) }
        }
        s.processed["crash_report_keys"] = .array(keys.sorted().map { .string($0) })
        if let m = s.raw["metadata"] { s.processed["collector_metadata"] = m }
    }
}

/// Every processed-schema field with a `source_annotation` (`processor.md` rule 6): the
/// annotation copied with the field's type conversion, or the field's `default` when it is
/// absent; a value that does not convert becomes a note. The schema alone decides the list, so
/// an annotation added to the schema files needs no code here.
struct CopyFromRawCrashRule: ProcessorRule {
    let name = "CopyFromRawCrash"
    let fields: [CrashSchema.AnnotationCopy]

    func run(_ s: inout ProcessingState) async throws {
        for f in fields {
            guard let value = s.raw[f.annotation] else {
                if let d = f.defaultValue, d != .null { s.processed[f.field] = d }
                continue
            }
            if let converted = convert(value, to: f.type) {
                s.processed[f.field] = converted
            } else {
                let text = value.stringValue ?? value.serialized()
                s.notes.append("\(name): \(f.annotation) is not \(f.type == "integer" ? "an" : "a") \(f.type): \(text.prefix(40))")
            }
        }
    }

    /// nil when the value does not convert. Text is how annotations arrive; JSON submissions may
    /// send numbers, booleans and objects as themselves.
    func convert(_ value: JSONValue, to type: String) -> JSONValue? {
        let text = value.stringValue ?? value.serialized()
        switch type {
        case "string": return .string(text)
        case "integer":
            if let i = value.intValue { return .int(i) }
            return Int64(text.trimmingCharacters(in: .whitespaces)).map { .int($0) }
        case "number":
            if case .int = value { return value }
            if case .double(let d) = value, d.isFinite { return value }
            return Double(text.trimmingCharacters(in: .whitespaces)).flatMap { $0.isFinite ? .double($0) : nil }
        case "boolean":
            if case .bool = value { return value }
            switch text.lowercased() {
            case "1", "true": return .bool(true)
            case "0", "false", "": return .bool(false)
            default: return nil
            }
        case "object":
            if case .object = value { return value }
            guard text.utf8.count <= 16 << 20, case .object? = JSONValue.parse(Data(text.utf8)) else { return nil }
            return JSONValue.parse(Data(text.utf8))
        case "array":
            if case .array = value { return value }
            guard text.utf8.count <= 16 << 20, case .array? = JSONValue.parse(Data(text.utf8)) else { return nil }
            return JSONValue.parse(Data(text.utf8))
        default:
            return value
        }
    }
}

/// `crash_id`, `uuid`; `minidump_sha256_hash`.
struct IdentifierRule: ProcessorRule {
    let name = "Identifier"
    func run(_ s: inout ProcessingState) async throws {
        s.processed["crash_id"] = .string(s.crashID)
        s.processed["uuid"] = .string(s.crashID)
        if let hash = s.raw["metadata"]?["dump_checksums"]?["upload_file_minidump"] { s.processed["minidump_sha256_hash"] = hash }
    }
}

/// Runs the stackwalker on every `upload_file_minidump*` dump, in process, with a time limit.
struct StackwalkRule: ProcessorRule {
    let name = "MinidumpStackwalk"
    let walker: Stackwalker
    let timeLimit: Duration

    enum Outcome: Sendable {
        case walked(JSONValue)
        case failed(String)
        case timedOut
    }

    func run(_ s: inout ProcessingState) async throws {
        var additional: [JSONValue] = []
        for (dumpName, data) in s.dumps where dumpName == "upload_file_minidump" || dumpName.hasPrefix("upload_file_minidump") {
            let key = dumpName == "upload_file_minidump" ? "dump" : dumpName
            var result: [String: JSONValue] = [:]
            if data.isEmpty {
                result["mdsw_status_string"] = .string("EmptyMinidump")
                result["success"] = .bool(false)
                s.notes.append("\(name): \(key) is empty")
            } else {
                switch await walk(data) {
                case .walked(let json):
                    result["json_dump"] = json
                    let status = json["status"]?.stringValue ?? "OK"
                    result["mdsw_status_string"] = .string(status)
                    result["success"] = .bool(status == "OK")
                    result["mdsw_return_code"] = .int(0)
                case .failed(let message):
                    result["mdsw_status_string"] = .string("ERROR_MINIDUMP_PARSE")
                    result["success"] = .bool(false)
                    result["mdsw_return_code"] = .int(1)
                    s.notes.append("\(name): \(key) could not be read: \(message)")
                case .timedOut:
                    result["mdsw_status_string"] = .string("ERROR_TIMEOUT")
                    result["success"] = .bool(false)
                    result["mdsw_return_code"] = .int(-9)
                    s.notes.append("\(name): \(key) took longer than \(timeLimit) and was abandoned")
                }
            }
            result["stackwalk_version"] = .string("postmortem-stackwalker")
            if dumpName == "upload_file_minidump" {
                for (k, v) in result { s.processed[k] = v }
            } else {
                s.processed[dumpName] = .object(result.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
                additional.append(.string(dumpName))
            }
        }
        if !additional.isEmpty { s.processed["additional_minidumps"] = .array(additional) }
    }

    func walk(_ data: Data) async -> Outcome {
        let dump: Minidump
        do { dump = try Minidump.parse([UInt8](data)) } catch { return .failed("\(error)") }
        let walker = self.walker
        // The walk runs as its own task so the worker can leave it behind: a walk stuck on a
        // symbol download that ignores cancellation must not hold the worker past the limit.
        let walk = Task { () -> Outcome in
            do { return .walked(try await walker.process(dump).document()) } catch { return .failed("\(error)") }
        }
        let race = Race<Outcome>()
        let timer = Task { [timeLimit] in
            try? await Task.sleep(for: timeLimit)
            await race.finish(.timedOut)
        }
        Task { await race.finish(await walk.value) }
        let outcome = await race.result()
        timer.cancel()
        if case .timedOut = outcome { walk.cancel() }
        return outcome
    }
}

/// The first of several results.
actor Race<T: Sendable> {
    private var value: T?
    private var waiters: [CheckedContinuation<T, Never>] = []

    func finish(_ v: T) {
        guard value == nil else { return }
        value = v
        for w in waiters { w.resume(returning: v) }
        waiters = []
    }

    func result() async -> T {
        if let value { return value }
        return await withCheckedContinuation { waiters.append($0) }
    }
}

/// `crashing_thread`, `crashing_thread_name`, `reason`, `address` (adjusted for null-pointer and
/// non-canonical accesses), `thread_count`.
struct CrashingThreadInfoRule: ProcessorRule {
    let name = "CrashingThreadInfo"
    func run(_ s: inout ProcessingState) async throws {
        guard let dump = s.processed["json_dump"] else { return }
        let info = dump["crash_info"]
        if let t = info?["crashing_thread"], case .int(let index) = t {
            s.processed["crashing_thread"] = .int(index)
            if let thread = dump["threads"]?.arrayValue?[safe: Int(index)], let threadName = thread["thread_name"]?.stringValue {
                s.processed["crashing_thread_name"] = .string(threadName)
            }
        }
        if let reason = info?["type"]?.stringValue { s.processed["reason"] = .string(reason) }
        if var address = info?["address"]?.stringValue {
            switch info?["adjusted_address"]?["kind"]?.stringValue {
            case "null-pointer": address = address.count > 10 ? "0x0000000000000000" : "0x00000000"
            case "non-canonical": address = info?["adjusted_address"]?["address"]?.stringValue ?? address
            default: break
            }
            s.processed["address"] = .string(address)
        }
        if let n = dump["thread_count"] { s.processed["thread_count"] = n }
    }
}

/// Threads over 500 frames keep the first 250 and the last 249 around a marker frame.
struct TruncateStacksRule: ProcessorRule {
    let name = "TruncateStacksRule"
    func run(_ s: inout ProcessingState) async throws {
        guard case .object(var dump)? = s.processed["json_dump"] else { return }
        for (n, pair) in dump.enumerated() {
            if pair.0 == "threads", case .array(var threads) = pair.1 {
                for i in threads.indices { threads[i] = truncate(threads[i], label: "json_dump.threads[\(i)].frames", arrow: ">", &s.notes) }
                dump[n].1 = .array(threads)
            } else if pair.0 == "crashing_thread" {
                dump[n].1 = truncate(pair.1, label: "json_dump.crashing_thread.frames", arrow: "->", &s.notes)
            }
        }
        s.processed["json_dump"] = .object(dump)
    }

    /// Socorro's notes write `->` for the crashing thread and `>` for the threads list.
    func truncate(_ thread: JSONValue, label: String, arrow: String, _ notes: inout [String]) -> JSONValue {
        guard case .object(var fields) = thread, let at = fields.firstIndex(where: { $0.0 == "frames" }),
              case .array(let frames) = fields[at].1, frames.count > 500 else { return thread }
        let removed = frames.count - 499
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.groupingSeparator = ","
        formatter.usesGroupingSeparator = true
        let marker = JSONValue.object([("truncated", .object([("msg", .string("\(formatter.string(from: NSNumber(value: removed)) ?? String(removed)) frames truncated"))]))])
        fields[at].1 = .array(Array(frames.prefix(250)) + [marker] + Array(frames.suffix(249)))
        fields.append(("truncated", .bool(true)))
        notes.append("\(name): truncated \(label): \(frames.count) \(arrow) 500")
        return .object(fields)
    }
}

/// `process_type` (empty or `main` → `parent`), `major_version`, `report_type`.
struct ProcessTypeRule: ProcessorRule {
    let name = "ProcessType"
    func run(_ s: inout ProcessingState) async throws {
        let t = s.processed["process_type"]?.stringValue ?? ""
        s.processed["process_type"] = .string(t.isEmpty || t == "main" ? "parent" : t)
        if let v = s.processed["version"]?.stringValue, let major = Int64(v.prefix { $0.isNumber }) { s.processed["major_version"] = .int(major) }
        s.processed["report_type"] = .string(s.processed["hang"]?.intValue.map { $0 != 0 } == true ? "hang" : "crash")
    }
}

/// `submitted_timestamp`, `date_processed`, `client_crash_date`, `install_age`, `uptime`.
struct DatesAndTimesRule: ProcessorRule {
    let name = "DatesAndTimes"
    func run(_ s: inout ProcessingState) async throws {
        guard let submitted = s.rawString("submitted_timestamp") else { throw RuleError("no submitted_timestamp") }
        s.processed["submitted_timestamp"] = .string(submitted)
        s.processed["date_processed"] = .string(submitted)
        let submittedSeconds = ISOTime.parse(submitted).map { Int64($0) }
        // Every number here comes from the client: differences are checked, conversions exact.
        if let crashTime = s.processed["crash_time"]?.intValue {
            s.processed["client_crash_date"] = .string(ISOTime.string(Double(crashTime)))
            if let install = s.processed["install_time"]?.intValue {
                let (age, overflow) = crashTime.subtractingReportingOverflow(install)
                if overflow { s.notes.append("DatesAndTimes: install_age of CrashTime \(crashTime) and InstallTime \(install) is out of range") }
                else { s.processed["install_age"] = .int(age) }
            }
        } else if let submittedSeconds {
            s.processed["client_crash_date"] = .string(ISOTime.string(Double(submittedSeconds)))
        }
        if let text = s.raw["UptimeTS"]?.stringValue, let uptime = Double(text) {
            if let seconds = Int64(exactly: uptime.isFinite ? uptime.rounded(.towardZero) : .nan) {
                s.processed["uptime"] = .int(seconds)
            } else {
                s.notes.append("DatesAndTimes: UptimeTS '\(text.prefix(40))' is not a number of seconds")
            }
        } else if let start = s.rawString("StartupTime").flatMap(Int64.init), let crashTime = s.processed["crash_time"]?.intValue {
            let (uptime, overflow) = crashTime.subtractingReportingOverflow(start)
            if overflow { s.notes.append("DatesAndTimes: uptime of CrashTime \(crashTime) and StartupTime \(start) is out of range") }
            else { s.processed["uptime"] = .int(max(0, uptime)) }
        } else if let u = s.processed["json_dump"]?["system_info"]?["uptime"] ?? s.processed["json_dump"]?["uptime"] {
            s.processed["uptime"] = u
        }
        if let last = s.rawString("SecondsSinceLastCrash").flatMap(Int64.init) { s.processed["last_crash"] = .int(last) }
    }
}


/// CPU and OS from the dump's system info, or from annotations when there is no dump data.
struct PlatformInfoRule: ProcessorRule {
    let name = "PlatformInfo"
    func run(_ s: inout ProcessingState) async throws {
        if let sys = s.processed["json_dump"]?["system_info"] {
            if let v = sys["cpu_arch"]?.stringValue { s.processed["cpu_arch"] = .string(v) }
            if let v = sys["cpu_info"]?.stringValue { s.processed["cpu_info"] = .string(v) }
            if let v = sys["cpu_count"] { s.processed["cpu_count"] = v }
            if let v = sys["cpu_microcode_version"] { s.processed["cpu_microcode_version"] = v }
            if let v = sys["os"]?.stringValue { s.processed["os_name"] = .string(v) }
            if let v = sys["os_ver"]?.stringValue { s.processed["os_version"] = .string(v) }
        }
        // Annotation fallbacks (Android first, then the generic ones).
        if s.processed["cpu_arch"] == nil, let abi = s.rawString("Android_CPU_ABI") {
            s.processed["cpu_arch"] = .string(abi.hasPrefix("arm64") ? "arm64" : abi.hasPrefix("armeabi") ? "arm" : abi)
            s.processed["cpu_info"] = .string(abi)
        }
        if s.processed["os_name"] == nil, let android = s.rawString("Android_Version") {
            s.processed["os_name"] = .string("Android")
            s.processed["os_version"] = .string(android)
        }
        for (field, annotation) in [("cpu_arch", "CPUArchitecture"), ("cpu_info", "CPUInfo"), ("os_name", "OS"), ("os_version", "OSVersion")]
        where s.processed[field] == nil {
            if let v = s.rawString(annotation) { s.processed[field] = .string(v) }
        }
        s.processed["os_pretty_version"] = .string(Self.prettyVersion(os: s.processed["os_name"]?.stringValue, version: s.processed["os_version"]?.stringValue,
                                                                       lsb: s.processed["json_dump"]?["lsb_release"]?["description"]?.stringValue ?? s.rawString("LinuxLSBDescription")))
    }

    static func prettyVersion(os: String?, version: String?, lsb: String?) -> String {
        guard let os else { return "" }
        switch os {
        case "Windows NT":
            let parts = (version ?? "").split(separator: ".").compactMap { Int($0) }
            guard parts.count >= 2 else { return "Windows NT" }
            switch (parts[0], parts[1]) {
            case (5, 0): return "Windows 2000"
            case (5, 1): return "Windows XP"
            case (5, 2): return "Windows XP"
            case (6, 0): return "Windows Vista"
            case (6, 1): return "Windows 7"
            case (6, 2): return "Windows 8"
            case (6, 3): return "Windows 8.1"
            case (10, 0): return parts.count > 2 && parts[2] >= 22000 ? "Windows 11" : "Windows 10"
            default: return "Windows NT \(parts[0]).\(parts[1])"
            }
        case "Mac OS X", "macOS":
            let v = (version ?? "").split(separator: " ").first.map(String.init) ?? ""
            return v.isEmpty ? "macOS" : "macOS \(v)"
        case "Linux":
            return lsb.map { $0.isEmpty ? "Linux" : $0 } ?? "Linux"
        default:
            return version.map { "\(os) \($0)" } ?? os
        }
    }
}

/// `topmost_filenames`, `modules_in_stack`, `missing_symbols` (§7 formats).
struct StackSummaryRule: ProcessorRule {
    let name = "StackSummary"
    func run(_ s: inout ProcessingState) async throws {
        guard let dump = s.processed["json_dump"], let modules = dump["modules"]?.arrayValue else { return }
        let frames = dump["crashing_thread"]?["frames"]?.arrayValue ?? []
        for frame in frames {
            let candidates = (frame["inlines"]?.arrayValue ?? []) + [frame]
            if let file = candidates.lazy.compactMap({ $0["file"]?.stringValue }).first(where: { !$0.isEmpty }) {
                s.processed["topmost_filenames"] = .string(file)
                break
            }
        }
        func keep(_ text: String, _ allowed: (Character) -> Bool) -> String { String(text.filter(allowed)) }
        let isName: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        let isHex: (Character) -> Bool = { $0.isHexDigit }
        var byName: [String: JSONValue] = [:]
        for m in modules { if let f = m["filename"]?.stringValue { byName[f] = byName[f] ?? m } }
        var inStack = Set<String>()
        for frame in frames {
            guard let moduleName = frame["module"]?.stringValue, let m = byName[moduleName] else { continue }
            inStack.insert("\(keep(moduleName, isName))/\(keep(m["debug_id"]?.stringValue ?? "", isHex))")
        }
        s.processed["modules_in_stack"] = .string(inStack.sorted().joined(separator: ";"))
        var missing: [String] = []
        for m in modules where m["missing_symbols"] == .bool(true) {
            guard let file = m["filename"]?.stringValue, !file.isEmpty else { continue }
            let version = (m["version"]?.stringValue).map { $0.replacingOccurrences(of: "/", with: "\\/") } ?? "None"
            let debugID = keep(m["debug_id"]?.stringValue ?? "", isHex)
            var entry = "\(keep(file, isName))/\(version)/\(debugID.isEmpty ? String(repeating: "0", count: 33) : debugID)"
            if let code = m["code_id"]?.stringValue, !code.isEmpty { entry += "/\(keep(code, isHex))" }
            missing.append(entry)
        }
        s.processed["missing_symbols"] = .string(missing.sorted().joined(separator: ";"))
    }
}

/// Breadcrumbs (protected): a JSON list, or Sentry's `{"values": [...]}`, of objects.
struct BreadcrumbsRule: ProcessorRule {
    let name = "Breadcrumbs"
    func run(_ s: inout ProcessingState) async throws {
        guard let text = s.rawString("Breadcrumbs") else { return }
        guard var value = JSONValue.parse(Data(text.utf8)) else { s.notes.append("Breadcrumbs: malformed: not valid json"); return }
        if case .object = value, let inner = value["values"] { value = inner }
        guard case .array(let items) = value else { s.notes.append("Breadcrumbs: malformed: not a list"); return }
        let allowed: Set<String> = ["timestamp", "message", "category", "level", "type", "data"]
        for item in items {
            guard case .object(let fields) = item else { s.notes.append("Breadcrumbs: malformed: an item is not an object"); return }
            for (k, v) in fields where allowed.contains(k) {
                if k == "data" {
                    guard case .object(let d) = v, d.allSatisfy({ $0.1.stringValue != nil }) else {
                        s.notes.append("Breadcrumbs: malformed: data must map strings to strings"); return
                    }
                } else if v.stringValue == nil {
                    s.notes.append("Breadcrumbs: malformed: \(k) must be a string"); return
                }
            }
        }
        s.processed["breadcrumbs"] = .array(items)
    }
}

/// `java_stack_trace_raw` (protected) and the sanitized `java_stack_trace`; `java_exception`.
struct JavaRule: ProcessorRule {
    let name = "JavaStackTrace"
    func run(_ s: inout ProcessingState) async throws {
        if let trace = s.rawString("JavaStackTrace") {
            s.processed["java_stack_trace_raw"] = .string(trace)
            let lines = trace.split(separator: "\n", omittingEmptySubsequences: false)
            if let first = lines.first, lines.count > 1 {
                let cls = first.split(separator: ":", maxSplits: 1).first.map(String.init) ?? String(first)
                var kept = [cls.trimmingCharacters(in: .whitespaces)]
                for line in lines.dropFirst() {
                    let t = line.trimmingCharacters(in: .whitespaces)
                    if t.hasPrefix("Caused by:") || t.hasPrefix("Suppressed:") { break }
                    if t.hasPrefix("at ") { kept.append("\tat " + t.dropFirst(3)) }
                }
                s.processed["java_stack_trace"] = .string(kept.joined(separator: "\n"))
            } else {
                s.processed["java_stack_trace"] = .string("malformed")
            }
        }
        if let text = s.rawString("JavaException") {
            if case .object? = JSONValue.parse(Data(text.utf8)) { s.processed["java_exception"] = JSONValue.parse(Data(text.utf8)) }
            else { s.notes.append("JavaException: malformed: not a JSON object") }
        }
    }
}

/// `signature`, `proto_signature`, `signature_debug` (protected) from the processed crash;
/// `shutdownhang` signatures set `crashing_thread` to 0.
struct SignatureRule: ProcessorRule {
    let name = "SignatureGenerator"
    let generator: SignatureGenerator
    func run(_ s: inout ProcessingState) async throws {
        var document = s.document
        if case .object(var pairs) = document, s.raw["JavaStackTrace"] != nil, s.processed["java_stack_trace"] == nil {
            pairs.append(("java_stack_trace", .string(s.rawString("JavaStackTrace") ?? "")))
            document = .object(pairs)
        }
        let result = generator.generate(SignatureGenerator.crashData(from: document))
        s.processed["signature"] = .string(result.signature)
        s.processed["proto_signature"] = .string(result.protoSignature)
        s.processed["signature_debug"] = .string(result.debugLog.joined(separator: "\n"))
        s.processed["signature_rules_version"] = .string(result.rulesVersion)
        for note in result.notes { s.notes.append("SignatureGenerator: \(note)") }
        if result.signature.hasPrefix("shutdownhang") { s.processed["crashing_thread"] = .int(0) }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { index >= 0 && index < count ? self[index] : nil }
}
