import Dispatch
import ObjectFiles
import Synchronization

/// What a `.sym` needs from DWARF: functions with their address ranges, the functions inlined
/// into them (call site and nesting), and the line table rows, with file paths.
///
/// Everything is kept flat (ranges and inlines are slices of shared arrays) and names stay in
/// their sections until written (`DebugString`): a large debug file has millions of DIEs, and a
/// value or a string per DIE cost more time and memory than the DWARF itself.
public struct DebugInfo: Sendable {
    public struct Function: Sendable {
        public var name: DebugString
        /// Into `ranges`, sorted.
        public var ranges: Range<Int>
        /// Into `inlines`, in DIE order.
        public var inlines: Range<Int>
    }

    public struct Inline: Sendable {
        /// 0: inlined directly into the function; n: into the closest preceding inline of depth n − 1.
        public var depth: Int32
        /// Index into `files`, −1 when the call site names no file.
        public var callFile: Int32
        public var callLine: UInt64
        public var name: DebugString
        /// Into `ranges`, sorted.
        public var ranges: Range<Int>
    }

    public struct AddressRange: Sendable, Equatable, Comparable {
        public let start: UInt64
        public let end: UInt64
        public init(start: UInt64, end: UInt64) { self.start = start; self.end = end }
        public static func < (a: Self, b: Self) -> Bool { (a.start, a.end) < (b.start, b.end) }
    }

    /// A line table row: [lineBase + offset, … + size), 16 bytes (a large file has millions).
    /// Rows outside 4 GiB above `lineBase`, or of 4 GiB or more, are not code.
    public struct Line: Sendable, Equatable {
        public let offset: UInt32
        public let size: UInt32
        /// Index into `files`.
        public var file: UInt32
        /// Truncated to 32 bits, as Breakpad and symbolic keep line numbers.
        public let line: UInt32
        public init(offset: UInt32, size: UInt32, file: UInt32, line: UInt32) { (self.offset, self.size, self.file, self.line) = (offset, size, file, line) }

        /// Ordered by address, then size, file and line (the whole row: equal rows are the same).
        @inline(__always)
        public static func precedes(_ a: Line, _ b: Line) -> Bool {
            let x = UInt64(a.offset) << 32 | UInt64(a.size), y = UInt64(b.offset) << 32 | UInt64(b.size)
            if x != y { return x < y }
            return (UInt64(a.file) << 32 | UInt64(a.line)) < (UInt64(b.file) << 32 | UInt64(b.line))
        }
    }

    /// Which line rows to keep, and the address their offsets count from.
    public struct LineFilter: Sendable {
        public let base: UInt64
        public let keep: @Sendable (UInt64) -> Bool
        public init(base: UInt64 = 0, keep: @escaping @Sendable (UInt64) -> Bool = { _ in true }) { self.base = base; self.keep = keep }
    }

    public var functions: [Function] = []
    public var inlines: [Inline] = []
    public var ranges: [AddressRange] = []
    public var lines: [Line] = []
    /// The address line offsets count from.
    public var lineBase: UInt64 = 0
    /// Every file path the lines and inlines name, without duplicates.
    public var files: [String] = []
    /// Where the names are.
    public let sections: DWARFSections

    public init(sections: DWARFSections = DWARFSections()) { self.sections = sections }

    /// A name's text; `<name omitted>` for a DIE without one.
    public func name(_ s: DebugString) -> String { sections.string(s) ?? "<name omitted>" }

