import CompressNIO
import NIOCore

/// An ELF file (32- or 64-bit, either byte order): section and program headers, symbol tables,
/// the build id and the identifiers Breakpad derives from it, `.gnu_debuglink`, and section
/// contents with `SHF_COMPRESSED` (zlib) and `.zdebug_*` sections inflated.
public struct ELFFile: Sendable {
    public enum Machine: Sendable, Equatable {
        case x86, x86_64, arm, arm64, other(UInt16)

        /// The architecture name of a `.sym` MODULE line.
        public var breakpadName: String {
            switch self {
            case .x86: "x86"
            case .x86_64: "x86_64"
            case .arm: "arm"
            case .arm64: "arm64"
            case .other(let m): "unknown-\(m)"
            }
        }
    }

    public struct Section: Sendable {
        public let index: Int
        public let name: String
        public let type: UInt32
        public let flags: UInt64
        public let address: UInt64
        public let offset: UInt64
        public let size: UInt64
        public let link: UInt32
        /// sh_info: for a relocation section, the section its entries patch.
        public var info: UInt32 = 0
        public let entrySize: UInt64

        public var isCompressed: Bool { flags & 0x800 != 0 }
        static let noBits: UInt32 = 8
    }

    public struct ProgramHeader: Sendable {
        public let type: UInt32
        public let offset: UInt64
        public let virtualAddress: UInt64
        public let fileSize: UInt64
        public let memorySize: UInt64
    }

    public struct Symbol: Sendable, Equatable {
        public let name: String
        public let value: UInt64
        public let size: UInt64
        /// STT_*: 0 none, 1 object, 2 function, …
        public let type: UInt8
        /// STB_*: 0 local, 1 global, 2 weak.
        public let binding: UInt8
        public let sectionIndex: UInt16
        public var isFunction: Bool { type == 2 }
        public var isDefined: Bool { sectionIndex != 0 }
    }

    public let bytes: ObjectBytes
    public let is64: Bool
    public let machine: Machine
    /// ET_REL 1, ET_EXEC 2, ET_DYN 3.
    public let fileType: UInt16
    public let sections: [Section]
    public let programHeaders: [ProgramHeader]

    /// At most this many sections and program headers are read (a hostile count is refused).
    static let maxHeaders = 1 << 16
    /// A decompressed section may not be larger than this.
    public static let maxSectionSize: UInt64 = 4 << 30

    public static func isELF(_ bytes: ObjectBytes) -> Bool {
        (try? bytes.u32(0, "magic")) == 0x464C_457F
    }

