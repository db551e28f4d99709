import CrashModel
import Foundation
import Hummingbird
import JSONSupport
import ServiceSupport
import Storage

/// The report page `/report/index/<id>` (`crash-stats-api.md` §5): Details (fields, crash
/// analysis, frames, threads, registers and breadcrumbs for `view_pii`, the Java exception),
/// Crash Annotations, Modules, Raw Data, Bugzilla, Debug. Built from the processed crash as the
/// caller may see it (the processed schema's reduction), so a field the caller may not see is not
/// in the document the template reads.
extension CrashStatsWeb {
    /// The Details table: label and processed field, in Crash Stats' order.
    static let detailFields: [(String, String)] = [
        ("Signature", "signature"), ("UUID", "uuid"), ("Date Processed", "date_processed"), ("Uptime", "uptime"),
        ("Last Crash", "last_crash"), ("Install Age", "install_age"), ("Product", "product"), ("Release Channel", "release_channel"),
        ("Version", "version"), ("Build ID", "build"), ("OS", "os_pretty_version"), ("OS Version", "os_version"),
        ("Build Architecture", "cpu_arch"), ("CPU Info", "cpu_info"), ("CPU Count", "cpu_count"), ("Process Type", "process_type"),
        ("Crash Reason", "reason"), ("Crash Address", "address"), ("MOZ_CRASH Reason", "moz_crash_reason"),
        ("Crashing Thread", "crashing_thread"), ("Possible Bit Flips (max confidence)", "possible_bit_flips_max_confidence"),
        ("Startup Crash", "startup_crash"), ("Report Type", "report_type"), ("Android Model", "android_model"),
        ("Android Version", "android_version"), ("Total Physical Memory", "total_physical_memory"),
        ("Available Physical Memory", "available_physical_memory"), ("OOM Allocation Size", "oom_allocation_size"),
        ("Add-ons", "addons"), ("URL", "url"), ("User Comments", "user_comments"), ("Java Stack Trace", "java_stack_trace"),
    ]

    func report(_ request: Request, id raw: String) async -> Response {
        let id = CrashID.normalize(raw)
        guard CrashID.isValid(id) else { return errorPage(.notFound, "Crash not found", "That is not a crash id.") }
        if raw != id { return Self.redirect("/report/index/\(id)", permanent: true) }
        let visitor = await visitor(request)
        let caller = visitor.caller
        do {
            guard let data = try await api.blobs.get(BlobKeys.processedCrash(id)), let document = JSONValue.parse(data) else {
                return try await pending(id)
            }
            let visible = caller.permissions.contains("view_pii") ? document
                : api.processedSchema.reduce(document, permissions: caller.dataPermissions)
            var context = try await reportContext(id, visible, caller: caller, request: request)
            if visitor.account != nil, caller.permissions.contains("reprocess_crashes") { context["canReprocess"] = true }
            if FormEncoding.parse(request.uri.query ?? "").contains(where: { $0.0 == "reprocessing" }) {
                context["notice"] = "The crash was queued for reprocessing; reload in a moment to see the result."
            }
            return page(.ok, "report", context, visitor: visitor)
        } catch {
            return errorPage(.internalServerError, "Error", "The crash could not be read; try again later.")
        }
    }

    /// A crash received but not processed yet moves to the priority queue (at most once a minute)
    /// and gets a page that reloads itself; an unknown id is a 404.
    func pending(_ id: String) async throws -> Response {
        guard try await api.blobs.size(BlobKeys.rawCrash(id)) != nil else {
            return errorPage(.notFound, "Crash not found", "There is no crash \(id).")
        }
        if prioritized.due(id) { try await api.queue.enqueue([QueueItem(crashID: id)], queue: .priority) }
        let received = CrashID.receivedDay(of: id).map { "on " + String(ISOTime.string($0.timeIntervalSince1970).prefix(10)) } ?? "recently"
        return page(.ok, "pending", ["title": "Crash \(id) is being processed", "crashID": id, "received": received, "refresh": 10])
    }

