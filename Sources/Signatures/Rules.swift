import Foundation
import JSONSupport

// The default pipeline, in order (`signatures.md` §3). Each rule is named as in Socorro, since
// the names appear in notes and debug logs that people search for.

struct SignatureGenerationRule: SignatureRule {
    let name = "SignatureGenerationRule"
    let tool: CSignatureTool

    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool { true }

    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        if let trace = data.get("java_stack_trace"), trace.isTruthy {
            result.debug(name, "using JavaSignatureTool")
            let (signature, notes) = JavaSignatures.fromStackTrace(trace)
            for n in notes { result.info(name, n) }
            result.setSignature(name, signature)
            return
        }
        if let exception = data.get("java_exception"), exception.isTruthy {
            result.debug(name, "using JavaExceptionSignatureTool")
            let (signature, notes) = JavaSignatures.fromException(exception)
            for n in notes { result.info(name, n) }
            result.setSignature(name, signature)
            return
        }
        result.debug(name, "using CSignatureTool")
        let index = crashingThread(data.data)
        let frames = try data.frameList(thread: index, tool: tool, lowercaseModules: data.get("os") == .string("Windows NT"))
        let (signature, notes, debug) = tool.generate(frames, crashingThread: index, keepDebugLog: result.keepsDebugLog)
        if !frames.isEmpty { result.normalizedFrames = frames }
        for n in notes { result.info(name, n) }
        for d in debug { result.debug(name, d) }
        if !signature.isEmpty { result.setSignature(name, signature) }
    }
}

struct StackwalkerErrorRule: SignatureRule {
    let name = "StackwalkerErrorSignatureRule"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        result.signature.utf8.starts(with: "EMPTY".utf8) && (data.get("mdsw_status_string")?.isTruthy ?? false)
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        result.setSignature(name, "\(result.signature); \((data.get("mdsw_status_string") ?? .null).pythonString)")
    }
}

struct BadHardwareRule: SignatureRule {
    let name = "BadHardware"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        guard let reason = data.get("reason"), reason.isTruthy else { return false }
        return try pythonContains(reason, "STATUS_DEVICE_DATA_ERROR")
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        result.setSignature(name, "bad hardware | \(result.signature)")
    }
}

struct OOMRule: SignatureRule {
    let name = "OOMSignature"
    static let fragments = ["NS_ABORT_OOM", "mozalloc_handle_oom", "CrashAtUnhandlableOOM", "AutoEnterOOMUnsafeRegion", "alloc::oom::oom"]

    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        if data.get("oom_allocation_size")?.isTruthy ?? false { return true }
        guard !result.signature.isEmpty else { return false }
        if Self.fragments.contains(where: { result.signature.containsBytes($0) }) { return true }
        if let t = thread(data.data, crashingThread(data.data)), t.isTruthy {
            guard case .object = t else { throw RuleFailure(message: "'\(pythonTypeName(t))' object has no attribute 'get'") }
            if let v = t["last_error_value"], v == .string("ERROR_COMMITMENT_LIMIT") || v == .string("ERROR_NOT_ENOUGH_MEMORY") { return true }
        }
        if let r = data.get("reason"), r == .string("STATUS_FATAL_MEMORY_EXHAUSTION") || r == .string("STATUS_NO_MEMORY") { return true }
        return data.get("js_large_allocation_failure") == .string("Reporting")
    }

    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        if data.get("js_large_allocation_failure") == .string("Reporting") {
            result.setSignature(name, "OOM | large | \(result.signature)")
            return
        }
        guard let size = try pythonInt(data.get("oom_allocation_size") ?? .null) else {
            result.setSignature(name, "OOM | unknown | \(result.signature)")
            return
        }
        result.setSignature(name, size <= 262_144 ? "OOM | small" : "OOM | large | \(result.signature)")
    }
}

struct AbortRule: SignatureRule {
    let name = "AbortSignature"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        data.get("abort_message")?.isTruthy ?? false
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        let value = data.get("abort_message") ?? .null
        guard case .string(var message) = value else {
            throw RuleFailure(message: "argument of type '\(pythonTypeName(value))' is not iterable")
        }
        if message.containsBytes("###!!! ABORT: file ") {
            result.setSignature(name, "Abort | \(result.signature)")
            return
        }
        if let r = message.range(of: "###!!! ABORT:") { message = String(message[r.upperBound...]) }
        if let r = message.range(of: ": file ") { message = String(message[..<r.lowerBound]) }
        if message.containsBytes("unable to find a usable font"), let open = message.firstIndex(of: "("),
           let close = message.lastIndex(of: ")") {
            message = String(message[..<open]) + String(message[message.index(after: close)...])
        }
        message = pythonStrip(String(String.UnicodeScalarView(message.unicodeScalars.filter { (32...126).contains($0.value) })))
        if message.codePointCount > 80 { message = message.codePointPrefix(77) + "..." }
        result.setSignature(name, "Abort | \(message) | \(result.signature)")
    }
}