    public init(bytes original: ObjectBytes) throws(ObjectFileError) {
        guard Self.isELF(original) else { throw .malformed("not an ELF file (no \\x7fELF magic)") }
        let elfClass = try original.u8(4, "ELF class"), data = try original.u8(5, "ELF data encoding")
        guard elfClass == 1 || elfClass == 2 else { throw .malformed("ELF class \(elfClass) is neither 32- nor 64-bit") }
        guard data == 1 || data == 2 else { throw .malformed("ELF data encoding \(data) is neither little- nor big-endian") }
        var bytes = original
        bytes.bigEndian = data == 2
        self.bytes = bytes
        let is64 = elfClass == 2
        self.is64 = is64
        fileType = try bytes.u16(16, "e_type")
        let m = try bytes.u16(18, "e_machine")
        switch m {
        case 3: machine = .x86
        case 62: machine = .x86_64
        case 40: machine = .arm
        case 183: machine = .arm64
        default: machine = .other(m)
        }
        let w: UInt64 = is64 ? 8 : 4
        let phoff = try bytes.word(24 + w, is64: is64, "e_phoff")
        let shoff = try bytes.word(24 + 2 * w, is64: is64, "e_shoff")
        let base = 24 + 3 * w + 4
        let phentsize = UInt64(try bytes.u16(base + 2, "e_phentsize"))
        var phnum = UInt64(try bytes.u16(base + 4, "e_phnum"))
        let shentsize = UInt64(try bytes.u16(base + 6, "e_shentsize"))
        var shnum = UInt64(try bytes.u16(base + 8, "e_shnum"))
        var shstrndx = UInt64(try bytes.u16(base + 10, "e_shstrndx"))

        // Raw section headers first; names need the string table section.
        struct RawSection { var name: UInt32, type: UInt32, flags: UInt64, addr: UInt64, offset: UInt64, size: UInt64, link: UInt32, info: UInt32, entsize: UInt64 }
        func rawSection(_ i: UInt64) throws(ObjectFileError) -> RawSection {
            let o = shoff &+ i &* shentsize
            guard shentsize >= (is64 ? 64 : 40) else { throw .malformed("section header size \(shentsize) is too small") }
            if is64 {
                return RawSection(name: try bytes.u32(o, "sh_name"), type: try bytes.u32(o + 4, "sh_type"), flags: try bytes.u64(o + 8, "sh_flags"),
                                  addr: try bytes.u64(o + 16, "sh_addr"), offset: try bytes.u64(o + 24, "sh_offset"), size: try bytes.u64(o + 32, "sh_size"),
                                  link: try bytes.u32(o + 40, "sh_link"), info: try bytes.u32(o + 44, "sh_info"), entsize: try bytes.u64(o + 56, "sh_entsize"))
            }
            return RawSection(name: try bytes.u32(o, "sh_name"), type: try bytes.u32(o + 4, "sh_type"), flags: UInt64(try bytes.u32(o + 8, "sh_flags")),
                              addr: UInt64(try bytes.u32(o + 12, "sh_addr")), offset: UInt64(try bytes.u32(o + 16, "sh_offset")),
                              size: UInt64(try bytes.u32(o + 20, "sh_size")), link: try bytes.u32(o + 24, "sh_link"),
                              info: try bytes.u32(o + 28, "sh_info"), entsize: UInt64(try bytes.u32(o + 36, "sh_entsize")))
        }
        var raws: [RawSection] = []
        if shoff != 0 {
            // More than 0xff00 sections: the count and the string table index live in section 0.
            if shnum == 0 || shstrndx == 0xFFFF {
                let zero = try rawSection(0)
                if shnum == 0 { shnum = zero.size }
                if shstrndx == 0xFFFF { shstrndx = UInt64(zero.link) }
            }
            guard shnum <= UInt64(Self.maxHeaders) else { throw .malformed("\(shnum) section headers") }
            for i in 0..<shnum { raws.append(try rawSection(i)) }
        }
        var names: ObjectBytes?
        if shstrndx < UInt64(raws.count), raws[Int(shstrndx)].type != Section.noBits {
            let s = raws[Int(shstrndx)]
            names = try? bytes.slice(s.offset, s.size, "section name table")
        }
        sections = raws.enumerated().map { i, r in
            Section(index: i, name: names?.cString(UInt64(r.name), limit: 4096) ?? "", type: r.type, flags: r.flags, address: r.addr,
                    offset: r.offset, size: r.size, link: r.link, info: r.info, entrySize: r.entsize)
        }
        if phnum == 0xFFFF, let first = raws.first { phnum = UInt64(first.link == 0 ? 0 : first.link) }
        guard phnum <= UInt64(Self.maxHeaders) else { throw .malformed("\(phnum) program headers") }
        var headers: [ProgramHeader] = []
        if phoff != 0 {
            guard phentsize >= (is64 ? 56 : 32) || phnum == 0 else { throw .malformed("program header size \(phentsize) is too small") }
            for i in 0..<phnum {
                let o = phoff &+ i &* phentsize
                if is64 {
                    headers.append(ProgramHeader(type: try bytes.u32(o, "p_type"), offset: try bytes.u64(o + 8, "p_offset"),
                                                 virtualAddress: try bytes.u64(o + 16, "p_vaddr"), fileSize: try bytes.u64(o + 32, "p_filesz"),
                                                 memorySize: try bytes.u64(o + 40, "p_memsz")))
                } else {
                    headers.append(ProgramHeader(type: try bytes.u32(o, "p_type"), offset: UInt64(try bytes.u32(o + 4, "p_offset")),
                                                 virtualAddress: UInt64(try bytes.u32(o + 8, "p_vaddr")), fileSize: UInt64(try bytes.u32(o + 16, "p_filesz")),
                                                 memorySize: UInt64(try bytes.u32(o + 20, "p_memsz"))))
                }
            }
        }
        programHeaders = headers
    }

    public init(path: String) throws(ObjectFileError) {
        try self.init(bytes: try ObjectBytes.map(path: path))
    }

    // MARK: - sections

    public func section(named name: String) -> Section? {
        sections.first { $0.name == name } ?? sections.first { $0.name == ".zdebug_" + name.dropFirst(".debug_".count) && name.hasPrefix(".debug_") }
    }