    func reportContext(_ id: String, _ p: JSONValue, caller: Caller, request: Request) async throws -> [String: Any] {
        var c: [String: Any] = ["title": "Crash \(id)", "crashID": id, "signature": p["signature"]?.stringValue ?? "",
                                "signatureURL": "/signature/?" + Self.queryString([("signature", p["signature"]?.stringValue ?? ""),
                                                                                     ("product", p["product"]?.stringValue ?? "")])]
        c["fields"] = Self.detailFields.compactMap { label, name -> [String: Any]? in
            guard let value = p[name], value != .null else { return nil }
            return ["label": label, "name": name, "value": Self.display(value, field: name)]
        }
        let dump = p["json_dump"]
        let modules = dump?["modules"]?.arrayValue ?? []
        let missing = Set(modules.filter { $0["missing_symbols"] == .bool(true) }.compactMap { $0["filename"]?.stringValue })

        // Crash analysis.
        let info = dump?["crash_info"]
        var analysis: [[String: Any]] = []
        if let instruction = info?["instruction"]?.stringValue { analysis.append(["label": "Crashing instruction", "value": instruction]) }
        if let adjusted = info?["adjusted_address"], case .object = adjusted {
            let kind = adjusted["kind"]?.stringValue ?? ""
            let detail = adjusted["address"]?.stringValue ?? adjusted["offset"].flatMap { $0.stringValue.map { "offset " + $0 } } ?? ""
            analysis.append(["label": "Adjusted address", "value": "\(kind) \(detail)"])
        }
        let accesses = (info?["memory_accesses"]?.arrayValue ?? []).map { a -> [String: Any] in
            ["address": a["address"]?.stringValue ?? "", "kind": a["access_type"]?.stringValue ?? "",
             "guard": a["is_likely_guard_page"] == .bool(true) ? "likely" : ""]
        }
        let flips = (info?["possible_bit_flips"]?.arrayValue ?? []).map { f -> [String: Any] in
            ["address": f["address"]?.stringValue ?? "", "register": f["source_register"]?.stringValue ?? "",
             "confidence": f["confidence"].map { v -> String in
                 if case .double(let d) = v { return String(format: "%.2f", d) }
                 return v.intValue.map(String.init) ?? ""
             } ?? ""]
        }
        c["analysis"] = analysis
        c["accesses"] = accesses
        c["hasAccesses"] = !accesses.isEmpty
        c["bitFlips"] = flips
        c["hasBitFlips"] = !flips.isEmpty
        c["hasAnalysis"] = !analysis.isEmpty || !accesses.isEmpty || !flips.isEmpty

        // Threads.
        let threads = dump?["threads"]?.arrayValue ?? []
        c["hasThreads"] = !threads.isEmpty
        c["threadCount"] = threads.count
        c["threads"] = threads.enumerated().map { i, t in threadContext(t, index: i, missing: missing) }
        if let crashing = dump?["crashing_thread"], case .object = crashing {
            let index = crashing["threads_index"]?.intValue.flatMap { Int(exactly: $0) } ?? (p["crashing_thread"]?.intValue.flatMap { Int(exactly: $0) } ?? 0)
            c["crashingThread"] = threadContext(crashing, index: index, missing: missing)
            if case .object(let registers)? = crashing["frames"]?.arrayValue?.first?["registers"] {
                c["registers"] = registers.map { ["name": $0.0, "value": $0.1.stringValue ?? $0.1.serialized()] }
                c["hasRegisters"] = !registers.isEmpty
            }
        }

        // Breadcrumbs (protected: present only for view_pii): the last 10 of N, the earlier ones
        // (at most 490 more) behind a disclosure.
        let crumbs = p["breadcrumbs"]?.arrayValue ?? p["breadcrumbs"]?["values"]?.arrayValue ?? []
        if !crumbs.isEmpty {
            func row(_ b: JSONValue) -> [String: Any] {
                var data: [String] = []
                if let m = b["message"]?.stringValue { data.append("message: \(m)") }
                if case .object(let pairs)? = b["data"] { data += pairs.sorted { $0.0 < $1.0 }.map { "\($0.0): \($0.1.stringValue ?? $0.1.serialized())" } }
                return ["level": b["level"]?.stringValue ?? "", "type": b["type"]?.stringValue ?? "", "category": b["category"]?.stringValue ?? "",
                        "data": data.joined(separator: "\n"), "timestamp": b["timestamp"]?.stringValue ?? b["timestamp"]?.serialized() ?? ""]
            }
            c["hasBreadcrumbs"] = true
            c["breadcrumbTotal"] = crumbs.count
            c["breadcrumbShown"] = min(10, crumbs.count)
            c["breadcrumbs"] = crumbs.suffix(10).map(row)
            let earlier = crumbs.dropLast(10).suffix(490)
            c["earlierBreadcrumbs"] = earlier.map(row)
            c["earlierBreadcrumbCount"] = earlier.count
            c["hasEarlierBreadcrumbs"] = !earlier.isEmpty
        }

        // The Java exception (the message only when the caller may see it).
        let exceptions = (p["java_exception"]?["exception"]?["values"]?.arrayValue ?? []).map { v -> [String: Any] in
            let st = v["stacktrace"]
            let type = [st?["module"]?.stringValue, st?["type"]?.stringValue].compactMap { $0 }.joined(separator: ".")
            let frames = (st?["frames"]?.arrayValue ?? []).enumerated().map { i, f -> [String: Any] in
                var source = f["filename"]?.stringValue ?? ""
                if let line = f["lineno"]?.intValue { source += ":\(line)" }
                return ["number": i, "module": f["module"]?.stringValue ?? "", "function": f["function"]?.stringValue ?? "",
                        "source": source, "inApp": f["in_app"] == .bool(true) ? "yes" : ""]
            }
            var e: [String: Any] = ["type": type, "frames": frames]
            if let message = st?["value"]?.stringValue { e["message"] = message }
            return e
        }
        c["javaExceptions"] = exceptions
        c["hasJavaException"] = !exceptions.isEmpty

        // Modules.
        c["modules"] = modules.map { m -> [String: Any] in
            let status = m["missing_symbols"] == .bool(true) ? "missing" : m["corrupt_symbols"] == .bool(true) ? "corrupt" : m["loaded_symbols"] == .bool(true) ? "loaded" : ""
            let text = ["missing": "missing", "corrupt": "corrupt", "loaded": "loaded"][status] ?? "not needed"
            return ["filename": m["filename"]?.stringValue ?? "", "version": m["version"]?.stringValue ?? "",
                    "debugFile": m["debug_file"]?.stringValue ?? "", "debugID": m["debug_id"]?.stringValue ?? "",
                    "codeID": m["code_id"]?.stringValue ?? "", "base": m["base_addr"]?.stringValue ?? "", "status": status, "statusText": text]
        }
        let unloaded = (dump?["unloaded_modules"]?.arrayValue ?? []).map { m -> [String: Any] in
            ["filename": m["filename"]?.stringValue ?? "", "base": m["base_addr"]?.stringValue ?? "", "codeID": m["code_id"]?.stringValue ?? ""]
        }
        c["unloaded"] = unloaded
        c["hasUnloaded"] = !unloaded.isEmpty

        // Crash annotations, as the caller may see them.
        if let rawData = try await api.blobs.get(BlobKeys.rawCrash(id)), let raw = JSONValue.parse(rawData) {
            let visible = caller.permissions.contains("view_pii") ? raw : api.rawSchema.reduce(raw, permissions: caller.dataPermissions)
            if case .object(let pairs) = visible {
                c["annotations"] = pairs.sorted { $0.0.lowercased() < $1.0.lowercased() }.map { ["name": $0.0, "value": $0.1.stringValue ?? $0.1.serialized()] }
            }
        }

        // Raw data: the stackwalker JSON; dumps for view_rawdump.
        c["stackwalkJSON"] = dump.map { $0.sortedSerialization(pretty: true) } ?? "(no minidump was processed)"
        if caller.permissions.contains("view_rawdump"), let names = try await api.blobs.get(BlobKeys.dumpNames(id)).flatMap({ JSONValue.parse($0)?.arrayValue }) {
            c["canDownloadDumps"] = true
            c["dumps"] = names.compactMap(\.stringValue).map { ["name": $0] }
        }

        // Bugzilla: associated bugs and the product's create-a-bug links.
        let signature = p["signature"]?.stringValue ?? ""
        let bugs = signature.isEmpty ? [] : try await api.metadata.bugs(forSignatures: [signature])
        c["bugs"] = bugs.map { b -> [String: Any] in
            var entry: [String: Any] = ["id": b.bugID]
            if b.signature != signature { entry["other"] = true; entry["signature"] = b.signature }
            return entry
        }
        let reportURL = api.siteURL(host: request.head.authority) + "/report/index/" + id
        c["bugLinks"] = (api.products.product(named: p["product"]?.stringValue ?? "")?.bugLinks ?? []).compactMap { link -> [String: Any]? in
            let url = BugLinks.createBugURL(template: link.url, processed: p, reportURL: reportURL)
            return Self.isWebURL(url) ? ["text": link.text, "url": url] : nil
        }

        // Debug.
        c["processorNotes"] = p["processor_notes"]?.stringValue ?? ""
        let history = (p["processor_history"]?.arrayValue ?? []).compactMap(\.stringValue)
        c["history"] = history
        c["hasHistory"] = !history.isEmpty
        if let debug = p["signature_debug"]?.stringValue { c["signatureDebug"] = debug }
        return c
    }

