import Foundation

/// The schemas of a deployment: raw crash, processed crash and export. Shipped defaults, or the
/// directory named by `schema.dir` (the same file names), checked by `SchemaCheck` before use.
public struct CrashSchemas: Sendable {
    public let raw: CrashSchema
    public let processed: CrashSchema
    public let export: ExportSchema
    /// Where they came from: a directory, or nil for the shipped files.
    public let directory: String?

    public struct LoadError: Error, CustomStringConvertible {
        public let problems: [SchemaCheck.Problem]
        public var description: String {
            "the schema directory has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n" + problems.map { "  " + $0.description }.joined(separator: "\n")
        }
    }

    /// The shipped schemas (they pass `postmortem schema check`; a test holds them to it).
    public static func bundled() throws -> CrashSchemas {
        CrashSchemas(raw: try CrashSchema.bundled(.raw), processed: try CrashSchema.bundled(.processed), export: try ExportSchema.bundled(), directory: nil)
    }

    /// The schemas of `directory`, or the shipped ones for nil or an empty path. The export schema
    /// is optional in a directory (the shipped one then applies).
    public static func load(directory: String?) throws -> CrashSchemas {
        guard let directory, !directory.isEmpty else { return try bundled() }
        let problems = SchemaCheck.check(directory: directory)
        guard problems.isEmpty else { throw LoadError(problems: problems) }
        func text(_ kind: CrashSchema.Kind) throws -> String { try String(contentsOfFile: directory + "/" + kind.fileName, encoding: .utf8) }
        let exportPath = directory + "/" + ExportSchema.fileName
        let export = FileManager.default.fileExists(atPath: exportPath)
            ? try ExportSchema(data: try Data(contentsOf: URL(fileURLWithPath: exportPath))) : try ExportSchema.bundled()
        return CrashSchemas(raw: try CrashSchema(yaml: try text(.raw)), processed: try CrashSchema(yaml: try text(.processed)), export: export,
                            directory: directory)
    }

    /// Writes the shipped files into `directory` (created if needed), so a deployment can start
    /// from them; existing files are kept unless `overwrite`. Returns the paths written.
    public static func exportBundled(to directory: String, overwrite: Bool = false) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        var files: [(String, Data)] = try CrashSchema.Kind.allCases.map { ($0.fileName, Data(try CrashSchema.bundledText($0).utf8)) }
        files.append((ExportSchema.fileName, try ExportSchema.bundledData()))
        for (name, data) in files {
            let path = directory + "/" + name
            if !overwrite, FileManager.default.fileExists(atPath: path) { continue }
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            written.append(path)
        }
        return written
    }
}
