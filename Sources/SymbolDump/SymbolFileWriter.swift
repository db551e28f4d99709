import Demangle
import Dispatch
import DWARF
import ObjectFiles
import CSystemShims

/// Writes a Breakpad `.sym` from an object file and its debug information, in the layout
/// Breakpad's `dump_syms` uses: MODULE, INFO CODE_ID, INFO GENERATOR, FILE, INLINE_ORIGIN, then
/// FUNC records by address each followed by its INLINE and line records, then PUBLIC. Names are
/// demangled (C++, Rust legacy) as Mozilla's dump_syms prints them: without the return types of
/// function templates.
public struct SymbolFileWriter {
    public struct Options: Sendable {
        public var inlines = true
        public var cfi = true
        public var generator = "postmortem"
        /// Threads to read with: the DWARF and the call frame information are read side by side,
        /// the DWARF on all but one; FUNC records are written on all. 1 in services (requests run
        /// side by side already).
        public var threads = 1
        /// The fewest functions worth a thread of their own when FUNC records are written.
        public var functionsPerThread = 10_000
        public init(inlines: Bool = true, cfi: Bool = true, generator: String = "postmortem", threads: Int = 1, functionsPerThread: Int = 10_000) {
            self.inlines = inlines
            self.cfi = cfi
            self.generator = generator
            self.threads = threads
            self.functionsPerThread = functionsPerThread
        }
    }

    public struct Summary: Sendable, Equatable {
        public var functions = 0
        public var lines = 0
        public var inlines = 0
        public var publics = 0
        public var files = 0
        /// Functions with STACK CFI records.
        public var cfi = 0
    }

    /// The `.sym` text of `binary` (ids, architecture, symbols) with the DWARF of `debug` (the
    /// binary itself, or its separate debug file). `problems` lists DWARF units that were skipped.
    public static func write(binary: any DebugObject, debug: (any DebugObject)? = nil, debugFileName: String, options: Options = Options())
        throws(ObjectFileError) -> (text: String, summary: Summary, problems: [String]) {
        var text: [UInt8] = []
        let (summary, problems) = try write(binary: binary, debug: debug, debugFileName: debugFileName, options: options) { text += $0 }
        return (String(decoding: text, as: UTF8.self), summary, problems)
    }

