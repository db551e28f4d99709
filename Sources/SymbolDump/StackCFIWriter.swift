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

    /// The call frame information of `object`: `.eh_frame`, then `.debug_frame` entries for
    /// ranges `.eh_frame` does not cover.
    static func read(_ object: any DebugObject) -> (CallFrameInfo, [String]) {
        var info = CallFrameInfo(), problems: [String] = []
        let addressSize = object.is64 ? 8 : 4
        if let (data, address) = (try? object.debugSection(".eh_frame")) ?? nil {
            do {
                let (eh, p) = try CallFrameInfo.read(data, isEH: true, sectionAddress: address, addressSize: addressSize)
                info.entries = eh.entries
                problems += p.map { ".eh_frame \($0)" }
            } catch { problems.append(".eh_frame: \(error)") }
        }
        if let (data, _) = (try? object.debugSection(".debug_frame")) ?? nil {
            do {
                let (debug, p) = try CallFrameInfo.read(data, isEH: false, sectionAddress: 0, addressSize: addressSize)
                let covered = Set(info.entries.map { $0.start })
                info.entries += debug.entries.filter { !covered.contains($0.start) }
                info.entries.sort { $0.start < $1.start }
                problems += p.map { ".debug_frame \($0)" }
            } catch { problems.append(".debug_frame: \(error)") }
        }
        return (info, problems)
    }

    /// The records of every entry whose rules `.sym` can express, addresses relative to `load`.
    static func records(_ info: CallFrameInfo, machine: ELFFile.Machine, load: UInt64, inCode: (UInt64) -> Bool) -> (String, Int) {
        let names = registerNames(machine)
        guard !names.isEmpty else { return ("", 0) }
        func name(_ r: UInt64) -> String? { names[r] }
        var out = RecordBytes()
        var count = 0
        for entry in info.entries where entry.start >= load && inCode(entry.start) {
            guard let raName = name(entry.returnAddressRegister) else { continue }
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
                    out.add("STACK CFI INIT "); out.hex(entry.start - load); out.space(); out.hex(entry.size)
                } else {
                    out.add("STACK CFI "); out.hex(row.address - load)
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
        return (String(decoding: out.bytes, as: UTF8.self), count)

    }
}
