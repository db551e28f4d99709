@testable import DWARF
import Foundation
import ObjectFiles
@testable import SymbolDump
import Testing
import TestSupport

/// The writer's own machinery: the same `.sym` whatever the thread count and whether it is
/// streamed or returned whole, and the spool that holds STACK CFI records while FUNC records
/// are written.
@Suite struct SymbolFileWriterTests {
    /// A program of eight compile units (inlining, a recursive function, CFI in `.eh_frame`),
    /// built here with gcc -O2 -g. Returns the binary's path and its directory.
    static func buildProgram() throws -> (binary: String, directory: String) {
        let dir = TestData.temporaryDirectory("writer")
        let gcc = try #require(findExecutable("gcc"), "gcc is required")
        var sources: [String] = []
        for k in 0..<8 {
            let path = "\(dir)/unit\(k).c"
            let text = """
            static inline int helper\(k)(int x) { return x * \(k + 3) + (x >> 2); }
            int walk\(k)(int n) { return n <= 0 ? \(k) : helper\(k)(n) + walk\(k)(n - 2); }
            int entry\(k)(volatile int *p) { int s = 0; for (int i = 0; i < *p; i++) s += helper\(k)(i) ^ walk\(k)(i); return s; }
            """
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            sources.append(path)
        }
        let main = "\(dir)/main.c"
        let calls = (0..<8).map { "entry\($0)(&n)" }.joined(separator: " + ")
        try Data("\((0..<8).map { "int entry\($0)(volatile int *);" }.joined(separator: "\n"))\nint main(void) { volatile int n = 5; return \(calls); }\n".utf8)
            .write(to: URL(fileURLWithPath: main))
        let binary = "\(dir)/program"
        // main.c last: gcc puts main in .text.startup, which the linker places before .text,
        // while its FDE stays last in .eh_frame — the records must be put in address order.
        let (status, _, err) = try runProcess(gcc, ["-O2", "-g", "-o", binary] + sources + [main], timeout: .seconds(120))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(1500))")
        return (binary, dir)
    }

    @Test func theThreadCountDoesNotChangeTheOutput() throws {
        let (binary, dir) = try Self.buildProgram()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let elf = try ELFFile(bytes: ObjectBytes.map(path: binary))
        let units = try DWARFInfoReader(sections: try DWARFSections(object: elf)).units()
        #expect(units.count >= 9, "several units to share out: \(units.count)")
        let one = try SymbolFileWriter.write(binary: elf, debugFileName: "program", options: .init(threads: 1))
        #expect(one.summary.functions >= 17 && one.summary.cfi >= 17 && one.summary.inlines > 0 && one.summary.lines > 50, "\(one.summary)")
        // One function per writing thread at least: the FUNC records are written in parts too.
        for threads in [2, 3, 8] {
            let many = try SymbolFileWriter.write(binary: elf, debugFileName: "program", options: .init(threads: threads, functionsPerThread: 1))
            #expect(many.text == one.text, "\(threads) threads: \(many.summary) vs \(one.summary)")
            #expect(many.problems == one.problems)
        }
        // DWARF read in parts gives the same functions, names and lines as in one.
        let sections = try DWARFSections(object: elf)
        let (whole, _) = try DebugInfo.read(sections, threads: 1)
        let (parted, _) = try DebugInfo.read(sections, threads: 5)
        #expect(whole.functions.map { whole.name($0.name) } == parted.functions.map { parted.name($0.name) })
        #expect(whole.inlines.map { whole.name($0.name) } == parted.inlines.map { parted.name($0.name) })
        #expect(whole.lines.map { whole.files[Int($0.file)] } == parted.lines.map { parted.files[Int($0.file)] })
        #expect(whole.lines.map(\.offset) == parted.lines.map(\.offset))
    }

    @Test func streamedBlocksAreTheText() throws {
        let (binary, dir) = try Self.buildProgram()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let elf = try ELFFile(bytes: ObjectBytes.map(path: binary))
        let whole = try SymbolFileWriter.write(binary: elf, debugFileName: "program", options: .init(threads: 2))
        var blocks: [[UInt8]] = []
        let streamed = try SymbolFileWriter.write(binary: elf, debugFileName: "program", options: .init(threads: 2, functionsPerThread: 2)) { blocks.append($0) }
        #expect(streamed.summary == whole.summary)
        #expect(String(decoding: blocks.joined(), as: UTF8.self) == whole.text)
        #expect(whole.text.hasPrefix("MODULE Linux ") && whole.text.contains("\nSTACK CFI INIT "))
        let starts = whole.text.split(separator: "\n").filter { $0.hasPrefix("STACK CFI INIT ") }.compactMap { UInt64($0.split(separator: " ")[3], radix: 16) }
        #expect(starts.count == whole.summary.cfi && starts == starts.sorted(), "STACK CFI INIT in address order: \(starts)")
        // The order in .eh_frame was not the address order (what the test is about).
        var inSection: [UInt64] = []
        let eh = try #require(try elf.debugSection(".eh_frame"))
        _ = try CallFrameInfo.forEachEntry(eh.data, isEH: true, sectionAddress: eh.address, addressSize: 8) { inSection.append($0.start) }
        #expect(inSection != inSection.sorted(), "main's FDE comes last though its code comes first")
    }

    /// zstd-compressed debug sections (objcopy --compress-debug-sections=zstd, as binutils and
    /// lld write them): the same .sym as the uncompressed file; a damaged payload or a size
    /// claim zstd cannot reach is an error, not a trap.
    @Test func zstdSectionsReadAsTheUncompressedOnes() throws {
        let (binary, dir) = try Self.buildProgram()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let objcopy = try #require(findExecutable("objcopy"), "binutils' objcopy is required")
        let compressed = dir + "/program.zst"
        let (status, _, err) = try runProcess(objcopy, ["--compress-debug-sections=zstd", binary, compressed])
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        let plain = try ELFFile(bytes: ObjectBytes.map(path: binary)), packed = try ELFFile(bytes: ObjectBytes.map(path: compressed))
        let info = try #require(packed.section(named: ".debug_info"))
        #expect(info.isCompressed)
        let raw = try packed.bytes.slice(info.offset, info.size, "")
        #expect(try raw.u32(0, "ch_type") == 2, "ELFCOMPRESS_ZSTD")
        let a = try SymbolFileWriter.write(binary: plain, debugFileName: "program")
        let b = try SymbolFileWriter.write(binary: packed, debugFileName: "program")
        #expect(a.problems.isEmpty && b.problems.isEmpty, "\(b.problems)")
        #expect(a.text == b.text && a.summary.lines > 50)

        // The payload damaged, then a size claim no zstd frame can reach: errors.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: compressed))
        let payload = Int(info.offset) + 24
        for i in payload..<(payload + 16) where i < bytes.count { bytes[i] ^= 0x5A }
        let damaged = try ELFFile(bytes: ObjectBytes(Array(bytes)))
        #expect(throws: ObjectFileError.self) { try damaged.contents(of: damaged.section(named: ".debug_info")!) }
        do {
            _ = try damaged.contents(of: damaged.section(named: ".debug_info")!)
        } catch {
            #expect("\(error)".hasPrefix("malformed: section .debug_info does not decompress (zstd error "), "\(error)")
        }
        bytes = try Data(contentsOf: URL(fileURLWithPath: compressed))
        for i in 0..<8 { bytes[Int(info.offset) + 8 + i] = i == 5 ? 0x7F : 0 } // ch_size: 0x7F << 40
        let liar = try ELFFile(bytes: ObjectBytes(Array(bytes)))
        #expect(throws: ObjectFileError.malformed("section .debug_info claims \(UInt64(0x7F) << 40) bytes uncompressed from \(info.size - 24)")) {
            try liar.contents(of: liar.section(named: ".debug_info")!)
        }
    }

    @Test func theSpoolGivesBackWhatItTookThroughItsFile() {
        // A tiny limit puts nearly everything in the temporary file.
        let spool = SpooledBytes(limit: 16)
        var expected: [UInt8] = []
        for i in 0..<500 {
            var block = Array("record \(i) \(String(repeating: "x", count: i % 37))\n".utf8)
            expected += block
            spool.take(&block)
            #expect(block.isEmpty)
        }
        #expect(spool.count == expected.count && spool.spilled > 0)
        var drained: [UInt8] = []
        spool.drain { drained += $0 }
        #expect(drained == expected)
        // Ranges across the file and memory parts.
        for range in [0..<10, 100..<5000, (expected.count - 30)..<expected.count, 0..<expected.count] {
            var out: [UInt8] = []
            spool.read(range, into: &out)
            #expect(out == Array(expected[range]), "\(range)")
        }
    }
}
