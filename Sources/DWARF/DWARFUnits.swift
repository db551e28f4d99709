import ObjectFiles

/// The DWARF sections a reader uses (absent ones are empty).
public struct DWARFSections: Sendable {
    public var info = ObjectBytes([])
    public var abbrev = ObjectBytes([])
    public var str = ObjectBytes([])
    public var lineStr = ObjectBytes([])
    public var strOffsets = ObjectBytes([])
    public var addr = ObjectBytes([])
    public var ranges = ObjectBytes([])
    public var rnglists = ObjectBytes([])
    public var line = ObjectBytes([])

    public init() {}

    /// The sections of an ELF file (compressed ones inflated).
    public init(elf: ELFFile) throws(ObjectFileError) { try self.init(object: elf) }

    /// The DWARF sections of an object file of any container.
    public init(object: any DebugObject) throws(ObjectFileError) {
        func get(_ name: String) throws(ObjectFileError) -> ObjectBytes { try object.debugSection(name)?.data ?? ObjectBytes([]) }
        info = try get(".debug_info")
        abbrev = try get(".debug_abbrev")
        str = try get(".debug_str")
        lineStr = try get(".debug_line_str")
        strOffsets = try get(".debug_str_offsets")
        addr = try get(".debug_addr")
        ranges = try get(".debug_ranges")
        rnglists = try get(".debug_rnglists")
        line = try get(".debug_line")
    }
}

/// A string in a debug section, read only when a record needs it: most DIE names never are.
public struct DebugString: Sendable, Hashable {
    enum Section: UInt64 { case none = 0, info = 1, str = 2, lineStr = 3 }
    /// The section in the top two bits, the offset in the others.
    let raw: UInt64

    public static let none = DebugString(raw: 0)
    var section: Section { Section(rawValue: raw >> 62) ?? .none }
    var offset: UInt64 { raw & (1 << 62 - 1) }
    public var isNone: Bool { raw == 0 }

    init(raw: UInt64) { self.raw = raw }
    init(_ section: Section, _ offset: UInt64) {
        self.raw = offset < 1 << 62 ? section.rawValue << 62 | offset : 0
    }
}

extension DWARFSections {
    /// Lets the system take back the mapped pages of the sections read once (the names in
    /// `.debug_str` are still read while records are written).
    public func dropResidentPages() {
        for s in [info, abbrev, lineStr, strOffsets, addr, ranges, rnglists, line] { s.dropResidentPages() }
    }

    /// The text of `s` (nil for `.none` or an offset outside its section).
    public func string(_ s: DebugString) -> String? {
        switch s.section {
        case .none: nil
        case .info: info.cString(s.offset)
        case .str: str.cString(s.offset)
        case .lineStr: lineStr.cString(s.offset)
        }
    }
}

/// A unit's abbreviations: each DIE's tag, whether it has children, and its attributes' names
/// and forms, kept flat (one array of attributes, entries indexed by code when codes are small,
/// as compilers number them) so that decoding a DIE allocates nothing.
struct AbbreviationTable {
    struct Attribute { let name: UInt64; let form: UInt64; let implicitConst: Int64 }
    struct Entry { let tag: UInt64; let hasChildren: Bool; let attributes: Range<Int> }

    var attributes: [Attribute] = []
    var dense: [Entry?] = []
    var sparse: [UInt64: Entry] = [:]

    @inline(__always)
    func entry(_ code: UInt64) -> Entry? {
        code < UInt64(dense.count) ? dense[Int(code)] : sparse[code]
    }

    mutating func add(_ code: UInt64, _ entry: Entry) {
        if code < 1 << 16 {
            if code >= UInt64(dense.count) { dense += [Entry?](repeating: nil, count: Int(code) + 1 - dense.count) }
            dense[Int(code)] = entry
        } else {
            sparse[code] = entry
        }
    }
}

/// A value of an attribute, decoded only as far as the readers need.
enum AttributeValue {
    case unsigned(UInt64)
    case signed(Int64)
    /// A DW_FORM_string: where it starts in the section being read.
    case string(UInt64)
    /// A string offset into .debug_str / .debug_line_str, or an index into .debug_str_offsets.
    case strp(UInt64), lineStrp(UInt64), strx(UInt64)
    case addrx(UInt64)
    /// A reference to a DIE: the offset in .debug_info.
    case reference(UInt64)
    case secOffset(UInt64)
    case rnglistx(UInt64)
    case flag(Bool)
    case other
}

