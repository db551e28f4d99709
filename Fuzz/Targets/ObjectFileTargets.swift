// Native debug files: the ELF reader, the DWARF reader and the .sym writer over both.
import BreakpadSymbols
import DWARF
import ObjectFiles
import SymbolDump

extension FuzzTargets {
    /// One input = one ELF file: headers, symbols, ids, every section's contents (inflating the
    /// compressed ones), the DWARF, and the `.sym` written from it, read back by the parser.
    static func elf(_ bytes: [UInt8]) {
        guard let file = try? ELFFile(bytes: ObjectBytes(bytes)) else { return }
        _ = try? file.symbols()
        _ = (file.debugID, file.codeID, file.debugLink(), file.loadAddress, file.machine.breakpadName)
        for section in file.sections { _ = try? file.contents(of: section) }
        if let sections = try? DWARFSections(elf: file) { _ = try? DebugInfo.read(sections) }
        if let (text, _, _) = try? SymbolFileWriter.write(binary: file, debugFileName: "fuzz") {
            _ = try? SymbolFileParser().parse(Array(text.utf8))
        }
    }
}

extension FuzzTargets {
    /// One input = one Mach-O file (thin or fat): every slice's load commands, symbols and
    /// sections, the DWARF, and the `.sym` written from it, read back by the parser.
    static func macho(_ bytes: [UInt8]) {
        let object = ObjectBytes(bytes)
        guard MachOFile.isMachO(object), let slices = try? MachOFile.slices(object) else { return }
        for slice in slices.prefix(4) {
            guard let file = try? MachOFile(bytes: slice.bytes) else { continue }
            _ = try? file.symbols()
            _ = (file.debugID, file.codeIdentifier, file.loadAddress, file.architecture.breakpadName, file.executableRanges())
            for section in file.sections { _ = try? file.contents(of: section) }
            if let (text, _, _) = try? SymbolFileWriter.write(binary: file, debugFileName: "fuzz") {
                _ = try? SymbolFileParser().parse(Array(text.utf8))
            }
        }
    }
}
