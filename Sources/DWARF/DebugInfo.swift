import ObjectFiles

/// What a `.sym` needs from DWARF: functions with their address ranges, the functions inlined
/// into them (call site and nesting), and the line table rows, with file paths.
public struct DebugInfo: Sendable {
    public struct Function: Sendable {
        public var name: String
        public var ranges: [AddressRange]
        public var inlines: [Inline]
    }

    public struct Inline: Sendable {
        /// 0: inlined directly into the function; n: into the closest preceding inline of depth n − 1.
        public var depth: Int
        public var name: String
        /// Index into `files`, nil when the call site names no file.
        public var callFile: Int?
        public var callLine: UInt64
        public var ranges: [AddressRange]
    }

    public struct AddressRange: Sendable, Equatable, Comparable {
        public let start: UInt64
        public let end: UInt64
        public init(start: UInt64, end: UInt64) { self.start = start; self.end = end }
        public static func < (a: Self, b: Self) -> Bool { (a.start, a.end) < (b.start, b.end) }
    }

    public struct Line: Sendable, Equatable {
        public let start: UInt64
        public let end: UInt64
        /// Index into `files`.
        public let file: Int
        public let line: UInt64
        public init(start: UInt64, end: UInt64, file: Int, line: UInt64) { (self.start, self.end, self.file, self.line) = (start, end, file, line) }
    }

    public init() {}

    public var functions: [Function] = []
    public var lines: [Line] = []
    /// Every file path the lines and inlines name, without duplicates.
    public var files: [String] = []

    /// Reads every compile unit. A unit that cannot be read is skipped and named in `problems`;
    /// the others still count.
    public static func read(_ sections: DWARFSections) throws(ObjectFileError) -> (DebugInfo, problems: [String]) {
        var reader = DWARFInfoReader(sections: sections)
        var info = DebugInfo()
        var problems: [String] = []
        var files = FileTable()
        // Names of every subprogram DIE (declarations included) for abstract_origin and
        // specification references, resolved after all units are read (refs may cross units).
        var names = NameTable()
        var pendingFunctions: [(function: Function, nameRef: UInt64)] = []
        var pendingInlines: [(function: Int, inline: Int, nameRef: UInt64)] = []
        for unit in try reader.units() {
            do {
                try readUnit(unit, reader: &reader, names: &names, functions: &pendingFunctions, inlines: &pendingInlines, lines: &info.lines,
                             files: &files)
            } catch {
                problems.append("unit at .debug_info+\(unit.offset): \(error)")
            }
        }
        for (i, pending) in pendingFunctions.enumerated() {
            var f = pending.function
            f.name = names.resolve(pending.nameRef) ?? f.name
            pendingFunctions[i].function = f
        }
        for p in pendingInlines {
            pendingFunctions[p.function].function.inlines[p.inline].name = names.resolve(p.nameRef) ?? "<name omitted>"
        }
        info.functions = pendingFunctions.map(\.function)
        info.files = files.paths
        return (info, problems)
    }

    /// File paths numbered once across all units.
    struct FileTable {
        var paths: [String] = []
        var index: [String: Int] = [:]
        mutating func id(_ path: String) -> Int {
            if let i = index[path] { return i }
            paths.append(path)
            index[path] = paths.count - 1
            return paths.count - 1
        }
    }

    struct NameTable {
        struct Entry { var name: String?, linkage: String?, reference: UInt64? }
        var entries: [UInt64: Entry] = [:]

        /// The linkage name, else the name, following abstract_origin / specification links.
        func resolve(_ offset: UInt64) -> String? {
            var current: UInt64? = offset
            var name: String?
            for _ in 0..<16 {
                guard let o = current, let e = entries[o] else { break }
                if let l = e.linkage { return l }
                if name == nil { name = e.name }
                current = e.reference
            }
            return name
        }
    }

