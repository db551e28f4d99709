import Foundation
import JSONSupport
import Yams

/// YAML documents read as JSON values (the schema files are YAML, everything else works on
/// `JSONValue`). Mappings keep their order; non-finite numbers are refused and the expanded
/// document is bounded, so aliases cannot blow a small file up.
public enum YAMLDocument {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Largest YAML text read (a schema file is ~100 KB).
    public static let maxBytes = 8 << 20

    public static func parse(_ text: String) throws -> JSONValue {
        guard text.utf8.count <= maxBytes else { throw ParseError(description: "the document is larger than \(maxBytes >> 20) MiB") }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ParseError(description: "not valid YAML: \(error)")
        }
        guard let node else { throw ParseError(description: "the document is empty") }
        var visited = 0
        return try value(node, depth: 0, visited: &visited)
    }

    /// Most nodes a document may hold once aliases are expanded (a schema has ~5,000).
    public static let maxNodes = 500_000

    static func value(_ node: Node, depth: Int, visited: inout Int) throws -> JSONValue {
        guard depth < 64 else { throw ParseError(description: "nesting deeper than 64 levels") }
        func line() -> String { node.mark.map { " (line \($0.line))" } ?? "" }
        // The composer replaces an alias with its anchored node, so a few lines of anchors can
        // stand for an exponential tree ("billion laughs"): the walk counts what it visits.
        visited += 1
        guard visited <= maxNodes else { throw ParseError(description: "more than \(maxNodes) nodes (aliases expanding into a huge document?)") }
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return node.bool.map { .bool($0) } ?? .string(scalar.string)
            case .int:
                // Out-of-range integers stay text rather than trap.
                return node.int.flatMap { Int64(exactly: $0) }.map { .int($0) } ?? .string(scalar.string)
            case .float:
                guard let d = node.float, d.isFinite else { throw ParseError(description: "\(scalar.string) is not a finite number\(line())") }
                return .double(d)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .array(try sequence.map { try value($0, depth: depth + 1, visited: &visited) })
        case .mapping(let mapping):
            var pairs: [(String, JSONValue)] = []
            var seen = Set<String>()
            for (k, v) in mapping {
                guard case .scalar(let key) = k else { throw ParseError(description: "a mapping key must be text\(line())") }
                guard seen.insert(key.string).inserted else { throw ParseError(description: "\(key.string) appears twice\(line())") }
                pairs.append((key.string, try value(v, depth: depth + 1, visited: &visited)))
            }
            return .object(pairs)
        case .alias:
            throw ParseError(description: "aliases are not supported\(line())")
        }
    }
}