    /// Writes the `.sym` to `output` a block at a time, in order (a large binary's is hundreds of
    /// megabytes: it is never held whole).
    public static func write(binary: any DebugObject, debug: (any DebugObject)? = nil, debugFileName: String, options: Options = Options(),
                             to output: ([UInt8]) -> Void) throws(ObjectFileError) -> (summary: Summary, problems: [String]) {
        let source = debug ?? binary
        let load = binary.loadAddress
        // Code the linker dropped keeps its DWARF with address 0 (or another place outside the
        // executable sections): only ranges starting in an executable section of a linked file count.
        let code = CodeRanges(binary)
        let sections = source.hasDebugSection(".debug_info") ? try DWARFSections(object: source) : nil

        // The DWARF and the call frame information side by side.
        let dwarfResult = ParallelResults<Result<(DebugInfo, [String]), ObjectFileError>>(count: 1)
        let cfiResult = ParallelResults<(bytes: SpooledBytes, count: Int, problems: [String])>(count: 1)
        let threads = max(1, options.threads), wantCFI = options.cfi
        DispatchQueue.concurrentPerform(iterations: wantCFI && threads > 1 ? 2 : 1) { task in
            if task == 0 {
                dwarfResult.set(0, Result { () throws(ObjectFileError) in
                    guard let sections else { return (DebugInfo(), []) }
                    let read = try DebugInfo.read(sections, threads: max(1, threads - 1), lines: DebugInfo.LineFilter(base: code.lowest, keep: code.contains))
                    sections.dropResidentPages()
                    return read
                })
                if wantCFI && threads == 1 { cfiResult.set(0, StackCFIWriter.records(binary: binary, debug: debug, load: load, inCode: code.contains)) }
            } else {
                cfiResult.set(0, StackCFIWriter.records(binary: binary, debug: debug, load: load, inCode: code.contains))
            }
        }
        var (info, problems) = try dwarfResult.values[0].get()
        // Reading freed tens of megabytes (names, per-unit tables): let the system have them
        // back before the records are written.
        pm_release_free_memory()
        // A relocatable ELF object's debug sections still need their relocations applied (not
        // done yet): say so rather than trust the addresses.
        if let caveat = source.debugInformationCaveat { problems.append(caveat) }
        var summary = Summary()
        var records = RecordBytes()
        func flushIfFull() {
            if records.bytes.count >= 1 << 20 { output(records.bytes); records.bytes.removeAll(keepingCapacity: true) }
        }
        records.add("MODULE \(binary.operatingSystem) \(binary.architecture.breakpadName) \(binary.debugID) \(clean(debugFileName))\n")
        if let codeID = binary.codeIdentifier { records.add("INFO CODE_ID \(codeID)\n") }
        records.add("INFO GENERATOR \(clean(options.generator))\n")

        // Function ranges by address; the first function at an address wins, later ones make it `m`.
        typealias Entry = FunctionEntry
        var entries: [Entry] = []
        for (i, f) in info.functions.enumerated() {
            for r in info.ranges[f.ranges] where r.start >= load && code.contains(r.start) { entries.append(Entry(function: i, range: r, multiple: false)) }
        }
        entries.sort { ($0.range.start, $0.function) < ($1.range.start, $1.function) }
        var unique: [Entry] = []
        unique.reserveCapacity(entries.count)
        for e in entries {
            if let last = unique.last, last.range.start == e.range.start { unique[unique.count - 1].multiple = true; continue }
            unique.append(e)
        }
        entries = []
        let lines = LineRows(info: &info)

        // FILE and INLINE_ORIGIN ids for what the records use, numbered in name order. Lines and
        // inlines are clipped to their functions twice (to count, then to write) rather than kept.
        var usedFiles = [Bool](repeating: false, count: info.files.count)
        var originNames: [DebugString: String] = [:]
        for e in unique {
            lines.forEach(in: e.range) { usedFiles[Int($0.file)] = true }
            guard options.inlines else { continue }
            for inline in info.inlines[info.functions[e.function].inlines] where Self.overlaps(info.ranges[inline.ranges], e.range) {
                if inline.callFile >= 0 { usedFiles[Int(inline.callFile)] = true }
                if originNames[inline.name] == nil { originNames[inline.name] = clean(Demangler.demangle(info.name(inline.name), returnTypes: false)) }
            }
        }
        var fileIDs = [Int](repeating: -1, count: info.files.count)
        for (id, file) in usedFiles.indices.filter({ usedFiles[$0] }).sorted(by: { info.files[$0] < info.files[$1] }).enumerated() {
            fileIDs[file] = id
            records.add("FILE \(id) \(clean(info.files[file]))\n")
            summary.files += 1
        }
        let originTexts = Set(originNames.values).sorted()
        let originIDByText = Dictionary(uniqueKeysWithValues: originTexts.enumerated().map { ($0.element, $0.offset) })
        let originIDs = originNames.mapValues { originIDByText[$0]! }
        for (id, name) in originTexts.enumerated() { records.add("INLINE_ORIGIN \(id) \(name)\n") }
        flushIfFull()

        // The symbol table's function names by address: a global name wins, else the first.
        let symbols = try binary.functionSymbols()
        let named = Self.namesByAddress(symbols, load: load)
        // FUNC, INLINE and line records, a million for a large library: written as bytes, by
        // address range on several threads when there are many (each part spooled, then put out
        // in order), else straight to the output.
        let context = FunctionRecordContext(info: info, lines: lines, symbols: symbols, named: named, fileIDs: fileIDs,
                                            originIDs: originIDs, load: load, inlines: options.inlines)
        let parts = max(1, min(threads, 4, unique.count / max(1, options.functionsPerThread)))
        if parts == 1 {
            let counts = Self.writeFunctions(unique[...], context, into: &records) { records in
                if records.bytes.count >= 1 << 20 { output(records.bytes); records.bytes.removeAll(keepingCapacity: true) }
            }
            summary.functions += counts.functions; summary.inlines += counts.inlines; summary.lines += counts.lines
        } else {
            output(records.bytes)
            records.bytes.removeAll(keepingCapacity: true)
            let written = ParallelResults<PartWritten>(count: parts)
            let all = unique
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let range = (all.count * part / parts)..<(all.count * (part + 1) / parts)
                let spool = SpooledBytes()
                var bytes = RecordBytes()
                let counts = Self.writeFunctions(all[range], context, into: &bytes) { bytes in
                    if bytes.bytes.count >= 1 << 20 { spool.take(&bytes.bytes) }
                }
                spool.take(&bytes.bytes)
                written.set(part, PartWritten(spool: spool, functions: counts.functions, inlines: counts.inlines, lines: counts.lines))
            }
            for part in written.values {
                part.spool.drain(to: output)
                summary.functions += part.functions; summary.inlines += part.inlines; summary.lines += part.lines
            }
        }

