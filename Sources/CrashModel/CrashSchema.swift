import Foundation
import JSONSupport

/// A crash data schema (`data-and-access.md` §1): which fields exist, their types and
/// descriptions, which data permissions (`public`, `protected`) it takes to see each (nested
/// fields included), and for processed fields the annotation they are copied from. It drives
/// the processor's copying, redaction, the search fields, the data dictionary and the export.
/// `SchemaCheck` validates a document against the meta-schema's rules before it is used.
public struct CrashSchema: Sendable {
    /// One node: the permissions it needs and, for objects and arrays, its members.
    public final class Node: @unchecked Sendable {
        public let permissions: [String]?
        public let description: String
        /// The JSON types the field may have (`string`, `integer`, …; empty when not declared).
        public let types: [String]
        /// Processed schema: the raw annotation this field is copied from, and the value used
        /// when the annotation is absent.
        public let sourceAnnotation: String?
        public let defaultValue: JSONValue?
        public let examples: [JSONValue]
        public let dataReviews: [String]
        public let deprecated: Bool
        let properties: [String: Node]
        let patternProperties: [(NSRegularExpression, Node)]
        let items: Node?
        let reference: String?

        init(_ value: JSONValue, properties: [String: Node], patternProperties: [(NSRegularExpression, Node)], items: Node?, reference: String?) {
            permissions = value["permissions"]?.arrayValue?.compactMap(\.stringValue)
            description = value["description"]?.stringValue ?? ""
            types = value["type"]?.stringValue.map { [$0] } ?? value["type"]?.arrayValue?.compactMap(\.stringValue) ?? []
            sourceAnnotation = value["source_annotation"]?.stringValue
            defaultValue = value["default"]
            examples = value["examples"]?.arrayValue ?? []
            dataReviews = value["data_reviews"]?.arrayValue?.compactMap(\.stringValue) ?? []
            deprecated = value["deprecated"] == .bool(true)
            self.properties = properties
            self.patternProperties = patternProperties
            self.items = items
            self.reference = reference
        }

        var hasMembers: Bool { !properties.isEmpty || !patternProperties.isEmpty }

        /// The declared members of an object node, by name.
        public var members: [(name: String, node: Node)] { properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

        /// An array node's element type, when declared.
        public var itemType: String? { items?.primaryType }

        /// The first declared type other than `null` (`string` for `["string", "null"]`).
        public var primaryType: String? { types.first { $0 != "null" } }
    }

    public let defaultPermissions: [String]
    public let root: Node
    let definitions: [String: Node]
    /// The top-level field names in the document's order.
    public let fieldNames: [String]

    public struct SchemaError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The two schemas, by their file names (`<name>.schema.yaml`).
    public enum Kind: String, Sendable, CaseIterable {
        case raw = "raw_crash"
        case processed = "processed_crash"
        public var fileName: String { rawValue + ".schema.yaml" }
    }

    /// Parses a schema document (YAML; JSON is YAML too).
    public init(yaml text: String) throws {
        do {
            try self.init(document: try YAMLDocument.parse(text))
        } catch let e as YAMLDocument.ParseError {
            throw SchemaError(description: e.description)
        }
    }

    public init(document: JSONValue) throws {
        guard case .object = document else { throw SchemaError(description: "the schema is not an object") }
        defaultPermissions = document["default_permissions"]?.arrayValue?.compactMap(\.stringValue) ?? ["public", "protected"]
        var definitions: [String: Node] = [:]
        if case .object(let defs)? = document["definitions"] {
            for (name, value) in defs { definitions[name] = try Self.node(value, path: "definitions.\(name)") }
        }
        self.definitions = definitions
        let properties = document["properties"] ?? .object([])
        if case .object(let pairs) = properties { fieldNames = pairs.map(\.0) } else { fieldNames = [] }
        root = try Self.node(.object([("properties", properties)]), path: "")
        // Every reference must resolve.
        func check(_ n: Node, _ path: String) throws {
            if let r = n.reference, definitions[r] == nil { throw SchemaError(description: "\(path): unknown reference #/definitions/\(r)") }
            for (k, c) in n.properties { try check(c, path + "." + k) }
            for (_, c) in n.patternProperties { try check(c, path + ".*") }
            if let i = n.items { try check(i, path + "[]") }
        }
        try check(root, "")
        for (k, d) in definitions { try check(d, "definitions." + k) }
    }

    /// The text of a schema shipped with the program.
    public static func bundledText(_ kind: Kind) throws -> String {
        guard let url = Bundle.module.url(forResource: kind.rawValue + ".schema", withExtension: "yaml", subdirectory: "schemas"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw SchemaError(description: "the bundled \(kind.fileName) is missing")
        }
        return text
    }