    /// A section's contents, inflated when it is compressed (`SHF_COMPRESSED` with zlib or zstd,
    /// or a GNU `.zdebug_*` section); empty for `SHT_NOBITS`.
    public func contents(of section: Section) throws(ObjectFileError) -> ObjectBytes {
        if section.type == Section.noBits { return ObjectBytes([]) }
        var data = try bytes.slice(section.offset, section.size, "section \(section.name)")
        data.bigEndian = bytes.bigEndian
        if section.isCompressed {
            let type = try data.u32(0, "compression header of \(section.name)")
            let size = is64 ? try data.u64(8, "compression header of \(section.name)") : UInt64(try data.u32(4, "compression header of \(section.name)"))
            let header = is64 ? 24 : 12
            switch type {
            case 1: return try Self.inflate(data, from: header, size: size, what: section.name, bigEndian: bytes.bigEndian)
            case 2:
                var result = try Zstd.decompress(data, from: header, size: size, what: section.name)
                result.bigEndian = bytes.bigEndian
                return result
            default: throw .notSupported("section \(section.name) is compressed with method \(type); zlib and zstd are read")
            }
        }
        if section.name.hasPrefix(".zdebug_"), data.count >= 12, (try? data.slice(0, 4, "").bytes) == Array("ZLIB".utf8) {
            var size: UInt64 = 0
            for i in 4..<12 { size = size << 8 | UInt64(try data.u8(UInt64(i), "zdebug size")) }
            return try Self.inflate(data, from: 12, size: size, what: section.name, bigEndian: bytes.bigEndian)
        }
        return data
    }

    /// The contents of the named section (`.debug_x` also finds `.zdebug_x`), nil when absent.
    public func contents(named name: String) throws(ObjectFileError) -> ObjectBytes? {
        guard let s = section(named: name) else { return nil }
        return try contents(of: s)
    }

