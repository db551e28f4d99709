import Foundation
import JSONSupport

/// "Create a bug" URLs (`data-and-access.md` §5): a product's `bug_links` template filled from a
/// processed crash, with a Markdown description of the crash (reason, top frames with inlines,
/// the Java exception or stack trace, or "No stack.").
public enum BugLinks {
    public static let maxTitleLength = 255
    public static let maxFrames = 10

    /// The template filled for `processed` (a processed crash, as the caller may see it).
    /// `reportURL` is the crash's absolute report page URL.
    public static func createBugURL(template: String, processed: JSONValue, reportURL: String) -> String {
        let signature = processed["signature"]?.stringValue ?? ""
        let values: [String: String] = [
            "bug_type": "defect",
            "op_sys": opSys(processed),
            "rep_platform": processed["cpu_arch"]?.stringValue ?? "",
            "signature": "[@ \(signature)]",
            "title": truncated("Crash in [@ \(signature)]", maxTitleLength),
            "description": description(processed, reportURL: reportURL),
        ]
        return fill(template, values.mapValues(quotePlus))
    }

    /// The bug tracker's operating-system name: the pretty version (or OS name), with the
    /// names the tracker's list lacks mapped to ones it has.
    public static func opSys(_ processed: JSONValue) -> String {
        let name = processed["os_pretty_version"]?.stringValue?.nonEmpty ?? processed["os_name"]?.stringValue ?? ""
        if name.hasPrefix("OS X ") { return "macOS" }
        if name == "Windows 8.1" { return "Windows 8" }
        if name == "Windows Unknown" || name == "Windows 2000" { return "Windows" }
        return name
    }

    struct Frame {
        let number: String
        let module: String
        let function: String
        let source: String
    }

    /// The bug description (Markdown), line by line as the reference lists it.
    public static func description(_ p: JSONValue, reportURL: String) -> String {
        var lines = ["Crash report: \(reportURL)"]
        if let reason = p["moz_crash_reason"]?.stringValue, !reason.isEmpty {
            lines += ["", "MOZ_CRASH Reason: ```\(reason)```"]
        } else if let reason = p["reason"]?.stringValue, !reason.isEmpty {
            lines += ["", "Reason: ```\(reason)```"]
        }
        var frames: [Frame] = []
        if let threads = p["json_dump"]?["threads"]?.arrayValue, !threads.isEmpty {
            let crashing = p["crashing_thread"]?.intValue
            if crashing == nil { lines += ["", "No crashing thread identified; using thread 0."] }
            let index = crashing.flatMap { Int(exactly: $0) } ?? 0
            if threads.indices.contains(index) { frames = minidumpFrames(threads[index]) }
        }
        if frames.isEmpty, let values = p["java_exception"]?["exception"]?["values"]?.arrayValue, let first = values.first {
            frames = javaFrames(first["stacktrace"]?["frames"]?.arrayValue ?? [])
        }
        if !frames.isEmpty {
            lines += ["", frames.count == 1 ? "Top 1 frame:" : "Top \(frames.count) frames:", "```"]
            for f in frames {
                let number = f.number.count < 2 ? f.number + String(repeating: " ", count: 2 - f.number.count) : f.number
                lines.append("\(number) \(f.module)  \(truncated(f.function, 80))  \(f.source)")
            }
            lines.append("```")
        } else if let trace = p["java_stack_trace"]?.stringValue, !trace.isEmpty {
            lines += ["", "Java stack trace:", "```", truncated(trace.replacingOccurrences(of: "\t", with: "    "), 5000), "```"]
        } else {
            lines += ["", "No stack."]
        }
        return lines.map { String($0.reversed().drop(while: \.isWhitespace).reversed()) }.joined(separator: "\n")
    }

    /// The first frames of a stackwalker thread, each frame's inlines before it (an inline
    /// carries its frame's number and module).
    static func minidumpFrames(_ thread: JSONValue) -> [Frame] {
        var out: [Frame] = []
        func number(_ f: JSONValue) -> String { f["frame"].map { $0.intValue.map(String.init) ?? $0.stringValue ?? "?" } ?? "?" }
        func source(_ file: String?, _ line: JSONValue?) -> String {
            guard let file, !file.isEmpty else { return "" }
            guard let line, line != .null else { return file }
            return "\(file):\(line.intValue.map(String.init) ?? line.stringValue ?? line.serialized())"
        }
        for frame in thread["frames"]?.arrayValue ?? [] {
            let module = frame["module"]?.stringValue?.nonEmpty ?? "?"
            for inline in frame["inlines"]?.arrayValue ?? [] {
                guard out.count < maxFrames else { return out }
                out.append(Frame(number: number(frame), module: module, function: inline["function"]?.stringValue ?? "",
                                 source: source(inline["file"]?.stringValue, inline["line"])))
            }
            guard out.count < maxFrames else { return out }
            out.append(Frame(number: number(frame), module: module,
                             function: frame["function"]?.stringValue ?? frame["signature"]?.stringValue ?? "",
                             source: source(frame["file"]?.stringValue, frame["line"])))
        }
        return out
    }

    /// The first frames of a Java exception (newest first), numbered from 0.
    static func javaFrames(_ frames: [JSONValue]) -> [Frame] {
        frames.prefix(maxFrames).enumerated().map { i, f in
            var source = f["filename"]?.stringValue?.nonEmpty ?? "<nofile>"
            if let line = f["lineno"]?.intValue, line != 0 { source += ":\(line)" }
            return Frame(number: String(i), module: f["module"]?.stringValue?.nonEmpty ?? "?",
                         function: f["function"]?.stringValue?.nonEmpty ?? "?", source: source)
        }
    }

    /// At most `limit` code points (as Python counts): `limit - 3` and `...`.
    static func truncated(_ s: String, _ limit: Int) -> String {
        guard s.unicodeScalars.count > limit else { return s }
        return String(String.UnicodeScalarView(s.unicodeScalars.prefix(limit - 3))) + "..."
    }

    /// Form encoding as Python's `quote_plus`: letters, digits and `_.-~` kept, spaces as `+`,
    /// every other byte of the UTF-8 text as `%XX`.
    public static func quotePlus(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: " "): out.append("+")
            default: out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// Python `%(name)s` substitution: known names replaced, `%%` a percent sign, anything else
    /// kept as written (a template typo never fails the page).
    static func fill(_ template: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = Substring(template)
        while let percent = rest.firstIndex(of: "%") {
            out += rest[..<percent]
            let after = rest[rest.index(after: percent)...]
            if after.hasPrefix("%") {
                out += "%"
                rest = after.dropFirst()
            } else if after.hasPrefix("("), let close = after.firstIndex(of: ")"),
                      after[after.index(after: close)...].hasPrefix("s"),
                      let value = values[String(after[after.index(after: after.startIndex)..<close])] {
                out += value
                rest = after[after.index(close, offsetBy: 2)...]
            } else {
                out += "%"
                rest = after
            }
        }
        return out + rest
    }
}