        // PUBLIC: defined function symbols no FUNC starts at (Breakpad's ELFSymbolsToModule).
        var nextFunction = 0
        for symbol in named {
            while nextFunction < unique.count, unique[nextFunction].range.start < symbol.address { nextFunction += 1 }
            if nextFunction < unique.count, unique[nextFunction].range.start == symbol.address { continue }
            records.add("PUBLIC "); records.hex(symbol.address - load)
            records.add(" 0 \(clean(Demangler.demangle(symbols.name(symbol), returnTypes: false)))\n")
            summary.publics += 1
            flushIfFull()
        }
        output(records.bytes)
        if options.cfi, let cfi = cfiResult.values.first {
            // The binary's .eh_frame, else the debug file's .debug_frame.
            cfi.bytes.drain(to: output)
            summary.cfi = cfi.count
            problems += cfi.problems.prefix(20)
        }
        return (summary, problems)
    }

    /// FUNC records with their INLINE and line records for `entries` (by address), written into
    /// `records`, `flush` called after each function.
    static func writeFunctions(_ entries: ArraySlice<FunctionEntry>, _ c: FunctionRecordContext, into records: inout RecordBytes,
                               flush: (inout RecordBytes) -> Void) -> (functions: Int, inlines: Int, lines: Int) {
        var counts = (functions: 0, inlines: 0, lines: 0)
        let info = c.info, named = c.named, load = c.load
        // The first symbol at or after the first range.
        var nextSymbol = 0
        if let first = entries.first {
            var lo = 0, hi = named.count
            while lo < hi { let mid = (lo + hi) / 2; if named[mid].address < first.range.start { lo = mid + 1 } else { hi = mid } }
            nextSymbol = lo
        }
        for e in entries {
            let f = info.functions[e.function]
            // A symbol starting the range names it (a split-off `main.cold` keeps its own name,
            // as symbolic and the linker call it); else the DWARF name.
            while nextSymbol < named.count, named[nextSymbol].address < e.range.start { nextSymbol += 1 }
            let symbol = nextSymbol < named.count && named[nextSymbol].address == e.range.start ? named[nextSymbol] : nil
            let name = Demangler.demangle(symbol.map { c.symbols.name($0) } ?? info.name(f.name), returnTypes: false)
            records.add(e.multiple ? "FUNC m " : "FUNC ")
            records.hex(e.range.start - load); records.space(); records.hex(e.range.end - e.range.start); records.add(" 0 ")
            records.add(clean(name)); records.newline()
            counts.functions += 1
            if c.inlines {
                for inline in info.inlines[f.inlines] where Self.overlaps(info.ranges[inline.ranges], e.range) {
                    records.add("INLINE "); records.decimal(UInt64(inline.depth)); records.space(); records.decimal(inline.callLine); records.space()
                    if inline.callFile >= 0, c.fileIDs[Int(inline.callFile)] >= 0 { records.decimal(UInt64(c.fileIDs[Int(inline.callFile)])) } else { records.add("-1") }
                    records.space(); records.decimal(UInt64(c.originIDs[inline.name]!))
                    for r in info.ranges[inline.ranges] {
                        let s = max(r.start, e.range.start), end = min(r.end, e.range.end)
                        if end > s { records.space(); records.hex(s - load); records.space(); records.hex(end - s) }
                    }
                    records.newline()
                    counts.inlines += 1
                }
            }
            c.lines.forEach(in: e.range) { l in
                records.hex(l.start - load); records.space(); records.hex(l.size); records.space()
                records.decimal(UInt64(l.line)); records.space(); records.decimal(UInt64(c.fileIDs[Int(l.file)])); records.newline()
                counts.lines += 1
            }
            flush(&records)
        }
        return counts
    }

    /// The chosen symbol at each address at or above `load`, by address: the last global one,
    /// else the first (as a map filled in symbol-table order would keep).
    static func namesByAddress(_ symbols: FunctionSymbols, load: UInt64) -> [FunctionSymbols.Entry] {
        let sorted = symbols.entries.enumerated().filter { $0.element.address >= load }
            .sorted { ($0.element.address, $0.offset) < ($1.element.address, $1.offset) }.map(\.element)
        var chosen: [FunctionSymbols.Entry] = []
        chosen.reserveCapacity(sorted.count)
        for s in sorted {
            if let last = chosen.last, last.address == s.address {
                if s.global { chosen[chosen.count - 1] = s }
            } else {
                chosen.append(s)
            }
        }
        return chosen
    }

    static func overlaps(_ ranges: ArraySlice<DebugInfo.AddressRange>, _ range: DebugInfo.AddressRange) -> Bool {
        ranges.contains { min($0.end, range.end) > max($0.start, range.start) }
    }

    /// Record text stays on one line.
    static func clean(_ s: String) -> String {
        let hasBreak = s.utf8.withContiguousStorageIfAvailable { $0.contains { $0 == 0x0A || $0 == 0x0D } } ?? s.utf8.contains { $0 == 0x0A || $0 == 0x0D }
        guard hasBreak else { return s }
        return String(decoding: s.utf8.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }, as: UTF8.self)
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }
}

