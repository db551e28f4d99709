import Foundation
import JSONSupport

/// The meta-schema's rules (`socorro-data-1-0-0`, `data-and-access.md` §1) checked on a schema
/// document, with every problem reported as file, field and reason. `postmortem schema check`
/// runs it on a deployment's directory (and CI on the shipped files); services refuse to start
/// on a directory that fails it.
public enum SchemaCheck {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public let file: String
        /// The field's path (`properties.URL`, `definitions.json_dump.properties.threads.items`), or
        /// empty for the document itself.
        public let field: String
        public let reason: String
        public init(file: String, field: String, reason: String) {
            self.file = file
            self.field = field
            self.reason = reason
        }

        public var description: String { field.isEmpty ? "\(file): \(reason)" : "\(file): \(field): \(reason)" }
    }

    public static let metaSchemaURI = "moz://mozilla.org/schemas/socorro/socorro-data/1-0-0"
    static let nodeKeys: Set<String> = ["description", "type", "permissions", "data_reviews", "bugs", "examples", "enum", "deprecated",
                                        "source_annotation", "default", "nickname", "items", "properties", "pattern_properties", "$ref"]
    static let documentKeys: Set<String> = ["$schema", "$id", "title", "description", "type", "default_permissions", "definitions", "properties"]
    static let typeNames: Set<String> = ["any", "array", "boolean", "integer", "null", "number", "object", "string"]
    static let permissionNames: Set<String> = ["public", "protected"]
    /// Raw-crash fields the collector writes: they are not annotations, so they need no data review.
    public static let collectorFields: Set<String> = ["uuid", "submitted_timestamp", "metadata", "version", "additional_minidumps"]
    public static let maxNameLength = 40

    /// Checks one document. `rawAnnotations` (for the processed schema) are the raw schema's
    /// top-level names, which every `source_annotation` must be one of.
    public static func check(text: String, kind: CrashSchema.Kind, file: String, rawAnnotations: Set<String>? = nil) -> [Problem] {
        do {
            return check(document: try YAMLDocument.parse(text), kind: kind, file: file, rawAnnotations: rawAnnotations)
        } catch {
            return [Problem(file: file, field: "", reason: "\(error)")]
        }
    }

    /// `check(text:…)` on a document already read.
    static func check(document: JSONValue, kind: CrashSchema.Kind, file: String, rawAnnotations: Set<String>?) -> [Problem] {
        var problems: [Problem] = []
        func problem(_ field: String, _ reason: String) { problems.append(Problem(file: file, field: field, reason: reason)) }
        guard case .object(let top) = document else { return [Problem(file: file, field: "", reason: "the document must be a mapping")] }
        for (key, _) in top where !documentKeys.contains(key) { problem(key, "unknown top-level key") }
        if document["$schema"]?.stringValue != metaSchemaURI { problem("$schema", "must be \(metaSchemaURI)") }
        if let t = document["type"], t != .string("object") { problem("type", "must be object") }
        if let d = document["default_permissions"] { checkPermissions(d, "default_permissions", problem) }
        var definitionNames = Set<String>()
        if let defs = document["definitions"] {
            if case .object(let pairs) = defs {
                definitionNames = Set(pairs.map(\.0))
                for (name, node) in pairs { checkNode(node, path: "definitions.\(name)", kind: kind, topLevel: false, context: Context(definitions: definitionNames, raw: rawAnnotations), problem) }
            } else {
                problem("definitions", "must be a mapping")
            }
        }
        guard case .object(let properties)? = document["properties"] else {
            problem("properties", "missing or not a mapping")
            return problems
        }
        let context = Context(definitions: definitionNames, raw: rawAnnotations)
        var previous: String?
        for (name, node) in properties {
            let path = "properties.\(name)"
            checkName(name, path, problem)
            // New annotations go in alphabetical order (case-insensitive), so reviews see where they belong.
            if let previous, previous.lowercased() > name.lowercased() { problem(path, "not in alphabetical order (after \(previous))") }
            previous = name
            checkNode(node, path: path, kind: kind, topLevel: true, context: context, problem)
            guard case .object = node else { continue }
            if node["$ref"] == nil {
                if node["description"]?.stringValue?.isEmpty ?? true { problem(path, "needs a description") }
                if node["type"] == nil { problem(path, "needs a type") }
            }
            if kind == .raw, !collectorFields.contains(name), node["data_reviews"] == nil, node["deprecated"] != .bool(true) {
                problem(path, "an annotation needs data_reviews (the data-collection review)")
            }
        }
        return problems
    }

    struct Context {
        let definitions: Set<String>
        let raw: Set<String>?
    }

    static func checkName(_ name: String, _ path: String, _ problem: (String, String) -> Void) {
        if name.isEmpty { problem(path, "an empty name") }
        if name.count > maxNameLength { problem(path, "the name is longer than \(maxNameLength) characters") }
    }

    static func checkPermissions(_ value: JSONValue, _ path: String, _ problem: (String, String) -> Void) {
        guard let items = value.arrayValue else { return problem(path, "permissions must be a list") }
        for item in items where !(item.stringValue.map(permissionNames.contains) ?? false) {
            problem(path, "permission \(item.serialized()) is not public or protected")
        }
    }

    static func checkNode(_ node: JSONValue, path: String, kind: CrashSchema.Kind, topLevel: Bool, context: Context, _ problem: (String, String) -> Void) {
        guard case .object(let pairs) = node else { return problem(path, "a field must be a mapping") }
        for (key, _) in pairs where !nodeKeys.contains(key) { problem(path, "unknown key \(key)") }
        if let d = node["description"], d.stringValue == nil { problem(path, "description must be text") }
        if let t = node["type"] {
            let names: [JSONValue] = t.arrayValue ?? [t]
            if names.isEmpty { problem(path, "type must not be an empty list") }
            for n in names where !(n.stringValue.map(typeNames.contains) ?? false) { problem(path, "type \(n.serialized()) is not one of \(typeNames.sorted().joined(separator: ", "))") }
        }
        if let p = node["permissions"] { checkPermissions(p, path, problem) }
        for key in ["data_reviews", "bugs"] {
            guard let v = node[key] else { continue }
            guard let items = v.arrayValue, !items.isEmpty else { problem(path, "\(key) must be a non-empty list of URIs"); continue }
            for item in items {
                guard let s = item.stringValue, let url = URL(string: s), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()), url.host != nil else {
                    problem(path, "\(key): \(item.serialized()) is not an http(s) URI"); continue
                }
            }
        }
        for key in ["examples", "enum"] {
            if let v = node[key], (v.arrayValue?.isEmpty ?? true) { problem(path, "\(key) must be a non-empty list") }
        }
        if let d = node["deprecated"], case .bool = d {} else if node["deprecated"] != nil { problem(path, "deprecated must be true or false") }
        if let s = node["source_annotation"] {
            if kind == .raw { problem(path, "source_annotation belongs in the processed schema") }
            else if !topLevel { problem(path, "source_annotation is only for top-level fields") }
            else if let name = s.stringValue, !name.isEmpty {
                if let raw = context.raw, !raw.contains(name) { problem(path, "source_annotation \(name) is not in the raw crash schema") }
            } else { problem(path, "source_annotation must be an annotation name") }
        }
        if let d = node["default"] {
            switch d {
            case .object, .array: problem(path, "default must be a string, number, boolean or null")
            default:
                if node["source_annotation"] == nil { problem(path, "default needs a source_annotation") }
                if let t = node["type"], !typeAccepts(t, d) { problem(path, "default \(d.serialized()) does not have the field's type") }
            }
        }
        if let n = node["nickname"] {
            let ok = n.stringValue.map { !$0.isEmpty && $0.count <= maxNameLength && $0.unicodeScalars.allSatisfy { ("A"..."Z").contains($0) || $0 == "_" } } ?? false
            if !ok { problem(path, "nickname must match ^[A-Z_]+$ and be at most \(maxNameLength) characters") }
        }
        if let r = node["$ref"] {
            if let s = r.stringValue, s.hasPrefix("#/definitions/") {
                let name = String(s.dropFirst("#/definitions/".count))
                if !context.definitions.contains(name) { problem(path, "$ref \(s) names no definition") }
            } else {
                problem(path, "$ref must be #/definitions/<name>")
            }
        }
        if let items = node["items"] { checkNode(items, path: path + ".items", kind: kind, topLevel: false, context: context, problem) }
        if let props = node["properties"] {
            if case .object(let members) = props {
                for (name, child) in members {
                    checkName(name, path + ".properties.\(name)", problem)
                    checkNode(child, path: path + ".properties.\(name)", kind: kind, topLevel: false, context: context, problem)
                }
            } else { problem(path, "properties must be a mapping") }
        }
        if let patterns = node["pattern_properties"] {
            if case .object(let members) = patterns {
                for (pattern, child) in members {
                    let childPath = path + ".pattern_properties.\(pattern)"
                    if (try? NSRegularExpression(pattern: pattern)) == nil { problem(childPath, "not a valid regular expression") }
                    if child["nickname"] == nil { problem(childPath, "a pattern property needs a nickname") }
                    checkNode(child, path: childPath, kind: kind, topLevel: false, context: context, problem)
                }
            } else { problem(path, "pattern_properties must be a mapping") }
        }
    }

    static func typeAccepts(_ type: JSONValue, _ value: JSONValue) -> Bool {
        let names = Set((type.arrayValue ?? [type]).compactMap(\.stringValue))
        if names.contains("any") { return true }
        switch value {
        case .null: return names.contains("null")
        case .bool: return names.contains("boolean")
        case .int: return names.contains("integer") || names.contains("number")
        case .double: return names.contains("number")
        case .string: return names.contains("string")
        case .array: return names.contains("array")
        case .object: return names.contains("object")
        }
    }

    /// Checks a schema directory: both schema files (a missing one is a problem) and, when
    /// present, the export schema.
    public static func check(directory: String) -> [Problem] {
        var problems: [Problem] = []
        var texts: [CrashSchema.Kind: String] = [:]
        for kind in CrashSchema.Kind.allCases {
            let path = directory + "/" + kind.fileName
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                problems.append(Problem(file: path, field: "", reason: "missing or unreadable"))
                continue
            }
            texts[kind] = text
        }
        var rawNames: Set<String>?
        if let raw = texts[.raw] {
            let path = directory + "/" + CrashSchema.Kind.raw.fileName
            // Read once: checked, and its names given to the processed schema's check.
            do {
                let document = try YAMLDocument.parse(raw)
                problems += check(document: document, kind: .raw, file: path, rawAnnotations: nil)
                if case .object(let p)? = document["properties"] { rawNames = Set(p.map(\.0)) }
            } catch {
                problems.append(Problem(file: path, field: "", reason: "\(error)"))
            }
        }
        if let processed = texts[.processed] {
            problems += check(text: processed, kind: .processed, file: directory + "/" + CrashSchema.Kind.processed.fileName, rawAnnotations: rawNames)
        }
        let exportPath = directory + "/" + ExportSchema.fileName
        if FileManager.default.fileExists(atPath: exportPath) {
            do {
                _ = try ExportSchema(data: try Data(contentsOf: URL(fileURLWithPath: exportPath)))
            } catch {
                problems.append(Problem(file: exportPath, field: "", reason: "\(error)"))
            }
        }
        return problems
    }
}
