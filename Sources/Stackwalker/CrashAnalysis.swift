import MinidumpFormat
import X86Decoder

/// What the crashing instruction says about the crash (x86/amd64): the instruction, the memory
/// it touched, where it was sending the instruction pointer, a better address than the one the
/// OS reported, possible flipped bits, and where the dump contradicts itself.
public struct CrashAnalysis: Sendable {
    public struct MemoryAccess: Sendable, Equatable {
        public var address: UInt64
        public var size: Int?
        public var access: X86Access?
        public var isLikelyGuardPage = false
        /// The address came from a base register holding zero: a null pointer plus an offset.
        var isLikelyNullPointer = false
    }

    public enum AdjustedAddress: Sendable, Equatable {
        /// amd64 general-protection faults report no address; this is the non-canonical one accessed.
        case nonCanonical(UInt64)
        /// The access was through a null base pointer; this is the offset.
        case nullPointer(offset: UInt64)
    }

    public struct BitFlip: Sendable, Equatable {
        public var address: UInt64
        public var sourceRegister: String?
        public var wasNonCanonical = false
        public var isNull = false
        public var wasLow = false
        public var nearbyRegisters = 0
        public var poisonRegisters = false

        /// How likely the corrected address is the intended one: independent hints combined as
        /// 1 − Π(1 − pᵢ) (baseline 0.25, non-canonical 0.9, null 0.5 — halved if the original was
        /// low —, nearby registers 0.5…0.65), halved when registers hold allocator poison.
        /// Computed in single precision, as rust-minidump does, so the printed values agree.
        public var confidence: Float {
            var values: [Float] = [0.25]
            if wasNonCanonical { values.append(0.9) }
            if isNull { values.append(wasLow ? 0.5 * 0.5 : 0.5) }
            if nearbyRegisters > 0 { values.append([0.5, 0.55, 0.6, 0.65][min(nearbyRegisters, 4) - 1]) }
            var product: Float = 1
            for v in values { product *= 1 - v }
            var result = 1 - product
            if poisonRegisters { result *= 0.5 }
            return result
        }
    }

    public enum Inconsistency: String, Sendable, CaseIterable {
        case intDivByZeroNotPossible = "int_div_by_zero_not_possible"
        case privInstructionCrashWithoutPrivInstruction = "priv_instruction_crash_without_priv_instruction"
        case nonCanonicalAddressFalselyReported = "non_canonical_address_falsely_reported"
        case accessViolationWhenAccessAllowed = "access_violation_when_access_allowed"
        case crashingAccessNotFoundInMemoryAccesses = "crashing_access_not_found_in_memory_accesses"
    }

    public var instruction: String?
    /// Nil when not analysed (no instruction bytes, unknown encoding, a register missing).
    public var memoryAccesses: [MemoryAccess]?
    public var instructionPointerUpdate: (address: UInt64, isLikelyGuardPage: Bool)?
    public var adjustedAddress: AdjustedAddress?
    public var possibleBitFlips: [BitFlip] = []
    public var inconsistencies: [Inconsistency] = []
    /// Whether the instruction was decoded (the human report then says whether it moved the IP).
    public var analysedInstruction: Bool { instruction != nil }

    public init() {}
}

/// The memory map of the process: MemoryInfoList regions (Windows, Crashpad) or Linux maps.
struct MemoryMap {
    struct Region {
        var start: UInt64
        var end: UInt64 // exclusive
        var readable: Bool
        var writable: Bool
        var executable: Bool
        var accessible: Bool { readable || writable || executable }
    }

    let regions: [Region]

    init(regions: [Region]) { self.regions = regions.sorted { $0.start < $1.start } }

    init(_ dump: Minidump) {
        if let info = dump.memoryInfo {
            // Free address space is not a region; reserved space is one without permissions.
            self.init(regions: info.filter { $0.state != 0x10000 && $0.regionSize > 0 }.map { m in
                let p = m.state == 0x1000 && m.protection & 0x100 == 0 ? m.protection & 0xFF : 0x01
                return Region(start: m.baseAddress, end: m.baseAddress &+ m.regionSize,
                              readable: p & 0xEE != 0, writable: p & 0xCC != 0, executable: p & 0xF0 != 0)
            })
        } else if let maps = dump.linuxMaps {
            self.init(regions: maps.map { Region(start: $0.start, end: $0.end, readable: $0.readable, writable: $0.writable, executable: $0.executable) })
        } else {
            self.init(regions: [])
        }
    }

    func index(containing address: UInt64) -> Int? {
        guard let i = lastIndex(startingAtOrBelow: address, count: regions.count, start: { regions[$0].start }),
              address < regions[i].end else { return nil }
        return i
    }