    /// Reads every compile unit, on up to `threads` threads (each a contiguous run of units,
    /// merged in unit order, so the result does not depend on the thread count). A unit that
    /// cannot be read is skipped and named in `problems`; the others still count. Line rows
    /// starting where `lines` says no (code the linker dropped) are not kept.
    public static func read(_ sections: DWARFSections, threads: Int = 1, lines: LineFilter = LineFilter())
        throws(ObjectFileError) -> (DebugInfo, problems: [String]) {
        let units = try DWARFInfoReader(sections: sections).units()
        // Runs of units of about equal size.
        let total = units.reduce(0) { $0 + ($1.end - $1.offset) }
        let parts = max(1, min(threads, 16, units.count))
        var groups: [[CompilationUnit]] = Array(repeating: [], count: parts)
        var done: UInt64 = 0
        for unit in units {
            let group = total == 0 ? 0 : min(parts - 1, Int(done * UInt64(parts) / total))
            groups[group].append(unit)
            done += unit.end - unit.offset
        }
        let results = ParallelResults<Partial>(count: parts)
        let groupsToRead = groups
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            var reader = DWARFInfoReader(sections: sections)
            var partial = Partial(lineFilter: lines)
            // Room for the rows up front (a program byte makes at most one row; a third is
            // plenty in practice): growing an array of millions of rows copies it, and for a
            // moment holds it twice. Pages never written cost no memory.
            let share = total == 0 ? 0 : Double(groupsToRead[i].reduce(0) { $0 + ($1.end - $1.offset) }) / Double(total)
            partial.lines.reserveCapacity(min(1 << 24, Int(Double(sections.line.count) * share / 3) + 1024))
            for unit in groupsToRead[i] {
                // What a unit added before it failed is kept: it was read without fault.
                do {
                    try partial.readUnit(unit, reader: &reader)
                } catch {
                    partial.problems.append("unit at .debug_info+\(unit.offset): \(error)")
                }
            }
            partial.groupInlines()
            results.set(i, partial)
        }
        var (info, problems) = merge(results.values, sections: sections)
        info.lineBase = lines.base
        return (info, problems)
    }

    /// One thread's units: functions, inlines and lines with its own file numbers, and the
    /// names of its subprogram DIEs (sorted by DIE offset, as units are read in order).
    struct Partial: Sendable {
        var functions: [Function] = []
        /// The DIE each function's name is resolved from.
        var functionDIEs: [UInt64] = []
        var inlines: [Inline] = []
        /// The function each inline belongs to, and the DIE its name is resolved from.
        var inlineOwners: [Int32] = []
        var inlineDIEs: [UInt64] = []
        var ranges: [AddressRange] = []
        var lines: [Line] = []
        var files = FileTable()
        var names: [NameEntry] = []
        var problems: [String] = []
        let lineFilter: LineFilter

        init(lineFilter: LineFilter) { self.lineFilter = lineFilter }

        /// Orders the inlines by function (a nested subprogram interrupts its parent's), keeping
        /// DIE order within each, and gives every function its slice.
        mutating func groupInlines() {
            var counts = [Int](repeating: 0, count: functions.count + 1)
            for owner in inlineOwners { counts[Int(owner) + 1] += 1 }
            for i in 0..<functions.count { counts[i + 1] += counts[i] }
            for i in 0..<functions.count { functions[i].inlines = counts[i]..<counts[i + 1] }
            var placed = [Inline](), dies = [UInt64]()
            placed.reserveCapacity(inlines.count); dies.reserveCapacity(inlines.count)
            var next = counts
            var order = [Int](repeating: 0, count: inlines.count)
            for (i, owner) in inlineOwners.enumerated() { order[next[Int(owner)]] = i; next[Int(owner)] += 1 }
            for i in order { placed.append(inlines[i]); dies.append(inlineDIEs[i]) }
            inlines = placed
            inlineDIEs = dies
            inlineOwners = []
        }
    }

    /// Joins the threads' parts in order: file numbers made global, slices moved, names resolved.
    /// Each part's arrays are moved, not copied, where they can be (the first part's, and with
    /// one thread all of them): a large file's line rows are tens of megabytes.
    static func merge(_ parts: [Partial], sections: DWARFSections) -> (DebugInfo, problems: [String]) {
        var parts = parts
        var info = DebugInfo(sections: sections)
        var files = FileTable()
        var names: [NameEntry] = []
        for i in parts.indices {
            if names.isEmpty { swap(&names, &parts[i].names) } else { names += parts[i].names; parts[i].names = [] }
        }
        let table = NameTable(entries: names)
        var problems: [String] = []
        func append<T>(_ array: inout [T], _ part: inout [T]) {
            if array.isEmpty { swap(&array, &part) } else { array += part; part = [] }
        }
        for i in parts.indices {
            let fileMap = parts[i].files.paths.map { UInt32(files.id($0)) }
            let rangeBase = info.ranges.count, inlineBase = info.inlines.count
            for j in parts[i].functions.indices {
                var f = parts[i].functions[j]
                f.ranges = (f.ranges.lowerBound + rangeBase)..<(f.ranges.upperBound + rangeBase)
                f.inlines = (f.inlines.lowerBound + inlineBase)..<(f.inlines.upperBound + inlineBase)
                let resolved = table.resolve(parts[i].functionDIEs[j])
                if !resolved.isNone { f.name = resolved }
                parts[i].functions[j] = f
            }
            for j in parts[i].inlines.indices {
                var inline = parts[i].inlines[j]
                inline.ranges = (inline.ranges.lowerBound + rangeBase)..<(inline.ranges.upperBound + rangeBase)
                if inline.callFile >= 0 { inline.callFile = Int32(fileMap[Int(inline.callFile)]) }
                inline.name = table.resolve(parts[i].inlineDIEs[j])
                parts[i].inlines[j] = inline
            }
            for j in parts[i].lines.indices { parts[i].lines[j].file = fileMap[Int(parts[i].lines[j].file)] }
            append(&info.ranges, &parts[i].ranges)
            append(&info.functions, &parts[i].functions)
            append(&info.inlines, &parts[i].inlines)
            append(&info.lines, &parts[i].lines)
            problems += parts[i].problems
            parts[i] = Partial(lineFilter: parts[i].lineFilter)
        }
        info.files = files.paths
        return (info, problems)
    }

    /// File paths numbered once.
    struct FileTable: Sendable {
        var paths: [String] = []
        var index: [String: Int] = [:]
        mutating func id(_ path: String) -> Int {
            if let i = index[path] { return i }
            paths.append(path)
            index[path] = paths.count - 1
            return paths.count - 1
        }
    }

    /// A subprogram DIE's names and the DIE its abstract_origin / specification names.
    struct NameEntry: Sendable {
        let die: UInt64
        let name: DebugString
        let linkage: DebugString
        /// `UInt64.max`: none.
        let reference: UInt64
    }

    /// Every subprogram DIE's names, sorted by DIE offset (references may cross units).
    struct NameTable {
        let entries: [NameEntry]

        func entry(_ die: UInt64) -> NameEntry? {
            var lo = 0, hi = entries.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if entries[mid].die < die { lo = mid + 1 } else { hi = mid }
            }
            return lo < entries.count && entries[lo].die == die ? entries[lo] : nil
        }

        /// The linkage name, else the name, following abstract_origin / specification links.
        func resolve(_ die: UInt64) -> DebugString {
            var current = die
            var name = DebugString.none
            for _ in 0..<16 {
                guard let e = entry(current) else { break }
                if !e.linkage.isNone { return e.linkage }
                if name.isNone { name = e.name }
                guard e.reference != .max else { break }
                current = e.reference
            }
            return name
        }
    }
}