/// A compilation unit's header and the bases its indexed forms need.
struct CompilationUnit: Sendable {
    let offset: UInt64
    let end: UInt64
    let version: UInt16
    let dwarf64: Bool
    let addressSize: Int
    let abbrevOffset: UInt64
    /// Where the first DIE starts.
    let firstDIE: UInt64
    var strOffsetsBase: UInt64 = 0
    var addrBase: UInt64 = 0
    var rnglistsBase: UInt64 = 0
}

/// DW_TAG, DW_AT and DW_FORM numbers the readers use.
enum DW {
    static let tagCompileUnit: UInt64 = 0x11, tagPartialUnit: UInt64 = 0x3C, tagSubprogram: UInt64 = 0x2E, tagInlinedSubroutine: UInt64 = 0x1D
    static let tagNamespace: UInt64 = 0x39, tagClass: UInt64 = 0x02, tagStructure: UInt64 = 0x13, tagUnion: UInt64 = 0x17

    static let atName: UInt64 = 0x03, atStmtList: UInt64 = 0x10, atLowPC: UInt64 = 0x11, atHighPC: UInt64 = 0x12, atCompDir: UInt64 = 0x1B
    static let atInline: UInt64 = 0x20, atAbstractOrigin: UInt64 = 0x31, atSpecification: UInt64 = 0x47, atRanges: UInt64 = 0x55
    static let atCallFile: UInt64 = 0x58, atCallLine: UInt64 = 0x59, atLinkageName: UInt64 = 0x6E, atMIPSLinkageName: UInt64 = 0x2007
    static let atStrOffsetsBase: UInt64 = 0x72, atAddrBase: UInt64 = 0x73, atRnglistsBase: UInt64 = 0x74, atDeclaration: UInt64 = 0x3C
    static let atGNUAddrBase: UInt64 = 0x2133, atGNURangesBase: UInt64 = 0x2132
}

/// Decodes the units, abbreviations and attribute values of `.debug_info`.
struct DWARFInfoReader {
    let sections: DWARFSections
    /// The last table read: units that share one are usually adjacent, and keeping every
    /// unit's table (thousands in a large binary, each ten times its encoded size) costs more
    /// than reading a table again.
    private(set) var abbrevCache: (offset: UInt64, table: AbbreviationTable)?

    init(sections: DWARFSections) { self.sections = sections }

    /// Every compile (and partial) unit header in `.debug_info`.
    func units() throws(ObjectFileError) -> [CompilationUnit] {
        var out: [CompilationUnit] = []
        var c = DWARFCursor(sections.info)
        while !c.atEnd {
            let start = c.offset
            let (length, dwarf64) = try c.initialLength()
            let (end, overflow) = c.offset.addingReportingOverflow(length)
            guard !overflow, end <= UInt64(sections.info.count), end > c.offset else { throw .malformed("unit at \(start) runs past .debug_info") }
            let version = try c.u16()
            guard (2...5).contains(version) else { throw .notSupported("DWARF version \(version) (unit at \(start))") }
            var unitType: UInt8 = 1
            let abbrevOffset: UInt64, addressSize: Int
            if version >= 5 {
                unitType = try c.u8()
                addressSize = Int(try c.u8())
                abbrevOffset = try c.sectionOffset(dwarf64: dwarf64)
                switch unitType {
                case 4, 5: try c.skip(8) // skeleton, split compile: a dwo id
                case 2, 6: try c.skip(8 + (dwarf64 ? 8 : 4)) // type units: signature and type offset
                default: break
                }
            } else {
                abbrevOffset = try c.sectionOffset(dwarf64: dwarf64)
                addressSize = Int(try c.u8())
            }
            guard addressSize == 4 || addressSize == 8 else { throw .malformed("address size \(addressSize) in unit at \(start)") }
            if unitType == 1 || unitType == 3 || unitType == 4 {
                out.append(CompilationUnit(offset: start, end: end, version: version, dwarf64: dwarf64, addressSize: addressSize,
                                           abbrevOffset: abbrevOffset, firstDIE: c.offset))
            }
            c.offset = end
        }
        return out
    }

    /// The abbreviation table at `offset` (cached).
    mutating func abbreviations(at offset: UInt64) throws(ObjectFileError) -> AbbreviationTable {
        if let cached = abbrevCache, cached.offset == offset { return cached.table }
        var table = AbbreviationTable()
        var c = DWARFCursor(sections.abbrev, at: offset)
        var count = 0
        while true {
            let code = try c.uleb()
            if code == 0 { break }
            let tag = try c.uleb()
            let children = try c.u8() != 0
            let first = table.attributes.count
            while true {
                let name = try c.uleb(), form = try c.uleb()
                if name == 0 && form == 0 { break }
                let implicit: Int64 = form == 0x21 ? try c.sleb() : 0
                table.attributes.append(AbbreviationTable.Attribute(name: name, form: form, implicitConst: implicit))
                if table.attributes.count - first > 10_000 { throw .malformed("an abbreviation with more than 10,000 attributes") }
            }
            table.add(code, AbbreviationTable.Entry(tag: tag, hasChildren: children, attributes: first..<table.attributes.count))
            count += 1
            if count > 1 << 20 { throw .malformed("more than a million abbreviations at \(offset)") }
        }
        abbrevCache = (offset, table)
        return table
    }