struct ShutdownTimeoutRule: SignatureRule {
    let name = "SignatureShutdownTimeout"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        data.get("async_shutdown_timeout")?.isTruthy ?? false
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        var parts = ["AsyncShutdownTimeout"]
        let value = data.get("async_shutdown_timeout") ?? .null
        guard case .string(let text) = value else {
            throw RuleFailure(message: "the JSON object must be str, bytes or bytearray, not \(pythonTypeName(value))")
        }
        if let parsed = JSONValue.parse(Data(text.utf8)) {
            guard case .object = parsed else { throw RuleFailure(message: "'\(pythonTypeName(parsed))' object has no attribute 'get'") }
            if case .string(let phase)? = parsed["phase"] { parts.append(phase) } else { parts.append("(unknown)") }
            var conditions: [String] = []
            if let c = parsed["conditions"], c.isTruthy {
                for item in try CSignatureTool.iterate(c) {
                    if case .object = item {
                        guard let n = item["name"] else {
                            result.info(name, "Error parsing AsyncShutdownTimeout: 'name'")
                            parts.append("UNKNOWN")
                            conditions = []
                            return finish(parts, &result)
                        }
                        conditions.append(n.pythonString)
                    } else {
                        conditions.append(item.pythonString)
                    }
                }
            }
            parts.append(conditions.isEmpty ? "(none)" : conditions.sorted(by: pythonLess).joined(separator: ","))
        } else {
            parts.append("UNKNOWN")
            result.info(name, "Error parsing AsyncShutdownTimeout: invalid JSON")
        }
        finish(parts, &result)
    }

    private func finish(_ parts: [String], _ result: inout SignatureResult) {
        result.info(name, "Signature replaced with a Shutdown Timeout signature, was: \"\(result.signature)\"")
        result.setSignature(name, parts.joined(separator: " | "))
    }
}

struct RunWatchdogRule: SignatureRule {
    let name = "SignatureRunWatchDog"
    let generation: SignatureGenerationRule
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        result.signature.containsBytes("RunWatchdog")
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        // Shutdown hangs are raised artificially on another thread; thread 0 is what was stuck.
        var copy: [(String, JSONValue)] = []
        if case .object(let pairs) = data.data { copy = pairs.filter { $0.0 != "crashing_thread" } }
        copy.append(("crashing_thread", .int(0)))
        try generation.action(CrashInput(data: .object(copy), tapeThreads: data.tapeThreads), &result)
        result.setSignature(name, "shutdownhang | \(result.signature)")
    }
}

struct IPCChannelErrorRule: SignatureRule {
    let name = "SignatureIPCChannelError"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        data.get("ipc_channel_error")?.isTruthy ?? false
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        var browser = false
        if let dumps = data.get("additional_minidumps"), dumps.isTruthy {
            browser = try CSignatureTool.iterate(dumps).contains(.string("upload_file_minidump_browser"))
        }
        let error = data.get("ipc_channel_error") ?? .null
        let text: String
        switch error {
        case .string(let s): text = s.codePointPrefix(100)
        case .array(let items): text = JSONValue.array(Array(items.prefix(100))).pythonString
        default: throw RuleFailure(message: "'\(pythonTypeName(error))' object is not subscriptable")
        }
        result.info(name, "IPC Channel Error stomped on signature")
        result.setSignature(name, "\(browser ? "IPCError-browser" : "IPCError-content") | \(text)")
    }
}

struct IPCMessageNameRule: SignatureRule {
    let name = "SignatureIPCMessageName"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        data.get("ipc_message_name")?.isTruthy ?? false
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        result.setSignature(name, "\(result.signature) | IPC_Message_Name=\((data.get("ipc_message_name") ?? .null).pythonString)")
    }
}

struct StackOverflowRule: SignatureRule {
    let name = "StackOverflowSignature"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        data.get("reason") == .string("EXCEPTION_STACK_OVERFLOW")
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        result.setSignature(name, "stackoverflow | \(result.signature)")
    }
}

struct HungProcessRule: SignatureRule {
    let name = "HungProcess"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        if let h = data.get("hang"), h != .null { return true }
        return false
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        result.setSignature(name, "hang: \((data.get("hang") ?? .null).pythonString) | \(result.signature)")
    }
}

struct FixWhitespaceRule: SignatureRule {
    let name = "SigFixWhitespace"
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool { true }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        // Fast path: printable ASCII with single inner spaces needs no change.
        var signature = result.signature
        let unchanged = signature.withUTF8 { u -> Bool in
            guard u.first != 0x20, u.last != 0x20 else { return false }
            var previous: UInt8 = 0
            for b in u {
                if b < 0x20 || b >= 0x7F || (b == 0x20 && previous == 0x20) { return false }
                previous = b
            }
            return true
        }
        if unchanged { return }
        var out = String.UnicodeScalarView()
        var previousSpace = false
        for u in pythonStrip(result.signature).unicodeScalars {
            if isPythonSpace(u) {
                if !previousSpace { out.append(" ") }
                previousSpace = true
            } else {
                out.append(u)
                previousSpace = false
            }
        }
        let fixed = String(out)
        if fixed != result.signature { result.setSignature(name, fixed) }
    }
}

struct TruncateRule: SignatureRule {
    let name = "SigTruncate"
    static let maxLength = 255
    func predicate(_ data: CrashInput, _ result: SignatureResult) throws(RuleFailure) -> Bool {
        result.signature.codePointCount > Self.maxLength
    }
    func action(_ data: CrashInput, _ result: inout SignatureResult) throws(RuleFailure) {
        result.setSignature(name, result.signature.codePointPrefix(Self.maxLength - 3) + "...")
        result.info(name, "SigTrunc: signature truncated due to length")
    }
}

/// `needle in value` for a string value; other values raise as Python would.
func pythonContains(_ value: JSONValue, _ needle: String) throws(RuleFailure) -> Bool {
    switch value {
    case .string(let s): return s.contains(needle)
    case .array(let items): return items.contains(.string(needle))
    case .object(let pairs): return pairs.contains { $0.0 == needle }
    default: throw RuleFailure(message: "argument of type '\(pythonTypeName(value))' is not iterable")
    }
}

/// Python's ordering of strings: by code point.
func pythonLess(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}
