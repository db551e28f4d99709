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

    /// Mach-O members: a fat dylib (arm64 and x86_64, linked by Debian's lld 14, joined by
    /// llvm-lipo-14) gets one `.sym` per architecture under each slice's UUID, a dSYM's DWARF
    /// file and a `.dSYM.tar.bz2` bundle their functions and lines.
    @Test(arguments: Backend.allCases)
    func machOMembersGetOneSymbolFilePerArchitecture(_ backend: Backend) async throws {
        let dir = TestData.temporaryDirectory("native-macho")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clang = try #require(findExecutable("clang"), "clang is required")
        let linker = try #require(findExecutable("ld64.lld-14"), "Debian's lld-14 is required to link Mach-O")
        let lipo = try #require(findExecutable("llvm-lipo-14"), "Debian's llvm-14 (llvm-lipo-14) is required")
        let dsymutil = try #require(findExecutable("dsymutil-14"), "Debian's llvm-14 (dsymutil-14) is required")
        try Data("""
            static inline int sq(int x) { return x * x; }
            __attribute__((noinline)) int mac_sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(i); return s; }
            int mac_entry(int n) { return mac_sum(n) + 1; }
            """.utf8).write(to: URL(fileURLWithPath: dir + "/mac.c"))
        var slices: [String] = []
        for arch in ["arm64", "x86_64"] {
            let object = "\(dir)/mac-\(arch).o", image = "\(dir)/mac-\(arch).dylib"
            let (cc, _, ccErr) = try runProcess(clang, ["-target", "\(arch)-apple-macos11", "-O2", "-g", "-c", "-o", object, dir + "/mac.c"])
            #expect(cc == 0, "\(String(decoding: ccErr, as: UTF8.self))")
            let (ld, _, ldErr) = try runProcess(linker, ["-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-dylib", "-o", image, object])
            #expect(ld == 0, "\(String(decoding: ldErr, as: UTF8.self))")
            slices.append(image)
        }
        let (lipoStatus, _, lipoErr) = try runProcess(lipo, ["-create"] + slices + ["-output", dir + "/libmac.dylib"])
        #expect(lipoStatus == 0, "\(String(decoding: lipoErr, as: UTF8.self))")
        let (dsymStatus, _, dsymErr) = try runProcess(dsymutil, [slices[0], "-o", dir + "/macdbg.dSYM"])
        #expect(dsymStatus == 0, "\(String(decoding: dsymErr, as: UTF8.self))")
        let fat = try Data(contentsOf: URL(fileURLWithPath: dir + "/libmac.dylib"))
        let dwarf = try Data(contentsOf: URL(fileURLWithPath: dir + "/macdbg.dSYM/Contents/Resources/DWARF/mac-arm64.dylib"))
        // Tecken's dSYM bundle form: the x86_64 slice's dSYM as a pax tar, bzip2-compressed; and
        // a damaged one, which is stored and makes no .sym.
        let (x86Status, _, x86Err) = try runProcess(dsymutil, [slices[1], "-o", dir + "/MacX.dSYM"])
        #expect(x86Status == 0, "\(String(decoding: x86Err, as: UTF8.self))")
        let (tarStatus, _, tarErr) = try runProcess("/usr/bin/env", ["tar", "--format=pax", "-C", dir, "-cjf", dir + "/MacX.dSYM.tar.bz2", "MacX.dSYM"])
        #expect(tarStatus == 0, "tar with bzip2 is required: \(String(decoding: tarErr, as: UTF8.self))")
        let tarball = try Data(contentsOf: URL(fileURLWithPath: dir + "/MacX.dSYM.tar.bz2"))
        var damaged = tarball
        for i in stride(from: 40, to: min(damaged.count, 400), by: 7) { damaged[i] ^= 0xA5 }
        let zip = try ZipBuilder.make([("libmac.dylib/00000000000000000000000000000000/libmac.dylib", fat),
                                       ("macdbg/00000000000000000000000000000000/macdbg", dwarf),
                                       ("MacX/00000000000000000000000000000000/MacX.dSYM.tar.bz2", tarball),
                                       ("Broken/00000000000000000000000000000000/Broken.dSYM.tar.bz2", damaged)])
        let h = try await SymbolServerHarness(backend)
        defer { Task { await h.close() } }
        let answer = try await h.upload(zip, token: h.token)
        #expect(answer.status == 201, "\(answer.text)")
        let records = try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse("libmac.dylib.sym")]).records
        #expect(records.count == 2, "one .sym per architecture: \(records.map(\.key))")
        var architectures: [String] = []
        for record in records {
            let id = try #require(record.debugId)
            var response = try await h.send(.GET, "/libmac.dylib/\(id)/libmac.dylib.sym")
            if backend == .scaleOut, response.status == 302, let location = response.headers.first(name: "Location") { response = try await h.send(.GET, location) }
            #expect(response.status == 200)
            let text = String(decoding: response.headers.first(name: "Content-Encoding") == "gzip" ? try SymbolServerHTTPTests.gunzip(response.body) : response.body,
                              as: UTF8.self)
            let module = text.prefix { $0 != "\n" }.split(separator: " ")
            #expect(module.count == 5 && module[1] == "mac" && module[3] == id && module[4] == "libmac.dylib", "\(module)")
            if module.count == 5 { architectures.append(String(module[2])) }
            #expect(text.contains(" mac_sum\n") && text.contains("STACK CFI INIT"), "\(text.prefix(500))")
        }
        #expect(architectures.sorted() == ["arm64", "x86_64"])
        // The dSYM's DWARF: functions with lines, under the arm64 slice's UUID.
        let dsymRecord = try #require(try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse("macdbg.sym")]).records.first)
        #expect(records.contains { $0.debugId == dsymRecord.debugId })
        var response = try await h.send(.GET, "/macdbg/\(dsymRecord.debugId ?? "")/macdbg.sym")
        if backend == .scaleOut, response.status == 302, let location = response.headers.first(name: "Location") { response = try await h.send(.GET, location) }
        let text = String(decoding: response.headers.first(name: "Content-Encoding") == "gzip" ? try SymbolServerHTTPTests.gunzip(response.body) : response.body,
                          as: UTF8.self)
        #expect(text.contains("FUNC ") && text.contains(" mac_sum\n") && text.contains("FILE 0 ") && text.contains("mac.c"), "\(text.prefix(500))")

        // The tarball's DWARF under the x86_64 slice's UUID; the damaged one stored as it came.
        let x86ID = try #require(records.first { r in architectures.count == 2 && r.debugId != dsymRecord.debugId }?.debugId)
        let bundle = try #require(try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse("MacX.sym")]).records.first, "\(answer.text)")
        #expect(bundle.debugId == x86ID && bundle.debugFilename == "MacX")
        response = try await h.send(.GET, "/MacX/\(x86ID)/MacX.sym")
        if backend == .scaleOut, response.status == 302, let location = response.headers.first(name: "Location") { response = try await h.send(.GET, location) }
        let bundleText = String(decoding: response.headers.first(name: "Content-Encoding") == "gzip" ? try SymbolServerHTTPTests.gunzip(response.body) : response.body,
                                as: UTF8.self)
        #expect(bundleText.hasPrefix("MODULE mac x86_64 \(x86ID) MacX\n") && bundleText.contains(" mac_sum\n"), "\(bundleText.prefix(300))")
        #expect(try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse("Broken.dSYM.tar.bz2")]).records.count == 1)
        #expect(try await h.fixture.metadata.symbolFiles(keyContains: [RecordFilter.parse("Broken.sym")]).records.isEmpty)
    }
}