    func threadContext(_ t: JSONValue, index: Int, missing: Set<String>) -> [String: Any] {
        var frames: [[String: Any]] = []
        for f in t["frames"]?.arrayValue ?? [] {
            if let truncated = f["truncated"]?["msg"]?.stringValue {
                frames.append(["number": "…", "module": "", "function": truncated, "source": "", "trust": ""])
                continue
            }
            let number = f["frame"]?.intValue.map { String($0) } ?? ""
            let module = f["module"]?.stringValue ?? ""
            let isMissing = missing.contains(module)
            for inline in f["inlines"]?.arrayValue ?? [] {
                frames.append(frameContext(number: number, module: module, function: inline["function"]?.stringValue ?? "",
                                           file: inline["file"]?.stringValue, line: inline["line"]?.intValue, trust: "", inline: true, missing: isMissing))
            }
            let function = f["function"]?.stringValue ?? (f["module_offset"]?.stringValue.map { "\(module)@\($0)" } ?? f["offset"]?.stringValue ?? "")
            frames.append(frameContext(number: number, module: module, function: function, file: f["file"]?.stringValue,
                                       line: f["line"]?.intValue, trust: f["trust"]?.stringValue ?? "", inline: false, missing: isMissing))
        }
        var c: [String: Any] = ["index": index, "frames": frames]
        if let name = t["thread_name"]?.stringValue { c["name"] = name }
        if t["truncated"] == .bool(true) { c["truncated"] = "This thread's stack was truncated." }
        return c
    }

