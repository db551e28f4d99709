@testable import BreakpadSymbols
import Foundation
import Testing
import TestSupport

/// Symbol text fed in blocks of any size (lines split anywhere, CRLF, a last line without a
/// newline) gives the table a one-piece parse gives: the same counts and, at every address of
/// every record, the same lookup, CFI and STACK WIN answers.
@Suite struct SymbolStreamParserTests {
    @Test(arguments: ["symbols/crash-client/509C0610949836F7B70BD88BCF03E5400/crash-client.sym",
                      "symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym",
                      "symbolication/symbols/testproj/0905AE80CEE75A33E3CAB61C274274DE0/testproj.sym"])
    func blocksOfAnySizeGiveTheOnePieceTable(_ file: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try TestData.path(file))))
        let whole = try SymbolFileParser().parse(bytes)
        var addresses: [UInt64] = []
        whole.forEachFunction { f in addresses += [f.address, f.address + (f.size ?? 1) / 2, f.address + max(1, f.size ?? 1) - 1] }
        #expect(!addresses.isEmpty)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<6 {
            var parser = SymbolStreamParser()
            var offset = 0
            while offset < bytes.count {
                // Tiny blocks in the first rounds (lines split many times), large ones later.
                let n = min(bytes.count - offset, Int.random(in: 1...(round < 3 ? 97 : 70_000), using: &generator))
                bytes[offset..<(offset + n)].withUnsafeBytes { parser.feed($0) }
                offset += n
            }
            let streamed = try parser.finish()
            #expect(streamed.stats == whole.stats, "round \(round)")
            #expect(streamed.module.debugId == whole.module.debugId && streamed.functionCount == whole.functionCount && streamed.lineCount == whole.lineCount)
            for a in addresses {
                #expect(streamed.lookup(a) == whole.lookup(a), "round \(round), address \(String(a, radix: 16))")
                #expect(streamed.cfiRules(at: a) == whole.cfiRules(at: a) && streamed.stackWin(at: a) == whole.stackWin(at: a))
            }
        }
        // A last line without its newline still counts.
        var parser = SymbolStreamParser()
        let cut = Array(bytes.dropLast(bytes.last == 0x0A ? 1 : 0))
        cut.withUnsafeBytes { parser.feed($0) }
        #expect(try parser.finish().stats.lines == whole.stats.lines)
    }
}