    static func inflate(_ data: ObjectBytes, from start: Int, size: UInt64, what: String, bigEndian: Bool) throws(ObjectFileError) -> ObjectBytes {
        guard start <= data.count else { throw .truncated(what: "compressed section \(what)", offset: UInt64(start), size: 0) }
        // zlib cannot expand more than about 1032:1: a larger claim is a lie, refused before any
        // memory is reserved for it.
        let compressed = UInt64(data.count - start)
        guard size <= maxSectionSize, size <= compressed &* 1100 &+ 4096 else {
            throw .malformed("section \(what) claims \(size) bytes uncompressed from \(compressed)")
        }
        var input = data.withUnsafeBytes { ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: $0[start...])) }
        var output = ByteBufferAllocator().buffer(capacity: Int(min(size, 64 << 20)))
        do {
            try input.decompress(to: &output, with: .zlib())
        } catch {
            throw .malformed("section \(what) does not inflate: \(error)")
        }
        guard UInt64(output.readableBytes) == size else {
            throw .malformed("section \(what) inflates to \(output.readableBytes) bytes, not the \(size) its header says")
        }
        // One copy, as bytes (not element by element).
        var result = try ObjectBytes.filling(output.readableBytes) { (target: UnsafeMutableRawBufferPointer) throws(ObjectFileError) -> Int in
            output.withUnsafeReadableBytes { target.copyMemory(from: $0) }
            return output.readableBytes
        }
        result.bigEndian = bigEndian
        return result
    }

    // MARK: - symbols

    /// The symbols of `.symtab`, or of `.dynsym` when there is no `.symtab` (Breakpad's choice).
    public func symbols() throws(ObjectFileError) -> [Symbol] {
        guard let (data, strings) = try symbolTable() else { return [] }
        var out: [Symbol] = []
        out.reserveCapacity(Int(min(UInt64(data.count) / (is64 ? 24 : 16), 1 << 22)))
        try forEachSymbol(data) { name, info, shndx, value, size in
            out.append(Symbol(name: strings.cString(UInt64(name)) ?? "", value: value, size: size, type: info & 0xF, binding: info >> 4, sectionIndex: shndx))
        }
        return out
    }

    /// The symbol table (`.symtab`, else `.dynsym`) and its string table.
    func symbolTable() throws(ObjectFileError) -> (ObjectBytes, ObjectBytes)? {
        guard let table = sections.first(where: { $0.type == 2 }) ?? sections.first(where: { $0.type == 11 }) else { return nil }
        guard Int(table.link) < sections.count else { throw .malformed("symbol table \(table.name) links to section \(table.link)") }
        return (try contents(of: table), try contents(of: sections[Int(table.link)]))
    }

    /// Every entry of a symbol table: name offset, st_info, section index, value, size.
    func forEachSymbol(_ data: ObjectBytes, _ body: (UInt32, UInt8, UInt16, UInt64, UInt64) throws(ObjectFileError) -> Void) throws(ObjectFileError) {
        let entry: UInt64 = is64 ? 24 : 16
        for i in 0..<UInt64(data.count) / entry {
            let o = i * entry
            if is64 {
                try body(try data.u32(o, "st_name"), try data.u8(o + 4, "st_info"), try data.u16(o + 6, "st_shndx"),
                         try data.u64(o + 8, "st_value"), try data.u64(o + 16, "st_size"))
            } else {
                try body(try data.u32(o, "st_name"), try data.u8(o + 12, "st_info"), try data.u16(o + 14, "st_shndx"),
                         UInt64(try data.u32(o + 4, "st_value")), UInt64(try data.u32(o + 8, "st_size")))
            }
        }
    }

    // MARK: - identifiers

    /// The GNU build id (`NT_GNU_BUILD_ID` in a note section or a `PT_NOTE` segment).
    public func buildID() -> [UInt8]? {
        var notes: [ObjectBytes] = sections.filter { $0.type == 7 }.compactMap { try? contents(of: $0) }
        if notes.isEmpty {
            notes = programHeaders.filter { $0.type == 4 }.compactMap { try? bytes.slice($0.offset, $0.fileSize, "PT_NOTE") }
        }
        for note in notes {
            var o: UInt64 = 0
            while o + 12 <= UInt64(note.count) {
                guard let namesz = try? note.u32(o, ""), let descsz = try? note.u32(o + 4, ""), let type = try? note.u32(o + 8, "") else { break }
                let nameStart = o + 12
                let descStart = nameStart + (UInt64(namesz) + 3) / 4 * 4
                let next = descStart + (UInt64(descsz) + 3) / 4 * 4
                guard next <= UInt64(note.count) else { break }
                if type == 3, namesz == 4, note.cString(nameStart, limit: 4) == "GNU", let desc = try? note.slice(descStart, UInt64(descsz), "build id") {
                    return desc.bytes
                }
                o = next
            }
        }
        return nil
    }

    /// Breakpad's identifier: the build id, or without one an XOR of the first page of `.text`
    /// in 16-byte blocks; 16 bytes, zero-padded.
    public func identifier() -> [UInt8] {
        if let id = buildID(), !id.isEmpty {
            return Array((id + [UInt8](repeating: 0, count: 16)).prefix(16))
        }
        var out = [UInt8](repeating: 0, count: 16)
        if let text = section(named: ".text"), let data = try? contents(of: text) {
            let bytes = data.bytes.prefix(4096)
            for (i, b) in bytes.enumerated() { out[i % 16] ^= b }
        }
        return out
    }

    /// The debug id of a `.sym` MODULE line: the identifier as a GUID (first three fields byte
    /// swapped, as Breakpad prints them) and age 0, upper-case.
    public var debugID: String {
        let id = identifier()
        let swapped = [id[3], id[2], id[1], id[0], id[5], id[4], id[7], id[6]] + Array(id[8..<16])
        return Self.hex(swapped).uppercased() + "0"
    }

    /// The code id: the whole build id in hex (the identifier when there is none).
    public var codeID: String { Self.hex(buildID() ?? identifier()) }

    /// `.gnu_debuglink`: the separate debug file's name and its CRC-32.
    public func debugLink() -> (name: String, crc: UInt32)? {
        guard let s = section(named: ".gnu_debuglink"), let data = try? contents(of: s), let name = data.cString(0, limit: 4096), !name.isEmpty else { return nil }
        let crcOffset = (UInt64(name.utf8.count) + 1 + 3) / 4 * 4
        guard let crc = try? data.u32(crcOffset, "debuglink crc") else { return nil }
        return (name, crc)
    }

    /// The address `.sym` records are relative to: the first `PT_LOAD` segment's, else 0
    /// (Breakpad's `GetLoadingAddress`).
    public var loadAddress: UInt64 { programHeaders.first { $0.type == 1 }?.virtualAddress ?? 0 }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
