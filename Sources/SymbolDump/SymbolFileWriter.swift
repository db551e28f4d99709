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

        // FILE and INLINE_ORIGIN ids for what the records use, numbered in name order.
        var usedFiles = Set<Int>(), usedOrigins = Set<String>()
        var body: [(entry: Entry, lines: [DebugInfo.Line], inlines: [DebugInfo.Inline])] = []
        for e in unique {
            let clipped = Self.lines(lines, in: e.range)
            for l in clipped { usedFiles.insert(l.file) }
            var inlines: [DebugInfo.Inline] = []
            if options.inlines {
                for var inline in info.functions[e.function].inlines {
                    inline.ranges = inline.ranges.compactMap { r in
                        let s = max(r.start, e.range.start), end = min(r.end, e.range.end)
                        return end > s ? DebugInfo.AddressRange(start: s, end: end) : nil
                    }
                    guard !inline.ranges.isEmpty else { continue }
                    if let f = inline.callFile { usedFiles.insert(f) }
                    inline.name = Demangler.demangle(inline.name, returnTypes: false)
                    usedOrigins.insert(inline.name)
                    inlines.append(inline)
                }
            }
            body.append((e, clipped, inlines))
        }
        let fileIDs = Dictionary(uniqueKeysWithValues: usedFiles.sorted { info.files[$0] < info.files[$1] }.enumerated().map { ($0.element, $0.offset) })
        for (file, id) in fileIDs.sorted(by: { $0.value < $1.value }) { out += "FILE \(id) \(clean(info.files[file]))\n" }
        let originIDs = Dictionary(uniqueKeysWithValues: usedOrigins.sorted().enumerated().map { ($0.element, $0.offset) })
        for (name, id) in originIDs.sorted(by: { $0.value < $1.value }) { out += "INLINE_ORIGIN \(id) \(clean(name))\n" }
        summary.files = fileIDs.count

        // The symbol table's function names by address (Thumb addresses without their low bit).
        var symbolNames: [UInt64: String] = [:]
        for s in try binary.functionSymbols() where s.address >= load {
            if symbolNames[s.address] == nil || s.global { symbolNames[s.address] = s.name }
        }
        let funcStarts = Set(unique.map(\.range.start))
        for (e, clipped, inlines) in body {
            let f = info.functions[e.function]
            // A symbol starting the range names it (a split-off `main.cold` keeps its own name,
            // as symbolic and the linker call it); else the DWARF name.
            let name = Demangler.demangle(symbolNames[e.range.start] ?? f.name, returnTypes: false)
            out += "FUNC \(e.multiple ? "m " : "")\(hex(e.range.start - load)) \(hex(e.range.end - e.range.start)) 0 \(clean(name))\n"
            summary.functions += 1
            for inline in inlines {
                out += "INLINE \(inline.depth) \(inline.callLine) \(inline.callFile.flatMap { fileIDs[$0] }.map(String.init) ?? "-1") \(originIDs[inline.name]!)"
                for r in inline.ranges { out += " \(hex(r.start - load)) \(hex(r.end - r.start))" }
                out += "\n"
                summary.inlines += 1
            }
            for l in clipped {
                out += "\(hex(l.start - load)) \(hex(l.end - l.start)) \(l.line) \(fileIDs[l.file]!)\n"
                summary.lines += 1
            }
        }

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

    /// The line rows inside `range`, clipped to it; `lines` sorted by start.
    static func lines(_ lines: [DebugInfo.Line], in range: DebugInfo.AddressRange) -> [DebugInfo.Line] {
        // The first row that may end inside the range: rows do not overlap within a sequence,
        // so searching by start and stepping back one is enough.
        var lo = 0, hi = lines.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if lines[mid].start < range.start { lo = mid + 1 } else { hi = mid }
        }
        var i = max(0, lo - 1)
        var out: [DebugInfo.Line] = []
        while i < lines.count, lines[i].start < range.end {
            let l = lines[i]
            let s = max(l.start, range.start), e = min(l.end, range.end)
            if e > s {
                // Adjacent rows of the same file and line become one record (as dump_syms writes them).
                if let last = out.last, last.end == s, last.file == l.file, last.line == l.line {
                    out[out.count - 1] = DebugInfo.Line(start: last.start, end: e, file: l.file, line: l.line)
                } else {
                    out.append(DebugInfo.Line(start: s, end: e, file: l.file, line: l.line))
                }
            }
            i += 1
        }
        return out
    }

    /// Record text stays on one line.
    static func clean(_ s: String) -> String {
        s.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) ? String(s.map { $0 == "\n" || $0 == "\r" || $0 == "\r\n" ? " " : $0 }) : s
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }
}