    /// Reads one attribute value of `form` (skipping what no reader needs).
    func value(_ c: inout DWARFCursor, form: UInt64, implicitConst: Int64, unit: CompilationUnit, depth: Int = 0) throws(ObjectFileError) -> AttributeValue {
        switch form {
        case 0x01: return .unsigned(try c.unsigned(size: unit.addressSize)) // addr
        case 0x0B: return .unsigned(UInt64(try c.u8())) // data1
        case 0x05: return .unsigned(UInt64(try c.u16())) // data2
        case 0x06: return .unsigned(UInt64(try c.u32())) // data4
        case 0x07: return .unsigned(try c.u64()) // data8
        case 0x1E: try c.skip(16); return .other // data16
        case 0x0D: return .signed(try c.sleb()) // sdata
        case 0x0F: return .unsigned(try c.uleb()) // udata
        case 0x08: return .string(try c.skipCString()) // string
        case 0x0E: return .strp(try c.sectionOffset(dwarf64: unit.dwarf64)) // strp
        case 0x1F: return .lineStrp(try c.sectionOffset(dwarf64: unit.dwarf64)) // line_strp
        case 0x1A: return .strx(try c.uleb()) // strx
        case 0x25: return .strx(UInt64(try c.u8()))
        case 0x26: return .strx(UInt64(try c.u16()))
        case 0x27: return .strx(try c.u24())
        case 0x28: return .strx(UInt64(try c.u32()))
        case 0x1B: return .addrx(try c.uleb()) // addrx
        case 0x29: return .addrx(UInt64(try c.u8()))
        case 0x2A: return .addrx(UInt64(try c.u16()))
        case 0x2B: return .addrx(try c.u24())
        case 0x2C: return .addrx(UInt64(try c.u32()))
        case 0x11: return .reference(unit.offset + UInt64(try c.u8())) // ref1
        case 0x12: return .reference(unit.offset + UInt64(try c.u16()))
        case 0x13: return .reference(unit.offset + UInt64(try c.u32()))
        case 0x14: return .reference(unit.offset &+ (try c.u64()))
        case 0x15: return .reference(unit.offset &+ (try c.uleb()))
        case 0x10: // ref_addr: an address-size offset in DWARF 2, an offset since
            return .reference(unit.version <= 2 ? try c.unsigned(size: unit.addressSize) : try c.sectionOffset(dwarf64: unit.dwarf64))
        case 0x20: try c.skip(8); return .other // ref_sig8
        case 0x17: return .secOffset(try c.sectionOffset(dwarf64: unit.dwarf64)) // sec_offset
        case 0x23: return .rnglistx(try c.uleb()) // rnglistx
        case 0x22: _ = try c.uleb(); return .other // loclistx
        case 0x18: try c.skip(try c.uleb()); return .other // exprloc
        case 0x09: try c.skip(try c.uleb()); return .other // block
        case 0x0A: try c.skip(UInt64(try c.u8())); return .other // block1
        case 0x03: try c.skip(UInt64(try c.u16())); return .other // block2
        case 0x04: try c.skip(UInt64(try c.u32())); return .other // block4
        case 0x0C: return .flag(try c.u8() != 0) // flag
        case 0x19: return .flag(true) // flag_present
        case 0x21: return .signed(implicitConst) // implicit_const
        case 0x16: // indirect
            guard depth < 4 else { throw .malformed("DW_FORM_indirect nested too deep") }
            let actual = try c.uleb()
            return try value(&c, form: actual, implicitConst: implicitConst, unit: unit, depth: depth + 1)
        case 0x1F01, 0x1F02: return .unsigned(try c.uleb()) // GNU_addr_index, GNU_str_index
        case 0x1F20, 0x1F21: return .secOffset(try c.sectionOffset(dwarf64: unit.dwarf64)) // GNU_ref_alt, GNU_strp_alt
        default: throw .notSupported("DWARF form 0x\(String(form, radix: 16))")
        }
    }

    // MARK: - resolving indexed values

