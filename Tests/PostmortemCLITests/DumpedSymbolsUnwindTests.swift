import Foundation
import JSONSupport
import Testing
import TestSupport

/// The whole native path: the Crashpad crasher built optimized and without frame pointers
/// crashes under the real `crashpad_handler`; `postmortem symbols dump --tree` writes its `.sym`
/// (CFI from `.eh_frame`, functions and lines from DWARF); `postmortem stackwalk` with that tree
/// recovers the source's call chain, every caller frame by CFI, with function names and lines.
@Suite struct DumpedSymbolsUnwindTests {
    @Test func aFramePointerlessCrashUnwindsByTheDumpedCFI() throws {
        let crash = try CrashpadCrash.make(flags: ["-O2", "-fomit-frame-pointer", "-g"])
        let symbols = TestData.temporaryDirectory("dumped-symbols")
        defer { try? FileManager.default.removeItem(atPath: symbols) }
        let postmortem = try CommandLineTests.executable()
        let (dumpStatus, _, dumpErr) = try runProcess(postmortem, ["symbols", "dump", "--tree", symbols, crash.binary])
        #expect(dumpStatus == 0, "\(String(decoding: dumpErr, as: UTF8.self))")
        let written = (FileManager.default.enumerator(atPath: symbols)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".sym") }
        #expect(written.count == 1 && written.first?.hasPrefix("crasher/") == true, "\(written)")
        let sym = try String(contentsOfFile: symbols + "/" + (written.first ?? ""), encoding: .utf8)
        #expect(sym.contains("STACK CFI INIT") && sym.contains(" crash_here\n"), "\(sym.prefix(800))")

        let (status, out, err) = try runProcess(postmortem, ["stackwalk", "--json", "--symbols-path", symbols, crash.dump], timeout: .seconds(120))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(800))")
        let report = try #require(JSONValue.parse(out))
        let thread = try #require(report["crashing_thread"])
        let frames = thread["frames"]?.arrayValue ?? []
        let names = frames.prefix(4).map { $0["function"]?.stringValue ?? "?" }
        #expect(names == ["crash_here", "level2", "level1", "main"], "\(frames.prefix(6).map { $0.serialized() })")
        #expect(frames.first?["trust"] == .string("context"))
        for f in frames.dropFirst().prefix(3) {
            #expect(f["trust"] == .string("cfi"), "\(f.serialized())")
            #expect((f["line"]?.intValue ?? 0) > 0 && f["file"]?.stringValue?.hasSuffix("crasher.c") == true, "\(f.serialized())")
        }
        // The module's symbols were found by the dumped debug id.
        let module = report["modules"]?.arrayValue?.first { $0["filename"]?.stringValue == "crasher" }
        #expect(module?["loaded_symbols"] == .bool(true) && module?["missing_symbols"] != .bool(true), "\(module?.serialized() ?? "no crasher module")")
    }

    /// The same crash with no `.sym` anywhere: the tree holds the crasher binary itself under its
    /// debug id, as a symbol server stores a native upload, and the stackwalker reads its DWARF and
    /// CFI directly (writing the table's index, which the second walk uses).
    @Test func aTreeOfNativeDebugFilesNeedsNoSymFile() throws {
        let crash = try CrashpadCrash.make(flags: ["-O2", "-fomit-frame-pointer", "-g"])
        let tree = TestData.temporaryDirectory("native-tree"), cache = TestData.temporaryDirectory("native-cache")
        defer { try? FileManager.default.removeItem(atPath: tree); try? FileManager.default.removeItem(atPath: cache) }
        let postmortem = try CommandLineTests.executable()
        // The debug id as `symbols dump` derives it, from its MODULE line.
        let (_, symOut, _) = try runProcess(postmortem, ["symbols", "dump", "--no-cfi", crash.binary])
        let module = String(decoding: symOut.prefix(200), as: UTF8.self).split(separator: "\n").first?.split(separator: " ") ?? []
        let id = try #require(module.count >= 4 ? String(module[3]) : nil, "\(module)")
        try FileManager.default.createDirectory(atPath: "\(tree)/crasher/\(id)", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: crash.binary, toPath: "\(tree)/crasher/\(id)/crasher")

        for walk in 1...2 {
            let (status, out, err) = try runProcess(postmortem, ["stackwalk", "--json", "--symbols-path", tree, "--symbols-cache", cache, crash.dump],
                                                    timeout: .seconds(120))
            #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(800))")
            let report = try #require(JSONValue.parse(out))
            let frames = report["crashing_thread"]?["frames"]?.arrayValue ?? []
            #expect(frames.prefix(4).map { $0["function"]?.stringValue ?? "?" } == ["crash_here", "level2", "level1", "main"],
                    "walk \(walk): \(frames.prefix(6).map { $0.serialized() })")
            for f in frames.dropFirst().prefix(3) {
                #expect(f["trust"] == .string("cfi") && f["file"]?.stringValue?.hasSuffix("crasher.c") == true, "\(f.serialized())")
            }
            let crasher = report["modules"]?.arrayValue?.first { $0["filename"]?.stringValue == "crasher" }
            #expect(crasher?["loaded_symbols"] == .bool(true), "\(crasher?.serialized() ?? "no crasher module")")
            // The first walk wrote the table's index into the cache; no .sym was ever written.
            let files = FileManager.default.enumerator(atPath: cache)?.allObjects as? [String] ?? []
            #expect(files.contains { $0.hasSuffix(".symc") }, "walk \(walk): \(files)")
            let treeFiles = FileManager.default.enumerator(atPath: tree)?.allObjects as? [String] ?? []
            #expect(!treeFiles.contains { $0.hasSuffix(".sym") })
        }
    }
}
