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
