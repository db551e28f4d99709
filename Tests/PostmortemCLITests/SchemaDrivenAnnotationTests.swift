import CrashModel
import Foundation
import JSONSupport
import Storage
import Testing
import TestSupport

/// An annotation added only to a deployment's schema files (`schema.dir`) becomes a processed
/// field, a Super Search field (filter, facet, column), a `SuperSearchFields` entry with its
/// description and an export field, with no code change; a protected one never reaches an
/// anonymous caller anywhere.
@Suite(.serialized) struct SchemaDrivenAnnotationTests {
    let e2e = ProcessorEndToEndTests()
    static let secret = "SECRET-ANNOTATION-VALUE"
    static let colorDescription = "The user's favorite color, asked by the crash reporter's survey."

    func cli(_ arguments: [String]) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), arguments)
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// The shipped schemas, written by `postmortem schema export`, plus three annotations.
    func schemaDirectory() throws -> String {
        let dir = TestData.temporaryDirectory("schemas")
        let (status, out, err) = try cli(["schema", "export", dir])
        #expect(status == 0, "\(err)")
        #expect(out.contains("raw_crash.schema.yaml") && out.contains("processed_crash.schema.yaml"))
        func append(_ file: String, _ text: String) throws {
            let path = dir + "/" + file
            try (try String(contentsOfFile: path, encoding: .utf8) + text).write(toFile: path, atomically: true, encoding: .utf8)
        }
        let review = "    data_reviews: [\"https://bugzilla.example.com/show_bug.cgi?id=1#c1\"]\n"
        try append("raw_crash.schema.yaml", """
              ZzFavoriteColor:
                description: The favorite color the user typed.
                type: string
                permissions: ["public"]
            \(review)  ZzLuckyNumber:
                description: A number the user picked.
                type: string
                permissions: ["public"]
            \(review)  ZzSecretToken:
                description: A session token; personal data.
                type: string
                permissions: ["protected"]
            \(review)
            """)
        try append("processed_crash.schema.yaml", """
              zz_favorite_color:
                description: \(Self.colorDescription)
                type: string
                permissions: ["public"]
                source_annotation: ZzFavoriteColor
              zz_lucky_number:
                description: The number the user picked (7 when they picked none).
                type: integer
                permissions: ["public"]
                source_annotation: ZzLuckyNumber
                default: 7
              zz_secret_token:
                description: A session token.
                type: string
                permissions: ["protected"]
                source_annotation: ZzSecretToken

            """)
        // The export schema lists the new field (and, to prove the public filter comes first,
        // the protected one too).
        let exportPath = dir + "/" + ExportSchema.fileName
        var export = try String(contentsOfFile: exportPath, encoding: .utf8)
        export = export.replacingOccurrences(of: "\"properties\": {", with: """
            "properties": {"zz_favorite_color": {"type": ["string", "null"]}, "zz_lucky_number": {"type": ["integer", "null"]},
            "zz_secret_token": {"type": ["string", "null"]},
            """)
        try export.write(toFile: exportPath, atomically: true, encoding: .utf8)
        let check = try cli(["schema", "check", dir])
        #expect(check.0 == 0, "\(check.2)")
        return dir
    }

    @Test func anAnnotationAddedOnlyToTheSchemaFilesIsProcessedSearchedDocumentedAndExported() async throws {
        let schemas = try schemaDirectory()
        defer { try? FileManager.default.removeItem(atPath: schemas) }
        let data = TestData.temporaryDirectory("schema-e2e")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let database = try await Database.open(url: "sqlite://\(data)/postmortem.sqlite", poolSize: 1)
        let metadata = try await MetadataStore.open(database)
        let account = try await metadata.createAccount(email: "pii@example.com")
        try await metadata.grant("view_pii", to: account.id)
        let (piiToken, _) = try await metadata.createToken(accountID: account.id, permissions: ["view_pii"])
        await database.shutdown()

        let server = try e2e.start(symbols: nil, data: data, extraEnvironment: [
            "POSTMORTEM_SCHEMA_DIR": schemas, "POSTMORTEM_EXPORT_ENABLED": "true",
            "POSTMORTEM_API_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "0", "POSTMORTEM_API_RATE_LIMIT_AUTHENTICATED_PER_MINUTE": "0",
        ])
        defer { server.process.signal(SIGTERM); _ = server.process.waitForExit(timeout: .seconds(30)) }
        let port = try #require(server.base.split(separator: ":").last.flatMap { Int($0) })
        let dump = try TestData.path("minidumps/linux-mini.dmp")
        let id = try await offPool {
            try e2e.submit(server, dump: dump, annotations: ["ProductName=Firefox", "Version=120.0", "ZzFavoriteColor=ultramarine blue",
                                                            "ZzLuckyNumber=42", "ZzSecretToken=\(Self.secret)"])
        }
        let other = try await offPool { try e2e.submit(server, dump: dump, annotations: ["ProductName=Firefox", "Version=120.0", "ZzFavoriteColor=red"]) }

        // The processed crash: copied with the declared type, the default when absent.
        let p = try await e2e.processed(server, id)
        #expect(p["zz_favorite_color"] == .string("ultramarine blue"))
        #expect(p["zz_lucky_number"] == .int(42))
        #expect(p["zz_secret_token"] == .string(Self.secret))
        #expect(try await e2e.processed(server, other)["zz_lucky_number"] == .int(7))

        func get(_ target: String, token: String? = nil) async throws -> (Int?, String) {
            var head = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            if let token { head += "Auth-Token: \(token)\r\n" }
            let response = try await RawHTTPConnection.exchange(port: port, Data((head + "\r\n").utf8), timeout: .seconds(30))
            return (RawHTTPConnection.status(of: response), RawHTTPConnection.body(of: response))
        }
        func json(_ target: String, token: String? = nil) async throws -> JSONValue {
            let (status, body) = try await get(target, token: token)
            #expect(status == 200, "\(target): \(body.prefix(300))")
            return try #require(JSONValue.parse(Data(body.utf8)))
        }

        // Super Search: filter, column, facet; the integer field with a range.
        let search = try await json("/api/SuperSearch/?zz_favorite_color=~ultramarine&_columns=uuid&_columns=zz_favorite_color&_facets=zz_favorite_color")
        #expect(search["total"] == .int(1))
        #expect(search["hits"]?.arrayValue?.first?["zz_favorite_color"] == .string("ultramarine blue"))
        #expect(search["facets"]?["zz_favorite_color"]?.arrayValue?.first?["term"] == .string("ultramarine blue"))
        let all = try await json("/api/SuperSearch/?product=Firefox&_facets=zz_favorite_color&_columns=zz_lucky_number&_sort=zz_lucky_number")
        #expect(all["total"] == .int(2))
        #expect(all["facets"]?["zz_favorite_color"]?.arrayValue?.count == 2)
        #expect(all["hits"]?.arrayValue?.map { $0["zz_lucky_number"] } == [.int(7), .int(42)])
        #expect(try await json("/api/SuperSearch/?zz_lucky_number=>40")["total"] == .int(1))

        // The data dictionary.
        let fields = try await json("/api/SuperSearchFields/")
        #expect(fields["zz_favorite_color"]?["description"] == .string(Self.colorDescription))
        #expect(fields["zz_favorite_color"]?["query_type"] == .string("string"))
        #expect(fields["zz_lucky_number"]?["query_type"] == .string("integer"))
        #expect(fields["zz_secret_token"]?["permissions_needed"] == .array([.string("crashstats.view_pii")]))

        // The export: written on first processing, public fields only.
        let exportFile = data + "/export/" + BlobKeys.exportedCrash(id)
        let exported = try #require(JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: exportFile))))
        #expect(exported["zz_favorite_color"] == .string("ultramarine blue") && exported["zz_lucky_number"] == .int(42))
        #expect(exported["zz_secret_token"] == nil)
        #expect(try await json("/api/CrashVerify/?crash_id=\(id)")["telemetry_crash"] == .bool(true))
        let day = CrashID.date(of: id)
        let run = try cli(["export", "--data", data, "--date", "\(day.prefix(4))-\(day.dropFirst(4).prefix(2))-\(day.suffix(2))"])
        #expect(run.0 == 0, "\(run.2)")
        #expect(run.1.contains("2 crashes exported"))

        // The protected annotation reaches no anonymous caller, anywhere.
        let anonymousTargets = [
            "/api/ProcessedCrash/?crash_id=\(id)", "/api/RawCrash/?crash_id=\(id)",
            "/api/SuperSearch/?_columns=uuid&_columns=zz_secret_token&_facets=zz_secret_token&_aggs.product=zz_secret_token&zz_secret_token=~SECRET",
            "/api/SuperSearch/?_sort=zz_secret_token&_columns=zz_secret_token&_histogram.date=zz_secret_token",
            "/api/SuperSearchFields/", "/api/ProcessedCrash/?crash_id=\(id)&_bug_links=1",
        ]
        for target in anonymousTargets {
            let (status, body) = try await get(target)
            #expect(status == 200, "\(target)")
            #expect(!body.contains(Self.secret), "\(target) leaks the protected annotation")
        }
        let exportedText = try String(contentsOfFile: exportFile, encoding: .utf8)
        #expect(!exportedText.contains(Self.secret))
        // ...while a holder of view_pii sees it.
        #expect(try await get("/api/ProcessedCrash/?crash_id=\(id)", token: piiToken).1.contains(Self.secret))
        let unredacted = try await json("/api/SuperSearch/?zz_secret_token=~SECRET&_columns=zz_secret_token", token: piiToken)
        #expect(unredacted["hits"]?.arrayValue?.first?["zz_secret_token"] == .string(Self.secret))
    }

    /// `postmortem schema check DIR` on ten malformed directories: exit 1, and the problem as
    /// `file: field: reason` on standard error.
    @Test func schemaCheckNamesFileFieldAndReason() throws {
        let raw = "raw_crash.schema.yaml", processed = "processed_crash.schema.yaml"
        let cases: [(String, String, String)] = [
            (raw, "  ZzNew:\n    description: x\n    type: string\n", "properties.ZzNew: an annotation needs data_reviews"),
            (processed, "  zz_f:\n    description: x\n    type: strin\n", "properties.zz_f: type \"strin\" is not one of"),
            (processed, "  zz_f:\n    description: x\n    type: string\n    permissions: [\"secret\"]\n", "properties.zz_f: permission \"secret\" is not public or protected"),
            (processed, "  zz_\(String(repeating: "b", count: 40)):\n    description: x\n    type: string\n", "properties.zz_\(String(repeating: "b", count: 40)): the name is longer than 40 characters"),
            (processed, "  zz_f:\n    $ref: \"#/definitions/none\"\n", "properties.zz_f: $ref #/definitions/none names no definition"),
            (processed, "  zz_f:\n    description: x\n    type: string\n    source_annotation: Nope\n", "properties.zz_f: source_annotation Nope is not in the raw crash schema"),
            (processed, "  zz_f:\n    description: x\n    type: boolean\n    source_annotation: Version\n    default: 3\n", "properties.zz_f: default 3 does not have the field's type"),
            (processed, "  zz_f:\n    type: string\n", "properties.zz_f: needs a description"),
            (processed, "  zz_f:\n    description: x\n    type: string\n    colour: red\n", "properties.zz_f: unknown key colour"),
            (raw, "  Aaa:\n    description: x\n    type: string\n    data_reviews: [\"https://example.com/r\"]\n", "properties.Aaa: not in alphabetical order"),
        ]
        for (file, addition, expected) in cases {
            let dir = TestData.temporaryDirectory("schema-check")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            _ = try cli(["schema", "export", dir])
            let path = dir + "/" + file
            try (try String(contentsOfFile: path, encoding: .utf8) + addition).write(toFile: path, atomically: true, encoding: .utf8)
            let (status, _, err) = try cli(["schema", "check", dir])
            #expect(status == 1, "\(expected)")
            #expect(err.contains("\(path): \(expected)"), "\(err)")
        }
    }

    @Test func aBrokenSchemaDirectoryStopsServeWithItsProblems() throws {
        let dir = TestData.temporaryDirectory("schemas-broken")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try cli(["schema", "export", dir])
        let path = dir + "/processed_crash.schema.yaml"
        try (try String(contentsOfFile: path, encoding: .utf8) + "  zz_bad:\n    type: strin\n").write(toFile: path, atomically: true, encoding: .utf8)
        let check = try cli(["schema", "check", dir])
        #expect(check.0 == 1)
        #expect(check.2.contains("processed_crash.schema.yaml: properties.zz_bad: needs a description"))
        #expect(check.2.contains("type \"strin\" is not one of"))
        let data = TestData.temporaryDirectory("schema-broken-serve")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (status, _, err) = try runProcess(try CommandLineTests.executable(), ["serve", "--data", data, "--port", "0"],
                                              environment: ["POSTMORTEM_SCHEMA_DIR": dir], timeout: .seconds(60))
        #expect(status != 0)
        #expect(String(decoding: err, as: UTF8.self).contains("properties.zz_bad"))
        // The shipped schemas pass.
        let shipped = try cli(["schema", "check"])
        #expect(shipped.0 == 0, "\(shipped.2)")
    }
}
