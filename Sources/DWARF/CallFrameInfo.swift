import ObjectFiles

/// Call frame information (`.eh_frame` and `.debug_frame`): for every FDE, the rules that
/// recover the caller's registers at each address of its range — what `STACK CFI` records say.
public struct CallFrameInfo: Sendable {
    /// How one register (or the CFA) is recovered.
    public enum Rule: Sendable, Equatable {
        /// CFA = register + offset.
        case cfa(register: UInt64, offset: Int64)
        /// Saved at CFA + offset.
        case offset(Int64)
        /// Value is CFA + offset.
        case valueOffset(Int64)
        /// Held in another register.
        case register(UInt64)
        case sameValue
        case undefined
        /// A DWARF expression (not expressible in a `.sym`).
        case expression
    }

    /// DWARF register number → rule, as a short array sorted by register (a frame has a handful
    /// of saved registers; rows are copied at every change, which arrays make cheap).
    public struct RegisterRules: Sendable, Equatable {
        public struct Entry: Sendable, Equatable {
            public let register: UInt64
            public let rule: Rule
        }
        public private(set) var entries: [Entry] = []

        public init() {}

        public subscript(register: UInt64) -> Rule? {
            get { entries.first { $0.register == register }?.rule }
            set {
                let i = entries.firstIndex { $0.register >= register } ?? entries.endIndex
                let present = i < entries.endIndex && entries[i].register == register
                switch (newValue, present) {
                case (let rule?, true): entries[i] = Entry(register: register, rule: rule)
                case (let rule?, false): entries.insert(Entry(register: register, rule: rule), at: i)
                case (nil, true): entries.remove(at: i)
                case (nil, false): break
                }
            }
        }

        /// The registers with a rule, ascending.
        public var registers: [UInt64] { entries.map(\.register) }
    }

    public struct Row: Sendable, Equatable {
        public let address: UInt64
        public let cfa: Rule
        public let registers: RegisterRules
    }

    public struct Entry: Sendable {
        public let start: UInt64
        public let size: UInt64
        public let returnAddressRegister: UInt64
        /// The rules from `start` on, a row per change.
        public let rows: [Row]
        /// Where the FDE starts in its section (what Mach-O compact unwind entries point at).
        public var sectionOffset: UInt64 = 0
    }

    public var entries: [Entry] = []

    public init() {}

    struct CIE {
        var codeAlign: UInt64 = 1
        var dataAlign: Int64 = 1
        var returnAddressRegister: UInt64 = 0
        var pointerEncoding: UInt8 = 0
        var hasAugmentationData = false
        var initialInstructions: ObjectBytes = ObjectBytes([])
        var addressSize = 8
    }

    /// Reads `.eh_frame` (`isEH`, addresses relative to `sectionAddress`) or `.debug_frame`.
    public static func read(_ data: ObjectBytes, isEH: Bool, sectionAddress: UInt64, addressSize: Int) throws(ObjectFileError) -> (CallFrameInfo, problems: [String]) {
        var info = CallFrameInfo()
        let problems = try forEachEntry(data, isEH: isEH, sectionAddress: sectionAddress, addressSize: addressSize) { info.entries.append($0) }
        info.entries.sort { $0.start < $1.start }
        return (info, problems)
    }

    /// Hands every FDE's entry to `body` in section order, without keeping them (a large
    /// binary's rows would take more memory than the records written from them).
    public static func forEachEntry(_ data: ObjectBytes, isEH: Bool, sectionAddress: UInt64, addressSize: Int,
                                    _ body: (Entry) -> Void) throws(ObjectFileError) -> [String] {
        var problems: [String] = []
        var cies: [UInt64: CIE] = [:]
        var c = DWARFCursor(data)
        var count = 0
        while !c.atEnd {
            count += 1
            if count > 10_000_000 { throw .malformed("more than ten million call frame entries") }
            let start = c.offset
            let (length, dwarf64) = try c.initialLength()
            if length == 0 { if isEH { break } else { continue } } // .eh_frame terminator
            let (end, overflow) = c.offset.addingReportingOverflow(length)
            guard !overflow, end <= UInt64(data.count) else { throw .malformed("call frame entry at \(start) runs past its section") }
            let idOffset = c.offset
            let id = try c.sectionOffset(dwarf64: dwarf64)
            let isCIE = isEH ? id == 0 : (dwarf64 ? id == .max : id == 0xFFFF_FFFF)
            do {
                if isCIE {
                    cies[start] = try parseCIE(&c, end: end, isEH: isEH, addressSize: addressSize)
                } else {
                    let cieOffset = isEH ? idOffset &- id : id
                    var cie = cies[cieOffset]
                    if cie == nil {
                        // A CIE after its FDE (allowed in .debug_frame): read it where it is.
                        var cc = DWARFCursor(data, at: cieOffset)
                        let (cieLength, cie64) = try cc.initialLength()
                        let cieEnd = cc.offset &+ cieLength
                        _ = try cc.sectionOffset(dwarf64: cie64)
                        cie = try parseCIE(&cc, end: cieEnd, isEH: isEH, addressSize: addressSize)
                        cies[cieOffset] = cie
                    }
                    if let cie, var entry = try parseFDE(&c, end: end, cie: cie, isEH: isEH, sectionAddress: sectionAddress, data: data) {
                        entry.sectionOffset = start
                        body(entry)
                    }
                }
            } catch {
                if problems.count < 100 { problems.append("entry at \(start): \(error)") }
            }
            c.offset = end
        }
        return problems
    }

