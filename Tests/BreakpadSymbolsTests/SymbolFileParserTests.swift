import Foundation
import Testing
import TestSupport
@testable import BreakpadSymbols

@Suite struct SymbolFileParserTests {
    static let sample = """
    MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test app.pdb
    INFO CODE_ID 45D35F6C2d000 test_app.exe
    INFO GENERATOR mozilla/dump_syms 2.3.7
    INFO URL https://symbols.example/test_app.sym
    INFO SOMETHING else
    FILE 0 c:\\src\\main file.cc
    FILE 7 /src/helper.h
    INLINE_ORIGIN 0 helper(int)
    INLINE_ORIGIN 1 inner helper
    FUNC m 1000 40 8 main(int, char**)
    INLINE 0 12 0 0 1010 10
    INLINE 1 30 7 1 1014 4
    1000 10 10 0
    1010 10 31 7
    1020 20 14 0
    FUNC 1100 10 4 other
    PUBLIC m 2000 c public_one
    PUBLIC 3000 0 public two
    STACK WIN 4 1000 40 5 0 8 0 10 0 1 $T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + =
    STACK WIN 0 1000 20 0 0 4 4 0 0 0 1
    STACK WIN 0 1100 10 0 0 4 0 0 0 0 0
    STACK WIN 2 1200 10 0 0 4 0 0 0 0 0
    STACK CFI INIT 1000 40 .cfa: $esp 4 + .ra: .cfa -4 + ^
    STACK CFI 1001 .cfa: $esp 8 + $ebp: .cfa -8 + ^
    STACK CFI 1003 .cfa: $ebp 8 +

    """

    func parse(_ text: String) throws -> SymbolTable { try SymbolFileParser().parse(Array(text.utf8)) }

    @Test func readsEveryRecordType() throws {
        let t = try parse(Self.sample)
        #expect(t.module.os == "windows")
        #expect(t.module.arch == "x86")
        #expect(t.module.debugId == "5A9832E5287241C1838ED98914E9B7FF1")
        #expect(t.module.debugFile == "test app.pdb")
        #expect(t.module.codeId == "45D35F6C2d000")
        #expect(t.module.codeFile == "test_app.exe")
        #expect(t.module.generator == "mozilla/dump_syms 2.3.7")
        #expect(t.module.url == "https://symbols.example/test_app.sym")
        #expect(t.module.symbolicationName == "test_app.exe")
        let s = t.stats
        #expect(s.files == 2 && s.inlineOrigins == 2 && s.functions == 2 && s.lineRecords == 3)
        #expect(s.inlineRecords == 2 && s.publics == 2 && s.stackWin == 3 && s.ignoredStackWin == 1)
        #expect(s.stackCFIInit == 1 && s.stackCFI == 2 && s.info == 4 && s.malformed == 0 && s.unknown == 0)

        let main = try #require(t.function(at: 0x1004))
        #expect(main == FunctionMatch(name: "main(int, char**)", address: 0x1000, size: 0x40, parameterSize: 8, isPublic: false, isMultiple: true))
        let plain = try #require(t.lookup(0x1004))
        #expect(plain.file == "c:\\src\\main file.cc" && plain.line == 10 && plain.inlines.isEmpty && plain.lineRecordAddress == 0x1000)
    }

