/// Relocations of a relocatable ELF object's debug sections (`.rela.debug_info`,
/// `.rel.eh_frame`, …): in a `.o` file (or a kernel module) the DWARF's addresses and string
/// offsets are still zero plus a relocation, and read as they are they point at the first
/// function and the first string. The absolute and pc-relative data relocations DWARF and CFI
/// use are applied — S + A, S + A − P — for x86, x86_64, arm and aarch64, with each section at
/// its header's address (0 in an object file, as symbolic and llvm-symbolizer read objects).
extension ELFFile {
    /// Whether `section` has relocations this reader applies.
    func relocationSections(for section: Section) -> [Section] {
        sections.filter { ($0.type == 4 || $0.type == 9) && Int($0.info) == section.index && $0.size > 0 }
    }

    /// One relocation entry: where it applies, its symbol index and type, and its addend (nil
    /// for REL, whose addend is what the place holds).
    struct Relocation { let offset: UInt64, symbol: UInt64, type: UInt32, addend: Int64? }

    /// Every relocation entry (REL and RELA, 32- and 64-bit) patching `section`.
    func forEachRelocation(of section: Section, _ body: (Relocation) throws(ObjectFileError) -> Void) throws(ObjectFileError) {
        for table in relocationSections(for: section) {
            let rela = table.type == 4
            let entry: UInt64 = is64 ? (rela ? 24 : 16) : (rela ? 12 : 8)
            let relocations = try contents(of: table)
            let count = UInt64(relocations.count) / entry
            guard count <= 1 << 26 else { throw .malformed("\(count) relocations in \(table.name)") }
            for i in 0..<count {
                let o = i * entry
                if is64 {
                    let info = try relocations.u64(o + 8, "r_info")
                    try body(Relocation(offset: try relocations.u64(o, "r_offset"), symbol: info >> 32, type: UInt32(truncatingIfNeeded: info),
                                        addend: rela ? Int64(bitPattern: try relocations.u64(o + 16, "r_addend")) : nil))
                } else {
                    let info = try relocations.u32(o + 4, "r_info")
                    try body(Relocation(offset: UInt64(try relocations.u32(o, "r_offset")), symbol: UInt64(info >> 8), type: info & 0xFF,
                                        addend: rela ? Int64(Int32(bitPattern: try relocations.u32(o + 8, "r_addend"))) : nil))
                }
            }
        }
    }

    /// `data` (the contents of `section`) with its relocations applied; types this reader does
    /// not know are left as they are (`debugInformationCaveat` counts them).
    func applyRelocations(to data: ObjectBytes, of section: Section) throws(ObjectFileError) -> ObjectBytes {
        guard !relocationSections(for: section).isEmpty, let (symbolData, _) = try symbolTable() else { return data }
        let symbolSize: UInt64 = is64 ? 24 : 16
        var result = try ObjectBytes.filling(data.count) { (out: UnsafeMutableRawBufferPointer) throws(ObjectFileError) -> Int in
            data.withUnsafeBytes { out.copyMemory(from: $0) }
            return data.count
        }
        result.bigEndian = data.bigEndian
        guard let base = result.base.map({ UnsafeMutableRawPointer(mutating: $0) }) else { return result }
        try forEachRelocation(of: section) { (r: Relocation) throws(ObjectFileError) in
            let (offset, symbol) = (r.offset, r.symbol)
            guard let (width, pcRelative) = Self.relocationKind(machine, r.type) else { return }
            guard result.contains(offset, UInt64(width)) else { throw .malformed("relocation at \(offset) runs past \(section.name)") }
            // S: the symbol's value, plus its section's address for a section-relative one.
            let symbolOffset = symbol &* symbolSize
            let value = is64 ? try symbolData.u64(symbolOffset + 8, "st_value") : UInt64(try symbolData.u32(symbolOffset + 4, "st_value"))
            let shndx = try symbolData.u16(symbolOffset + (is64 ? 6 : 14), "st_shndx")
            let sectionAddress = Int(shndx) < sections.count && shndx != 0 && shndx < 0xFF00 ? sections[Int(shndx)].address : 0
            let s = value &+ sectionAddress
            // A: explicit (RELA), or what the place holds (REL).
            let a: Int64
            if let addend = r.addend {
                a = addend
            } else if width == 8 {
                a = Int64(bitPattern: try result.u64(offset, "addend"))
            } else {
                a = Int64(Int32(bitPattern: try result.u32(offset, "addend")))
            }
            var v = s &+ UInt64(bitPattern: a)
            if pcRelative { v = v &- (section.address &+ offset) }
            let place = base + Int(offset)
            if width == 8 {
                place.storeBytes(of: result.bigEndian ? v.bigEndian : v.littleEndian, toByteOffset: 0, as: UInt64.self)
            } else {
                let w = UInt32(truncatingIfNeeded: v)
                place.storeBytes(of: result.bigEndian ? w.bigEndian : w.littleEndian, toByteOffset: 0, as: UInt32.self)
            }
        }
        return result
    }

    /// (bytes written, pc-relative) of a data relocation type, nil for others.
    static func relocationKind(_ machine: Machine, _ type: UInt32) -> (Int, Bool)? {
        switch (machine, type) {
        case (.x86_64, 1): (8, false)      // R_X86_64_64
        case (.x86_64, 10), (.x86_64, 11): (4, false) // R_X86_64_32, 32S
        case (.x86_64, 2): (4, true)       // R_X86_64_PC32
        case (.x86_64, 24): (8, true)      // R_X86_64_PC64
        case (.arm64, 257): (8, false)     // R_AARCH64_ABS64
        case (.arm64, 258): (4, false)     // R_AARCH64_ABS32
        case (.arm64, 260): (8, true)      // R_AARCH64_PREL64
        case (.arm64, 261): (4, true)      // R_AARCH64_PREL32
        case (.arm, 2): (4, false)         // R_ARM_ABS32
        case (.arm, 3): (4, true)          // R_ARM_REL32
        case (.x86, 1): (4, false)         // R_386_32
        case (.x86, 2): (4, true)          // R_386_PC32
        default: nil
        }
    }
}
