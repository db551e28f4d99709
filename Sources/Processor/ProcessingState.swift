import Foundation
import JSONSupport

/// What the rules work on: the raw crash (annotations + collector fields), its dumps, and the
/// processed crash being built, plus this run's notes.
public struct ProcessingState: Sendable {
    public var crashID: String
    public var raw: [String: JSONValue]
    public var dumps: [(name: String, data: Data)]
    public var processed: [String: JSONValue]
    public var notes: [String] = []

    public init(crashID: String, raw: [String: JSONValue], dumps: [(name: String, data: Data)], processed: [String: JSONValue] = [:]) {
        self.crashID = crashID
        self.raw = raw
        self.dumps = dumps
        self.processed = processed
    }

    func rawString(_ key: String) -> String? {
        if case .string(let s)? = raw[key] { return s }
        return nil
    }

    /// The processed crash as a JSON object with sorted keys.
    public var document: JSONValue {
        .object(processed.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }
}

/// One step of processing: a name and one job. A rule that throws adds a note and processing
/// goes on.
protocol ProcessorRule: Sendable {
    var name: String { get }
    func run(_ state: inout ProcessingState) async throws
}

struct RuleError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension JSONValue {
    subscript(path path: [String]) -> JSONValue? {
        var v: JSONValue? = self
        for key in path { v = v?[key] }
        return v
    }

}