    func frameContext(number: String, module: String, function: String, file: String?, line: Int64?, trust: String, inline: Bool, missing: Bool) -> [String: Any] {
        var source = file ?? ""
        if !source.isEmpty, let line { source += ":\(line)" }
        var c: [String: Any] = ["number": number, "module": module, "function": function, "source": source, "trust": trust]
        if inline { c["inline"] = true }
        if missing { c["missingSymbols"] = true }
        if let template = sourceLinkTemplate, let file, !file.isEmpty {
            let url = template.replacingOccurrences(of: "{file}", with: Self.pathComponent(file))
                .replacingOccurrences(of: "{line}", with: line.map(String.init) ?? "")
            if Self.isWebURL(url) { c["sourceURL"] = url }
        }
        return c
    }

    /// A field's value as text: numbers of seconds with their unit, lists joined, objects as JSON.
    static func display(_ value: JSONValue, field: String) -> String {
        switch value {
        case .string(let s): return s
        case .bool(let b): return b ? "Yes" : "No"
        case .int(let n): return ["uptime", "last_crash", "install_age"].contains(field) ? "\(n) seconds" : String(n)
        case .array(let items): return items.map { $0.stringValue ?? $0.serialized() }.joined(separator: "\n")
        default: return value.serialized()
        }
    }
}
