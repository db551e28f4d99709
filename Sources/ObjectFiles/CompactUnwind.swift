/// Apple's compact unwind information (`__TEXT,__unwind_info`, what ld64 and lld write for
/// Mach-O images instead of most `__eh_frame` entries): a two-level index of 32-bit encodings,
/// one per run of functions, each saying how the caller's registers come back — a frame-pointer
/// frame with saved registers, a frameless frame of a fixed size, or "see this FDE in
/// `__eh_frame`". Decoded into the same register rules a `STACK CFI INIT` record states.
public struct CompactUnwind: Sendable {
    /// One run of addresses with one encoding.
    public struct Entry: Sendable, Equatable {
        /// Offset from the image's base (the `__TEXT` segment).
        public let start: UInt32
        public let length: UInt32
        public let encoding: UInt32
    }

    /// How an entry unwinds, in the terms of a STACK CFI record.
    public enum Rules: Sendable, Equatable {
        /// Rules for the CFA, the return address and saved registers, in order: a register is
        /// `base + offset`, dereferenced when `load`.
        case rules([Rule])
        /// The FDE at this offset of `__eh_frame` describes it.
        case dwarf(fdeOffset: UInt32)
        /// No encoding (a leaf without a frame, or a mode not described here).
        case none
    }

    public struct Rule: Sendable, Equatable {
        /// `.cfa`, `.ra`, or a register name (`$rbp`, `x19`).
        public let register: String
        public let base: String
        public let offset: Int32
        public let load: Bool
    }

    public enum Architecture: Sendable { case x86, x86_64, arm64 }

    public let entries: [Entry]
    public let architecture: Architecture

    /// Reads the section (bounds-checked; a malformed index is an error, an entry count or page
    /// beyond the section is refused).
    public init(_ data: ObjectBytes, architecture: Architecture) throws(ObjectFileError) {
        self.architecture = architecture
        let version = try data.u32(0, "__unwind_info version")
        guard version == 1 else { throw .notSupported("__unwind_info version \(version)") }
        let commonOffset = UInt64(try data.u32(4, "common encodings offset")), commonCount = UInt64(try data.u32(8, "common encodings count"))
        let indexOffset = UInt64(try data.u32(20, "index offset")), indexCount = UInt64(try data.u32(24, "index count"))
        guard commonCount <= UInt64(data.count) / 4, indexCount <= UInt64(data.count) / 12 else {
            throw .malformed("__unwind_info counts run past the section")
        }
        var common: [UInt32] = []
        for i in 0..<commonCount { common.append(try data.u32(commonOffset + 4 * i, "common encoding")) }
        var raw: [(UInt32, UInt32)] = [] // (function offset, encoding)
        var pageEnds: [Int] = []
        // The last first-level entry is a sentinel: its function offset ends the last run.
        var sentinel: UInt32 = 0
        for i in 0..<indexCount {
            let base = indexOffset + 12 * i
            let functionOffset = try data.u32(base, "index function offset")
            let page = UInt64(try data.u32(base + 4, "second-level page offset"))
            if i == indexCount - 1 { sentinel = functionOffset; break }
            guard page != 0 else { continue }
            let kind = try data.u32(page, "second-level page kind")
            let entryOffset = UInt64(try data.u16(page + 4, "page entry offset")), entryCount = UInt64(try data.u16(page + 6, "page entry count"))
            switch kind {
            case 2: // regular: (function offset, encoding) pairs
                for j in 0..<entryCount {
                    let e = page + entryOffset + 8 * j
                    raw.append((try data.u32(e, "regular entry"), try data.u32(e + 4, "regular entry encoding")))
                }
            case 3: // compressed: 24-bit offset from the first-level entry, 8-bit encoding index
                let localOffset = UInt64(try data.u16(page + 8, "page encodings offset")), localCount = UInt64(try data.u16(page + 10, "page encodings count"))
                for j in 0..<entryCount {
                    let word = try data.u32(page + entryOffset + 4 * j, "compressed entry")
                    let index = UInt64(word >> 24)
                    let encoding: UInt32
                    if index < commonCount {
                        encoding = common[Int(index)]
                    } else if index - commonCount < localCount {
                        encoding = try data.u32(page + localOffset + 4 * (index - commonCount), "page encoding")
                    } else {
                        throw .malformed("compressed unwind entry names encoding \(index) of \(commonCount + localCount)")
                    }
                    let (start, overflow) = functionOffset.addingReportingOverflow(word & 0x00FF_FFFF)
                    guard !overflow else { throw .malformed("compressed unwind entry past 4 GiB") }
                    raw.append((start, encoding))
                }
            default:
                throw .malformed("second-level unwind page kind \(kind)")
            }
            pageEnds.append(raw.count)
            guard raw.count <= 1 << 24 else { throw .malformed("more than 16 million compact unwind entries") }
        }
        // Each run lasts to the next one (the last to the sentinel).
        var entries: [Entry] = []
        entries.reserveCapacity(raw.count)
        for (i, (start, encoding)) in raw.enumerated() {
            let end = i + 1 < raw.count ? raw[i + 1].0 : sentinel
            entries.append(Entry(start: start, length: end > start ? end - start : 0, encoding: encoding))
        }
        self.entries = entries
    }

