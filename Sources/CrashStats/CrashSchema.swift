import Foundation
import JSONSupport

/// A crash data schema (`data-and-access.md` §1): which fields exist and which data permissions
/// (`public`, `protected`) it takes to see each, nested fields included. It drives the
/// redaction of API responses and the permissions of search fields.
public struct CrashSchema: Sendable {
    /// One node: the permissions it needs and, for objects and arrays, its members.
    public final class Node: @unchecked Sendable {
        public let permissions: [String]?
        public let description: String
        /// The JSON types the field may have (`string`, `integer`, …; empty when not declared).
        public let types: [String]
        let properties: [String: Node]
        let patternProperties: [(NSRegularExpression, Node)]
        let items: Node?
        let reference: String?

        init(permissions: [String]?, description: String, types: [String], properties: [String: Node], patternProperties: [(NSRegularExpression, Node)],
             items: Node?, reference: String?) {
            self.permissions = permissions
            self.description = description
            self.types = types
            self.properties = properties
            self.patternProperties = patternProperties
            self.items = items
            self.reference = reference
        }

        var hasMembers: Bool { !properties.isEmpty || !patternProperties.isEmpty }
    }

    public let defaultPermissions: [String]
    public let root: Node
    let definitions: [String: Node]

    public struct SchemaError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses a schema document (JSON).
    public init(json data: Data) throws {
        guard let document = JSONValue.parse(data), case .object = document else { throw SchemaError(description: "the schema is not a JSON object") }
        defaultPermissions = document["default_permissions"]?.arrayValue?.compactMap(\.stringValue) ?? ["public", "protected"]
        var definitions: [String: Node] = [:]
        if case .object(let defs)? = document["definitions"] {
            for (name, value) in defs { definitions[name] = try Self.node(value, path: "definitions.\(name)") }
        }
        self.definitions = definitions
        root = try Self.node(.object([("properties", document["properties"] ?? .object([]))]), path: "")
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

    /// A schema shipped with the program: `processed_crash` or `raw_crash`.
    public static func bundled(_ name: String) throws -> CrashSchema {
        guard let url = Bundle.module.url(forResource: "\(name).schema", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            throw SchemaError(description: "the bundled \(name) schema is missing")
        }
        return try CrashSchema(json: data)
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
        let types: [String] = value["type"]?.stringValue.map { [$0] } ?? value["type"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return Node(permissions: value["permissions"]?.arrayValue?.compactMap(\.stringValue), description: value["description"]?.stringValue ?? "",
                    types: types,
                    properties: properties, patternProperties: patterns, items: try value["items"].map { try node($0, path: path + "[]") },
                    reference: reference)
    }

    func resolve(_ node: Node) -> Node { node.reference.flatMap { definitions[$0] } ?? node }

    /// The names of the top-level fields.
    public var fieldNames: [String] { Array(root.properties.keys) }

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
    var nonEmpty: String? { isEmpty ? nil : self }
}
