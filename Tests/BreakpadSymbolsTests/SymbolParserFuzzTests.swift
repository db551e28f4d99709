import Foundation
import Testing
import TestSupport
@testable import BreakpadSymbols

/// Hostile input never traps: truncations, random bytes, mutations, huge numbers, huge files.
@Suite(.serialized) struct SymbolParserFuzzTests {
    /// Parses and, when something parsed, exercises every lookup kind around the tables.
    func exercise(_ bytes: [UInt8]) {
        guard let t = try? SymbolFileParser().parse(bytes) else { return }
        var rng = SplitMix(seed: UInt64(bytes.count))
        for _ in 0..<50 {
            let a = rng.next() % 0x40000
            _ = t.lookup(a)
            _ = t.cfiRules(at: a)
            _ = t.stackWin(at: a)
            _ = t.parameterSize(at: a)
        }
        for f in t.s.funcs.prefix(50) { _ = t.lookup(f.address); _ = t.lookup(f.address &+ f.size &- 1) }
    }

    @Test func everyTruncationOfRealFilesParses() throws {
        for file in ["symbolication/symbols/testproj/0905AE80CEE75A33E3CAB61C274274DE0/testproj.sym",
                     "symbols/linux_inline/BBA6FA10B8AAB33D00000000000000000/linux_inline.old-inline-format.sym",
                     "tecken/symbols/qipcap64.pdb/293A285ED25871934C4C44205044422E1/qipcap64.sym"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try TestData.path(file))))
            for cut in stride(from: 0, through: bytes.count, by: max(1, bytes.count / 400)) { exercise(Array(bytes[0..<cut])) }
        }
    }

    @Test func randomBytesAreRejectedOrParsed() {
        var rng = SplitMix(seed: 42)
        for n in 0..<500 {
            var bytes = (0..<(n * 7 % 3000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n % 2 == 0 { bytes = Array("MODULE Linux x86 A b\n".utf8) + bytes }
            exercise(bytes)
        }
    }

    @Test func mutatedRealFilesNeverTrap() throws {
        let path = try TestData.path("symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym")
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))).prefix(60_000)
        var rng = SplitMix(seed: 9)
        let alphabet = Array(" \n\r-0123456789abcdefFUNCSTACKWINPUBLIC^=+@$.:\u{0}".utf8)
        for _ in 0..<60 {
            var bytes = Array(original)
            for _ in 0..<200 {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            }
            exercise(bytes)
        }
    }

    @Test func hugeNumbersAreMalformedNotFatal() throws {
        let text = """
        MODULE Linux x86_64 A b
        FILE 99999999999999999999 x
        FILE 4294967295 max id
        INLINE_ORIGIN 4294967295 deep
        FUNC ffffffffffffffff ffffffffffffffff ffffffff wraps
        FUNC 1000 ffffffffffffffffffff 0 too_long
        FUNC 2000 100 0 f
        2000 ffffffffffffffff 4294967295 4294967295
        2010 10 4294967296 0
        INLINE 4294967295 4294967295 4294967295 4294967295 2000 100
        INLINE 0 1 0 4294967295 ffffffffffffffff 1
        PUBLIC ffffffffffffffff ffffffff p
        STACK WIN 4 ffffffff ffffffff 0 0 0 0 0 0 1 $eip 1 =
        STACK WIN 4 100000000 1 0 0 0 0 0 0 1 $eip 1 =
        STACK CFI INIT ffffffffffffffff ffffffffffffffff .cfa: sp 18446744073709551615 + .ra: .cfa 99999999999999999999999 +
        STACK CFI ffffffffffffffff .cfa: sp

        """
        let t = try SymbolFileParser().parse(Array(text.utf8))
        #expect(t.stats.malformed == 5, "\(t.stats.firstErrors)")
        #expect(t.stats.outOfRange == 1)
        let hit = try #require(t.lookup(0x2004))
        // FILE id 4294967295 is reserved ("no file") and rejected, so the line has no file.
        #expect(hit.function.name == "f" && hit.line == 4294967295 && hit.file == nil)
        #expect(t.lookup(UInt64.max)?.function.name == "wraps")
        #expect(t.lookup(UInt64.max - 1)?.function.name == "f" || t.lookup(UInt64.max - 1) == nil)
        let rules = try #require(t.cfiRules(at: UInt64.max))
        #expect(throws: PostfixError.unknownToken("99999999999999999999999")) {
            try rules.evaluate(callee: ["sp": 0], wordSize: 8, memory: WordMemory(words: [:]))
        }
        _ = t.stackWin(at: 0xffff_fffe)
    }

    /// A sparse file (a MODULE line, 64 MiB of NULs with no newline, then a FUNC): the over-long
    /// line is skipped and counted, the FUNC after it is found. (The memory bound, on a 1 GB
    /// line, is measured in a process of its own: `CommandLineTests.aGigabyteLineParsesInBoundedMemory`.)
    @Test func aSparseFileWithAHugeLineParses() throws {
        let path = TestData.temporaryDirectory("sparse") + "/huge.sym"
        let header = Array("MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 huge\n".utf8)
        let trailer = Array("\nFUNC 1000 10 0 after_the_hole\n".utf8)
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        #expect(fd >= 0)
        _ = header.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let holeEnd = off_t(header.count) + (64 << 20)
        #expect(lseek(fd, holeEnd, SEEK_SET) == holeEnd)
        _ = trailer.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(path) }

        let t = try SymbolFileParser().parse(path: path)
        #expect(t.stats.bytes == UInt64(holeEnd) + UInt64(trailer.count))
        #expect(t.stats.malformed == 1)
        #expect(t.function(at: 0x1004)?.name == "after_the_hole")
    }
}