    /// An object file's `__LD,__compact_unwind`: one fixed-size entry per function (address,
    /// length, encoding, personality, LSDA), the addresses already section-relative in a Mach-O
    /// object, which the linker turns into `__unwind_info`.
    public init(objectEntries data: ObjectBytes, is64: Bool, architecture: Architecture) throws(ObjectFileError) {
        self.architecture = architecture
        let size: UInt64 = is64 ? 32 : 20
        let count = UInt64(data.count) / size
        guard count <= 1 << 24 else { throw .malformed("\(count) compact unwind entries") }
        var entries: [Entry] = []
        for i in 0..<count {
            let o = i * size
            let address = is64 ? try data.u64(o, "compact unwind address") : UInt64(try data.u32(o, "compact unwind address"))
            let length = try data.u32(o + (is64 ? 8 : 4), "compact unwind length")
            let encoding = try data.u32(o + (is64 ? 12 : 8), "compact unwind encoding")
            guard let start = UInt32(exactly: address) else { continue }
            entries.append(Entry(start: start, length: length, encoding: encoding))
        }
        self.entries = entries.sorted { $0.start < $1.start }
    }

    /// The rules of the entry starting at `start` (as LLVM's libunwind reads the modes);
    /// `word` reads the code at an offset from the image base (an x86 frame too large for the
    /// encoding keeps its size in the function's `sub $size, %rsp`).
    public func rules(_ encoding: UInt32, start: UInt32 = 0, word: (UInt32) -> UInt32? = { _ in nil }) -> Rules {
        switch architecture {
        case .x86, .x86_64: return x86Rules(encoding, start: start, word: word)
        case .arm64: return arm64Rules(encoding)
        }
    }

