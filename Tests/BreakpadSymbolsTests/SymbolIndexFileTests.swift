import Foundation
import Testing
import TestSupport
@testable import BreakpadSymbols

@Suite struct SymbolIndexFileTests {
    static let crashClient = "symbols/crash-client/509C0610949836F7B70BD88BCF03E5400/crash-client.sym"
    static let testApp = "symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"

    @Test func recordLayoutsArePinned() {
        #expect(MemoryLayout<NamedEntry>.stride == 12)
        #expect(MemoryLayout<FuncRecord>.stride == 48)
        #expect(MemoryLayout<LineRecord>.stride == 16)
        #expect(MemoryLayout<InlineRecord>.stride == 24)
        #expect(MemoryLayout<PublicRecord>.stride == 24)
        #expect(MemoryLayout<StackWinRecord>.stride == 48)
        #expect(MemoryLayout<CFIInitRecord>.stride == 24)
        #expect(MemoryLayout<CFIDeltaRecord>.stride == 16)
    }

    @Test(arguments: [crashClient, testApp])
    func mappedIndexAnswersExactlyLikeTheParsedText(_ file: String) throws {
        let parsed = try SymbolFileParser().parse(path: try TestData.path(file))
        let index = TestData.temporaryDirectory("index") + "/m.symc"
        try SymbolIndexFile.write(parsed, to: index)
        let mapped = try SymbolIndexFile.open(index)
        #expect(mapped.isMemoryMapped && !parsed.isMemoryMapped)
        #expect(mapped.module == parsed.module && mapped.stats == parsed.stats)
        #expect(mapped.functionCount == parsed.functionCount && mapped.lineCount == parsed.lineCount)
        var rng = SplitMix(seed: 7)
        let end = (parsed.s.funcs.last.map { $0.address + $0.size } ?? 0x10000) + 0x100
        for _ in 0..<3000 {
            let a = rng.next() % end
            #expect(mapped.lookup(a) == parsed.lookup(a))
            #expect(mapped.cfiRules(at: a) == parsed.cfiRules(at: a))
            #expect(mapped.stackWin(at: a) == parsed.stackWin(at: a))
        }
    }

    @Test func corruptIndexIsRejectedAndRebuilt() throws {
        let source = try TestData.path(Self.testApp)
        let index = TestData.temporaryDirectory("index") + "/t.symc"
        let first = try SymbolTable.load(symbolFile: source, indexPath: index)
        #expect(!first.fromIndex)
        #expect(try SymbolTable.load(symbolFile: source, indexPath: index).fromIndex)

        // Flip one byte in the middle of the function table.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: index))
        bytes[bytes.count / 2] ^= 0x5A
        try bytes.write(to: URL(fileURLWithPath: index))
        #expect(throws: SymbolIndexError.corrupt("checksum mismatch")) { try SymbolIndexFile.open(index) }
        let rebuilt = try SymbolTable.load(symbolFile: source, indexPath: index)
        #expect(!rebuilt.fromIndex)
        #expect(rebuilt.table.lookup(0x1000) == first.table.lookup(0x1000))
        #expect(try SymbolTable.load(symbolFile: source, indexPath: index).fromIndex)
    }

    @Test func otherVersionsAndTruncatedFilesAreNotTrusted() throws {
        let parsed = try SymbolFileParser().parse(path: try TestData.path(Self.testApp))
        let dir = TestData.temporaryDirectory("index")
        try SymbolIndexFile.write(parsed, to: dir + "/ok.symc")
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/ok.symc"))

        var old = good
        old[8] = 0  // version field
        try old.write(to: URL(fileURLWithPath: dir + "/old.symc"))
        #expect(throws: SymbolIndexError.versionMismatch(found: 0)) { try SymbolIndexFile.open(dir + "/old.symc") }

        for cut in [0, 10, 63, 64, 200, good.count / 3, good.count - 1] {
            try good.prefix(cut).write(to: URL(fileURLWithPath: dir + "/cut.symc"))
            #expect(throws: SymbolIndexError.self) { try SymbolIndexFile.open(dir + "/cut.symc") }
        }
        try Data("MODULE Linux x86 A b\n".utf8).write(to: URL(fileURLWithPath: dir + "/text.symc"))
        #expect(throws: SymbolIndexError.notAnIndex) { try SymbolIndexFile.open(dir + "/text.symc") }
    }

    @Test func indexOfAChangedSourceIsStale() throws {
        let dir = TestData.temporaryDirectory("stale")
        let sym = dir + "/a.sym", index = dir + "/a.symc"
        try "MODULE Linux x86 A a\nFUNC 1000 10 0 before\n".write(toFile: sym, atomically: true, encoding: .utf8)
        #expect(try SymbolTable.load(symbolFile: sym, indexPath: index).table.function(at: 0x1000)?.name == "before")
        try "MODULE Linux x86 A a\nFUNC 1000 10 0 after_change\n".write(toFile: sym, atomically: true, encoding: .utf8)
        let reloaded = try SymbolTable.load(symbolFile: sym, indexPath: index)
        #expect(!reloaded.fromIndex)
        #expect(reloaded.table.function(at: 0x1000)?.name == "after_change")
    }
}