    @Test func inlineChainReportsCallSitesOutermostToInnermost() throws {
        let t = try parse(Self.sample)
        let r = try #require(t.lookup(0x1015))
        // The physical frame sits at the level-0 call site; level 0 at the level-1 call site;
        // the innermost level at the line record.
        #expect(r.function.name == "main(int, char**)")
        #expect(r.file == "c:\\src\\main file.cc" && r.line == 12)
        #expect(r.inlines == [InlineFrameInfo(function: "inner helper", file: "/src/helper.h", line: 31),
                              InlineFrameInfo(function: "helper(int)", file: "/src/helper.h", line: 30)])
        let outsideLevel1 = try #require(t.lookup(0x101a))
        #expect(outsideLevel1.inlines == [InlineFrameInfo(function: "helper(int)", file: "/src/helper.h", line: 31)])
    }

    @Test func publicIsUsedOnlyWhenNoFunctionStartsInBetween() throws {
        let t = try parse(Self.sample)
        #expect(t.function(at: 0x2010)?.name == "public_one")
        #expect(t.function(at: 0x2010)?.isPublic == true)
        #expect(t.function(at: 0x3004)?.name == "public two")
        // 0x1120 is past `other` (0x1100+0x10); the nearest PUBLIC is below a FUNC that starts later.
        let text = Self.sample + "PUBLIC 1050 0 below_other\n"
        let t2 = try parse(text)
        #expect(t2.function(at: 0x1120) == nil)
        #expect(t2.function(at: 0x1060)?.name == "below_other")
        #expect(t2.function(at: 0x1104)?.name == "other")
        #expect(t.function(at: 0x0fff) == nil)
    }

    @Test func toleratesCRLFLineEndings() throws {
        let lf = try parse(Self.sample)
        let crlf = try parse(Self.sample.replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(crlf.stats.malformed == 0)
        #expect(crlf.module == lf.module)
        for a in stride(from: UInt64(0xff0), to: 0x3010, by: 3) { #expect(crlf.lookup(a) == lf.lookup(a)) }
        #expect(crlf.stackWin(at: 0x1004) == lf.stackWin(at: 0x1004))
        #expect(crlf.cfiRules(at: 0x1003) == lf.cfiRules(at: 0x1003))
    }

    @Test func countsMalformedLinesAndSkipsUnknownRecords() throws {
        let text = """
        MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 lib.so
        1000 10 1 0
        FUNC zz 10 0 bad_address
        FUNC 1000 10 0 good
        1000 10 99999999999 0
        1000 zz 1 0
        INLINE 0 1
        INLINE 0 1 0 0 1000 zz
        FILE x name
        PUBLIC 10000000000000000000 0 too_big
        STACK CFI INIT 1000
        STACK WIN 4 1000
        MODULE Linux x86 X Y
        SOMETHING unknown
        FROB 1 2 3
        1000 8 5 0

        """
        let t = try parse(text)
        #expect(t.stats.malformed == 11, "\(t.stats.firstErrors)")
        #expect(t.stats.unknown == 2)
        #expect(t.stats.functions == 1 && t.stats.lineRecords == 1)
        #expect(t.lookup(0x1004)?.line == 5)
        #expect(t.stats.firstErrors.first == "line 2: line record outside a FUNC")
    }

    @Test func rejectsTextWithoutModuleRecord() {
        #expect(throws: SymbolFileError.missingModuleRecord) { try parse("FUNC 1000 10 0 f\n") }
        #expect(throws: SymbolFileError.missingModuleRecord) { try parse("") }
        #expect(throws: SymbolFileError.missingModuleRecord) { try parse("MODULE Linux x86\n") }
    }

    @Test func reportsUnreadableFiles() {
        #expect(throws: SymbolFileError.cannotOpen(path: "/nonexistent/x.sym", errno: ENOENT)) {
            try SymbolFileParser().parse(path: "/nonexistent/x.sym")
        }
    }

    @Test func keepsTheFirstOfDuplicateFunctions() throws {
        let t = try parse("MODULE Linux x86 A b\nFUNC 2000 10 0 second\nFUNC 1000 10 0 first\nFUNC 1000 20 0 dup\n")
        #expect(t.function(at: 0x1004)?.name == "first")
        #expect(t.function(at: 0x2004)?.name == "second")
        #expect(t.stats.duplicates == 1)
    }

    @Test func dropsOverlappingLineRecordsLikeBreakpad() throws {
        let t = try parse("MODULE Linux x86 A b\nFILE 0 f\nFUNC 1000 20 0 f\n1000 10 1 0\n1010 10 3 0\n1004 4 2 0\n")
        #expect(t.lookup(0x1005)?.line == 1)
        #expect(t.lookup(0x1012)?.line == 3)
        #expect(t.stats.overlaps == 1)
    }

    @Test func eliotModuleNameComesOnlyFromALeadingFourFieldCodeIdLine() throws {
        #expect(try parse("MODULE w x86 A a.pdb\nINFO CODE_ID 123 a.dll\n").module.symbolicationName == "a.dll")
        #expect(try parse("MODULE w x86 A a.pdb\nINFO CODE_ID 123\n").module.symbolicationName == nil)
        #expect(try parse("MODULE w x86 A a.pdb\nINFO CODE_ID 123 a b.dll\n").module.symbolicationName == nil)
        #expect(try parse("MODULE w x86 A a.pdb\nFILE 0 x\nINFO CODE_ID 123 a.dll\n").module.symbolicationName == nil)
        #expect(try parse("MODULE w x86 A a.pdb\nINFO GENERATOR x y\nINFO CODE_ID 123 a.dll\n").module.symbolicationName == "a.dll")
    }

    @Test func oldAndNewInlineFormatsResolveTheSameFunctions() throws {
        let dir = "symbols/linux_inline/BBA6FA10B8AAB33D00000000000000000/"
        let new = try SymbolFileParser().parse(path: try TestData.path(dir + "linux_inline.sym"))
        let old = try SymbolFileParser().parse(path: try TestData.path(dir + "linux_inline.old-inline-format.sym"))
        #expect(new.stats.malformed == 0 && old.stats.malformed == 0)
        #expect(old.stats.inlineRecords == new.stats.inlineRecords && new.stats.inlineRecords > 0)
        var checked = 0
        for f in new.s.funcs {
            for a in f.address..<(f.address + f.size) {
                let n = new.lookup(a), o = old.lookup(a)
                #expect(n?.function == o?.function)
                #expect(n?.inlines.map(\.function) == o?.inlines.map(\.function))
                #expect(n?.line == o?.line || o?.inlines.isEmpty == false)
                checked += 1
            }
        }
        #expect(checked > 100)
        // main's address 0x15b45 is inside foo() (origin 1), inlined at a.cpp:42.
        #expect(new.lookup(0x15b45)?.inlines.last?.function == "foo()")
        #expect(new.lookup(0x15b45)?.file == "a.cpp")
        #expect(new.lookup(0x15b45)?.line == 42)
    }

    @Test func testprojInlineExampleFromTheReference() throws {
        let t = try SymbolFileParser().parse(path: try TestData.path("symbolication/symbols/testproj/0905AE80CEE75A33E3CAB61C274274DE0/testproj.sym"))
        let r = try #require(t.lookup(0x7a7a))
        #expect(r.function.name == "testproj::main" && r.line == 4 && r.file == "/home/willkg/projects/testproj/src/main.rs")
        #expect(r.inlines.map(\.function) == ["testproj::helper::inner", "testproj::helper::middle"])
        #expect(r.inlines.map(\.line) == [7, 2])
    }

    @Test func readsFromAFileInChunksLikeFromMemory() throws {
        let path = try TestData.path("symbols/crash-client/509C0610949836F7B70BD88BCF03E5400/crash-client.sym")
        let fromFile = try SymbolFileParser().parse(path: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let fromMemory = try SymbolFileParser().parse(bytes)
        #expect(fromFile.stats == fromMemory.stats)
        #expect(fromFile.stats.inlineRecords == 40148 && fromFile.stats.malformed == 0)
        for f in fromFile.s.funcs.prefix(300) { #expect(fromFile.lookup(f.address + f.size / 2) == fromMemory.lookup(f.address + f.size / 2)) }
    }
}
