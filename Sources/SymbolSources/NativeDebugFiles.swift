import BreakpadSymbols
import Foundation
import ObjectFiles
import SymbolDump

/// Native debug files (ELF; Mach-O, thin or fat) read as symbol tables with no `.sym` file in
/// between: a symbol tree may hold `<file>/<ID>/<file>` (or `<file>.dbg`, `<file>.debug`) as a
/// symbol server stores a native upload, and the stackwalker and symbolication use it directly.
/// The DWARF and call frame information are turned into records that the same parser as any
/// `.sym` reads block by block as they are written (one table builder, tested against Breakpad;
/// no text file, and the text never whole in memory), and the table's on-disk index is written
/// beside the others, so the debug file is read once.
public enum NativeDebugFiles {
    /// The names a native debug file may have in `<root>/<file>/<ID>/` (none for PDB names).
    public static func fileNames(for debugFile: String) -> [String] {
        guard !debugFile.lowercased().hasSuffix(".pdb"), !debugFile.isEmpty else { return [] }
        return [debugFile, debugFile + ".dbg", debugFile + ".debug"]
    }

    /// Whether the file starts like an ELF or Mach-O file (cheap: the first bytes).
    public static func looksNative(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8)) ?? Data()
        let bytes = ObjectBytes(Array(head))
        return ELFFile.isELF(bytes) || MachOFile.isMachO(bytes)
    }

    /// The symbol table of the debug file at `path`; of a fat Mach-O, the slice whose debug id
    /// is `debugId` (else the first).
    public static func table(path: String, debugFile: String, debugId: String?) throws -> SymbolTable {
        guard let objects = try debugObjects(ObjectBytes.map(path: path)) else {
            throw ObjectFileError.notSupported("\(path) is neither an ELF nor a Mach-O file")
        }
        guard let object = objects.first(where: { $0.debugID.uppercased() == debugId?.uppercased() }) ?? objects.first else {
            throw ObjectFileError.malformed("\(path) has no architecture slices")
        }
        // The records go into the parser block by block as they are written: the text is
        // never held whole.
        var parser = SymbolStreamParser()
        _ = try SymbolFileWriter.write(binary: object, debugFileName: debugFile,
                                       options: .init(generator: "postmortem", threads: ProcessInfo.processInfo.activeProcessorCount)) { block in
            block.withUnsafeBytes { parser.feed($0) }
        }
        return try parser.finish()
    }
}
