import AsyncHTTPClient
import CompressNIO
import Crypto
import Foundation
import JSONSupport
import NIOCore
import Storage
import SymbolServer
import SymbolSources
import Testing
import TestSupport

/// Tecken's upload and download protocol over real HTTP, on both stores (`symbols-server.md`).
@Suite struct SymbolServerHTTPTests {
    func testArchive(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: try TestData.path("tecken/\(name)")))
    }

    /// The shared symbol tree (`tecken/symbols/`): every download suffix, CAB files, code-id paths.
    func symbolTree() throws -> [(String, Data)] {
        let root = try TestData.path("tecken/symbols")
        return try TestData.files(under: "tecken/symbols", suffix: "").filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.map { path in
            (String(path.dropFirst(root.count + 1)), try Data(contentsOf: URL(fileURLWithPath: path)))
        }.filter { $0.0.split(separator: "/").count == 3 }.sorted { $0.0 < $1.0 }
    }

    static func gunzip(_ data: Data) throws -> Data {
        var buffer = ByteBuffer(data: data)
        return Data(try buffer.decompress(with: .gzip(), maxSize: 64 << 20).readableBytesView)
    }

    @Test(arguments: Backend.allCases)
    func teckensTestArchivesGiveTheReferenceAnswers(_ backend: Backend) async throws {
        let h = try await SymbolServerHarness(backend)
        defer { Task { await h.close() } }

        // The first file part counts, whatever its field name (`curl -F myfile.zip=@myfile.zip`).
        let sample = try await h.upload(try testArchive("sample.zip"), filename: "sample.zip", token: h.token, fields: [("note", "x")],
                                        fieldName: "myfile.zip")
        #expect(sample.status == 201, "\(sample.text)")
        let upload = try #require(sample.json?["upload"])
        #expect(upload["ignored_keys"] == .array([.string("build-symbols.txt")]))
        #expect(upload["skipped_keys"] == .array([]))
        #expect(upload["files"]?.arrayValue?.count == 2)
        #expect(upload["content_hash"] == .string("984270ef458d9d1e27e8d844ad52a9"))
        #expect(upload["size"] == .int(70398))
        #expect(upload["user"] == .string("uploader@example.com"))
        #expect(upload["try_symbols"] == .bool(false))
        #expect(upload["filename"] == .string("sample.zip"))
        let record = try #require(try await h.fixture.metadata.latestSymbolFile(file: "xpcshell", id: "BBACA09FD1C13F6C84254BFD8732AF400", includeTry: false))
        #expect(record.key == "symbols/v1/xpcshell.dbg/A7D6F1BB18CD4CB48/xpcshell.sym")
        #expect(record.compressed && record.size < 1156)
        #expect(Set(try await h.storedKeys()) == ["symbols/v1/flag/deadbeef/flag.jpeg", "symbols/v1/xpcshell.dbg/A7D6F1BB18CD4CB48/xpcshell.sym"])

        // The same archive again: nothing is stored twice.
        let again = try await h.upload(try testArchive("sample.zip"), filename: "sample.zip", token: h.token)
        #expect(again.status == 201)
        #expect(again.json?["upload"]?["skipped_keys"] == .array([.string("flag/deadbeef/flag.jpeg"), .string("xpcshell.dbg/A7D6F1BB18CD4CB48/xpcshell.sym")]))
        #expect(again.json?["upload"]?["files"] == .array([]))

        let ignorable = try await h.upload(try testArchive("sample-with-ignorable-files.zip"), token: h.token)
        #expect(ignorable.status == 201)
        #expect(Set(ignorable.json?["upload"]?["ignored_keys"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                == ["build-symbols.txt", "flag/.DS_Store", "xpcshell.dbg/A7D6F1BB18CD4CB48/.DS_Store"])

        let refusals: [(String, String)] = [
            ("invalid.zip", "Unrecognized file pattern. Should only be <module>/<hex>/<file> or <name>-symbols.txt and nothing else. (First unrecognized pattern was 'xpcshell.sym')"),
            ("invalid-characters.zip", "Unrecognized file pattern. Should only be <module>/<hex>/<file> or <name>-symbols.txt and nothing else. (First unrecognized pattern was 'xpcfoo.dbg/A7D6F1BB18CD4CB48/p%eter.sym')"),
            ("duplicated-different-size.zip", "(24 != 39)"),
            ("notazipdespiteitsname.zip", "File is not a zip file"),
        ]
        for (name, message) in refusals {
            let answer = try await h.upload(try testArchive(name), filename: name, token: h.token)
            #expect(answer.status == 400, "\(name): \(answer.text)")
            #expect(answer.error?.hasSuffix(message) == true, "\(name): \(answer.text)")
        }
        #expect(try await h.upload(try testArchive("duplicated-same-size.zip"), token: h.token).status == 201)
        let rar = try await h.upload(try testArchive("sample.zip"), filename: "sample.rar", token: h.token)
        #expect(rar.status == 400 && rar.error == "Unrecognized archive file extension \".rar\"")
        let noFile = try await h.send(.POST, "/upload/", headers: [("Auth-Token", h.token), ("Content-Type", "application/x-www-form-urlencoded")],
                                      body: Data("a=b".utf8))
        #expect(noFile.status == 400 && noFile.error == "Must be multipart form data with at least one file")
    }

    @Test(arguments: Backend.allCases)
    func uploadedFilesDownloadByteForByte(_ backend: Backend) async throws {
        let h = try await SymbolServerHarness(backend)
        defer { Task { await h.close() } }
        let tree = try symbolTree()
        #expect(tree.count >= 10)
        let answer = try await h.upload(try ZipBuilder.make(tree), token: h.token)
        #expect(answer.status == 201, "\(answer.text)")
        #expect(answer.json?["upload"]?["files"]?.arrayValue?.count == tree.count)

        for (name, original) in tree where [".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"].contains(where: { name.hasSuffix($0) }) {
            let path = "/" + name
            let head = try await h.send(.HEAD, path)
            #expect(head.status == 200, "HEAD \(name)")
            let got = try await h.send(.GET, path)
            #expect(got.headers.first(name: "Access-Control-Allow-Origin") == "*")
            var response = got
            if backend == .scaleOut {
                // S3: a redirect to a short-lived presigned URL of the bucket.
                #expect(got.status == 302, "\(name): \(got.status)")
                let location = try #require(got.headers.first(name: "Location"))
                #expect(location.contains("X-Amz-Signature=") && location.contains("X-Amz-Expires=300"))
                response = try await h.send(.GET, location)
            }
            #expect(response.status == 200, "\(name): \(response.status) \(response.text.prefix(200))")
            if name.hasSuffix(".sym") {
                if backend == .embedded {
                    #expect(response.headers.first(name: "Content-Encoding") == "gzip")
                    #expect(response.headers.first(name: "Content-Type") == "text/plain")
                }
                #expect(try Self.gunzip(response.body) == original, "\(name)")
            } else {
                #expect(response.body == original, "\(name) is served byte for byte")
                if backend == .embedded {
                    #expect(response.headers.first(name: "Content-Encoding") == nil)
                    #expect(response.headers.first(name: "Content-Type") == "application/octet-stream")
                }
            }
        }

        // The code file and code id lead to the debug file and id.
        let redirect = try await h.send(.GET, "/qipcap64.dll/6A4806059000/qipcap64.sym?x=1")
        #expect(redirect.status == 302)
        #expect(redirect.headers.first(name: "Location") == "/qipcap64.pdb/293A285ED25871934C4C44205044422E1/qipcap64.sym?x=1")
        #expect(try await h.send(.HEAD, "/qipcap64.dll/6A4806059000/qipcap64.sym").status == 302)
        let lowerId = try await h.send(.HEAD, "/qipcap64.pdb/293a285ed25871934c4c44205044422e1/qipcap64.sym")
        #expect(lowerId.status == 200, "debug ids are upper-cased before the lookup")

        let info = try await h.send(.GET, "/api/syminfo/qipcap64.dll/6A4806059000")
        #expect(info.status == 200)
        #expect(info.json?["debug_filename"] == .string("qipcap64.pdb"))
        #expect(info.json?["debug_id"] == .string("293A285ED25871934C4C44205044422E1"))
        #expect(info.json?["code_file"] == .string("qipcap64.dll"))
        #expect(info.json?["generator"]?.stringValue?.isEmpty == false)
        let noInfo = try await h.send(.GET, "/api/syminfo/nothing.dll/0000ABCD")
        #expect(noInfo.status == 404 && noInfo.error == "Code file / id Not Found")

        // The ignore list, answered without a lookup.
        for ignored in ["/qipcap64.pdb/293A285ED25871934C4C44205044422E1/file.ptr", "/x.pdb/\(String(repeating: "0", count: 33))/x.sym",
                        "/qipcap64.pdb/293A285ED25871934C4C44205044422E1/qipcap64.pdb"] {
            let a = try await h.send(.GET, ignored)
            #expect(a.status == 404 && a.text == "Symbol Not Found (and ignored)", "\(ignored)")
            #expect(a.headers.first(name: "Debug-Time") == "0")
        }
        let missing = try await h.send(.GET, "/nothing.pdb/ABCDEF0123456789ABCDEF01234567890/nothing.sym")
        #expect(missing.status == 404 && missing.text == "Symbol Not Found")
        for weird in ["/x%C3%BCl.pdb/ABCD/xul.sym", "/xul.pdb/NOTHEX/xul.sym"] {
            #expect(try await h.send(.GET, weird).status == 404, "\(weird)")
        }
    }

    static func gzip(_ data: Data) throws -> Data {
        var buffer = ByteBuffer(data: data)
        return Data(try buffer.compress(with: .gzip()).readableBytesView)
    }

    static func md5(_ data: Data) -> String { Insecure.MD5.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    @Test(arguments: Backend.allCases)
    func uploadV2ManifestsPutsAndSkips(_ backend: Backend) async throws {
        let h = try await SymbolServerHarness(backend)
        defer { Task { await h.close() } }
        let sym = Data("MODULE windows x86_64 AABBCCDDEEFF00112233445566778899A v2.pdb\nINFO CODE_ID 5F00AA11 v2.dll\nFUNC 10 5 0 f\n".utf8)
        let cab = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        #expect(try await h.upload(try ZipBuilder.make([("old.pdb/AB/old.sym", Data("MODULE windows x86 AB old.pdb\n".utf8))]), token: h.token).status == 201)
        let old = Data("MODULE windows x86 AB old.pdb\n".utf8)
        func entry(_ key: String, _ data: Data, md5: String? = nil) -> JSONValue {
            .object([("key", .string(key)), ("size", .int(Int64(data.count))), ("md5_hash", .string(md5 ?? Self.md5(data)))])
        }
        let manifest = JSONValue.object([("files", .array([
            entry("v2.pdb/AABBCCDDEEFF00112233445566778899A/v2.sym", sym), entry("v2.dll/5F00AA115000/v2.dl_", cab),
            entry("old.pdb/AB/old.sym", old), entry("../AB/x.sym", old), entry("x.pdb/AB/x.sym", old, md5: "XYZ"),
        ]))])
        let answer = try await h.send(.POST, "/upload/v2/", headers: [("Auth-Token", h.token)], body: Data(manifest.serialized().utf8))
        #expect(answer.status == 201, "\(answer.text)")
        let actions = try #require(answer.json?["files"]?.arrayValue)
        #expect(actions.map { $0["action"]?["type"]?.stringValue } == ["upload", "upload", "skip", "error", "error"])
        #expect(actions[3]["action"]?["msg"] == .string("invalid key") && actions[4]["action"]?["msg"] == .string("invalid MD5 hex digest"))
        #expect(actions[0]["action"]?["content_encoding"] == .string("gzip") && actions[1]["action"]?["content_encoding"] == nil)
        #expect(answer.json?["upload_protocol"] == .string(backend == .embedded ? "postmortem-put" : "s3-presigned-put"))
        let symURL = try #require(actions[0]["action"]?["url"]?.stringValue), cabURL = try #require(actions[1]["action"]?["url"]?.stringValue)
        if backend == .embedded {
            // Bytes that differ from the manifest are refused; a forged URL is refused.
            let wrong = try await h.send(.PUT, cabURL, body: Data(cab.reversed()))
            #expect(wrong.status == 400 && wrong.error?.contains("differs from the manifest") == true, "\(wrong.text)")
            let forged = try await h.send(.PUT, cabURL.replacingOccurrences(of: "v2.dl_", with: "v3.dl_").dropLast(3) + "abc", body: cab)
            #expect(forged.status == 403 && forged.error == "invalid or expired upload URL")
        }
        // As the action says: the client sends the .sym compressed, with `Content-Encoding: gzip`.
        #expect([200, 201].contains(try await h.send(.PUT, symURL, headers: [("Content-Encoding", "gzip")], body: try Self.gzip(sym)).status))
        #expect([200, 201].contains(try await h.send(.PUT, cabURL, body: cab).status))
        let id = try #require(answer.json?["id"]?.intValue)
        let done = try await h.send(.POST, "/upload/v2/\(id)/complete", headers: [("Auth-Token", h.token)])
        #expect(done.status == 200 && done.json?["errors"] == .array([]), "\(done.text)")
        #expect(Set(done.json?["upload"]?["files"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                == ["v1/v2.pdb/AABBCCDDEEFF00112233445566778899A/v2.sym", "v1/v2.dll/5F00AA115000/v2.dl_"])
        #expect(done.json?["upload"]?["skipped_keys"] == .array([.string("old.pdb/AB/old.sym")]))
        #expect(h.stored.contains { $0.debugFilename == "v2.pdb" && $0.codeFile == "v2.dll" })
        // Both are served like v1 uploads, and the code id finds the symbols.
        let viaCode = try await h.send(.GET, "/v2.dll/5F00AA11/v2.sym")
        #expect(viaCode.status == 302 && viaCode.headers.first(name: "Location") == "/v2.pdb/AABBCCDDEEFF00112233445566778899A/v2.sym")
        var symbols = try await h.send(.GET, "/v2.pdb/AABBCCDDEEFF00112233445566778899A/v2.sym")
        if backend == .scaleOut { symbols = try await h.send(.GET, try #require(symbols.headers.first(name: "Location"))) }
        #expect(symbols.headers.first(name: "Content-Encoding") == "gzip")
        #expect(try Self.gunzip(symbols.body) == sym)
        var got = try await h.send(.GET, "/v2.dll/5F00AA115000/v2.dl_")
        if backend == .scaleOut { got = try await h.send(.GET, try #require(got.headers.first(name: "Location"))) }
        #expect(got.status == 200 && got.body == cab)
        let again = try await h.send(.POST, "/upload/v2/", headers: [("Auth-Token", h.token)], body: Data(manifest.serialized().utf8))
        #expect(again.json?["files"]?.arrayValue?.prefix(3).map { $0["action"]?["type"]?.stringValue } == ["skip", "skip", "skip"])
        let tooMany = JSONValue.object([("files", .array(Array(repeating: entry("a.pdb/AB/a.sym", old), count: 1025)))])
        let refused = try await h.send(.POST, "/upload/v2/", headers: [("Auth-Token", h.token)], body: Data(tooMany.serialized().utf8))
        #expect(refused.status == 400 && refused.error == "too many files")
        let malformed = try await h.send(.POST, "/upload/v2/", headers: [("Auth-Token", h.token)], body: Data("{".utf8))
        #expect(malformed.status == 400 && malformed.error == "malformed JSON request body")
    }

    @Test func trySymbolsLiveInTheirOwnNamespace() async throws {
        let h = try await SymbolServerHarness(.embedded)
        defer { Task { await h.close() } }
        let sym = Data("MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 libtry.so\nINFO CODE_ID 89674523AB01EFCD\nFUNC 0 1 0 f\n".utf8)
        let answer = try await h.upload(try ZipBuilder.make([("libtry.so/0123456789ABCDEF0123456789ABCDEF0/libtry.so.sym", sym)]), token: h.tryToken)
        #expect(answer.status == 201)
        #expect(answer.json?["upload"]?["try_symbols"] == .bool(true))
        #expect(try await h.storedKeys() == ["symbols/try/v1/libtry.so/0123456789ABCDEF0123456789ABCDEF0/libtry.so.sym"])
        let path = "/libtry.so/0123456789ABCDEF0123456789ABCDEF0/libtry.so.sym"
        #expect(try await h.send(.GET, path).status == 404)
        #expect(try await h.send(.GET, path + "?try").status == 200)
        #expect(try await h.send(.GET, "/try" + path).status == 200)
        #expect(try await h.send(.GET, "/libtry.so/89674523AB01EFCD/libtry.so.sym").status == 404, "try files are found by code id only with try")
        let viaCode = try await h.send(.GET, "/try/libtry.so/89674523AB01EFCD/libtry.so.sym")
        #expect(viaCode.status == 302 && viaCode.headers.first(name: "Location") == "/try" + path)

        // A regular token uploading with the `try` field makes a try upload too.
        let other = Data("MODULE Linux x86_64 1123456789ABCDEF0123456789ABCDEF0 libtwo.so\n".utf8)
        let forced = try await h.upload(try ZipBuilder.make([("libtwo.so/1123456789ABCDEF0123456789ABCDEF0/libtwo.so.sym", other)]),
                                        token: h.token, fields: [("try", "1")])
        #expect(forced.json?["upload"]?["try_symbols"] == .bool(true))

        let auth = try await h.send(.POST, "/upload/auth_info/", headers: [("Auth-Token", h.tryToken + "-ci-label")])
        #expect(auth.status == 200)
        #expect(auth.json?["email"] == .string("uploader@example.com") && auth.json?["try_symbols"] == .bool(true))
        #expect(auth.json?["upload_api_version"] == .int(1))
    }

    @Test func authenticationAndMethodErrorsUseTeckensMessages() async throws {
        let h = try await SymbolServerHarness(.embedded)
        defer { Task { await h.close() } }
        let zip = try testArchive("sample.zip")
        #expect(try await h.upload(zip, token: nil).error == "This requires an Auth-Token to authenticate the request")
        #expect(try await h.upload(zip, token: "0123456789abcdef0123456789abcdef").error == "API Token not matched")
        let viewer = try await h.fixture.metadata.createAccount(email: "viewer@example.com")
        try await h.fixture.metadata.grant("view_pii", to: viewer.id)
        let viewerToken = try await h.fixture.metadata.createToken(accountID: viewer.id, permissions: ["view_pii"]).0
        let forbidden = try await h.upload(zip, token: viewerToken)
        #expect(forbidden.status == 403 && forbidden.error == "Forbidden")
        let get = try await h.send(.GET, "/upload/")
        #expect(get.status == 405 && get.error == "Method Not Allowed (GET): /upload/")
        #expect(get.headers.first(name: "Allow") == "POST")
        await #expect(throws: MetadataStore.InvalidTokenPermissions.self) {
            _ = try await h.fixture.metadata.createToken(accountID: h.account.id, permissions: ["upload_symbols", "upload_try_symbols"])
        }

        // A 100 MB body without a usable token: the whole body is read, then the client gets the 403.
        let big = Data(count: 100 << 20)
        let answer = try await h.upload(big, token: viewerToken)
        #expect(answer.status == 403 && answer.error == "Forbidden")
        #expect(try await h.storedKeys().isEmpty)
        #expect(try await h.fixture.metadata.symbolUploads().total == 0)
    }

    @Test func hostileArchivesAreRefusedAndStoreNothing() async throws {
        let h = try await SymbolServerHarness(.embedded) { s in s.allowedDownloadHosts = ["127.0.0.1"]; s.allowInsecureDownloads = true }
        defer { Task { await h.close() } }
        let sym = Data("MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 a.so\n".utf8)
        let good = ("a.so/ABCDEF0123456789ABCDEF01234567890/a.so.sym", sym)
        var cases: [(String, Data, String)] = [
            ("traversal", try ZipBuilder.make([good, ("../ABCDEF/a.sym", sym)]), "contains '.' or '..' components"),
            ("absolute path", try ZipBuilder.make([good, ("/etc/ABCDEF/passwd", sym)]), "First unrecognized pattern was '/etc/ABCDEF/passwd'"),
            ("symlink", try ZipBuilder.make([good], symlinks: [("b.so/ABCDEF/b.sym", "/etc/passwd")]), "is a symbolic link"),
        ]
        // Big archives are written by Python's zipfile (ZIPFoundation rewrites its directory on
        // every entry): 10,000 members, and a bomb of 1 GB of zeros that deflates to about 1 MB.
        let many = try pythonZip(h, """
            for i in range(10000): z.writestr('m%d.so/ABCDEF/m.sym' % i, 'MODULE Linux x86_64 ABCDEF m.so\\n')
            """)
        cases.append(("10,000 members", many, "more than 5000 members"))
        let bomb = try pythonZip(h, """
            with z.open('z.so/ABCDEF/z.sym', 'w', force_zip64=True) as w:
                block = bytes(1 << 24)
                for _ in range(64): w.write(block)
            """)
        #expect(bomb.count < 4 << 20)
        cases.append(("1 GB bomb", bomb, "refused as a zip bomb"))
        // A damaged member (one byte of its stored data changed): only inflating it shows it.
        let payload = Data("MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 d.so\nFUNC 0 1 0 damaged\n".utf8)
        var damaged = try ZipBuilder.make([good, ("d.so/ABCDEF0123456789ABCDEF01234567890/d.so.sym", payload)], compression: .none)
        let at = try #require(damaged.range(of: Data("FUNC 0 1 0 damaged".utf8))).lowerBound
        damaged[at] = UInt8(ascii: "X")
        cases.append(("damaged member", damaged,
                      "The archive member 'd.so/ABCDEF0123456789ABCDEF01234567890/d.so.sym' is damaged (it does not inflate to its recorded size and CRC-32)"))
        for (label, zip, message) in cases {
            let answer = try await h.upload(zip, token: h.token)
            #expect(answer.status == 400, "\(label): \(answer.status) \(answer.text.prefix(300))")
            #expect(answer.error?.contains(message) == true, "\(label): \(answer.text.prefix(300))")
        }

        // Upload by URL: a redirect to a host outside the allow-list is refused before any GET.
        let files = try TestHTTPServer(routes: [
            "/sample.zip": .file(try TestData.path("tecken/sample.zip")),
            "/bounce.zip": .redirect("http://localhost:1/internal.zip"),
        ])
        defer { files.shutdown() }
        let form = ["Auth-Token": h.token, "Content-Type": "application/x-www-form-urlencoded"].map { ($0.key, $0.value) }
        let bounced = try await h.send(.POST, "/upload/", headers: form, body: Data("url=\(files.baseURL)/bounce.zip".utf8))
        #expect(bounced.status == 400 && bounced.error == "Not an allowed domain ('localhost') to download from.", "\(bounced.text)")
        let outside = try await h.send(.POST, "/upload/", headers: form, body: Data("url=http://example.com/x.zip".utf8))
        #expect(outside.status == 400 && outside.error == "Not an allowed domain ('example.com') to download from.")
        #expect(try await h.storedKeys().isEmpty)
        #expect(try await h.fixture.metadata.symbolUploads().total == 0)

        // And what is allowed works: the server downloads the archive itself.
        let fetched = try await h.send(.POST, "/upload/", headers: form, body: Data("url=\(files.baseURL)/sample.zip".utf8))
        #expect(fetched.status == 201, "\(fetched.text)")
        #expect(fetched.json?["upload"]?["download_url"] == .string("\(files.baseURL)/sample.zip"))
        #expect(fetched.json?["upload"]?["files"]?.arrayValue?.count == 2)
        let gone = try await h.send(.POST, "/upload/", headers: form, body: Data("url=\(files.baseURL)/nothing.zip".utf8))
        #expect(gone.status == 400 && gone.error == "\(files.baseURL)/nothing.zip can't be found (404)")
        let insecure = try await SymbolServerHarness(.embedded) { s in s.allowedDownloadHosts = ["127.0.0.1"] }
        defer { Task { await insecure.close() } }
        let refused = try await insecure.send(.POST, "/upload/", headers: [("Auth-Token", insecure.token), ("Content-Type", "application/x-www-form-urlencoded")],
                                              body: Data("url=\(files.baseURL)/sample.zip".utf8))
        #expect(refused.status == 400 && refused.error == "Insecure URL")
    }

    /// A zip written by Python's zipfile: `body` runs with `z` open for writing (deflate).
    func pythonZip(_ h: SymbolServerHarness, _ body: String) throws -> Data {
        let path = h.temporaryDirectory + "-\(UUID().uuidString).zip"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let indented = body.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n" + indented + "\n"
        let (status, _, err) = try runProcess(try #require(findExecutable("python3")), ["-c", script, path], timeout: .seconds(300))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test func listingsStatisticsAndTheMissingSymbolsReport() async throws {
        let h = try await SymbolServerHarness(.embedded)
        defer { Task { await h.close() } }
        #expect(try await h.upload(try testArchive("sample.zip"), filename: "sample.zip", token: h.token).status == 201)
        let auth = [("Auth-Token", h.token)]
        let uploads = try await h.send(.GET, "/api/uploads/", headers: auth)
        #expect(uploads.status == 200)
        #expect(uploads.json?["total"] == .int(1))
        let id = try #require(uploads.json?["uploads"]?.arrayValue?.first?["id"])
        #expect(try await h.send(.GET, "/api/uploads/?size=>100000", headers: auth).json?["total"] == .int(0))
        #expect(try await h.send(.GET, "/api/uploads/?size=<100000&user=uploader", headers: auth).json?["total"] == .int(1))
        #expect(try await h.send(.GET, "/api/uploads/?user=!uploader", headers: auth).json?["total"] == .int(0))
        let one = try await h.send(.GET, "/api/uploads/upload/\(id.serialized())", headers: auth)
        #expect(one.json?["upload"]?["file_uploads"]?.arrayValue?.count == 2)
        #expect(try await h.send(.GET, "/api/uploads/", headers: []).status == 403)
        #expect(try await h.send(.GET, "/api/uploads/files/", headers: auth).status == 403, "needs view_all_uploads")
        try await h.fixture.metadata.grant("view_all_uploads", to: h.account.id)
        let admin = try await h.fixture.metadata.createToken(accountID: h.account.id, permissions: ["view_all_uploads"]).0
        let files = try await h.send(.GET, "/api/uploads/files/?key=xpcshell", headers: [("Auth-Token", admin)])
        #expect(files.status == 200 && files.json?["total"] == .int(1), "\(files.text)")
        let fileID = try #require(files.json?["files"]?.arrayValue?.first?["id"])
        let file = try await h.send(.GET, "/api/uploads/files/file/\(fileID.serialized())", headers: [("Auth-Token", admin)])
        #expect(file.json?["file"]?["debug_id"] == .string("BBACA09FD1C13F6C84254BFD8732AF400"))
        let stats = try await h.send(.GET, "/api/stats/", headers: auth)
        #expect(stats.json?["stats"]?["uploads"]?["today"]?["count"] == .int(1))

        // A download miss naming its code file and id (as stackwalkers send) is reported.
        let miss = try await h.send(.GET, "/libmissing.so/FEDCBA9876543210FEDCBA98765432100/libmissing.so.sym?code_file=libmissing.so&code_id=10325476")
        #expect(miss.status == 404)
        let report = try await h.send(.GET, "/api/missingsymbols/")
        #expect(report.json?["hits"]?.arrayValue?.first?["debug_file"] == .string("libmissing.so"))
        #expect(report.json?["hits"]?.arrayValue?.first?["code_id"] == .string("10325476"))
        #expect(report.json?["hits"]?.arrayValue?.first?["download_misses"] == .int(1))
        let csv = try await h.send(.GET, "/api/missingsymbols.csv")
        #expect(csv.headers.first(name: "Content-Type")?.hasPrefix("text/csv") == true)
        #expect(csv.text.contains("libmissing.so,FEDCBA9876543210FEDCBA98765432100,libmissing.so,10325476,0,1,"))

        // Its upload takes it off the report and tells the waiting crashes.
        let sym = Data("MODULE Linux x86_64 FEDCBA9876543210FEDCBA98765432100 libmissing.so\nINFO CODE_ID 10325476\n".utf8)
        #expect(try await h.upload(try ZipBuilder.make([("libmissing.so/FEDCBA9876543210FEDCBA98765432100/libmissing.so.sym", sym)]), token: h.token).status == 201)
        #expect(h.stored.last?.debugFilename == "libmissing.so" && h.stored.last?.debugId == "FEDCBA9876543210FEDCBA98765432100")
    }

    /// What the processor and the symbolication service do against a symbol server URL: a
    /// module known only by code file and id is found through the redirect, and a miss leaves
    /// its code file and id in the missing-symbols report.
    @Test(arguments: Backend.allCases)
    func aSymbolSupplierPointedAtTheServerFindsUploadsAndReportsMisses(_ backend: Backend) async throws {
        let h = try await SymbolServerHarness(backend)
        defer { Task { await h.close() } }
        #expect(try await h.upload(try ZipBuilder.make(try symbolTree()), token: h.token).status == 201)
        let supplier = SymbolSupplier(configuration: SymbolSourcesConfiguration(symbolURLs: [h.base + "/"],
                                                                              cacheDirectory: h.temporaryDirectory + "-cache", attempts: 1))
        let byCode = await supplier.symbols(for: ModuleIdentity(debugFile: "", debugId: "", codeFile: "qipcap64.dll", codeId: "6A4806059000"))
        #expect(byCode.table?.module.debugFile == "qipcap64.pdb", "\(String(describing: byCode.notFound)) \(String(describing: byCode.report.source))")
        let byDebug = await supplier.symbols(for: ModuleIdentity(debugFile: "ssltunnel", debugId: "8A07C88A3DA44E20A3490D88791183060"))
        #expect(byDebug.table?.module.codeId == "8AC8078AA43D204EA3490D88791183066C426696")
        let missing = await supplier.symbols(for: ModuleIdentity(debugFile: "nowhere.pdb", debugId: "00112233445566778899AABBCCDDEEFF1",
                                                                 codeFile: "C:\\app\\nowhere.dll", codeId: "5F00AA113000"))
        #expect(missing.table == nil)
        await supplier.shutdown()
        let report = try await h.send(.GET, "/api/missingsymbols/")
        let hit = report.json?["hits"]?.arrayValue?.first { $0["debug_file"] == .string("nowhere.pdb") }
        #expect(hit?["code_file"] == .string("nowhere.dll") && hit?["code_id"] == .string("5F00AA113000"), "\(report.text)")
    }

    @Test func theTokenAPISharesAccountsTokensAndTheAuditLog() async throws {
        let h = try await SymbolServerHarness(.embedded)
        defer { Task { await h.close() } }
        #expect(try await h.send(.GET, "/api/tokens/", headers: [("Auth-Token", h.token)]).status == 403, "needs manage_tokens")
        try await h.fixture.metadata.grant("manage_tokens", to: h.account.id)
        let manager = try await h.fixture.metadata.createToken(accountID: h.account.id, permissions: ["manage_tokens"]).0
        let auth = [("Auth-Token", manager)], form = auth + [("Content-Type", "application/x-www-form-urlencoded")]
        let list = try await h.send(.GET, "/api/tokens/", headers: auth)
        #expect(list.json?["totals"]?["active"] == .int(3))
        #expect(Set(list.json?["permissions"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []) == [6, 7, 9])
        #expect(list.json?["tokens"]?.arrayValue?.first?["key"]?.stringValue?.hasSuffix("…") == true, "keys are never shown again")

        let created = try await h.send(.POST, "/api/tokens/", headers: form, body: Data("permissions=7&expires=10&notes=ci+try".utf8))
        #expect(created.status == 201 && created.json?["ok"] == .bool(true))
        let key = try #require(created.json?["key"]?.stringValue)
        #expect(try await h.send(.POST, "/upload/auth_info/", headers: [("Auth-Token", key)]).json?["try_symbols"] == .bool(true))
        let both = try await h.send(.POST, "/api/tokens/", headers: form, body: Data("permissions=6,7".utf8))
        #expect(both.status == 400 && both.json?["errors"]?["permissions"] == .array([.string("Invalid combination of permissions")]))
        let notHeld = try await h.send(.POST, "/api/tokens/", headers: form, body: Data("permissions=1".utf8))
        #expect(notHeld.status == 403 && notHeld.error == "View Personal Identifiable Information not a valid permission")
        #expect(try await h.send(.POST, "/api/tokens/", headers: form, body: Data("expires=5".utf8)).json?["errors"]?["permissions"] != nil)

        let tokens = try await h.send(.GET, "/api/tokens/?state=all", headers: auth).json?["tokens"]?.arrayValue ?? []
        let newest = try #require(tokens.first)
        #expect(newest["notes"] == .string("ci try") && newest["permissions"]?.arrayValue?.first?["name"] == .string("Upload Try Symbols Files"))
        let id = try #require(newest["id"]?.intValue)
        #expect(try await h.send(.POST, "/api/tokens/token/\(id)/extend", headers: form, body: Data("days=30".utf8)).json?["ok"] == .bool(true))
        #expect(try await h.send(.DELETE, "/api/tokens/token/\(id)", headers: auth).json?["ok"] == .bool(true))
        #expect(try await h.send(.POST, "/upload/auth_info/", headers: [("Auth-Token", key)]).error == "API Token not matched")
        let log = try await h.fixture.metadata.auditLog().map(\.action)
        #expect(log.contains("token-extend") && log.contains("token-revoke") && log.contains("token-create"))
    }

    @Test func cleanupDeletesRecordsPastRetentionOnly() async throws {
        let h = try await SymbolServerHarness(.embedded)
        defer { Task { await h.close() } }
        #expect(try await h.upload(try testArchive("sample.zip"), token: h.token).status == 201)
        #expect(try await h.upload(try ZipBuilder.make([("t.so/AB/t.so.sym", Data("MODULE Linux x86_64 AB t.so\n".utf8))]), token: h.tryToken).status == 201)
        let orphan = h.temporaryDirectory + "/upload-orphan.body"
        let start = Date(timeIntervalSince1970: Double(h.fixture.clock.now) / 1_000_000)
        FileManager.default.createFile(atPath: orphan, contents: Data("x".utf8), attributes: [.modificationDate: start])
        let cleanup = SymbolUploadCleanup(metadata: h.fixture.metadata, settings: h.server.settings)
        #expect(try await cleanup.runOnce(dryRun: true, now: start) == .init(uploads: 0, files: 0, temporaryFiles: 0))
        // 31 days on: the try upload goes, the regular one stays; the stale temporary file goes.
        let later = start.addingTimeInterval(31 * 86_400)
        #expect(try await cleanup.runOnce(dryRun: true, now: later) == .init(uploads: 1, files: 1, temporaryFiles: 1))
        #expect(FileManager.default.fileExists(atPath: orphan))
        #expect(try await cleanup.runOnce(dryRun: false, now: later) == .init(uploads: 1, files: 1, temporaryFiles: 1))
        #expect(!FileManager.default.fileExists(atPath: orphan))
        let left = try await h.fixture.metadata.symbolUploads()
        #expect(left.total == 1 && left.records[0].isTry == false)
        // Stored files stay downloadable.
        #expect(try await h.send(.HEAD, "/try/t.so/AB/t.so.sym").status == 200)
    }
}