extension DebugInfo.Partial {
    mutating func readUnit(_ unit: CompilationUnit, reader: inout DWARFInfoReader) throws(ObjectFileError) {
        typealias Function = DebugInfo.Function
        typealias AddressRange = DebugInfo.AddressRange
        var unit = unit
        let abbrevs = try reader.abbreviations(at: unit.abbrevOffset)
        var c = DWARFCursor(reader.sections.info, at: unit.firstDIE)
        // Parents: for a function or inline DIE its place in `functions`, and the inline depth.
        struct Parent { let function: Int32; let inlineDepth: Int32 }
        var stack: [Parent] = []
        var unitBase: UInt64 = 0
        var fileMap: [UInt32] = [] // the unit's file numbers → this part's file indexes
        var dies = 0
        var scratch: [(UInt64, UInt64)] = []
        while c.offset < unit.end {
            let dieOffset = c.offset
            let code = try c.uleb()
            if code == 0 {
                if !stack.isEmpty { stack.removeLast() }
                continue
            }
            dies += 1
            guard dies < 50_000_000 else { throw .malformed("more than 50 million DIEs in one unit") }
            guard let abbrev = abbrevs.entry(code) else { throw .malformed("DIE at \(dieOffset) uses abbreviation \(code), which does not exist") }
            let tag = abbrev.tag
            // Only these DIEs need their attributes decoded; every other DIE is stepped over.
            let wanted = tag == DW.tagSubprogram || tag == DW.tagInlinedSubroutine || tag == DW.tagCompileUnit || tag == DW.tagPartialUnit
            var name = DebugString.none, linkage = DebugString.none, low: AttributeValue?, high: AttributeValue?, highIsOffset = false
            var rangesValue: AttributeValue?, reference = UInt64.max, callFile: UInt64?, callLine: UInt64 = 0
            var stmtList: UInt64?, compDir = DebugString.none, unitName = DebugString.none
            for i in abbrev.attributes {
                let attribute = abbrevs.attributes[i]
                let v = try reader.value(&c, form: attribute.form, implicitConst: attribute.implicitConst, unit: unit)
                guard wanted else { continue }
                switch attribute.name {
                case DW.atName: name = reader.stringReference(v, unit: unit)
                case DW.atLinkageName, DW.atMIPSLinkageName: linkage = reader.stringReference(v, unit: unit)
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
                case DW.atCompDir: compDir = reader.stringReference(v, unit: unit)
                case DW.atStrOffsetsBase: if case .secOffset(let o) = v { unit.strOffsetsBase = o } else if case .unsigned(let o) = v { unit.strOffsetsBase = o }
                case DW.atAddrBase, DW.atGNUAddrBase: if case .secOffset(let o) = v { unit.addrBase = o } else if case .unsigned(let o) = v { unit.addrBase = o }
                case DW.atRnglistsBase: if case .secOffset(let o) = v { unit.rnglistsBase = o } else if case .unsigned(let o) = v { unit.rnglistsBase = o }
                default: break
                }
            }
            if tag == DW.tagCompileUnit || tag == DW.tagPartialUnit { unitName = name }
            // Address ranges of this DIE appended to `ranges`, sorted (the bases must be known:
            // they come first in the unit DIE).
            func pcRanges() throws(ObjectFileError) -> Range<Int> {
                let first = ranges.count
                if let rangesValue {
                    scratch.removeAll(keepingCapacity: true)
                    try reader.ranges(rangesValue, unit: unit, base: unitBase, into: &scratch)
                    for r in scratch where r.1 > r.0 { ranges.append(AddressRange(start: r.0, end: r.1)) }
                    if ranges.count - first > 1 { ranges[first...].sort() }
                    return first..<ranges.count
                }
                guard let low, let lowAddress = reader.address(low, unit: unit), let high else { return first..<first }
                let end: UInt64
                if highIsOffset {
                    switch high {
                    case .unsigned(let n): end = lowAddress &+ n
                    case .signed(let n) where n >= 0: end = lowAddress &+ UInt64(n)
                    default: return first..<first
                    }
                } else if let h = reader.address(high, unit: unit) { end = h } else { return first..<first }
                if end > lowAddress { ranges.append(AddressRange(start: lowAddress, end: end)) }
                return first..<ranges.count
            }
            var pushed = Parent(function: stack.last?.function ?? -1, inlineDepth: stack.last?.inlineDepth ?? -1)
            switch tag {
            case DW.tagCompileUnit, DW.tagPartialUnit:
                if let low, let a = reader.address(low, unit: unit) { unitBase = a }
                if let stmtList {
                    let first = lines.count
                    // Rows carry the program's file numbers until the table is complete: a
                    // program that fails half-way takes its rows with it.
                    let tableFiles: [String]
                    do {
                        tableFiles = try reader.lineTable(at: stmtList, unit: unit, compDir: reader.sections.string(compDir) ?? "",
                                                          unitName: reader.sections.string(unitName) ?? "") {
                        start, end, file, line in
                        let size = end - start, offset = start &- lineFilter.base
                        guard size <= UInt64(UInt32.max), file <= UInt64(UInt32.max), start >= lineFilter.base, offset <= UInt64(UInt32.max),
                              lineFilter.keep(start) else { return }
                        lines.append(DebugInfo.Line(offset: UInt32(offset), size: UInt32(size), file: UInt32(file), line: UInt32(truncatingIfNeeded: line)))
                        }
                    } catch {
                        lines.removeSubrange(first...)
                        throw error
                    }
                    fileMap = tableFiles.map { UInt32(files.id($0)) }
                    // Rows naming a file the table does not have are dropped.
                    var kept = first
                    for i in first..<lines.count where Int(lines[i].file) < fileMap.count {
                        var row = lines[i]
                        row.file = fileMap[Int(row.file)]
                        lines[kept] = row
                        kept += 1
                    }
                    lines.removeSubrange(kept...)
                }
            case DW.tagSubprogram:
                names.append(DebugInfo.NameEntry(die: dieOffset, name: name, linkage: linkage, reference: reference))
                let r = try pcRanges()
                // A nested subprogram (a local class's method) starts a function of its own.
                if !r.isEmpty {
                    functions.append(Function(name: linkage.isNone ? name : linkage, ranges: r, inlines: 0..<0))
                    functionDIEs.append(dieOffset)
                    pushed = Parent(function: Int32(functions.count - 1), inlineDepth: -1)
                } else {
                    pushed = Parent(function: -1, inlineDepth: -1)
                }
            case DW.tagInlinedSubroutine:
                if let f = stack.last?.function, f >= 0 {
                    let depth = (stack.last?.inlineDepth ?? -1) + 1
                    let r = try pcRanges()
                    if !r.isEmpty {
                        let file = callFile.flatMap { Int(exactly: $0) }.flatMap { $0 < fileMap.count ? Int32(fileMap[$0]) : nil } ?? -1
                        inlines.append(DebugInfo.Inline(depth: depth, callFile: file, callLine: callLine, name: .none, ranges: r))
                        inlineOwners.append(f)
                        inlineDIEs.append(reference == .max ? dieOffset : reference)
                        if reference == .max { names.append(DebugInfo.NameEntry(die: dieOffset, name: name, linkage: linkage, reference: .max)) }
                        pushed = Parent(function: f, inlineDepth: depth)
                    }
                }
            default:
                break
            }
            if abbrev.hasChildren { stack.append(pushed) }
        }
        // Read once: the system may have these pages back (names are read from .debug_str).
        reader.sections.info.dropResidentPages(unit.offset..<unit.end)
    }
}

/// Results of a `concurrentPerform`, one slot per iteration (also the symbol file writer's).
public final class ParallelResults<T: Sendable>: Sendable {
    private let slots: Mutex<[T?]>

    public init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    public func set(_ i: Int, _ value: T) { slots.withLock { $0[i] = value } }
    /// The values set, in iteration order.
    public var values: [T] { slots.withLock { $0.compactMap { $0 } } }
}
