/// A Mach-O file (32- or 64-bit, little-endian; one slice of a fat file): segments and sections,
/// the symbol table, `LC_UUID` (the debug id), and the `__DWARF` sections of objects and dSYM
/// companions.
public struct MachOFile: Sendable {
    public struct Section: Sendable {
        public let segment: String
        public let name: String
        public let address: UInt64
        public let size: UInt64
        public let offset: UInt32
        public let flags: UInt32
        /// Holds instructions (`S_ATTR_PURE_INSTRUCTIONS` or `S_ATTR_SOME_INSTRUCTIONS`).
        public var isCode: Bool { flags & 0x8000_0400 != 0 }
    }

    public struct Segment: Sendable {
        public let name: String
        public let address: UInt64
        public let fileOffset: UInt64
    }

    public let bytes: ObjectBytes
    public let is64: Bool
    public let cpuType: UInt32
    /// MH_OBJECT 1, MH_EXECUTE 2, MH_DYLIB 6, MH_DSYM 10, …
    public let fileType: UInt32
    public let sections: [Section]
    public let segments: [Segment]
    public let uuid: [UInt8]?
    let symbolTable: (symbols: UInt32, count: UInt32, strings: UInt32, stringsSize: UInt32)?

    public static func isMachO(_ bytes: ObjectBytes) -> Bool {
        guard let magic = try? bytes.u32(0, "magic") else { return false }
        return magic == 0xFEED_FACF || magic == 0xFEED_FACE || isFat(bytes)
    }

    static func isFat(_ bytes: ObjectBytes) -> Bool {
        var big = bytes
        big.bigEndian = true
        return (try? big.u32(0, "fat magic")) == 0xCAFE_BABE && ((try? big.u32(4, "fat count")) ?? 100) < 64
    }

    /// The slices of a fat file as (cpu type, bytes); a thin file is its own only slice.
    public static func slices(_ bytes: ObjectBytes) throws(ObjectFileError) -> [(cpuType: UInt32, bytes: ObjectBytes)] {
        guard isFat(bytes) else { return [(try bytes.u32(4, "cputype"), bytes)] }
        var big = bytes
        big.bigEndian = true
        let count = try big.u32(4, "fat arch count")
        var out: [(UInt32, ObjectBytes)] = []
        for i in 0..<UInt64(count) {
            let o = 8 + i * 20
            let cpu = try big.u32(o, "fat arch cputype"), offset = try big.u32(o + 8, "fat arch offset"), size = try big.u32(o + 12, "fat arch size")
            var slice = try bytes.slice(UInt64(offset), UInt64(size), "fat slice")
            slice.bigEndian = false
            out.append((cpu, slice))
        }
        return out.map { (cpuType: $0.0, bytes: $0.1) }
    }