    static func parseCIE(_ c: inout DWARFCursor, end: UInt64, isEH: Bool, addressSize: Int) throws(ObjectFileError) -> CIE {
        var cie = CIE()
        cie.addressSize = addressSize
        let version = try c.u8()
        let augmentation = try c.cString()
        if version >= 4 {
            cie.addressSize = Int(try c.u8())
            _ = try c.u8() // segment selector size
        }
        cie.codeAlign = try c.uleb()
        cie.dataAlign = try c.sleb()
        cie.returnAddressRegister = version == 1 ? UInt64(try c.u8()) : try c.uleb()
        if augmentation.hasPrefix("z") {
            cie.hasAugmentationData = true
            let length = try c.uleb()
            let dataEnd = c.offset &+ length
            for ch in augmentation.dropFirst() {
                switch ch {
                case "R": cie.pointerEncoding = try c.u8()
                case "P":
                    let encoding = try c.u8()
                    _ = try readPointer(&c, encoding: encoding, sectionAddress: 0, addressSize: cie.addressSize)
                case "L": _ = try c.u8()
                case "S", "B", "G": break
                default: break
                }
            }
            c.offset = dataEnd
        } else if augmentation == "eh" {
            _ = try c.unsigned(size: addressSize)
        } else if !augmentation.isEmpty {
            throw .notSupported("CIE augmentation \(augmentation)")
        }
        guard c.offset <= end else { throw .malformed("CIE header runs past its entry") }
        cie.initialInstructions = try c.data.slice(c.offset, end - c.offset, "CIE instructions")
        return cie
    }

    static func parseFDE(_ c: inout DWARFCursor, end: UInt64, cie: CIE, isEH: Bool, sectionAddress: UInt64, data: ObjectBytes) throws(ObjectFileError) -> Entry? {
        let encoding = isEH ? cie.pointerEncoding : (cie.addressSize == 4 ? 0x03 : 0x04)
        let start = try readPointer(&c, encoding: encoding, sectionAddress: sectionAddress, addressSize: cie.addressSize)
        let size = try readPointer(&c, encoding: encoding & 0x0F, sectionAddress: sectionAddress, addressSize: cie.addressSize)
        if cie.hasAugmentationData {
            let length = try c.uleb()
            try c.skip(length)
        }
        guard c.offset <= end, size > 0 else { return nil }
        let instructions = try data.slice(c.offset, end - c.offset, "FDE instructions")
        let rows = try execute(cie: cie, fdeInstructions: instructions, start: start, end: start &+ size)
        return Entry(start: start, size: size, returnAddressRegister: cie.returnAddressRegister, rows: rows)
    }

    /// An encoded pointer (`DW_EH_PE_*`): absolute or pc-relative, of any size.
    static func readPointer(_ c: inout DWARFCursor, encoding: UInt8, sectionAddress: UInt64, addressSize: Int) throws(ObjectFileError) -> UInt64 {
        if encoding == 0xFF { return 0 } // omit
        let position = sectionAddress &+ c.offset
        var value: UInt64
        switch encoding & 0x0F {
        case 0x00: value = try c.unsigned(size: addressSize)
        case 0x01: value = try c.uleb()
        case 0x02: value = UInt64(try c.u16())
        case 0x03: value = UInt64(try c.u32())
        case 0x04: value = try c.u64()
        case 0x09: value = UInt64(bitPattern: try c.sleb())
        case 0x0A: value = UInt64(bitPattern: Int64(Int16(bitPattern: try c.u16())))
        case 0x0B: value = UInt64(bitPattern: Int64(Int32(bitPattern: try c.u32())))
        case 0x0C: value = try c.u64()
        default: throw .notSupported("pointer encoding 0x\(String(encoding, radix: 16))")
        }
        switch encoding & 0x70 {
        case 0x00: break
        case 0x10: value = value &+ position // pcrel
        default: break // textrel, datarel, funcrel: not used for FDE ranges on these platforms
        }
        if addressSize == 4 { value &= 0xFFFF_FFFF }
        return value
    }