    static func readUnit(_ unit: CompilationUnit, reader: inout DWARFInfoReader, names: inout NameTable,
                         functions: inout [(function: Function, nameRef: UInt64)], inlines: inout [(function: Int, inline: Int, nameRef: UInt64)],
                         lines: inout [Line], files: inout FileTable) throws(ObjectFileError) {
        var unit = unit
        let abbrevs = try reader.abbreviations(at: unit.abbrevOffset)
        var c = DWARFCursor(reader.sections.info, at: unit.firstDIE)
        // Parents: the tag, and for a function or inline DIE its place in `functions`.
        struct Parent { let tag: UInt64; let function: Int?; let inlineDepth: Int }
        var stack: [Parent] = []
        var unitBase: UInt64 = 0
        var fileMap: [Int] = [] // the unit's file numbers → global file indexes
        var dies = 0
        while c.offset < unit.end {
            let dieOffset = c.offset
            let code = try c.uleb()
            if code == 0 {
                if !stack.isEmpty { stack.removeLast() }
                continue
            }
            dies += 1
            guard dies < 50_000_000 else { throw .malformed("more than 50 million DIEs in one unit") }
            guard let abbrev = abbrevs[code] else { throw .malformed("DIE at \(dieOffset) uses abbreviation \(code), which does not exist") }
            var name: String?, linkage: String?, low: AttributeValue?, high: AttributeValue?, highIsOffset = false
            var rangesValue: AttributeValue?, reference: UInt64?, callFile: UInt64?, callLine: UInt64 = 0
            var stmtList: UInt64?, compDir = ""
            for attribute in abbrev.attributes {
                let v = try reader.value(&c, form: attribute.form, implicitConst: attribute.implicitConst, unit: unit)
                switch attribute.name {
                case DW.atName: name = reader.string(v, unit: unit)
                case DW.atLinkageName, DW.atMIPSLinkageName: linkage = reader.string(v, unit: unit)
                case DW.atLowPC: low = v
                case DW.atHighPC:
                    high = v
                    // An address form is the end; a constant is an offset from low_pc (DWARF 4+).
                    highIsOffset = !(attribute.form == 0x01 || attribute.form == 0x1B || (0x29...0x2C).contains(attribute.form))
                case DW.atRanges: rangesValue = v
                case DW.atAbstractOrigin, DW.atSpecification: if case .reference(let r) = v { reference = r }
                case DW.atCallFile: if case .unsigned(let f) = v { callFile = f } else if case .signed(let f) = v, f >= 0 { callFile = UInt64(f) }
                case DW.atCallLine: if case .unsigned(let l) = v { callLine = l } else if case .signed(let l) = v, l >= 0 { callLine = UInt64(l) }
                case DW.atStmtList: if case .secOffset(let o) = v { stmtList = o } else if case .unsigned(let o) = v { stmtList = o }
                case DW.atCompDir: compDir = reader.string(v, unit: unit) ?? ""
                case DW.atStrOffsetsBase: if case .secOffset(let o) = v { unit.strOffsetsBase = o } else if case .unsigned(let o) = v { unit.strOffsetsBase = o }
                case DW.atAddrBase, DW.atGNUAddrBase: if case .secOffset(let o) = v { unit.addrBase = o } else if case .unsigned(let o) = v { unit.addrBase = o }
                case DW.atRnglistsBase: if case .secOffset(let o) = v { unit.rnglistsBase = o } else if case .unsigned(let o) = v { unit.rnglistsBase = o }
                default: break
                }
            }
            let tag = abbrev.tag
            // Address ranges of this DIE (the bases must be known: they come first in the unit DIE).
            func pcRanges() throws(ObjectFileError) -> [AddressRange] {
                if let rangesValue {
                    return try reader.ranges(rangesValue, unit: unit, base: unitBase).filter { $0.1 > $0.0 }.map { AddressRange(start: $0.0, end: $0.1) }
                }
                guard let low, let lowAddress = reader.address(low, unit: unit) else { return [] }
                guard let high else { return [] }
                let end: UInt64
                if highIsOffset {
                    switch high {
                    case .unsigned(let n): end = lowAddress &+ n
                    case .signed(let n) where n >= 0: end = lowAddress &+ UInt64(n)
                    default: return []
                    }
                } else if let h = reader.address(high, unit: unit) { end = h } else { return [] }
                return end > lowAddress ? [AddressRange(start: lowAddress, end: end)] : []
            }
            var pushed = Parent(tag: tag, function: stack.last?.function, inlineDepth: stack.last?.inlineDepth ?? -1)
            switch tag {
            case DW.tagCompileUnit, DW.tagPartialUnit:
                if let low, let a = reader.address(low, unit: unit) { unitBase = a }
                if let stmtList {
                    let table = try reader.lineTable(at: stmtList, unit: unit, compDir: compDir, unitName: name ?? "")
                    fileMap = table.files.map { files.id($0) }
                    for r in table.ranges where r.file < fileMap.count {
                        lines.append(Line(start: r.start, end: r.end, file: fileMap[r.file], line: r.line))
                    }
                }
            case DW.tagSubprogram:
                names.entries[dieOffset] = NameTable.Entry(name: name, linkage: linkage, reference: reference)
                let ranges = try pcRanges()
                // A nested subprogram (a local class's method) starts a function of its own.
                if !ranges.isEmpty {
                    functions.append((Function(name: linkage ?? name ?? "<name omitted>", ranges: ranges.sorted(), inlines: []), dieOffset))
                    pushed = Parent(tag: tag, function: functions.count - 1, inlineDepth: -1)
                } else {
                    pushed = Parent(tag: tag, function: nil, inlineDepth: -1)
                }
            case DW.tagInlinedSubroutine:
                if let f = stack.last?.function {
                    let depth = (stack.last?.inlineDepth ?? -1) + 1
                    let ranges = try pcRanges()
                    if !ranges.isEmpty {
                        let file = callFile.flatMap { Int(exactly: $0) }.flatMap { $0 < fileMap.count ? fileMap[$0] : nil }
                        functions[f].function.inlines.append(Inline(depth: depth, name: "", callFile: file, callLine: callLine, ranges: ranges.sorted()))
                        inlines.append((f, functions[f].function.inlines.count - 1, reference ?? dieOffset))
                        if reference == nil { names.entries[dieOffset] = NameTable.Entry(name: name, linkage: linkage, reference: nil) }
                        pushed = Parent(tag: tag, function: f, inlineDepth: depth)
                    }
                }
            default:
                break
            }
            if abbrev.hasChildren { stack.append(pushed) }
        }
    }
}
