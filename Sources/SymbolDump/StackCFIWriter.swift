import DWARF
import ObjectFiles

/// `STACK CFI INIT` and `STACK CFI` records from `.eh_frame` / `.debug_frame`, with the register
/// names Breakpad's readers use per architecture.
enum StackCFIWriter {
    /// DWARF register number → the name `.sym` readers use.
    static func registerNames(_ machine: ELFFile.Machine) -> [UInt64: String] {
        func numbered(_ names: [String], from start: UInt64 = 0) -> [UInt64: String] {
            Dictionary(uniqueKeysWithValues: names.enumerated().map { (start + UInt64($0.offset), $0.element) })
        }
        switch machine {
        case .x86_64: return numbered(["$rax", "$rdx", "$rcx", "$rbx", "$rsi", "$rdi", "$rbp", "$rsp"] + (8...15).map { "$r\($0)" } + ["$rip"])
        case .x86: return numbered(["$eax", "$ecx", "$edx", "$ebx", "$esp", "$ebp", "$esi", "$edi", "$eip", "$eflags"])
        case .arm: return numbered((0...12).map { "r\($0)" } + ["sp", "lr", "pc"])
        case .arm64:
            // x0–x30, sp, and the SIMD registers v0–v31 (64–95), whose low halves d8–d15 are callee-saved.
            return numbered((0...30).map { "x\($0)" } + ["sp"]).merging(numbered((0...31).map { "v\($0)" }, from: 64)) { a, _ in a }
        case .other: return [:]
        }
    }

    /// The `STACK CFI` records of `binary` in address order: its `.eh_frame`, then `.debug_frame`
    /// entries for ranges `.eh_frame` does not cover; when the binary has none, those of `debug`.
    /// Entries are turned into records as they are read, never all held.
    static func records(binary: any DebugObject, debug: (any DebugObject)?, load: UInt64, inCode: (UInt64) -> Bool)
        -> (bytes: SpooledBytes, count: Int, problems: [String]) {
        var result = records(binary, machine: binary.architecture, load: load, inCode: inCode)
        if result.entries == 0, let debug { result = records(debug, machine: binary.architecture, load: load, inCode: inCode) }
        return (result.bytes, result.count, result.problems)
    }

    static func records(_ object: any DebugObject, machine: ELFFile.Machine, load: UInt64, inCode: (UInt64) -> Bool)
        -> (bytes: SpooledBytes, count: Int, entries: Int, problems: [String]) {
        var problems: [String] = []
        let addressSize = object.is64 ? 8 : 4
        var writer = EntryWriter(names: registerNames(machine), load: load)
        let spool = SpooledBytes()
        // Where each entry's records are, to put them in address order at the end if the
        // sections do not have them so.
        var chunks: [(start: UInt64, bytes: Range<Int>)] = []
        var entries = 0
        var covered = Set<UInt64>()
        func add(_ entry: CallFrameInfo.Entry) {
            entries += 1
            guard entry.start >= load, inCode(entry.start) else { return }
            let mark = writer.out.bytes.count
            writer.write(entry)
            let written = writer.out.bytes.count
            guard written > mark else { return }
            chunks.append((entry.start, (spool.count + mark)..<(spool.count + written)))
            if written >= 1 << 20 { spool.take(&writer.out.bytes) }
        }
        // A Mach-O image's compact unwind information covers its functions; `__eh_frame` then
        // holds only the FDEs it points at. An object's entries (`__compact_unwind`) fill in the
        // functions its `__eh_frame` leaves out.
        let compact = compactUnwind(object, machine: machine, problems: &problems)
        let isObject = object.isRelocatable
        var referencedFDEs = Set<UInt64>()
        func addCompact(_ compact: CompactUnwind) {
            for entry in compact.entries where entry.length > 0 {
                let start = load &+ UInt64(entry.start)
                let rules = compact.rules(entry.encoding, start: entry.start) { offset in
                    (object as? MachOFile)?.word(atAddress: load &+ UInt64(offset))
                }
                if case .dwarf(let offset) = rules { referencedFDEs.insert(UInt64(offset)); continue }
                if isObject, covered.contains(start) { continue }
                entries += 1
                guard inCode(start) else { continue }
                let mark = writer.out.bytes.count
                guard writer.write(compact: entry, rules, architecture: compact.architecture) else { continue }
                chunks.append((start, (spool.count + mark)..<(spool.count + writer.out.bytes.count)))
                if writer.out.bytes.count >= 1 << 20 { spool.take(&writer.out.bytes) }
            }
        }
        if let compact, !isObject { addCompact(compact) }
        for (name, isEH) in [(".eh_frame", true), (".debug_frame", false)] {
            guard let (data, address) = (try? object.debugSection(name)) ?? nil else { continue }
            do {
                problems += try CallFrameInfo.forEachEntry(data, isEH: isEH, sectionAddress: isEH ? address : 0, addressSize: addressSize) { entry in
                    if isEH, compact != nil, !isObject, !referencedFDEs.contains(entry.sectionOffset) { return }
                    if isEH { covered.insert(entry.start); add(entry) } else if !covered.contains(entry.start) { add(entry) }
                }.map { "\(name) \($0)" }
            } catch { problems.append("\(name): \(error)") }
            data.dropResidentPages()
        }
        if let compact, isObject { addCompact(compact) }
        spool.take(&writer.out.bytes)
        let inOrder = zip(chunks, chunks.dropFirst()).allSatisfy { $0.start <= $1.start }
        guard !inOrder else { return (spool, writer.count, entries, problems) }
        let sorted = SpooledBytes()
        var block: [UInt8] = []
        for chunk in chunks.enumerated().sorted(by: { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }) {
            spool.read(chunk.element.bytes, into: &block)
            if block.count >= 1 << 20 { sorted.take(&block) }
        }
        sorted.take(&block)
        return (sorted, writer.count, entries, problems)
    }