    func x86Rules(_ encoding: UInt32, start: UInt32, word: (UInt32) -> UInt32?) -> Rules {
        let pointer: Int32 = architecture == .x86_64 ? 8 : 4
        let names = architecture == .x86_64 ? ["", "$rbx", "$r12", "$r13", "$r14", "$r15", "$rbp"] : ["", "$ebx", "$ecx", "$edx", "$edi", "$esi", "$ebp"]
        let framePointer = names[6], stackPointer = architecture == .x86_64 ? "$rsp" : "$esp"
        switch encoding & 0x0F00_0000 {
        case 0x0100_0000: // frame pointer: CFA = fp + 2 words; saved registers from fp − offset words up
            var rules = [Rule(register: ".cfa", base: framePointer, offset: 2 * pointer, load: false),
                         Rule(register: framePointer, base: ".cfa", offset: -2 * pointer, load: true),
                         Rule(register: ".ra", base: ".cfa", offset: -pointer, load: true)]
            // Bits 16–23: where the saved registers start below the frame pointer, in words;
            // bits 0–14: five 3-bit register numbers, the lowest first (compact_unwind_encoding.h,
            // libunwind's stepWithCompactEncodingRBPFrame).
            let stackOffset = Int32((encoding >> 16) & 0xFF)
            var locations = encoding & 0x7FFF
            for i in 0..<Int32(5) {
                let register = Int(locations & 0b111)
                locations >>= 3
                guard (1...6).contains(register) else { continue }
                rules.append(Rule(register: names[register], base: ".cfa", offset: -(stackOffset + 2 - i) * pointer, load: true))
            }
            return .rules(rules)
        case 0x0200_0000, 0x0300_0000:
            // Frameless: the frame's size in words in the encoding (0x02), or (0x03) a byte
            // offset into the function of the 32-bit immediate of its `sub $size, %rsp`, plus
            // an adjustment in words; saved registers right below the return address.
            var size: Int32
            if encoding & 0x0F00_0000 == 0x0200_0000 {
                size = Int32((encoding >> 16) & 0xFF) * pointer
            } else {
                let (at, overflow) = start.addingReportingOverflow((encoding >> 16) & 0xFF)
                guard !overflow, let immediate = word(at), immediate <= 1 << 24 else { return .none }
                size = Int32(immediate) + Int32((encoding >> 13) & 0b111) * pointer
            }
            var rules = [Rule(register: ".cfa", base: stackPointer, offset: size, load: false),
                         Rule(register: ".ra", base: ".cfa", offset: -pointer, load: true)]
            var offset: Int32 = 2
            for register in Self.framelessRegisters(encoding).reversed() where (1...6).contains(register) {
                rules.append(Rule(register: names[register], base: ".cfa", offset: -offset * pointer, load: true))
                offset += 1
            }
            return .rules(rules)
        case 0x0400_0000:
            return .dwarf(fdeOffset: encoding & 0x00FF_FFFF)
        default:
            return .none
        }
    }

    /// The saved registers of a frameless x86 encoding: a count and a permutation number that
    /// picks them, in order, among registers 1–6 (compact_unwind_encoding.h).
    static func framelessRegisters(_ encoding: UInt32) -> [Int] {
        let count = min(6, Int((encoding >> 10) & 0b111))
        var permutation = Int(encoding & 0x3FF)
        var digits = [Int](repeating: 0, count: 6)
        // Factorial-base digits; with fewer than six registers the leading bases shrink.
        let bases: [[Int]] = [[], [1], [5, 1], [20, 4, 1], [60, 12, 3, 1], [120, 24, 6, 2, 1], [120, 24, 6, 2, 1]]
        for (i, base) in bases[count].enumerated() {
            digits[i] = permutation / base
            permutation -= digits[i] * base
        }
        var registers = [Int](repeating: 0, count: 6), used = [Bool](repeating: false, count: 7)
        for i in 0..<count {
            var rank = 0
            for j in 1...6 where !used[j] {
                if rank == digits[i] { registers[i] = j; used[j] = true; break }
                rank += 1
            }
        }
        return registers
    }

    func arm64Rules(_ encoding: UInt32) -> Rules {
        switch encoding & 0x0F00_0000 {
        case 0x0200_0000: // frameless: stack size / 16 in the encoding, return address in x30
            let size = Int32((encoding >> 12) & 0xFFF) * 16
            return .rules([Rule(register: ".cfa", base: "sp", offset: size, load: false),
                           Rule(register: ".ra", base: "x30", offset: 0, load: false)])
        case 0x0300_0000:
            return .dwarf(fdeOffset: encoding & 0x00FF_FFFF)
        case 0x0400_0000: // frame: fp/lr pair at the frame pointer, register pairs below it
            var rules = [Rule(register: ".cfa", base: "x29", offset: 16, load: false),
                         Rule(register: "x29", base: ".cfa", offset: -16, load: true),
                         Rule(register: ".ra", base: ".cfa", offset: -8, load: true)]
            let pairs = ["x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15"]
            var saved: Int32 = 0
            for pair in 0..<9 where encoding & (1 << UInt32(pair)) != 0 {
                rules.append(Rule(register: pairs[2 * pair], base: ".cfa", offset: (-2 * saved - 3) * 8, load: true))
                rules.append(Rule(register: pairs[2 * pair + 1], base: ".cfa", offset: (-2 * saved - 4) * 8, load: true))
                saved += 1
            }
            return .rules(rules)
        default:
            return .none
        }
    }
}
