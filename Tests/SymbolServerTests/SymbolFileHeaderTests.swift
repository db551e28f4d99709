import BreakpadSymbols
import Foundation
import SymbolServer
import Testing
import TestSupport

/// The header an upload records per `.sym`: from the MODULE/INFO lines, ids upper-cased.
@Suite struct SymbolFileHeaderTests {
    @Test func theSampleUploadRecordsItsModuleLineNotItsPath() throws {
        let archive = try UploadArchive(data: try Data(contentsOf: URL(fileURLWithPath: try TestData.path("tecken/sample.zip"))))
        let member = try #require(archive.members.first { $0.name.hasSuffix(".sym") })
        let header = try #require(SymbolFileHeader.read(try archive.contents(of: member)))
        #expect(header.debugFile == "xpcshell")
        #expect(header.debugId == "BBACA09FD1C13F6C84254BFD8732AF400")
        #expect(!member.name.contains(header.debugId)) // the path says A7D6F1BB18CD4CB48
    }

    @Test func infoLinesAndEdgeCases() throws {
        let text = "MODULE windows x86_64 44e4ec8c2f41492b9369d6b9a059577c2 xul.pdb\r\nINFO CODE_ID 5eb9b6c8a1b2c3 xul.dll\r\nINFO GENERATOR mozilla/dump_syms 2.3.4\r\nFILE 0 a.cc\r\nINFO CODE_ID AFTER the.header\n"
        let h = try #require(SymbolFileHeader.read(Data(text.utf8)))
        #expect(h == {
            var e = ModuleInfo(os: "windows", arch: "x86_64", debugId: "44E4EC8C2F41492B9369D6B9A059577C2", debugFile: "xul.pdb")
            e.codeId = "5EB9B6C8A1B2C3"
            e.codeFile = "xul.dll"
            e.generator = "mozilla/dump_syms 2.3.4"
            return e
        }())
        #expect(SymbolFileHeader.read(Data("MODULE Linux x86_64 ABC my lib.so\n".utf8))?.debugFile == "my lib.so")
        #expect(SymbolFileHeader.read(Data("MODULE Linux x86_64 ABC lib.so".utf8))?.debugFile == "lib.so") // no newline at the end
        for bad in ["", "FILE 0 a\n", "MODULE Linux x86_64\n", "INFO CODE_ID X y\nMODULE a b c d\n", "\u{FF}MODULE a b c d\n"] {
            #expect(SymbolFileHeader.read(Data(bad.utf8)) == nil, "\(bad)")
        }
        // A huge first line is no header, and is not read whole.
        #expect(SymbolFileHeader.read(Data(("MODULE a b c " + String(repeating: "x", count: 1 << 20)).utf8)) == nil)
        let noCodeFile = try #require(SymbolFileHeader.read(Data("MODULE mac arm64 ABC lib\nINFO CODE_ID abc\n".utf8)))
        #expect(noCodeFile.codeId == "ABC" && noCodeFile.codeFile == nil)
    }
}