    /// The compact unwind information of a Mach-O image, when it has some for this architecture.
    static func compactUnwind(_ object: any DebugObject, machine: ELFFile.Machine, problems: inout [String]) -> CompactUnwind? {
        guard let macho = object as? MachOFile else { return nil }
        let name = macho.isRelocatable ? ".compact_unwind" : ".unwind_info"
        guard let (data, _) = (try? object.debugSection(name)) ?? nil, data.count > 0 else { return nil }
        let architecture: CompactUnwind.Architecture
        switch machine {
        case .x86_64: architecture = .x86_64
        case .x86: architecture = .x86
        case .arm64: architecture = .arm64
        default: return nil
        }
        do {
            return macho.isRelocatable ? try CompactUnwind(objectEntries: data, is64: macho.is64, architecture: architecture)
                                       : try CompactUnwind(data, architecture: architecture)
        } catch {
            problems.append("_\(name): \(error)")
            return nil
        }
    }

    /// Writes the records of one entry whose rules `.sym` can express, addresses relative to `load`.
    struct EntryWriter {
        let names: [UInt64: String]
        let load: UInt64
        var out = RecordBytes()
        /// Entries with records.
        var count = 0

        init(names: [UInt64: String], load: UInt64) {
            self.names = names
            self.load = load
        }

        func name(_ r: UInt64) -> String? { names[r] }

        /// One `STACK CFI INIT` for a compact unwind run (offsets from the image base, as the
        /// records are). A run without an encoding gets the rules of a function with no frame of
        /// its own — the return address on the stack (x86_64) or in the link register (arm64) —
        /// as symbolic writes them, so a stackless leaf such as a system call wrapper does not
        /// lose its caller. False when nothing is written.
        mutating func write(compact entry: CompactUnwind.Entry, _ rules: CompactUnwind.Rules, architecture: CompactUnwind.Architecture) -> Bool {
            let body: String
            switch rules {
            case .rules(let list):
                body = list.map { "\($0.register): \($0.base) \($0.offset) +" + ($0.load ? " ^" : "") }.joined(separator: " ")
            case .none where architecture == .x86_64: body = ".cfa: $rsp 8 + .ra: .cfa -8 + ^"
            case .none where architecture == .arm64: body = ".cfa: sp .ra: x30"
            default: return false
            }
            out.add("STACK CFI INIT "); out.hex(UInt64(entry.start)); out.space(); out.hex(UInt64(entry.length)); out.space()
            out.add(body); out.newline()
            count += 1
            return true
        }

        mutating func write(_ entry: CallFrameInfo.Entry) {
            guard let raName = name(entry.returnAddressRegister) else { return }
            let ra = entry.returnAddressRegister
            func label(_ r: UInt64) -> String? { r == ra ? ".ra" : name(r) }
            /// Appends ` <rule>` for register `r`; false when `.sym` cannot say it.
            func addRule(_ r: UInt64, _ rule: CallFrameInfo.Rule?) -> Bool {
                guard let l = label(r) else { return false }
                switch rule {
                case .offset(let o)?: out.space(); out.add(l); out.add(": .cfa "); out.signed(o); out.add(" + ^")
                case .valueOffset(let o)?: out.space(); out.add(l); out.add(": .cfa "); out.signed(o); out.add(" +")
                case .register(let other)?:
                    guard let n = name(other) else { return false }
                    out.space(); out.add(l); out.add(": "); out.add(n)
                case .sameValue?, nil: out.space(); out.add(l); out.add(": "); out.add(name(r) ?? l)
                default: return false
                }
                return true
            }
            var previous: CallFrameInfo.Row?
            var wrote = false
            for row in entry.rows {
                // An expression CFA: nothing from here on is expressible.
                guard case .cfa(let cfaRegister, let cfaOffset) = row.cfa, let cfaName = name(cfaRegister) else { break }
                let mark = out.bytes.count
                if previous == nil {
                    out.add("STACK CFI INIT "); out.hex(entry.start &- load); out.space(); out.hex(entry.size)
                } else {
                    out.add("STACK CFI "); out.hex(row.address &- load)
                }
                let header = out.bytes.count
                if previous == nil || previous!.cfa != row.cfa { out.add(" .cfa: "); out.add(cfaName); out.space(); out.signed(cfaOffset); out.add(" +") }
                let raRule = row.registers[ra]
                // An undefined return address (the outermost frame, `_start`) is left out, as
                // Breakpad and symbolic do: the walk ends there.
                if previous == nil || previous!.registers[ra] != raRule, raRule != .undefined {
                    if !addRule(ra, raRule), previous == nil { out.add(" .ra: "); out.add(raName) }
                }
                // Registers whose rule changed: the two sorted register lists merged.
                let now = row.registers.entries, before = previous?.registers.entries ?? []
                var x = 0, y = 0
                while x < now.count || y < before.count {
                    let r: UInt64
                    if y >= before.count || (x < now.count && now[x].register < before[y].register) { r = now[x].register; x += 1 }
                    else if x >= now.count || before[y].register < now[x].register { r = before[y].register; y += 1 }
                    else { r = now[x].register; x += 1; y += 1 }
                    if r != ra, previous?.registers[r] != row.registers[r] { _ = addRule(r, row.registers[r]) }
                }
                if previous != nil, out.bytes.count == header {
                    out.bytes.removeSubrange(mark...) // nothing changed that .sym can say
                } else {
                    out.newline()
                    wrote = true
                }
                previous = row
            }
            if wrote { count += 1 }
        }
    }
}