    /// Runs the CIE's initial instructions and the FDE's, recording a row at every address where
    /// the rules change.
    static func execute(cie: CIE, fdeInstructions: ObjectBytes, start: UInt64, end: UInt64) throws(ObjectFileError) -> [Row] {
        var cfa: Rule = .undefined
        var registers = RegisterRules()
        var initial = RegisterRules()
        var stack: [(Rule, RegisterRules)] = []
        var location = start
        var rows: [Row] = []
        func commit() {
            let row = Row(address: location, cfa: cfa, registers: registers)
            if let last = rows.last, last.address == location { rows[rows.count - 1] = row }
            else if rows.last.map({ $0.cfa != row.cfa || $0.registers != row.registers }) ?? true { rows.append(row) }
        }
        var steps = 0
        for (program, isCIE) in [(cie.initialInstructions, true), (fdeInstructions, false)] {
            var c = DWARFCursor(program)
            while !c.atEnd {
                steps += 1
                if steps > 1_000_000 { throw .malformed("call frame program too long") }
                let op = try c.u8()
                let high = op & 0xC0, low = UInt64(op & 0x3F)
                func advance(_ delta: UInt64) {
                    commit()
                    location = location &+ delta &* cie.codeAlign
                }
                switch high {
                case 0x40: advance(low); continue
                case 0x80: registers[low] = .offset(Int64(bitPattern: try c.uleb()) &* cie.dataAlign); continue
                case 0xC0: registers[low] = initial[low]; continue
                default: break
                }
                switch op {
                case 0x00: break // nop
                case 0x01: commit(); location = try c.unsigned(size: cie.addressSize) // set_loc
                case 0x02: advance(UInt64(try c.u8()))
                case 0x03: advance(UInt64(try c.u16()))
                case 0x04: advance(UInt64(try c.u32()))
                case 0x05: let r = try c.uleb(); registers[r] = .offset(Int64(bitPattern: try c.uleb()) &* cie.dataAlign)
                case 0x06: let r = try c.uleb(); registers[r] = initial[r]
                case 0x07: registers[try c.uleb()] = .undefined
                case 0x08: registers[try c.uleb()] = .sameValue
                case 0x09: let r = try c.uleb(); registers[r] = .register(try c.uleb())
                case 0x0A:
                    guard stack.count < 1000 else { throw .malformed("remember_state nested too deep") }
                    stack.append((cfa, registers))
                case 0x0B: if let s = stack.popLast() { cfa = s.0; registers = s.1 }
                case 0x0C: let r = try c.uleb(); cfa = .cfa(register: r, offset: Int64(bitPattern: try c.uleb()))
                case 0x0D: if case .cfa(_, let o) = cfa { cfa = .cfa(register: try c.uleb(), offset: o) } else { cfa = .cfa(register: try c.uleb(), offset: 0) }
                case 0x0E: if case .cfa(let r, _) = cfa { cfa = .cfa(register: r, offset: Int64(bitPattern: try c.uleb())) } else { _ = try c.uleb() }
                case 0x0F: try c.skip(try c.uleb()); cfa = .expression
                case 0x10: let r = try c.uleb(); try c.skip(try c.uleb()); registers[r] = .expression
                case 0x11: let r = try c.uleb(); registers[r] = .offset(try c.sleb() &* cie.dataAlign)
                case 0x12: let r = try c.uleb(); cfa = .cfa(register: r, offset: try c.sleb() &* cie.dataAlign)
                case 0x13: if case .cfa(let r, _) = cfa { cfa = .cfa(register: r, offset: try c.sleb() &* cie.dataAlign) } else { _ = try c.sleb() }
                case 0x14: let r = try c.uleb(); registers[r] = .valueOffset(Int64(bitPattern: try c.uleb()) &* cie.dataAlign)
                case 0x15: let r = try c.uleb(); registers[r] = .valueOffset(try c.sleb() &* cie.dataAlign)
                case 0x16: let r = try c.uleb(); try c.skip(try c.uleb()); registers[r] = .expression
                case 0x2D: break // AArch64 negate_ra_state (pointer authentication)
                case 0x2E: _ = try c.uleb() // GNU_args_size
                case 0x2F: let r = try c.uleb(); registers[r] = .offset(0 &- (Int64(bitPattern: try c.uleb()) &* cie.dataAlign))
                default: throw .notSupported("call frame instruction 0x\(String(op, radix: 16))")
                }
            }
            if isCIE { initial = registers }
        }
        if location < end { commit() }
        return rows.filter { $0.address < end }
    }
}
