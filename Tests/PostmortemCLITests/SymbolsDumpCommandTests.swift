import Foundation
import Testing
import TestSupport

/// `postmortem symbols dump` on a fat Mach-O file: `--tree` writes every architecture under its
/// own UUID, `--arch` picks one for standard output.
@Suite struct SymbolsDumpCommandTests {
    @Test func aFatFileGivesATreeEntryPerArchitecture() throws {
        let dir = TestData.temporaryDirectory("dump-fat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clang = try #require(findExecutable("clang"), "clang is required")
        let linker = try #require(findExecutable("ld64.lld-14"), "Debian's lld-14 is required to link Mach-O")
        let lipo = try #require(findExecutable("llvm-lipo-14"), "Debian's llvm-14 (llvm-lipo-14) is required")
        try Data("int twice(int x) { return x * 2; }\nint entry(int n) { return twice(n) + 1; }\n".utf8).write(to: URL(fileURLWithPath: dir + "/f.c"))
        var slices: [String] = []
        for arch in ["arm64", "x86_64"] {
            let (cc, _, e1) = try runProcess(clang, ["-target", "\(arch)-apple-macos11", "-O1", "-g", "-c", "-o", "\(dir)/\(arch).o", dir + "/f.c"])
            #expect(cc == 0, "\(String(decoding: e1, as: UTF8.self))")
            let (ld, _, e2) = try runProcess(linker, ["-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-dylib", "-o", "\(dir)/\(arch).dylib", "\(dir)/\(arch).o"])
            #expect(ld == 0, "\(String(decoding: e2, as: UTF8.self))")
            slices.append("\(dir)/\(arch).dylib")
        }
        let (lipoStatus, _, _) = try runProcess(lipo, ["-create"] + slices + ["-output", dir + "/libfat.dylib"])
        #expect(lipoStatus == 0)
        let postmortem = try CommandLineTests.executable()
        let (status, _, err) = try runProcess(postmortem, ["symbols", "dump", "--tree", dir + "/tree", dir + "/libfat.dylib"])
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        let written = (FileManager.default.enumerator(atPath: dir + "/tree")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".sym") }.sorted()
        #expect(written.count == 2 && written.allSatisfy { $0.hasPrefix("libfat.dylib/") && $0.hasSuffix("/libfat.dylib.sym") }, "\(written)")
        var architectures: [String] = []
        for path in written {
            let text = try String(contentsOfFile: dir + "/tree/" + path, encoding: .utf8)
            let module = text.prefix { $0 != "\n" }.split(separator: " ")
            #expect(module.count == 5 && path.split(separator: "/")[1] == module[3], "the directory is the slice's id: \(path) \(module)")
            if module.count == 5 { architectures.append(String(module[2])) }
            // A linked Mach-O image keeps no DWARF (it stays in the objects, for dsymutil): its
            // symbols and its compact unwind information.
            #expect(text.contains("PUBLIC ") && text.contains(" twice\n") && text.contains("STACK CFI INIT "), "\(text)")
        }
        #expect(architectures.sorted() == ["arm64", "x86_64"])
        let (one, out, _) = try runProcess(postmortem, ["symbols", "dump", "--arch", "x86_64", dir + "/libfat.dylib"])
        #expect(one == 0 && String(decoding: out.prefix(40), as: UTF8.self).hasPrefix("MODULE mac x86_64 "))
    }
}
