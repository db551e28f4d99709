import BreakpadSymbols
import Foundation
import JSONSupport
import ObjectFiles
import SymbolDump
import Testing
import TestSupport

/// Relocatable ELF objects (`.o`, as `cc -c` writes them; kernel modules are the same kind of
/// file): their DWARF and CFI only make sense with the relocations applied. symbolic reads them
/// without (file names and addresses point at the first string and function), so the second
/// implementation here is LLVM's `llvm-symbolizer-14`, which applies them: every address of every
/// FUNC must give the same function, file, line and inline chain, on x86_64, x86, aarch64 and
/// Thumb objects from gcc and clang.
@Suite(.serialized) struct ObjectFileAgreementTests {
    struct Build: Sendable, CustomTestStringConvertible {
        let name: String
        let compiler: String
        let arguments: [String]
        var testDescription: String { name }
    }

    static let builds: [Build] = [
        Build(name: "gcc -O2 x86_64 object", compiler: "gcc", arguments: ["-O2", "-g", "-c"]),
        Build(name: "clang -O0 dwarf4 x86_64 object", compiler: "clang", arguments: ["-O0", "-gdwarf-4", "-c"]),
        Build(name: "clang -O2 i386 object (REL relocations)", compiler: "clang", arguments: ["-target", "i386-linux-gnu", "-O2", "-g", "-c"]),
        Build(name: "clang -O2 aarch64 object", compiler: "clang", arguments: ["-target", "aarch64-linux-gnu", "-O2", "-g", "-c"]),
        Build(name: "clang -O2 arm thumb object (REL relocations)", compiler: "clang",
              arguments: ["-target", "armv7a-linux-gnueabihf", "-mthumb", "-O2", "-gdwarf-4", "-c"]),
    ]

    typealias Frame = (name: String, file: String, line: Int)

