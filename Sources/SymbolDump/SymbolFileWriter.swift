import Demangle
import DWARF
import ObjectFiles

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
        public init(inlines: Bool = true, cfi: Bool = true, generator: String = "postmortem") {
            self.inlines = inlines
            self.cfi = cfi
            self.generator = generator
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
        let source = debug ?? binary
        let hasDWARF = source.hasDebugSection(".debug_info")
        var (info, problems) = hasDWARF ? try DebugInfo.read(try DWARFSections(object: source)) : (DebugInfo(), [])
        // A relocatable ELF object's debug sections still need their relocations applied (not
        // done yet): say so rather than trust the addresses.
        if let caveat = source.debugInformationCaveat { problems.append(caveat) }
        let load = binary.loadAddress
        var out = ""
        var summary = Summary()
        out += "MODULE \(binary.operatingSystem) \(binary.architecture.breakpadName) \(binary.debugID) \(clean(debugFileName))\n"
        if let code = binary.codeIdentifier { out += "INFO CODE_ID \(code)\n" }
        out += "INFO GENERATOR \(clean(options.generator))\n"

        // Code the linker dropped keeps its DWARF with address 0 (or another place outside the
        // executable sections): only ranges starting in an executable section of a linked file count.
        let code = binary.executableRanges().sorted { $0.0 < $1.0 }
        func inCode(_ address: UInt64) -> Bool {
            if binary.isRelocatable || code.isEmpty { return true }
            var lo = 0, hi = code.count
            while lo < hi { let mid = (lo + hi) / 2; if code[mid].0 <= address { lo = mid + 1 } else { hi = mid } }
            return lo > 0 && address < code[lo - 1].1
        }

        // Function ranges by address; the first function at an address wins, later ones make it `m`.
        struct Entry { var function: Int; var range: DebugInfo.AddressRange; var multiple: Bool }
        var entries: [Entry] = []
        for (i, f) in info.functions.enumerated() {
            for r in f.ranges where r.start >= load && inCode(r.start) { entries.append(Entry(function: i, range: r, multiple: false)) }
        }
        entries.sort { ($0.range.start, $0.function) < ($1.range.start, $1.function) }
        var unique: [Entry] = []
        for e in entries {
            if let last = unique.last, last.range.start == e.range.start { unique[unique.count - 1].multiple = true; continue }
            unique.append(e)
        }
        let lines = info.lines.filter { $0.end > $0.start && inCode($0.start) }.sorted { ($0.start, $0.end) < ($1.start, $1.end) }

        // FILE and INLINE_ORIGIN ids for what the records use, numbered in name order. Lines are
        // clipped to their functions twice (to count files, then to write) rather than kept.
        var usedFiles = [Bool](repeating: false, count: info.files.count), usedOrigins = Set<String>()
        var inlinesOf: [[DebugInfo.Inline]] = []
        inlinesOf.reserveCapacity(unique.count)
        for e in unique {
            Self.forEachLine(lines, in: e.range) { usedFiles[$0.file] = true }
            var inlines: [DebugInfo.Inline] = []
            if options.inlines {
                for var inline in info.functions[e.function].inlines {
                    inline.ranges = inline.ranges.compactMap { r in
                        let s = max(r.start, e.range.start), end = min(r.end, e.range.end)
                        return end > s ? DebugInfo.AddressRange(start: s, end: end) : nil
                    }
                    guard !inline.ranges.isEmpty else { continue }
                    if let f = inline.callFile { usedFiles[f] = true }
                    inline.name = Demangler.demangle(inline.name, returnTypes: false)
                    usedOrigins.insert(inline.name)
                    inlines.append(inline)
                }
            }
            inlinesOf.append(inlines)
        }
        var fileIDs = [Int](repeating: -1, count: info.files.count)
        for (id, file) in usedFiles.indices.filter({ usedFiles[$0] }).sorted(by: { info.files[$0] < info.files[$1] }).enumerated() {
            fileIDs[file] = id
            out += "FILE \(id) \(clean(info.files[file]))\n"
            summary.files += 1
        }
        let originIDs = Dictionary(uniqueKeysWithValues: usedOrigins.sorted().enumerated().map { ($0.element, $0.offset) })
        for (name, id) in originIDs.sorted(by: { $0.value < $1.value }) { out += "INLINE_ORIGIN \(id) \(clean(name))\n" }

        // The symbol table's function names by address (Thumb addresses without their low bit).
        var symbolNames: [UInt64: String] = [:]
        for s in try binary.functionSymbols() where s.address >= load {
            if symbolNames[s.address] == nil || s.global { symbolNames[s.address] = s.name }
        }
        let funcStarts = Set(unique.map(\.range.start))
        // FUNC, INLINE and line records, a million for a large library: written as bytes.
        var records = RecordBytes()
        for (e, inlines) in zip(unique, inlinesOf) {
            let f = info.functions[e.function]
            // A symbol starting the range names it (a split-off `main.cold` keeps its own name,
            // as symbolic and the linker call it); else the DWARF name.
            let name = Demangler.demangle(symbolNames[e.range.start] ?? f.name, returnTypes: false)
            records.add(e.multiple ? "FUNC m " : "FUNC ")
            records.hex(e.range.start - load); records.space(); records.hex(e.range.end - e.range.start); records.add(" 0 ")
            records.add(clean(name)); records.newline()
            summary.functions += 1
            for inline in inlines {
                records.add("INLINE "); records.decimal(UInt64(inline.depth)); records.space(); records.decimal(inline.callLine); records.space()
                if let f = inline.callFile, fileIDs[f] >= 0 { records.decimal(UInt64(fileIDs[f])) } else { records.add("-1") }
                records.space(); records.decimal(UInt64(originIDs[inline.name]!))
                for r in inline.ranges { records.space(); records.hex(r.start - load); records.space(); records.hex(r.end - r.start) }
                records.newline()
                summary.inlines += 1
            }
            Self.forEachLine(lines, in: e.range) { l in
                records.hex(l.start - load); records.space(); records.hex(l.end - l.start); records.space()
                records.decimal(l.line); records.space(); records.decimal(UInt64(fileIDs[l.file])); records.newline()
                summary.lines += 1
            }
        }
        out += String(decoding: records.bytes, as: UTF8.self)

        // PUBLIC: defined function symbols no FUNC starts at (Breakpad's ELFSymbolsToModule).
        var publics: [UInt64: String] = [:]
        for (address, name) in symbolNames where !funcStarts.contains(address) { publics[address] = name }
        for (address, name) in publics.sorted(by: { $0.key < $1.key }) {
            out += "PUBLIC \(hex(address - load)) 0 \(clean(Demangler.demangle(name, returnTypes: false)))\n"
            summary.publics += 1
        }
        if options.cfi {
            // The binary's .eh_frame, else the debug file's .debug_frame.
            var (cfi, cfiProblems) = StackCFIWriter.read(binary)
            if cfi.entries.isEmpty, let debug { (cfi, cfiProblems) = StackCFIWriter.read(debug) }
            let (records, count) = StackCFIWriter.records(cfi, machine: binary.architecture, load: load, inCode: inCode)
            out += records
            summary.cfi = count
            problems += cfiProblems.prefix(20)
        }
        return (out, summary, problems)
    }

    /// The line rows inside `range`, clipped to it, adjacent rows of the same file and line as
    /// one (as dump_syms writes them); `lines` sorted by start.
    static func forEachLine(_ lines: [DebugInfo.Line], in range: DebugInfo.AddressRange, _ body: (DebugInfo.Line) -> Void) {
        // The first row that may end inside the range: rows do not overlap within a sequence,
        // so searching by start and stepping back one is enough.
        var lo = 0, hi = lines.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if lines[mid].start < range.start { lo = mid + 1 } else { hi = mid }
        }
        var i = max(0, lo - 1)
        var pending: DebugInfo.Line?
        while i < lines.count, lines[i].start < range.end {
            let l = lines[i]
            let s = max(l.start, range.start), e = min(l.end, range.end)
            if e > s {
                if let p = pending, p.end == s, p.file == l.file, p.line == l.line {
                    pending = DebugInfo.Line(start: p.start, end: e, file: l.file, line: l.line)
                } else {
                    if let p = pending { body(p) }
                    pending = DebugInfo.Line(start: s, end: e, file: l.file, line: l.line)
                }
            }
            i += 1
        }
        if let p = pending { body(p) }
    }

    /// Record text stays on one line.
    static func clean(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) else { return s }
        return String(decoding: s.utf8.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }, as: UTF8.self)
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }
}

/// Record text as bytes, numbers formatted in place (no string per number).
struct RecordBytes {
    var bytes: [UInt8] = []
    static let digits = Array("0123456789abcdef".utf8)

    mutating func add(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func space() { bytes.append(0x20) }
    mutating func newline() { bytes.append(0x0A) }

    mutating func hex(_ v: UInt64) { number(v, base: 16) }
    mutating func decimal(_ v: UInt64) { number(v, base: 10) }
    mutating func signed(_ v: Int64) {
        if v < 0 { bytes.append(0x2D) }
        number(v.magnitude, base: 10)
    }

    /// Digits of `value` from the most significant one, without a temporary buffer.
    mutating func number(_ value: UInt64, base: UInt64) {
        var divisor: UInt64 = 1
        while value / divisor >= base { divisor *= base }
        var v = value
        while true {
            bytes.append(Self.digits[Int(v / divisor)])
            v %= divisor
            if divisor == 1 { break }
            divisor /= base
        }
    }
}