    /// Whether `address` is in a region that allows `operation`.
    func allows(_ operation: MemoryOperation, at address: UInt64) -> Bool {
        index(containing: address).map { operation.allowed(in: regions[$0]) } ?? false
    }

    /// A small (< 32 KiB) region without permissions right next to one with permissions: the
    /// guard pages put below stacks and around allocations.
    func isLikelyGuardPage(_ address: UInt64) -> Bool {
        guard let i = index(containing: address) else { return false }
        let r = regions[i]
        guard !r.accessible, r.end - r.start < 32 << 10 else { return false }
        if i > 0, regions[i - 1].end == r.start, regions[i - 1].accessible { return true }
        if i + 1 < regions.count, regions[i + 1].start == r.end, regions[i + 1].accessible { return true }
        return false
    }
}

/// The operation a crash reason names, when it names one (Windows access violations).
enum MemoryOperation {
    case unknown, read, write, execute

    init(reason: String) {
        switch reason {
        case "EXCEPTION_ACCESS_VIOLATION_READ": self = .read
        case "EXCEPTION_ACCESS_VIOLATION_WRITE": self = .write
        case "EXCEPTION_ACCESS_VIOLATION_EXEC": self = .execute
        default: self = .unknown
        }
    }

    func allowed(in r: MemoryMap.Region) -> Bool {
        switch self {
        case .unknown: return r.accessible // not an address in a reservation or guard page
        case .read: return r.readable
        case .write: return r.writable
        case .execute: return r.executable
        }
    }
}

enum CrashAnalyzer {
    static let nonCanonicalRange: ClosedRange<UInt64> = 0x0000_8000_0000_0000...0xFFFF_7FFF_FFFF_FFFF
    /// Addresses this close count as "nearby" for bit-flip heuristics; below twice it, "low".
    static let nearbyDistance: UInt64 = 1 << 12
    /// Fill bytes of allocators (jemalloc, mozjemalloc, the JS engine's poison values, MSVC's debug heap).
    static let poisonBytes: Set<UInt8> = [0x2B, 0x2D, 0x2F, 0x49, 0x4B, 0x4D, 0x4F, 0x6B, 0x8B, 0x9B, 0x9F, 0xA5, 0xBB, 0xCC, 0xCD, 0xCE, 0xDB, 0xE5]

    /// The analysis of the crashing thread. `context` is the exception context.
    static func analyze(dump: Minidump, context: CPUContext?, reason: String, address: UInt64, platformId: UInt32) -> CrashAnalysis {
        let instructionBytes = context.flatMap { c in dump.memoryRegion(containing: c.instructionPointer)?.bytes(at: c.instructionPointer, maxCount: 15) }
        let dumpCPU = dump.systemInfo.map { ContextCPU(architecture: $0.processorArchitecture) }
        return analyze(context: context, cpu: context?.cpu ?? dumpCPU, instructionBytes: instructionBytes, map: MemoryMap(dump),
                       readWord: { a, size in dump.memoryRegion(containing: a)?.word(at: a, size: size) },
                       reason: reason, address: address, platformId: platformId)
    }

