import CrashModel
import Foundation
import JSONSupport
import Testing
import TestSupport

/// `postmortem schema check`'s rules: the shipped schemas pass; each malformed variant fails
/// with its file, field and reason.
@Suite struct SchemaCheckTests {
    /// A directory holding the shipped files, with `edit` applied to one of them.
    func directory(editing file: String? = nil, _ edit: (String) -> String = { $0 }) throws -> String {
        let dir = TestData.temporaryDirectory("schema")
        _ = try CrashSchemas.exportBundled(to: dir)
        if let file {
            let path = dir + "/" + file
            try edit(try String(contentsOfFile: path, encoding: .utf8)).write(toFile: path, atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test func theShippedSchemasPass() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(SchemaCheck.check(directory: dir) == [])
        let schemas = try CrashSchemas.load(directory: dir)
        #expect(schemas.raw.fieldNames.count >= 110)
        #expect(schemas.processed.fieldNames.count >= 150)
        // Every raw annotation the reference names as protected is protected, and so is every
        // processed field copied from one.
        for name in ["Breadcrumbs", "Comments", "DumperError", "GleanClientId", "GMPLibraryPath", "JavaException", "JavaStackTrace",
                     "ModuleSignatureInfo", "MozCrashReason", "PHCAllocStack", "PHCBaseAddress", "PHCFreeStack", "PHCKind", "PHCUsableSize",
                     "RemoteType", "URL", "metadata", "additional_minidumps"] {
            #expect(schemas.raw.permissionsNeeded(name) == ["protected"], "\(name)")
        }
        for copy in schemas.processed.annotationCopies where schemas.raw.permissionsNeeded(copy.annotation).contains("protected") {
            #expect(schemas.processed.permissionsNeeded(copy.field).contains("protected"), "\(copy.field) copies protected \(copy.annotation)")
        }
        let copies = Dictionary(uniqueKeysWithValues: schemas.processed.annotationCopies.map { ($0.field, $0) })
        #expect(copies["product"]?.annotation == "ProductName")
        #expect(copies["crash_time"]?.type == "integer")
        #expect(copies["startup_crash"]?.type == "boolean")
        #expect(copies["telemetry_environment"]?.type == "object")
        // Every field has a description and a type; every annotation a data review.
        for name in schemas.processed.fieldNames { #expect(schemas.processed.field(name)?.description.isEmpty == false, "\(name)") }
        #expect(schemas.export.fieldNames.contains("build_id") && schemas.export.fieldNames.contains("platform"))
    }

    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let file: String
        let edit: @Sendable (String) -> String
        let field: String
        let reason: String
        var description: String { name }
    }

    static let raw = "raw_crash.schema.yaml", processed = "processed_crash.schema.yaml"
    static func appending(_ text: String) -> @Sendable (String) -> String { { $0 + text } }

    static let cases: [Case] = [
        Case(name: "an annotation without a data review", file: raw,
             edit: appending("  ZzNew:\n    description: x\n    type: string\n    permissions: [\"public\"]\n"),
             field: "properties.ZzNew", reason: "needs data_reviews"),
        Case(name: "an unknown type", file: processed,
             edit: appending("  zz_field:\n    description: x\n    type: strin\n    permissions: [\"public\"]\n"),
             field: "properties.zz_field", reason: "type \"strin\" is not one of"),
        Case(name: "an unknown permission", file: processed,
             edit: appending("  zz_field:\n    description: x\n    type: string\n    permissions: [\"secret\"]\n"),
             field: "properties.zz_field", reason: "permission \"secret\" is not public or protected"),
        Case(name: "a name over 40 characters", file: processed,
             edit: appending("  zz_\(String(repeating: "a", count: 38)):\n    description: x\n    type: string\n"),
             field: "properties.zz_\(String(repeating: "a", count: 38))", reason: "longer than 40 characters"),
        Case(name: "a reference to no definition", file: processed,
             edit: appending("  zz_field:\n    $ref: \"#/definitions/nope\"\n"),
             field: "properties.zz_field", reason: "$ref #/definitions/nope names no definition"),
        Case(name: "a source annotation the raw schema lacks", file: processed,
             edit: appending("  zz_field:\n    description: x\n    type: string\n    source_annotation: NoSuchAnnotation\n"),
             field: "properties.zz_field", reason: "source_annotation NoSuchAnnotation is not in the raw crash schema"),
        Case(name: "a default of the wrong type", file: processed,
             edit: appending("  zz_field:\n    description: x\n    type: integer\n    source_annotation: Version\n    default: abc\n"),
             field: "properties.zz_field", reason: "default \"abc\" does not have the field's type"),
        Case(name: "a field without a description", file: processed,
             edit: appending("  zz_field:\n    type: string\n"),
             field: "properties.zz_field", reason: "needs a description"),
        Case(name: "an unknown node key", file: processed,
             edit: appending("  zz_field:\n    description: x\n    type: string\n    colour: red\n"),
             field: "properties.zz_field", reason: "unknown key colour"),
        Case(name: "a name out of alphabetical order", file: raw,
             edit: appending("  Aaa:\n    description: x\n    type: string\n    data_reviews: [\"https://example.com/review\"]\n"),
             field: "properties.Aaa", reason: "not in alphabetical order"),
        Case(name: "a data review that is not a URI", file: raw,
             edit: appending("  ZzNew:\n    description: x\n    type: string\n    data_reviews: [\"see the wiki\"]\n"),
             field: "properties.ZzNew", reason: "is not an http(s) URI"),
        Case(name: "a pattern property without a nickname", file: processed,
             edit: appending("  zz_field:\n    description: x\n    type: object\n    pattern_properties:\n      \"^a\":\n        type: string\n"),
             field: "properties.zz_field.pattern_properties.^a", reason: "needs a nickname"),
        Case(name: "the wrong meta-schema", file: raw,
             edit: { $0.replacingOccurrences(of: "socorro-data/1-0-0", with: "socorro-data/9-9-9") },
             field: "$schema", reason: "must be moz://mozilla.org/schemas/socorro/socorro-data/1-0-0"),
        Case(name: "broken YAML", file: processed, edit: appending("  zz_field: [unclosed\n"), field: "", reason: "not valid YAML"),
        Case(name: "a billion-laughs alias bomb", file: processed,
             edit: { text in
                 var bomb = "\nzz_bomb_0: &b0 [x, x, x, x, x, x, x, x, x, x]\n"
                 for i in 1...9 { bomb += "zz_bomb_\(i): &b\(i) [" + Array(repeating: "*b\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
                 return text + bomb
             }, field: "", reason: "more than 500000 nodes"),
    ]

    @Test(arguments: cases) func aMalformedSchemaFailsWithFileFieldAndReason(_ c: Case) throws {
        let dir = try directory(editing: c.file, c.edit)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let problems = SchemaCheck.check(directory: dir)
        #expect(problems.count == 1, "\(problems)")
        let p = try #require(problems.first)
        #expect(p.file == dir + "/" + c.file)
        #expect(p.field == c.field)
        #expect(p.reason.contains(c.reason), "\(p.reason)")
        // Services refuse such a directory, naming the problem.
        #expect(throws: CrashSchemas.LoadError.self) { try CrashSchemas.load(directory: dir) }
    }

    @Test func aMissingFileIsAProblem() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/raw_crash.schema.yaml")
        let problems = SchemaCheck.check(directory: dir)
        #expect(problems.contains { $0.file.hasSuffix("raw_crash.schema.yaml") && $0.reason == "missing or unreadable" })
    }

    @Test func theExportSchemaReducesAndValidates() throws {
        let export = try ExportSchema.bundled()
        let doc = try #require(JSONValue.parse(Data("""
            {"uuid": "x", "signature": "s", "build": "20240101", "os_name": "Linux", "date_processed": "2024-01-01T00:00:00+00:00",
             "uptime": "not a number", "unknown_field": 1, "addons": ["a:1", 5],
             "json_dump": {"pid": 7, "threads": [{"frames": [{"frame": 0, "function": "f", "registers": {"rip": "0x1"}}]}], "lsb_release": {}}}
            """.utf8)))
        let out = export.export(doc)
        #expect(export.validate(out) == [])
        #expect(out["build_id"] == .string("20240101") && out["platform"] == .string("Linux") && out["date"] == .string("2024-01-01T00:00:00+00:00"))
        #expect(out["uptime"] == nil && out["unknown_field"] == nil)
        #expect(out["addons"] == .array([.string("a:1")]))
        #expect(out["json_dump"]?["threads"]?.arrayValue?.first?["frames"]?.arrayValue?.first?["registers"] == nil)
        #expect(out["json_dump"]?["lsb_release"] == nil)
        #expect(export.validate(.object([("uptime", .string("x"))])).count == 1)
    }
}
