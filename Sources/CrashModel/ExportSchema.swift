import Foundation
import JSONSupport

/// The public export's schema (`telemetry_socorro_crash.json`, JSON Schema draft-04 in the
/// reference's telemetry format, `data-and-access.md` §6): which processed fields leave the
/// system for a data warehouse, and their types. Only the keywords the format uses are read:
/// `type` (a name or a list), `properties`, `items`.
public struct ExportSchema: Sendable {
    public static let fileName = "telemetry_socorro_crash.json"
    /// Processed name → legacy export name, added next to the processed field.
    public static let legacyAliases: [(String, String)] = [
        ("build", "build_id"), ("date_processed", "date"), ("os_pretty_version", "platform_pretty_version"),
        ("os_name", "platform"), ("os_version", "platform_version"),
    ]

    public struct SchemaError: Error, CustomStringConvertible {
        public let description: String
    }

    final class Node: Sendable {
        let types: Set<String>
        let properties: [(String, Node)]?
        let items: Node?
        init(types: Set<String>, properties: [(String, Node)]?, items: Node?) {
            self.types = types
            self.properties = properties
            self.items = items
        }
    }

    let root: Node
    public let targetVersion: Int64
    public let document: JSONValue

    public init(data: Data) throws {
        guard let document = JSONValue.parse(data), case .object = document else { throw SchemaError(description: "the export schema is not a JSON object") }
        guard let version = document["$target_version"]?.intValue else { throw SchemaError(description: "the export schema needs an integer $target_version") }
        self.document = document
        targetVersion = version
        root = try Self.node(document, path: "", depth: 0)
        guard root.properties != nil else { throw SchemaError(description: "the export schema has no properties") }
    }

    static let typeNames: Set<String> = ["array", "boolean", "integer", "null", "number", "object", "string"]

    static func node(_ value: JSONValue, path: String, depth: Int) throws -> Node {
        guard depth < 32 else { throw SchemaError(description: "\(path): nested too deeply") }
        guard case .object = value else { throw SchemaError(description: "\(path.isEmpty ? "the document" : path): a schema node must be an object") }
        var types = Set<String>()
        if let t = value["type"] {
            for n in t.arrayValue ?? [t] {
                guard let s = n.stringValue, typeNames.contains(s) else { throw SchemaError(description: "\(path): type \(n.serialized()) is not a JSON Schema type") }
                types.insert(s)
            }
        }
        var properties: [(String, Node)]?
        if let p = value["properties"] {
            guard case .object(let pairs) = p else { throw SchemaError(description: "\(path): properties must be an object") }
            properties = try pairs.map { ($0.0, try node($0.1, path: path.isEmpty ? $0.0 : path + "." + $0.0, depth: depth + 1)) }
        }
        let items = try value["items"].map { try node($0, path: path + "[]", depth: depth + 1) }
        return Node(types: types, properties: properties, items: items)
    }

    /// The top-level field names, in the schema's order.
    public var fieldNames: [String] { root.properties?.map(\.0) ?? [] }

    /// `document` (already reduced to public fields) with the legacy aliases added, reduced to
    /// the export schema: unknown fields and values of another type are dropped.
    public func export(_ document: JSONValue) -> JSONValue {
        var pairs: [(String, JSONValue)] = []
        if case .object(let members) = document {
            pairs = members
            for (from, to) in Self.legacyAliases {
                if let v = document[from], document[to] == nil { pairs.append((to, v)) }
            }
        }
        return reduce(.object(pairs), root) ?? .object([])
    }

    func conforms(_ value: JSONValue, _ types: Set<String>) -> Bool {
        if types.isEmpty { return true }
        switch value {
        case .null: return types.contains("null")
        case .bool: return types.contains("boolean")
        case .int: return types.contains("integer") || types.contains("number")
        case .double(let d): return d.isFinite && (types.contains("number") || (types.contains("integer") && d.rounded() == d))
        case .string: return types.contains("string")
        case .array: return types.contains("array")
        case .object: return types.contains("object")
        }
    }

    func reduce(_ value: JSONValue, _ node: Node) -> JSONValue? {
        guard conforms(value, node.types) else { return nil }
        switch value {
        case .object(let members):
            guard let properties = node.properties else { return value }
            var byName: [String: JSONValue] = [:]
            for (k, v) in members { byName[k] = v }
            // The schema's order: every line of the export has the same key order.
            return .object(properties.compactMap { name, child in byName[name].flatMap { reduce($0, child) }.map { (name, $0) } })
        case .array(let items):
            guard let itemNode = node.items else { return value }
            return .array(items.compactMap { reduce($0, itemNode) })
        default:
            return value
        }
    }

    /// Whether `value` conforms to the schema (every member known, every type right): what the
    /// tests check on every exported line.
    public func validate(_ value: JSONValue) -> [String] {
        var problems: [String] = []
        func walk(_ v: JSONValue, _ node: Node, _ path: String) {
            guard conforms(v, node.types) else { return problems.append("\(path): \(v.serialized().prefix(40)) does not have type \(node.types.sorted())") }
            switch v {
            case .object(let members):
                guard let properties = node.properties else { return }
                for (k, child) in members {
                    guard let n = properties.first(where: { $0.0 == k })?.1 else { problems.append("\(path).\(k): not in the export schema"); continue }
                    walk(child, n, path + "." + k)
                }
            case .array(let items):
                guard let n = node.items else { return }
                for (i, item) in items.enumerated() { walk(item, n, "\(path)[\(i)]") }
            default: break
            }
        }
        walk(value, root, "$")
        return problems
    }

    /// The schema shipped with the program.
    public static func bundled() throws -> ExportSchema {
        try ExportSchema(data: try bundledData())
    }

    public static func bundledData() throws -> Data {
        guard let url = Bundle.module.url(forResource: "telemetry_socorro_crash", withExtension: "json", subdirectory: "schemas"),
              let data = try? Data(contentsOf: url) else { throw SchemaError(description: "the bundled \(fileName) is missing") }
        return data
    }
}
