import Foundation
import Testing
import TestSupport
@testable import BreakpadSymbols

/// Large files are parsed in parts by several threads (split at FUNC and STACK records); the
/// table must be exactly what one sequential pass gives, byte for byte in its on-disk index.
@Suite struct ParallelParseTests {
    /// Everything a parsed table holds: the module, the statistics and every section's bytes.
    struct Snapshot: Equatable {
        var module: ModuleInfo
        var stats: ParseStatistics
        var sections: [[UInt8]]
    }

    /// `path` parsed with `parts` parts (nil: sequentially).
    static func snapshot(_ path: String, parts: Int?) throws -> Snapshot {
        var parser = SymbolFileParser()
        if let parts {
            parser.parallelThreshold = 0
            parser.parts = parts
        } else {
            parser.parallelThreshold = .max
        }
        let table = try parser.parse(path: path)
        let s = table.s
        let sections: [UnsafeRawBufferPointer] = [
            s.strings, UnsafeRawBufferPointer(s.files), UnsafeRawBufferPointer(s.origins), UnsafeRawBufferPointer(s.funcs),
            UnsafeRawBufferPointer(s.lines), UnsafeRawBufferPointer(s.inlines), UnsafeRawBufferPointer(s.publics),
            UnsafeRawBufferPointer(s.winFrameData), UnsafeRawBufferPointer(s.winFPO), UnsafeRawBufferPointer(s.cfiInit),
            UnsafeRawBufferPointer(s.cfiDelta),
        ]
        return withExtendedLifetime(table) { Snapshot(module: table.module, stats: table.stats, sections: sections.map { Array($0) }) }
    }

    /// A file where line and INLINE records follow STACK records (no dump_syms writes that, but
    /// the format allows it: they belong to the last FUNC), with every split landing somewhere.
    static func awkwardFile() -> String {
        var s = "MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 awkward\nFILE 0 a.c\nFILE 1 b.c\nINLINE_ORIGIN 0 inlined\n"
        for i in 0..<400 {
            let a = 0x1000 + i * 0x100
            s += "FUNC \(String(a, radix: 16)) 80 0 f\(i)\n"
            s += "\(String(a, radix: 16)) 10 \(i + 1) 0\n"
            s += "STACK CFI INIT \(String(a, radix: 16)) 80 .cfa: $rsp 8 + .ra: .cfa -8 + ^\n"
            s += "STACK CFI \(String(a + 1, radix: 16)) .cfa: $rsp 16 +\n"
            s += "\(String(a + 0x10, radix: 16)) 10 \(i + 2) 1\n"  // after STACK records: still f\(i)'s
            s += "INLINE 0 \(i) 1 0 \(String(a + 0x20, radix: 16)) 8\n"
            if i % 7 == 0 { s += "PUBLIC \(String(a + 0x90, radix: 16)) 0 p\(i)\n" }
            if i % 50 == 0 { s += "STACK WIN 4 \(String(a, radix: 16)) 80 0 0 0 0 0 0 1 $T0 $ebp = $eip $T0 4 + ^ =\n" }
            if i % 33 == 0 { s += "FUNC zz bad\n\(String(a + 0x30, radix: 16)) 4 1 0\n" }  // malformed FUNC: its line is malformed too
        }
        return s
    }

    @Test func partsGiveTheSameTableAsOnePass() throws {
        let dir = TestData.temporaryDirectory("parallel")
        let awkward = dir + "/awkward.sym"
        try Self.awkwardFile().write(toFile: awkward, atomically: true, encoding: .utf8)
        var files = [awkward]
        files += try TestData.files(under: "symbols", suffix: ".sym").filter { !$0.contains("old-inline") }
        for path in files {
            let sequential = try Self.snapshot(path, parts: nil)
            #expect(sequential.stats.lines > 0)
            for parts in [2, 3, 5, 8] {
                let split = try Self.snapshot(path, parts: parts)
                #expect(split.module == sequential.module, "\(path) in \(parts) parts")
                #expect(split.stats == sequential.stats, "\(path) in \(parts) parts")
                for (i, (a, b)) in zip(split.sections, sequential.sections).enumerated() {
                    #expect(a == b, "\(path) in \(parts) parts: section \(i) differs (\(a.count) vs \(b.count) bytes)")
                }
            }
        }
    }

    @Test func splitsFallOnFuncAndStackLines() throws {
        let dir = TestData.temporaryDirectory("parallel")
        let path = dir + "/awkward.sym"
        let text = Self.awkwardFile()
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let bounds = SymbolFileParser.splitPoints(fd, size: text.utf8.count, parts: 6)
        #expect(bounds.count == 7)
        #expect(bounds.first == 0 && bounds.last == text.utf8.count)
        let bytes = Array(text.utf8)
        for b in bounds.dropFirst().dropLast() {
            #expect(bytes[b - 1] == 0x0A)
            let line = String(decoding: bytes[b..<min(bytes.count, b + 6)], as: UTF8.self)
            #expect(line.hasPrefix("FUNC ") || line.hasPrefix("STACK "), "\(line)")
        }
        // A file without such lines after its start is not split.
        let plain = dir + "/plain.sym"
        try ("MODULE Linux x86_64 A plain\nFUNC 1000 10 0 f\n" + String(repeating: "1000 1 1 0\n", count: 5000)).write(toFile: plain, atomically: true, encoding: .utf8)
        let fd2 = open(plain, O_RDONLY)
        defer { close(fd2) }
        #expect(SymbolFileParser.splitPoints(fd2, size: 55_000, parts: 4).count == 2)
    }
}