    /// The analysis from its inputs: the exception context, the bytes at its instruction
    /// pointer (nil when the dump has none), the memory map and a reader of captured memory.
    static func analyze(context: CPUContext?, cpu: ContextCPU?, instructionBytes: [UInt8]?, map: MemoryMap,
                        readWord: (UInt64, Int) -> UInt64?, reason: String, address: UInt64, platformId: UInt32) -> CrashAnalysis {
        var result = CrashAnalysis()
        var instructionRegisters: [String] = []
        var decoded: X86Instruction?
        if let context, context.cpu == .amd64 || context.cpu == .x86, let bytes = instructionBytes, !bytes.isEmpty {
            let ip = context.instructionPointer
            let decoder = X86Decoder(mode: context.cpu == .amd64 ? .bits64 : .bits32)
            if let instruction = try? decoder.decode(bytes, address: ip) {
                decoded = instruction
                result.instruction = instruction.text
                result.memoryAccesses = memoryAccesses(instruction, context: context, ip: ip)
                result.instructionPointerUpdate = instructionPointerUpdate(instruction, context: context, ip: ip, readWord: readWord)
                    .map { ($0, map.isLikelyGuardPage($0)) }
                var names = Set<String>()
                for case .memory(let m) in instruction.operands where instruction.mnemonic != "nop" {
                    if let b = m.base { names.insert(b.name) }
                    if let i = m.index { names.insert(i.name) }
                }
                instructionRegisters = names.sorted()
            }
        }
        let isAmd64 = cpu == .amd64
        let nonCanonicalFault = isAmd64 && isNonCanonicalFault(reason: reason, address: address, platformId: platformId)

        // A better address: a null base pointer's offset, or the non-canonical address of a GP fault.
        if let accesses = result.memoryAccesses {
            if let n = accesses.first(where: \.isLikelyNullPointer) {
                result.adjustedAddress = .nullPointer(offset: n.address)
            } else if nonCanonicalFault, let a = accesses.first(where: { nonCanonicalRange.contains($0.address) }) {
                result.adjustedAddress = .nonCanonical(a.address)
            }
            for i in accesses.indices { result.memoryAccesses![i].isLikelyGuardPage = map.isLikelyGuardPage(accesses[i].address) }
        }

        // Bit flips, on 64-bit CPUs only (in 32-bit address spaces most one-bit neighbours are mapped).
        let operation = MemoryOperation(reason: reason)
        if let context, context.cpu.pointerSize == 8 {
            var target: (UInt64, Range<Int>, Bool)?
            switch result.adjustedAddress {
            case .nonCanonical(let a): target = (a, 48..<64, true)
            case .nullPointer: target = nil
            case nil: target = (address, context.cpu == .amd64 ? 0..<48 : 0..<64, false)
            }
            if let (a, bits, nonCanonical) = target {
                result.possibleBitFlips = bitFlips(of: a, register: nil, bits: bits, nonCanonical: nonCanonical, context: context, map: map, operation: operation)
                for name in instructionRegisters {
                    if let value = registerValue(name, context) {
                        result.possibleBitFlips += bitFlips(of: value, register: name, bits: bits, nonCanonical: nonCanonical, context: context, map: map, operation: operation)
                    }
                }
            }
        }

        result.inconsistencies = inconsistencies(result, decoded: decoded, reason: reason, address: address, context: context,
                                                 nonCanonicalFault: nonCanonicalFault, map: map, operation: operation)
        return result
    }

    /// The value of a register as the instruction names it (`eax` is the low half of `rax`).
    static func registerValue(_ name: String, _ context: CPUContext) -> UInt64? {
        if let v = context[name] { return v }
        if context.cpu == .amd64 {
            let full: (String, UInt64)?
            if name.hasPrefix("e"), name.count == 3 { full = ("r" + name.dropFirst(), 0xFFFF_FFFF) }
            else if name.hasPrefix("r"), name.hasSuffix("d") { full = (String(name.dropLast()), 0xFFFF_FFFF) }
            else if name.hasPrefix("r"), name.hasSuffix("w") { full = (String(name.dropLast()), 0xFFFF) }
            else if name.count == 2, ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"].contains(name) { full = ("r" + name, 0xFFFF) }
            else { full = nil }
            if let (n, mask) = full, let v = context[n] { return v & mask }
        } else if context.cpu == .x86, name.count == 2, let v = context["e" + name] {
            return v & 0xFFFF
        }
        return nil
    }

    static func address(of m: X86Memory, context: CPUContext, ip: UInt64, length: Int) -> UInt64? {
        var a = UInt64(bitPattern: m.displacement)
        if m.ripRelative { a = a &+ ip &+ UInt64(length) }
        if let b = m.base { guard let v = registerValue(b.name, context) else { return nil }; a = a &+ v }
        if let i = m.index { guard let v = registerValue(i.name, context) else { return nil }; a = a &+ v &* UInt64(m.scale) }
        if context.cpu.pointerSize == 4 || m.base?.size == 4 || m.index?.size == 4 { a &= 0xFFFF_FFFF }
        if m.base?.size == 2 { a &= 0xFFFF }
        return a
    }

    static func memoryAccesses(_ instruction: X86Instruction, context: CPUContext, ip: UInt64) -> [CrashAnalysis.MemoryAccess]? {
        var out: [CrashAnalysis.MemoryAccess] = []
        for m in instruction.memoryOperands {
            guard let a = address(of: m, context: context, ip: ip, length: instruction.length) else { return nil }
            let nullBase = m.base.map { registerValue($0.name, context) == 0 } ?? false
            out.append(.init(address: a, size: m.size, access: m.access, isLikelyNullPointer: nullBase))
        }
        return out
    }

    /// Where a call, jump or return sends the instruction pointer, when the dump says.
    static func instructionPointerUpdate(_ instruction: X86Instruction, context: CPUContext, ip: UInt64,
                                         readWord: (UInt64, Int) -> UInt64?) -> UInt64? {
        let width = context.cpu.pointerSize
        func read(_ a: UInt64) -> UInt64? { readWord(a, width) }
        switch instruction.flow {
        case .call, .jump, .farCall, .farJump:
            switch instruction.operands.first {
            case .register(let r)?: return registerValue(r.name, context)
            case .memory(let m)?: return address(of: m, context: context, ip: ip, length: instruction.length).flatMap(read)
            default: return nil // direct branches go where the code says
            }
        case .ret, .farRet, .interruptReturn:
            return read(context.stackPointer)
        case .none, .conditionalJump:
            return nil
        }
    }

