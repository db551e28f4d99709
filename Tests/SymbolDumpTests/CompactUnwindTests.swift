import Foundation
import ObjectFiles
import SymbolDump
import Testing
import TestSupport

/// Compact unwind runs that hand over to `__eh_frame` (DWARF mode, what a function with
/// unusual CFI gets): Debian's lld 14 links the image but leaves the run's FDE offset at 0 and the
/// FDE's start unrelocated, so the test repairs both bytes (the offset of the FDE, the function's
/// address), as Apple's linker writes them, and then the records must be symbolic's.
@Suite struct CompactUnwindTests {
    static let source = #"""
    #if defined(__x86_64__)
    __asm__(".text\n.globl _odd\n_odd:\n .cfi_startproc\n movq %rbp, %rax\n .cfi_register %rbp, %rax\n movq %rax, %rbp\n .cfi_restore %rbp\n ret\n .cfi_endproc\n");
    #else
    __asm__(".text\n.globl _odd\n.p2align 2\n_odd:\n .cfi_startproc\n mov x9, x19\n .cfi_register x19, x9\n mov x19, x9\n .cfi_restore x19\n ret\n .cfi_endproc\n");
    #endif
    int odd(void);
    int user(int n) { return odd() + n; }
    """#

    @Test(arguments: ["x86_64", "arm64"])
    func aDwarfModeRunUsesTheFDEItNames(_ arch: String) throws {
        let dir = TestData.temporaryDirectory("compact-unwind")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clang = try #require(findExecutable("clang"), "clang is required")
        let linker = try #require(findExecutable("ld64.lld-14"), "Debian's lld-14 (ld64.lld-14) is required to link Mach-O")
        try Data(Self.source.utf8).write(to: URL(fileURLWithPath: dir + "/odd.c"))
        let (cc, _, ccErr) = try runProcess(clang, ["-target", "\(arch)-apple-macos11", "-O2", "-c", "-o", dir + "/odd.o", dir + "/odd.c"])
        #expect(cc == 0, "\(String(decoding: ccErr, as: UTF8.self))")
        let image = dir + "/odd.dylib"
        let (ld, _, ldErr) = try runProcess(linker, ["-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-dylib", "-o", image, dir + "/odd.o"])
        #expect(ld == 0, "\(String(decoding: ldErr, as: UTF8.self))")

        // Find the DWARF-mode encoding, the FDE and `odd`.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        let macho = try MachOFile(bytes: ObjectBytes(bytes))
        let unwind = try #require(macho.section(named: "__unwind_info")), eh = try #require(macho.section(named: "__eh_frame"))
        let odd = try #require(try macho.symbols().first { $0.name == "_odd" })
        let mode: UInt32 = arch == "x86_64" ? 0x0400_0000 : 0x0300_0000
        let info = try macho.bytes.slice(UInt64(unwind.offset), unwind.size, "")
        let commonOffset = UInt64(try info.u32(4, "")), commonCount = UInt64(try info.u32(8, ""))
        let dwarfIndex = try #require((0..<commonCount).first { (try? info.u32(commonOffset + 4 * $0, "")) == mode }, "a DWARF-mode encoding")
        // The FDE follows the one CIE: its offset in the section is the CIE's length + 4.
        let cieLength = UInt64(try macho.bytes.u32(UInt64(eh.offset), ""))
        let fde = cieLength + 4
        func put32(_ value: UInt32, at offset: Int) { for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) } }
        func put64(_ value: UInt64, at offset: Int) { for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) } }
        put32(mode | UInt32(fde), at: Int(UInt64(unwind.offset) + commonOffset + 4 * dwarfIndex))
        // pc_begin: pc-relative 8-byte pointer (the CIE's "zR" with DW_EH_PE_pcrel), 8 bytes into the FDE.
        let field = UInt64(eh.offset) + fde + 8
        put64(odd.value &- (eh.address + fde + 8), at: Int(field))
        try Data(bytes).write(to: URL(fileURLWithPath: image))

        let repaired = try MachOFile(bytes: ObjectBytes.map(path: image))
        let (text, summary, problems) = try SymbolFileWriter.write(binary: repaired, debugFileName: "odd.dylib")
        #expect(problems.isEmpty, "\(problems)")
        let ours = text.split(separator: "\n").filter { $0.hasPrefix("STACK CFI") }.map(String.init)
        let python = try #require(findExecutable("python3"), "python3 with PyPI symbolic is required")
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_cfi.py", image])
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        let theirs = String(decoding: out, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("STACK CFI") }.map(String.init)
        // `odd`'s records come from its FDE: the return address rule, then the saved register moved.
        let oddStart = String(odd.value - macho.loadAddress, radix: 16)
        #expect(ours.contains { $0.hasPrefix("STACK CFI INIT \(oddStart) ") }, "\(ours)")
        #expect(ours.contains { $0.contains(arch == "x86_64" ? "$rbp: $rax" : "x19: x9") }, "\(ours)")
        #expect(summary.cfi == 2)
        #expect(Set(ours.compactMap(Self.normalized)) == Set(theirs.compactMap(Self.normalized)), "ours:\n\(ours.joined(separator: "\n"))\nsymbolic:\n\(theirs.joined(separator: "\n"))")
    }

    /// Rules as a set per record (the two writers order a record's rules differently), without
    /// the rules we restate after a restore (`reg: reg`, which symbolic leaves out; a row left
    /// with nothing else is one symbolic does not write).
    static func normalized(_ line: String) -> String? {
        var fields = line.split(separator: " ").map(String.init)
        let head = fields.prefix(fields[2] == "INIT" ? 5 : 3).joined(separator: " ")
        fields.removeFirst(fields[2] == "INIT" ? 5 : 3)
        var rules: [String] = [], current = ""
        for word in fields {
            if word.hasSuffix(":"), !current.isEmpty { rules.append(current); current = "" }
            current += (current.isEmpty ? "" : " ") + word
        }
        if !current.isEmpty { rules.append(current) }
        let kept = rules.filter { r in let p = r.split(separator: " "); return !(p.count == 2 && p[0].dropLast() == p[1]) }
        if kept.isEmpty, !head.contains("INIT") { return nil }
        return head + " " + kept.sorted().joined(separator: " ")
    }
}
