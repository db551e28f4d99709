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
        var out = ""
        var count = 0
        for entry in info.entries where entry.start >= load && inCode(entry.start) {
            guard let raName = name(entry.returnAddressRegister) else { continue }
            func label(_ r: UInt64) -> String? { r == entry.returnAddressRegister ? ".ra" : name(r) }
            func cfaText(_ rule: CallFrameInfo.Rule) -> String? {
                guard case .cfa(let r, let offset) = rule, let n = name(r) else { return nil }
                return ".cfa: \(n) \(offset) +"
            }
            func ruleText(_ r: UInt64, _ rule: CallFrameInfo.Rule?) -> String? {
                guard let l = label(r) else { return nil }
                switch rule {
                case .offset(let o)?: return "\(l): .cfa \(o) + ^"
                case .valueOffset(let o)?: return "\(l): .cfa \(o) +"
                case .register(let other)?: return name(other).map { "\(l): \($0)" }
                case .sameValue?, nil: return "\(l): \(name(r) ?? l)"
                default: return nil
                }
            }
            var previous: CallFrameInfo.Row?
            var lines: [String] = []
            for row in entry.rows {
                guard let cfa = cfaText(row.cfa) else { break } // an expression CFA: nothing further is expressible
                var parts: [String] = []
                if previous == nil || previous!.cfa != row.cfa { parts.append(cfa) }
                let raRule = row.registers[entry.returnAddressRegister]
                // An undefined return address (the outermost frame, `_start`) is left out, as
                // Breakpad and symbolic do: the walk ends there.
                if previous == nil || previous!.registers[entry.returnAddressRegister] != raRule, raRule != .undefined {
                    if let t = ruleText(entry.returnAddressRegister, raRule) { parts.append(t) } else if previous == nil { parts.append(".ra: \(raName)") }
                }
                let changed = Set(row.registers.keys).union(previous?.registers.keys ?? [:].keys).filter { $0 != entry.returnAddressRegister }
                for r in changed.sorted() where previous?.registers[r] != row.registers[r] {
                    if let t = ruleText(r, row.registers[r]) { parts.append(t) }
                }
                if previous == nil {
                    lines.append("STACK CFI INIT \(String(entry.start - load, radix: 16)) \(String(entry.size, radix: 16)) " + parts.joined(separator: " "))
                } else if !parts.isEmpty {
                    lines.append("STACK CFI \(String(row.address - load, radix: 16)) " + parts.joined(separator: " "))
                }
                previous = row
            }
            guard !lines.isEmpty else { continue }
            out += lines.joined(separator: "\n") + "\n"
            count += 1
        }
        return (out, count)
    }
}