    static func isNonCanonicalFault(reason: String, address: UInt64, platformId: UInt32) -> Bool {
        switch platformId {
        case 0...3: return reason == "EXCEPTION_ACCESS_VIOLATION_READ" && address == UInt64.max
        case 0x8101, 0x8102: return reason == "EXC_BAD_ACCESS / EXC_I386_GPFLT" && address == 0
        case 0x8201, 0x8203: return (reason == "SIGSEGV / SI_KERNEL" || reason == "SIGBUS / SI_KERNEL") && address == 0
        default: return false
        }
    }

    static func bitFlips(of address: UInt64, register: String?, bits: Range<Int>, nonCanonical: Bool, context: CPUContext,
                         map: MemoryMap, operation: MemoryOperation) -> [CrashAnalysis.BitFlip] {
        // An address that is valid for the operation needs no explanation.
        if map.allows(operation, at: address) { return [] }
        var out: [CrashAnalysis.BitFlip] = []
        for bit in bits {
            let candidate = address ^ (1 << UInt64(bit))
            // A flip to null: a null check that went the wrong way.
            guard candidate == 0 || map.allows(operation, at: candidate) else { continue }
            var flip = CrashAnalysis.BitFlip(address: candidate, sourceRegister: register)
            flip.isNull = candidate == 0
            flip.wasLow = flip.isNull && address <= nearbyDistance * 2
            flip.wasNonCanonical = nonCanonical
            let checkNearby = candidate > nearbyDistance * 2
            for (_, value) in context.orderedRegisters {
                if checkNearby && (candidate > value ? candidate - value : value - candidate) <= nearbyDistance { flip.nearbyRegisters += 1 }
                if !flip.poisonRegisters, isRepeatedByte(value, width: context.cpu.pointerSize), poisonBytes.contains(UInt8(value & 0xFF)) {
                    flip.poisonRegisters = true
                }
            }
            out.append(flip)
        }
        return out
    }

    static func isRepeatedByte(_ v: UInt64, width: Int) -> Bool {
        let b = v & 0xFF
        switch width {
        case 4: return v == b &* 0x0101_0101
        default: return v == b &* 0x0101_0101_0101_0101
        }
    }

    static func inconsistencies(_ r: CrashAnalysis, decoded: X86Instruction?, reason: String, address: UInt64, context: CPUContext?,
                                nonCanonicalFault: Bool, map: MemoryMap, operation: MemoryOperation) -> [CrashAnalysis.Inconsistency] {
        var out: [CrashAnalysis.Inconsistency] = []
        if let i = decoded {
            let divide = ["EXCEPTION_INT_DIVIDE_BY_ZERO", "SIGFPE / FPE_INTDIV", "EXC_ARITHMETIC / EXC_I386_DIV"].contains(reason)
            if divide && !i.canDivideByZero { out.append(.intDivByZeroNotPossible) }
            let privileged = ["EXCEPTION_PRIV_INSTRUCTION", "SIGILL / ILL_PRVOPC"].contains(reason)
            if privileged && !i.isPrivileged { out.append(.privInstructionCrashWithoutPrivInstruction) }
        }
        if nonCanonicalFault, let accesses = r.memoryAccesses, !accesses.contains(where: { nonCanonicalRange.contains($0.address) }) {
            out.append(.nonCanonicalAddressFalselyReported)
        }
        if operation != .unknown, map.allows(operation, at: address) {
            out.append(.accessViolationWhenAccessAllowed)
        }
        // A fault on data the instruction did not touch (not a fault on the instruction fetch itself).
        let memoryFault = reason.hasPrefix("EXCEPTION_ACCESS_VIOLATION") || reason.hasPrefix("SIGSEGV") || reason.hasPrefix("SIGBUS")
            || reason.hasPrefix("EXC_BAD_ACCESS")
        let generalProtection = reason.contains("SI_KERNEL") || reason.contains("GPFLT")
        if memoryFault, !generalProtection, let accesses = r.memoryAccesses, let ip = context?.instructionPointer, address != ip,
           r.instructionPointerUpdate?.address != address {
            let found = accesses.contains { a in
                address >= a.address && address - a.address < UInt64(max(a.size ?? 1, 1))
            }
            if !found { out.append(.crashingAccessNotFoundInMemoryAccesses) }
        }
        return out
    }
}