    @Test(arguments: builds)
    func everyFunctionAddressAgreesWithLLVMSymbolizer(_ build: Build) throws {
        let dir = TestData.temporaryDirectory("object-dump")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let compiler = try #require(findExecutable(build.compiler), "\(build.compiler) is required")
        let symbolizer = try #require(findExecutable("llvm-symbolizer-14"), "Debian's llvm-14 (llvm-symbolizer-14) is required")
        try Data(DumpAgreementTests.c.utf8).write(to: URL(fileURLWithPath: dir + "/test.c"))
        let object = dir + "/test.o"
        let (status, _, err) = try runProcess(compiler, build.arguments + ["-o", object, dir + "/test.c"], timeout: .seconds(120))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self).suffix(1500))")
        guard status == 0 else { return }

        let elf = try ELFFile(bytes: ObjectBytes.map(path: object))
        #expect(elf.isRelocatable)
        let (text, summary, problems) = try SymbolFileWriter.write(binary: elf, debugFileName: "test.o")
        #expect(problems.isEmpty, "every relocation of the debug sections applied: \(problems)")
        #expect(summary.functions >= 3 && summary.inlines > 0 || build.arguments.contains("-O0"), "\(summary)")
        let table = try SymbolFileParser().parse(Array(text.utf8))
        // File names resolved through relocated string offsets, not the first string.
        #expect(text.contains("/test.c\n"), "\(text.prefix(500))")

        var addresses: [UInt64] = []
        table.forEachFunction { f in
            guard !f.isPublic, let size = f.size else { return }
            addresses += Array(f.address..<(f.address + size))
        }
        #expect(!addresses.isEmpty)
        let (symStatus, out, symErr) = try runProcess(symbolizer, ["--obj=" + object, "--output-style=JSON", "--inlining"] + addresses.map { "0x" + String($0, radix: 16) },
                                                     timeout: .seconds(120))
        #expect(symStatus == 0, "\(String(decoding: symErr, as: UTF8.self))")
        let answers = try #require(JSONValue.parse(out)?.arrayValue)
        #expect(answers.count == addresses.count)
        var agree = 0, differences: [String] = []
        for (address, answer) in zip(addresses, answers) {
            var theirs: [Frame] = []
            for frame in answer["Symbol"]?.arrayValue ?? [] {
                let name = frame["FunctionName"]?.stringValue ?? "", file = frame["FileName"]?.stringValue ?? ""
                theirs.append((name, file, Int(frame["Line"]?.intValue ?? 0)))
            }
            var ours: [Frame] = []
            if let hit = table.lookup(address) {
                ours = hit.inlines.map { ($0.function, $0.file ?? "", Int($0.line)) } + [(hit.function.name, hit.file ?? "", Int(hit.line))]
            }
            if ours.count == theirs.count, zip(ours, theirs).allSatisfy({ $0.0.name == $0.1.name && $0.0.file == $0.1.file && $0.0.line == $0.1.line }) {
                agree += 1
            } else if differences.count < 20 {
                func show(_ frames: [Frame]) -> String { frames.map { "\($0.name) \($0.file):\($0.line)" }.joined(separator: " ← ") }
                differences.append(String(address, radix: 16) + ": ours " + show(ours) + " | llvm-symbolizer " + show(theirs))
            }
        }
        let report = "\(build.name): \(agree) of \(addresses.count) addresses agree with llvm-symbolizer\n" + differences.joined(separator: "\n")
        #expect(Double(agree) / Double(addresses.count) >= 0.995 && differences.isEmpty, "\(report)")
        print(report)

        // The CFI: every function's STACK CFI INIT starts where its FUNC does (relocated from 0).
        let functionStarts = Set(text.split(separator: "\n").filter { $0.hasPrefix("FUNC ") }.compactMap { UInt64($0.split(separator: " ")[1], radix: 16) })
        let cfiStarts = text.split(separator: "\n").filter { $0.hasPrefix("STACK CFI INIT ") }.compactMap { UInt64($0.split(separator: " ")[3], radix: 16) }
        #expect(!cfiStarts.isEmpty && cfiStarts.allSatisfy { functionStarts.contains($0) }, "CFI at \(cfiStarts), functions at \(functionStarts.sorted())")
    }

    /// A relocation pointing past its section is an error naming it; one of a type this reader
    /// does not apply is left alone and counted in the caveat.
    @Test func hostileRelocationsAreErrorsOrNamed() throws {
        let dir = TestData.temporaryDirectory("object-relocations")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gcc = try #require(findExecutable("gcc"), "gcc is required")
        try Data(DumpAgreementTests.c.utf8).write(to: URL(fileURLWithPath: dir + "/test.c"))
        let (status, _, err) = try runProcess(gcc, ["-O2", "-g", "-c", "-o", dir + "/test.o", dir + "/test.c"])
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/test.o")))
        let elf = try ELFFile(bytes: ObjectBytes(original))
        let rela = try #require(elf.sections.first { $0.name == ".rela.debug_info" })
        let info = try #require(elf.section(named: ".debug_info"))
        func patched(_ change: (inout [UInt8]) -> Void) throws -> ELFFile {
            var bytes = original
            change(&bytes)
            return try ELFFile(bytes: ObjectBytes(bytes))
        }
        // The first entry's r_offset far past the end of .debug_info.
        let past = try patched { b in for i in 0..<8 { b[Int(rela.offset) + i] = i == 2 ? 0x10 : 0 } }
        #expect(throws: ObjectFileError.malformed("relocation at \(0x10 << 16) runs past .debug_info")) { _ = try past.debugSection(".debug_info") }
        #expect(0x10 << 16 > info.size)
        // The first entry's type (low 32 bits of r_info) one no reader applies.
        let unknown = try patched { b in for i in 0..<4 { b[Int(rela.offset) + 8 + i] = i == 0 ? 0xEE : 0 } }
        #expect(try unknown.debugSection(".debug_info") != nil)
        #expect(unknown.debugInformationCaveat == "relocatable object: 1 relocations of the debug sections are of types not applied; addresses and ranges may be wrong")
        #expect(elf.debugInformationCaveat == nil)
    }
}
