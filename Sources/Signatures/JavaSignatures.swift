import Foundation
import JSONSupport

/// Java signatures: from a text stack trace, or from a structured `java_exception`.
enum JavaSignatures {
    static let maxDescriptionLength = 255

    /// `Class: description` on line 1 and the `at …` frame on line 2. The missing colon between
    /// a description and the frame (unless the description ends with `<addr>`) is Socorro's
    /// historical quirk, kept because existing signatures depend on it (bug 865142).
    static func fromStackTrace(_ value: JSONValue) -> (String, [String]) {
        guard case .string(let text) = value else {
            return ("EMPTY: Java stack trace not in expected format", ["JavaSignatureTool: stack trace not in expected format"])
        }
        let lines = pythonSplitLines(text).map(pythonStrip)
        guard !lines.isEmpty else {
            return ("EMPTY: Java stack trace not in expected format", ["JavaSignatureTool: stack trace not in expected format"])
        }
        var notes: [String] = []
        var cls: String, description: String
        if let colon = lines[0].firstIndex(of: ":") {
            cls = pythonStrip(String(lines[0][..<colon]))
            description = pythonStrip(replaceHexAddresses(String(lines[0][lines[0].index(after: colon)...])))
        } else {
            cls = lines[0]
            description = ""
            notes.append("JavaSignatureTool: stack trace line 1 is not in the expected format")
        }
        var method = ""
        if lines.count > 1 {
            method = dropJavaLineNumber(lines[1])
            if method.isEmpty { notes.append("JavaSignatureTool: stack trace line 2 is empty") }
        } else {
            notes.append("JavaSignatureTool: stack trace line 2 is missing")
        }
        func join(_ sep: String, _ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: sep) }
        var signature: String
        if description.hasSuffix("<addr>") {
            signature = join(": ", [cls, description, method])
        } else {
            signature = join(": ", [cls, join(" ", [description, method])])
        }
        if signature.codePointCount > maxDescriptionLength {
            signature = [cls, method].joined(separator: ": ")
            notes.append("JavaSignatureTool: dropped Java exception description due to length")
        }
        return (signature, notes)
    }

    static func fromException(_ value: JSONValue) -> (String, [String]) {
        let bad = ("EMPTY: Java exception not in expected format", ["JavaExceptionSignatureTool: value not in expected format"])
        guard case .object = value, let exception = value["exception"] else { return bad }
        guard case .object = exception, case .array(let values)? = exception["values"], let first = values.first,
              case .object = first, let stacktrace = first["stacktrace"], stacktrace.isTruthy, case .object = stacktrace else { return bad }
        let module = stacktrace["module"] ?? .string("")
        let type = stacktrace["type"] ?? .string("Unknown")
        let cls = module.isTruthy && type.isTruthy ? "\(module.pythonString).\(type.pythonString)" : type.pythonString
        guard let frames = stacktrace["frames"], case .array(let list) = frames, let frame0 = list.first else { return (cls, []) }
        return ("\(cls): at \(normalize(frame0))", [])
    }

    static func normalize(_ frame: JSONValue) -> String {
        let module = frame.get("module") ?? .string(""), function = frame.get("function") ?? .string("")
        var signature = ""
        if module.isTruthy && function.isTruthy { signature = module.pythonString + "." + function.pythonString }
        else if module.isTruthy { signature = module.pythonString }
        else if function.isTruthy { signature = function.pythonString }
        let filename = frame.get("filename") ?? .string("")
        if !signature.isEmpty && filename.isTruthy { return "\(signature)(\(filename.pythonString))" }
        return signature.isEmpty ? "unknown" : signature
    }

    /// `@` followed by 8 lowercase hex digits → `@<addr>`.
    static func replaceHexAddresses(_ s: String) -> String {
        let chars = Array(s)
        var out = ""
        var i = 0
        while i < chars.count {
            if chars[i] == "@", i + 8 < chars.count + 0, i + 9 <= chars.count,
               chars[(i + 1)...(i + 8)].allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) }) {
                out += "@<addr>"
                i += 9
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        return out
    }

    /// `.java:<digits>)` at the end → `.java)`.
    static func dropJavaLineNumber(_ s: String) -> String {
        guard s.hasSuffix(")"), let r = s.range(of: ".java:", options: .backwards) else { return s }
        let digits = s[r.upperBound..<s.index(before: s.endIndex)]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isNumber }) else { return s }
        return String(s[..<r.lowerBound]) + ".java)"
    }

    /// Python `str.splitlines()`.
    static func pythonSplitLines(_ s: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        let scalars = Array(s.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let u = scalars[i]
            let breaks: Set<UInt32> = [0x0A, 0x0D, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]
            if breaks.contains(u.value) {
                lines.append(String(current))
                current = String.UnicodeScalarView()
                if u.value == 0x0D, i + 1 < scalars.count, scalars[i + 1].value == 0x0A { i += 1 }
            } else {
                current.append(u)
            }
            i += 1
        }
        if !current.isEmpty { lines.append(String(current)) }
        return lines
    }
}