/// A function's range to write: the first function at an address, `multiple` when others share it.
struct FunctionEntry: Sendable {
    var function: Int
    var range: DebugInfo.AddressRange
    var multiple: Bool
}

/// What writing FUNC records reads, shared by the threads that write them.
struct FunctionRecordContext: Sendable {
    let info: DebugInfo
    let lines: LineRows
    let symbols: FunctionSymbols
    let named: [FunctionSymbols.Entry]
    let fileIDs: [Int]
    let originIDs: [DebugString: Int]
    let load: UInt64
    let inlines: Bool
}

/// One thread's FUNC records and their counts.
struct PartWritten: Sendable {
    let spool: SpooledBytes
    let functions: Int, inlines: Int, lines: Int
}

/// The line rows of the DWARF sorted by address, without empty rows.
struct LineRows: Sendable {
    struct Row { let start: UInt64; let size: UInt64; let file: UInt32; let line: UInt32 }
    let rows: [DebugInfo.Line]
    let base: UInt64

    /// Takes the rows out of `info`.
    init(info: inout DebugInfo) {
        var rows: [DebugInfo.Line] = []
        swap(&rows, &info.lines)
        rows.removeAll { $0.size == 0 }
        rows.withUnsafeMutableBufferPointer { LineSort.sort($0) }
        self.rows = rows
        self.base = info.lineBase
    }

    /// The rows inside `range`, clipped to it, adjacent rows of the same file and line as one
    /// (as dump_syms writes them).
    func forEach(in range: DebugInfo.AddressRange, _ body: (Row) -> Void) {
        guard range.end > base else { return }
        let from = range.start > base ? range.start - base : 0, to = range.end - base
        // The first row that may end inside the range: rows do not overlap within a sequence,
        // so searching by start and stepping back one is enough.
        var lo = 0, hi = rows.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if UInt64(rows[mid].offset) < from { lo = mid + 1 } else { hi = mid }
        }
        var i = max(0, lo - 1)
        var pending: (start: UInt64, end: UInt64, file: UInt32, line: UInt32)?
        while i < rows.count, UInt64(rows[i].offset) < to {
            let l = rows[i]
            let s = max(UInt64(l.offset), from), e = min(UInt64(l.offset) + UInt64(l.size), to)
            if e > s {
                if let p = pending, p.end == s, p.file == l.file, p.line == l.line {
                    pending = (p.start, e, l.file, l.line)
                } else {
                    if let p = pending { body(Row(start: base + p.start, size: p.end - p.start, file: p.file, line: p.line)) }
                    pending = (s, e, l.file, l.line)
                }
            }
            i += 1
        }
        if let p = pending { body(Row(start: base + p.start, size: p.end - p.start, file: p.file, line: p.line)) }
    }
}

/// An in-place sort of line rows (introsort): the standard library's sort would borrow a buffer
/// half the size of millions of rows.
enum LineSort {
    static func sort(_ a: UnsafeMutableBufferPointer<DebugInfo.Line>) {
        guard a.count > 1 else { return }
        // Already in order (a file whose units and sequences are in address order): nothing to do.
        if !(1..<a.count).contains(where: { DebugInfo.Line.precedes(a[$0], a[$0 - 1]) }) { return }
        var depth = 0, n = a.count
        while n > 0 { depth += 2; n >>= 1 }
        introsort(a, 0, a.count, depth)
    }