    public init(bytes: ObjectBytes) throws(ObjectFileError) {
        let magic = try bytes.u32(0, "Mach-O magic")
        guard magic == 0xFEED_FACF || magic == 0xFEED_FACE else { throw .malformed("not a thin little-endian Mach-O file") }
        self.bytes = bytes
        is64 = magic == 0xFEED_FACF
        cpuType = try bytes.u32(4, "cputype")
        fileType = try bytes.u32(12, "filetype")
        let commandCount = try bytes.u32(16, "ncmds")
        guard commandCount <= 65_536 else { throw .malformed("\(commandCount) load commands") }
        var offset: UInt64 = is64 ? 32 : 28
        var sections: [Section] = [], segments: [Segment] = []
        var uuid: [UInt8]?
        var symtab: (UInt32, UInt32, UInt32, UInt32)?
        func name(_ o: UInt64) throws(ObjectFileError) -> String {
            String(decoding: try bytes.slice(o, 16, "name").bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        for _ in 0..<commandCount {
            let command = try bytes.u32(offset, "load command"), size = UInt64(try bytes.u32(offset + 4, "load command size"))
            guard size >= 8, bytes.contains(offset, size) else { throw .malformed("load command at \(offset) of size \(size)") }
            switch command {
            case 0x19, 0x1: // LC_SEGMENT_64, LC_SEGMENT
                let wide = command == 0x19
                let segment = try name(offset + 8)
                let vmaddr = wide ? try bytes.u64(offset + 24, "vmaddr") : UInt64(try bytes.u32(offset + 24, "vmaddr"))
                let fileoff = wide ? try bytes.u64(offset + 40, "fileoff") : UInt64(try bytes.u32(offset + 32, "fileoff"))
                segments.append(Segment(name: segment, address: vmaddr, fileOffset: fileoff))
                let count = try bytes.u32(offset + (wide ? 64 : 48), "nsects")
                var s = offset + (wide ? 72 : 56)
                let sectionSize: UInt64 = wide ? 80 : 68
                guard UInt64(count) * sectionSize <= size else { throw .malformed("segment \(segment) with \(count) sections in \(size) bytes") }
                for _ in 0..<count {
                    let addr = wide ? try bytes.u64(s + 32, "section addr") : UInt64(try bytes.u32(s + 32, "section addr"))
                    let sz = wide ? try bytes.u64(s + 40, "section size") : UInt64(try bytes.u32(s + 36, "section size"))
                    let fileOffset = try bytes.u32(s + (wide ? 48 : 40), "section offset")
                    let flags = try bytes.u32(s + (wide ? 64 : 56), "section flags")
                    sections.append(Section(segment: try name(s + 16), name: try name(s), address: addr, size: sz, offset: fileOffset, flags: flags))
                    s += sectionSize
                }
            case 0x1B: // LC_UUID
                uuid = try bytes.slice(offset + 8, 16, "uuid").bytes
            case 0x2: // LC_SYMTAB
                symtab = (try bytes.u32(offset + 8, "symoff"), try bytes.u32(offset + 12, "nsyms"), try bytes.u32(offset + 16, "stroff"),
                          try bytes.u32(offset + 20, "strsize"))
            default: break
            }
            offset += size
        }
        self.sections = sections
        self.segments = segments
        self.uuid = uuid
        self.symbolTable = symtab
    }

    /// The 32-bit word at a virtual address inside a section with file contents (an
    /// instruction's immediate), nil when no section holds all four bytes.
    public func word(atAddress address: UInt64) -> UInt32? {
        for s in sections where s.offset != 0 && address >= s.address && address &+ 4 <= s.address &+ s.size && s.address &+ s.size >= s.address {
            return try? bytes.u32(UInt64(s.offset) + (address - s.address), "instruction word")
        }
        return nil
    }

    public func section(segment: String? = nil, named name: String) -> Section? {
        sections.first { $0.name == name && (segment == nil || $0.segment == segment) }
    }

    public func contents(of section: Section) throws(ObjectFileError) -> ObjectBytes {
        // Zero-fill sections (and dSYM's empty copies of __TEXT) have no bytes in the file.
        let type = section.flags & 0xFF
        if type == 0x1 || type == 0xC || section.offset == 0 { return ObjectBytes([]) }
        return try bytes.slice(UInt64(section.offset), section.size, "section \(section.segment),\(section.name)")
    }

    public struct Symbol: Sendable, Equatable {
        public let name: String
        public let value: UInt64
        public let type: UInt8
        public let section: UInt8
    }

    public func symbols() throws(ObjectFileError) -> [Symbol] {
        var out: [Symbol] = []
        try forEachSymbol { strings, strx, type, sect, value in
            out.append(Symbol(name: strings.cString(UInt64(strx)) ?? "", value: value, type: type, section: sect))
        }
        return out
    }

    /// Every nlist entry (string index, n_type, n_sect, n_value); returns the string table.
    @discardableResult
    func forEachSymbol(_ body: (ObjectBytes, UInt32, UInt8, UInt8, UInt64) throws(ObjectFileError) -> Void) throws(ObjectFileError) -> ObjectBytes {
        guard let table = symbolTable else { return ObjectBytes([]) }
        let entry: UInt64 = is64 ? 16 : 12
        guard table.count < 1 << 24 else { throw .malformed("\(table.count) symbols") }
        let strings = try bytes.slice(UInt64(table.strings), UInt64(table.stringsSize), "string table")
        for i in 0..<UInt64(table.count) {
            let o = UInt64(table.symbols) + i * entry
            let strx = try bytes.u32(o, "n_strx"), type = try bytes.u8(o + 4, "n_type"), sect = try bytes.u8(o + 5, "n_sect")
            let value = is64 ? try bytes.u64(o + 8, "n_value") : UInt64(try bytes.u32(o + 8, "n_value"))
            try body(strings, strx, type, sect, value)
        }
        return strings
    }
}

extension MachOFile: DebugObject {
    public var architecture: ELFFile.Machine {
        switch cpuType {
        case 7: .x86
        case 0x0100_0007: .x86_64
        case 12: .arm
        case 0x0100_000C: .arm64
        default: .other(UInt16(truncatingIfNeeded: cpuType))
        }
    }

    public var operatingSystem: String { "mac" }

    /// The UUID in order, upper-case, and age 0 (objects have no UUID: zeros, as symbolic).
    public var debugID: String { ELFFile.hex(uuid ?? [UInt8](repeating: 0, count: 16)).uppercased() + "0" }

    public var codeIdentifier: String? { uuid.map { ELFFile.hex($0).uppercased() } }

    /// The `__TEXT` segment's address (0 for objects).
    public var loadAddress: UInt64 { segments.first { $0.name == "__TEXT" }?.address ?? 0 }

    public var isRelocatable: Bool { fileType == 1 }

    public func executableRanges() -> [(UInt64, UInt64)] {
        sections.filter { $0.isCode && $0.size > 0 }.map { ($0.address, $0.address &+ $0.size) }
    }

    public func functionSymbols() throws(ObjectFileError) -> FunctionSymbols {
        let code = Set(sections.enumerated().filter { $0.element.isCode }.map { $0.offset + 1 })
        var entries: [FunctionSymbols.Entry] = []
        let strings = try forEachSymbol { strings, strx, type, sect, value in
            // Defined in a section (N_SECT), not a debugging entry, in code, named.
            guard type & 0xE0 == 0, type & 0x0E == 0x0E, code.contains(Int(sect)), !FunctionSymbols.isEmptyName(strings, UInt64(strx)) else { return }
            // The platform's `_` prefix is not part of the name.
            let prefixed = (try? strings.u8(UInt64(strx), "")) == UInt8(ascii: "_")
            entries.append(FunctionSymbols.Entry(address: value, nameOffset: UInt64(strx) + (prefixed ? 1 : 0), global: type & 0x01 != 0))
        }
        return FunctionSymbols(entries: entries, strings: strings)
    }

    /// `.debug_info` is `__DWARF,__debug_info`; `.eh_frame` is `__TEXT,__eh_frame` (16 bytes of
    /// section name at most: `__debug_str_offs`).
    static func machName(_ elfName: String) -> String {
        String(("__" + (elfName.hasPrefix(".") ? String(elfName.dropFirst()) : elfName)).prefix(16))
    }

    public func debugSection(_ elfName: String) throws(ObjectFileError) -> (data: ObjectBytes, address: UInt64)? {
        guard let s = section(named: Self.machName(elfName)) else { return nil }
        return (try contents(of: s), s.address)
    }

    public func hasDebugSection(_ elfName: String) -> Bool { section(named: Self.machName(elfName)) != nil }

    public var debugInformationCaveat: String? { nil }
}