    /// The string an attribute names; a DW_FORM_string is in `inline` (the section read).
    func string(_ v: AttributeValue, unit: CompilationUnit, inline: ObjectBytes) -> String? {
        let ref = stringReference(v, unit: unit)
        switch ref.section {
        case .info: return inline.cString(ref.offset)
        default: return sections.string(ref)
        }
    }

    /// Where the string of an attribute is, without reading it (DW_FORM_string: in `.debug_info`).
    func stringReference(_ v: AttributeValue, unit: CompilationUnit) -> DebugString {
        switch v {
        case .string(let o): return DebugString(.info, o)
        case .strp(let o): return DebugString(.str, o)
        case .lineStrp(let o): return DebugString(.lineStr, o)
        case .strx(let i):
            let size: UInt64 = unit.dwarf64 ? 8 : 4
            let base = unit.strOffsetsBase == 0 && unit.version >= 5 ? (unit.dwarf64 ? 16 : 8) : unit.strOffsetsBase
            guard let o = try? sections.strOffsets.word(base &+ i &* size, is64: unit.dwarf64, "str offset") else { return .none }
            return DebugString(.str, o)
        default: return .none
        }
    }

    func address(_ v: AttributeValue, unit: CompilationUnit) -> UInt64? {
        switch v {
        case .unsigned(let a): return a
        case .addrx(let i):
            let base = unit.addrBase == 0 ? 8 : unit.addrBase
            return try? sections.addr.word(base &+ i &* UInt64(unit.addressSize), is64: unit.addressSize == 8, "debug_addr entry")
        default: return nil
        }
    }

    /// The address ranges of `DW_AT_ranges` (.debug_ranges in DWARF 2–4, .debug_rnglists in 5),
    /// `base` being the unit's base address.
    func ranges(_ v: AttributeValue, unit: CompilationUnit, base: UInt64, into out: inout [(UInt64, UInt64)]) throws(ObjectFileError) {
        if unit.version < 5 {
            switch v {
            case .secOffset(let o), .unsigned(let o): return try rangesV4(o, unit: unit, base: base, into: &out)
            default: return
            }
        }
        var offset: UInt64
        switch v {
        case .secOffset(let o): offset = o
        case .rnglistx(let i):
            let size: UInt64 = unit.dwarf64 ? 8 : 4
            offset = unit.rnglistsBase &+ (try sections.rnglists.word(unit.rnglistsBase &+ i &* size, is64: unit.dwarf64, "rnglist offset"))
        case .unsigned(let o): offset = o
        default: return
        }
        var c = DWARFCursor(sections.rnglists, at: offset)
        var baseAddress = base
        for _ in 0..<1_000_000 {
            let kind = try c.u8()
            switch kind {
            case 0: return // end_of_list
            case 1: baseAddress = address(.addrx(try c.uleb()), unit: unit) ?? 0 // base_addressx
            case 2: // startx_endx
                let s = address(.addrx(try c.uleb()), unit: unit) ?? 0, e = address(.addrx(try c.uleb()), unit: unit) ?? 0
                out.append((s, e))
            case 3: // startx_length
                let s = address(.addrx(try c.uleb()), unit: unit) ?? 0
                out.append((s, s &+ (try c.uleb())))
            case 4: // offset_pair
                let s = try c.uleb(), e = try c.uleb()
                out.append((baseAddress &+ s, baseAddress &+ e))
            case 5: baseAddress = try c.unsigned(size: unit.addressSize) // base_address
            case 6: // start_end
                let s = try c.unsigned(size: unit.addressSize), e = try c.unsigned(size: unit.addressSize)
                out.append((s, e))
            case 7: // start_length
                let s = try c.unsigned(size: unit.addressSize)
                out.append((s, s &+ (try c.uleb())))
            default: throw .malformed("range list entry kind \(kind)")
            }
        }
        throw .malformed("a range list with more than a million entries")
    }

    func rangesV4(_ offset: UInt64, unit: CompilationUnit, base: UInt64, into out: inout [(UInt64, UInt64)]) throws(ObjectFileError) {
        var c = DWARFCursor(sections.ranges, at: offset)
        var baseAddress = base
        let maxAddress: UInt64 = unit.addressSize == 8 ? .max : 0xFFFF_FFFF
        for _ in 0..<1_000_000 {
            let s = try c.unsigned(size: unit.addressSize), e = try c.unsigned(size: unit.addressSize)
            if s == 0 && e == 0 { return }
            if s == maxAddress { baseAddress = e; continue }
            out.append((baseAddress &+ s, baseAddress &+ e))
        }
        throw .malformed("a range list with more than a million entries")
    }
}