    static func introsort(_ a: UnsafeMutableBufferPointer<DebugInfo.Line>, _ low: Int, _ high: Int, _ depth: Int) {
        var low = low, high = high, depth = depth
        while high - low > 16 {
            if depth == 0 { heapsort(a, low, high); return }
            depth -= 1
            // Median of three as the pivot, then Hoare's partition.
            let mid = low + (high - low) / 2
            if DebugInfo.Line.precedes(a[mid], a[low]) { a.swapAt(mid, low) }
            if DebugInfo.Line.precedes(a[high - 1], a[low]) { a.swapAt(high - 1, low) }
            if DebugInfo.Line.precedes(a[high - 1], a[mid]) { a.swapAt(high - 1, mid) }
            let pivot = a[mid]
            var i = low - 1, j = high
            while true {
                repeat { i += 1 } while DebugInfo.Line.precedes(a[i], pivot)
                repeat { j -= 1 } while DebugInfo.Line.precedes(pivot, a[j])
                if i >= j { break }
                a.swapAt(i, j)
            }
            // Recurse into the smaller side, loop on the larger (bounded stack).
            if j + 1 - low < high - (j + 1) { introsort(a, low, j + 1, depth); low = j + 1 } else { introsort(a, j + 1, high, depth); high = j + 1 }
        }
        // Insertion sort for the short runs left.
        if high - low > 1 {
            for i in (low + 1)..<high {
                let x = a[i]
                var j = i
                while j > low, DebugInfo.Line.precedes(x, a[j - 1]) { a[j] = a[j - 1]; j -= 1 }
                a[j] = x
            }
        }
    }

    static func heapsort(_ a: UnsafeMutableBufferPointer<DebugInfo.Line>, _ low: Int, _ high: Int) {
        let n = high - low
        func siftDown(_ start: Int, _ end: Int) {
            var root = start
            while 2 * root + 1 < end {
                var child = 2 * root + 1
                if child + 1 < end, DebugInfo.Line.precedes(a[low + child], a[low + child + 1]) { child += 1 }
                guard DebugInfo.Line.precedes(a[low + root], a[low + child]) else { return }
                a.swapAt(low + root, low + child)
                root = child
            }
        }
        for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n) }
        for end in stride(from: n - 1, to: 0, by: -1) {
            a.swapAt(low, low + end)
            siftDown(0, end)
        }
    }
}

/// [start, end) of the sections holding code, for "is this address code?" (always yes for an
/// object not linked yet, or a file that names no code sections).
struct CodeRanges: Sendable {
    let ranges: [(UInt64, UInt64)]
    let everything: Bool

    init(_ binary: any DebugObject) {
        ranges = binary.executableRanges().sorted { $0.0 < $1.0 }
        everything = binary.isRelocatable || ranges.isEmpty
    }

    /// Where code starts (0 when every address counts).
    var lowest: UInt64 { everything ? 0 : ranges.first?.0 ?? 0 }

    @Sendable func contains(_ address: UInt64) -> Bool {
        if everything { return true }
        var lo = 0, hi = ranges.count
        while lo < hi { let mid = (lo + hi) / 2; if ranges[mid].0 <= address { lo = mid + 1 } else { hi = mid } }
        return lo > 0 && address < ranges[lo - 1].1
    }
}

/// Record text as bytes, numbers formatted in place (no string per number).
struct RecordBytes {
    var bytes: [UInt8] = []
    static let digits = Array("0123456789abcdef".utf8)

    mutating func add(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func space() { bytes.append(0x20) }
    mutating func newline() { bytes.append(0x0A) }

    /// Lower-case hex digits without leading zeros: the count from the leading zero bits, each
    /// digit a shift and a mask.
    mutating func hex(_ v: UInt64) {
        var shift = max(0, (63 - v.leadingZeroBitCount) / 4 * 4)
        while true {
            bytes.append(Self.digits[Int((v >> UInt64(shift)) & 0xF)])
            if shift == 0 { break }
            shift -= 4
        }
    }

    /// Decimal digits, made from the lowest into a small buffer (division by the constant 10 is
    /// a multiplication) and appended in order.
    mutating func decimal(_ v: UInt64) {
        if v < 10 { bytes.append(0x30 &+ UInt8(v)); return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var i = 20, v = v
            while v > 0 {
                i -= 1
                buffer[i] = 0x30 &+ UInt8(v % 10)
                v /= 10
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i..<20]))
        }
    }

    mutating func signed(_ v: Int64) {
        if v < 0 { bytes.append(0x2D) }
        decimal(v.magnitude)
    }
}