    /// A schema shipped with the program.
    public static func bundled(_ kind: Kind) throws -> CrashSchema {
        try CrashSchema(yaml: try bundledText(kind))
    }

    static func node(_ value: JSONValue, path: String) throws -> Node {
        guard case .object = value else { throw SchemaError(description: "\(path): a schema node must be an object") }
        var properties: [String: Node] = [:]
        if case .object(let members)? = value["properties"] {
            for (k, v) in members { properties[k] = try node(v, path: path + "." + k) }
        }
        var patterns: [(NSRegularExpression, Node)] = []
        if case .object(let members)? = value["pattern_properties"] {
            for (pattern, v) in members {
                guard let regex = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$") else {
                    throw SchemaError(description: "\(path): invalid pattern \(pattern)")
                }
                patterns.append((regex, try node(v, path: path + "." + pattern)))
            }
        }
        var reference: String?
        if let r = value["$ref"]?.stringValue {
            guard r.hasPrefix("#/definitions/") else { throw SchemaError(description: "\(path): unsupported reference \(r)") }
            reference = String(r.dropFirst("#/definitions/".count))
        }
        if let p = value["permissions"]?.arrayValue, p.contains(where: { $0.stringValue.map { !["public", "protected"].contains($0) } ?? true }) {
            throw SchemaError(description: "\(path): permissions must be public or protected")
        }
        return Node(value, properties: properties, patternProperties: patterns,
                    items: try value["items"].map { try node($0, path: path + "[]") }, reference: reference)
    }

    func resolve(_ node: Node) -> Node { node.reference.flatMap { definitions[$0] } ?? node }

    /// A processed field copied from a raw annotation (`source_annotation`).
    public struct AnnotationCopy: Sendable {
        public let field: String
        public let annotation: String
        /// The field's declared type (`string`, `integer`, `number`, `boolean`, `object`, `array`).
        public let type: String
        public let defaultValue: JSONValue?
    }

    /// Every top-level field with a `source_annotation`, in the document's order.
    public var annotationCopies: [AnnotationCopy] {
        fieldNames.compactMap { name in
            guard let node = root.properties[name], let annotation = node.sourceAnnotation else { return nil }
            return AnnotationCopy(field: name, annotation: annotation, type: node.primaryType ?? resolve(node).primaryType ?? "string",
                                  defaultValue: node.defaultValue)
        }
    }

    /// The node of a top-level field, nil when the schema does not know it.
    public func field(_ name: String) -> Node? { member(name, of: root) }

    func member(_ key: String, of node: Node) -> Node? {
        let node = resolve(node)
        if let n = node.properties[key] { return n }
        let range = NSRange(key.startIndex..., in: key)
        return node.patternProperties.first { $0.0.firstMatch(in: key, range: range) != nil }?.1
    }

    /// The data permissions needed to see a top-level field (the default ones for unknown fields).
    public func permissionsNeeded(_ field: String) -> [String] {
        guard let n = self.field(field) else { return defaultPermissions }
        return n.permissions ?? resolve(n).permissions ?? defaultPermissions
    }

    /// `document` reduced to what a holder of `permissions` may see: fields unknown to the schema
    /// and fields needing more are dropped, recursively.
    public func reduce(_ document: JSONValue, permissions: Set<String>) -> JSONValue {
        reduce(document, node: root, permissions: permissions) ?? .object([])
    }

    private func allowed(_ node: Node, _ permissions: Set<String>) -> Bool {
        let needed = node.permissions ?? resolve(node).permissions ?? defaultPermissions
        return needed.allSatisfy(permissions.contains)
    }

    private func reduce(_ value: JSONValue, node: Node, permissions: Set<String>) -> JSONValue? {
        let node = resolve(node)
        switch value {
        case .object(let members) where node.hasMembers:
            var kept: [(String, JSONValue)] = []
            for (key, v) in members {
                guard let child = member(key, of: node), allowed(child, permissions),
                      let reduced = reduce(v, node: child, permissions: permissions) else { continue }
                kept.append((key, reduced))
            }
            return .object(kept)
        case .array(let items):
            guard let itemNode = node.items else { return value }
            guard allowed(itemNode, permissions) else { return .array([]) }
            return .array(items.compactMap { reduce($0, node: itemNode, permissions: permissions) })
        default:
            return value
        }
    }
}

extension String {
    /// nil for an empty string.
    public var nonEmpty: String? { isEmpty ? nil : self }
}
