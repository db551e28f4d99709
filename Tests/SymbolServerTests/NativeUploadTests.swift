import Foundation
import NIOCore
import Storage
import Testing
import TestSupport

/// Native debug files in an upload: an ELF shared library and a gzip-wrapped debug file
/// (`.dbg.gz`) are stored as uploaded, and each also gets the `.sym` dumped from it under the ids
/// derived from the file itself — downloadable at the usual path, recorded with its module ids.
@Suite struct NativeUploadTests {
    @Test(arguments: Backend.allCases)
    func elfMembersGetTheirSymbolFiles(_ backend: Backend) async throws {
        let dir = TestData.temporaryDirectory("native-upload")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/native.c"
        try Data("""
            static inline int sq(int x) { return x * x; }
            __attribute__((noinline)) int native_sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(i); return s; }
            int native_entry(int n) { return native_sum(n) + 1; }
            """.utf8).write(to: URL(fileURLWithPath: source))
        let cc = try #require(findExecutable("gcc", "cc"), "a C compiler is required")
        for (name, flags) in [("libnative.so", ["-O2", "-g", "-shared", "-fPIC"]), ("libother.so", ["-O0", "-gdwarf-4", "-shared", "-fPIC"])] {
            let (status, _, err) = try runProcess(cc, flags + ["-o", dir + "/" + name, source])
            #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        }
        let library = try Data(contentsOf: URL(fileURLWithPath: dir + "/libnative.so"))
        let (gzStatus, gzipped, _) = try runProcess("/usr/bin/env", ["gzip", "-c", dir + "/libother.so"])
        #expect(gzStatus == 0)
        // The uploader's directory ids are placeholders: the .sym goes under the derived ids.
        let zip = try ZipBuilder.make([("libnative.so/00000000000000000000000000000000/libnative.so", library),
                                       ("libother.so/00000000000000000000000000000000/libother.so.dbg.gz", Data(gzipped))])
        let h = try await SymbolServerHarness(backend)
        defer { Task { await h.close() } }
        let answer = try await h.upload(zip, token: h.token)
        #expect(answer.status == 201, "\(answer.text)")
        for (name, function) in [("libnative.so", "native_sum"), ("libother.so", "native_entry")] {
            let record = try #require(try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse(name + ".sym")]).records.first,
                                      "no .sym stored for \(name): \(answer.text)")
            let id = try #require(record.debugId)
            #expect(record.debugFilename == name && id.count == 33 && id != "000000000000000000000000000000000")
            var response = try await h.send(.GET, "/\(name)/\(id)/\(name).sym")
            if backend == .scaleOut, response.status == 302, let location = response.headers.first(name: "Location") { response = try await h.send(.GET, location) }
            #expect(response.status == 200, "\(name): \(response.status)")
            let text = String(decoding: response.headers.first(name: "Content-Encoding") == "gzip" ? try SymbolServerHTTPTests.gunzip(response.body) : response.body,
                              as: UTF8.self)
            #expect(text.hasPrefix("MODULE Linux x86_64 \(id) \(name)\n") && text.contains(" \(function)\n") && text.contains("STACK CFI INIT"),
                    "\(text.prefix(400))")
        }
        // The originals are stored as uploaded.
        for key in ["libnative.so/00000000000000000000000000000000/libnative.so", "libother.so/00000000000000000000000000000000/libother.so.dbg.gz"] {
            let stored = try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse(key)]).records
            #expect(stored.count == 1, "\(key)")
        }
    }
}
