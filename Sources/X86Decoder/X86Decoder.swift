/// A table-driven decoder for the general-purpose x86 and x86-64 instructions that crash
/// analysis meets: legacy and REX prefixes, the one- and two-byte opcode maps (integer moves,
/// arithmetic and logic, compares, stack, calls and branches, string instructions, atomics,
/// setcc/cmovcc) and the common SSE/AVX moves, with ModRM/SIB addressing. Anything else is
/// `X86DecodeError.unknown`; bytes that end early are `.truncated`. Reads are bounds-checked.
public struct X86Decoder: Sendable {
    public let mode: X86Mode

    public init(mode: X86Mode) { self.mode = mode }

    /// Decodes the instruction at the start of `bytes`; `address` is where it sits in memory
    /// (for branch targets and `rip`-relative operands).
    public func decode(_ bytes: [UInt8], address: UInt64 = 0) throws(X86DecodeError) -> X86Instruction {
        var s = DecodeState(bytes: bytes, mode: mode)
        var instruction = try s.decode()
        instruction.length = s.position
        // Branch targets are relative to the next instruction.
        let next = address &+ UInt64(s.position)
        instruction.operands = instruction.operands.map {
            if case .relative(let offset) = $0 {
                let target = next &+ offset
                return .relative(mode == .bits32 ? target & 0xFFFF_FFFF : target)
            }
            return $0
        }
        return instruction
    }
}

// MARK: - registers

enum Registers {
    static let r64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
    static let r32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"]
    static let r16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"]
    static let r8rex = ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"]
    static let r8legacy = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"]
    static let segments = ["es", "cs", "ss", "ds", "fs", "gs"]

    static func general(_ n: Int, size: Int, rex: Bool) -> X86Register {
        switch size {
        case 1: return X86Register(name: rex ? r8rex[n] : r8legacy[n & 7], size: 1)
        case 2: return X86Register(name: r16[n], size: 2)
        case 4: return X86Register(name: r32[n], size: 4)
        default: return X86Register(name: r64[n], size: 8)
        }
    }

    static func vector(_ n: Int, size: Int) -> X86Register {
        X86Register(name: (size == 32 ? "ymm" : "xmm") + String(n), size: size)
    }
}

// MARK: - decoding state

private struct DecodeState {
    let bytes: [UInt8]
    let mode: X86Mode
    var position = 0

    // Prefixes.
    var operandSizeOverride = false
    var addressSizeOverride = false
    var segment: String?
    var lock = false
    var rep: UInt8 = 0 // 0xF3 or 0xF2 (last one wins)
    var rex: UInt8 = 0
    var hasREX: Bool { rex != 0 }
    var rexW: Bool { rex & 8 != 0 }
    var rexR: Int { rex & 4 != 0 ? 8 : 0 }
    var rexX: Int { rex & 2 != 0 ? 8 : 0 }
    var rexB: Int { rex & 1 != 0 ? 8 : 0 }
    // VEX.vvvv: the extra source register.
    var vexRegister = 0

    init(bytes: [UInt8], mode: X86Mode) {
        self.bytes = bytes
        self.mode = mode
    }

    /// x86 instructions are at most 15 bytes long.
    mutating func byte() throws(X86DecodeError) -> UInt8 {
        guard position < 15 else { throw .unknown }
        guard position < bytes.count else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    func peek() throws(X86DecodeError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        return bytes[position]
    }

    mutating func signed(_ size: Int) throws(X86DecodeError) -> Int64 {
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(try byte()) << (8 * UInt64(i)) }
        let shift = UInt64(64 - 8 * size)
        return Int64(bitPattern: v << shift) >> Int64(shift)
    }

    mutating func unsigned(_ size: Int) throws(X86DecodeError) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(try byte()) << (8 * UInt64(i)) }
        return v
    }

    /// The operand size of `v`-sized operands: 2, 4 or 8 bytes.
    var operandSize: Int {
        if mode == .bits64 && rexW { return 8 }
        return operandSizeOverride ? 2 : 4
    }

    /// Stack operations default to 64 bits in long mode.
    var stackOperandSize: Int {
        if mode == .bits64 { return operandSizeOverride ? 2 : 8 }
        return operandSizeOverride ? 2 : 4
    }

    var addressSize: Int {
        if mode == .bits64 { return addressSizeOverride ? 4 : 8 }
        return addressSizeOverride ? 2 : 4
    }

    var stackPointer: X86Register { mode == .bits64 ? X86Register(name: "rsp", size: 8) : X86Register(name: "esp", size: 4) }

    // MARK: ModRM

    struct ModRM {
        var mod: Int
        var reg: Int // without REX.R
        var rm: Int  // without REX.B
    }

    mutating func modRM() throws(X86DecodeError) -> ModRM {
        let b = Int(try byte())
        return ModRM(mod: b >> 6, reg: (b >> 3) & 7, rm: b & 7)
    }

    /// The r/m operand: a register of `size` (or a vector register when `vector`) or memory.
    mutating func rmOperand(_ m: ModRM, size: Int, vector: Bool = false, access: X86Access?) throws(X86DecodeError) -> X86Operand {
        if m.mod == 3 {
            let n = m.rm + rexB
            return .register(vector ? Registers.vector(n, size: size) : Registers.general(n, size: size, rex: hasREX))
        }
        var mem = try memory(m)
        mem.size = size
        mem.access = access
        return .memory(mem)
    }

    mutating func memory(_ m: ModRM) throws(X86DecodeError) -> X86Memory {
        var mem = X86Memory()
        mem.segment = segment
        if addressSize == 2 { return try memory16(m, into: mem) }
        let regSize = addressSize
        func reg(_ n: Int) -> X86Register { Registers.general(n, size: regSize, rex: true) }
        if m.rm == 4 {
            let sib = Int(try byte())
            let scale = UInt8(1 << (sib >> 6)), index = ((sib >> 3) & 7) + rexX, base = sib & 7
            if index != 4 { mem.index = reg(index); mem.scale = scale }
            if base == 5 && m.mod == 0 {
                mem.displacement = try signed(4)
            } else {
                mem.base = reg(base + rexB)
            }
        } else if m.rm == 5 && m.mod == 0 {
            mem.displacement = try signed(4)
            if mode == .bits64 { mem.ripRelative = true }
        } else {
            mem.base = reg(m.rm + rexB)
        }
        if m.mod == 1 { mem.displacement = try signed(1) } else if m.mod == 2 { mem.displacement = try signed(4) }
        if mode == .bits32 && mem.base == nil && mem.index == nil {
            mem.displacement = Int64(UInt64(bitPattern: mem.displacement) & 0xFFFF_FFFF)
        }
        return mem
    }

    mutating func memory16(_ m: ModRM, into start: X86Memory) throws(X86DecodeError) -> X86Memory {
        var mem = start
        let pairs: [(String?, String?)] = [("bx", "si"), ("bx", "di"), ("bp", "si"), ("bp", "di"), ("si", nil), ("di", nil), ("bp", nil), ("bx", nil)]
        if m.mod == 0 && m.rm == 6 {
            mem.displacement = Int64(try unsigned(2))
            return mem
        }
        let (b, i) = pairs[m.rm]
        mem.base = b.map { X86Register(name: $0, size: 2) }
        mem.index = i.map { X86Register(name: $0, size: 2) }
        if m.mod == 1 { mem.displacement = try signed(1) } else if m.mod == 2 { mem.displacement = try signed(2) }
        return mem
    }

    func regOperand(_ m: ModRM, size: Int) -> X86Operand {
        .register(Registers.general(m.reg + rexR, size: size, rex: hasREX))
    }

    /// An immediate of `size` bytes for an operand of `operandSize` bytes.
    mutating func immediate(_ size: Int, operandSize: Int) throws(X86DecodeError) -> X86Operand {
        let v = try signed(size)
        if size < operandSize { return .immediate(v, signed: true) }
        // Same width: the value as unsigned of that width.
        let mask: UInt64 = size >= 8 ? ~0 : (1 << UInt64(size * 8)) - 1
        return .immediate(Int64(bitPattern: UInt64(bitPattern: v) & mask), signed: false)
    }

    /// Size of an `Iz` immediate: 2 for 16-bit operands, else 4.
    var izSize: Int { operandSize == 2 ? 2 : 4 }

    func make(_ mnemonic: String, _ operands: [X86Operand]) -> X86Instruction {
        X86Instruction(length: 0, prefix: lock ? "lock " : "", mnemonic: mnemonic, operands: operands)
    }

    static let alu = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"]
    static let shifts = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"]
    static let conditions = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]

    // MARK: prefixes and dispatch

    mutating func decode() throws(X86DecodeError) -> X86Instruction {
        while true {
            let b = try peek()
            switch b {
            case 0x66: operandSizeOverride = true
            case 0x67: addressSizeOverride = true
            case 0x26: segment = "es"
            case 0x2E: segment = "cs"
            case 0x36: segment = "ss"
            case 0x3E: segment = "ds"
            case 0x64: segment = "fs"
            case 0x65: segment = "gs"
            case 0xF0: lock = true
            case 0xF2, 0xF3: rep = b
            default:
                if mode == .bits64 && b & 0xF0 == 0x40 {
                    position += 1
                    rex = b
                    // A REX prefix counts only right before the opcode.
                    let next = try peek()
                    if next & 0xF0 == 0x40 || [0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65].contains(next) {
                        rex = 0
                        continue
                    }
                }
                return try opcode()
            }
            guard position < 14 else { throw .unknown }
            position += 1
        }
    }

    mutating func opcode() throws(X86DecodeError) -> X86Instruction {
        let op = try byte()
        // In segments the CPU ignores in long mode, drop the segment except fs/gs.
        if mode == .bits64, let s = segment, s != "fs" && s != "gs" { segment = nil }
        switch op {
        case 0x0F:
            return try twoByte()
        case 0xC4, 0xC5:
            // VEX (in 32-bit mode only when the next byte has mod = 11; else les/lds).
            let next = try peek()
            if mode == .bits64 || next >= 0xC0 { return try vex(op) }
            throw .unknown
        case _ where op < 0x40 && op & 7 < 6:
            let name = Self.alu[Int(op >> 3)]
            let write: X86Access = name == "cmp" ? .read : .readWrite
            switch op & 7 {
            case 0: let m = try modRM(); return make(name, [try rmOperand(m, size: 1, access: write), regOperand(m, size: 1)])
            case 1: let m = try modRM(); return make(name, [try rmOperand(m, size: operandSize, access: write), regOperand(m, size: operandSize)])
            case 2: let m = try modRM(); return make(name, [regOperand(m, size: 1), try rmOperand(m, size: 1, access: .read)])
            case 3: let m = try modRM(); return make(name, [regOperand(m, size: operandSize), try rmOperand(m, size: operandSize, access: .read)])
            case 4: return make(name, [.register(Registers.general(0, size: 1, rex: false)), try immediate(1, operandSize: 1)])
            default: return make(name, [.register(Registers.general(0, size: operandSize, rex: false)), try immediate(izSize, operandSize: operandSize)])
            }
        case 0x40...0x4F: // inc/dec r (32-bit mode; REX in long mode is handled as a prefix)
            return make(op < 0x48 ? "inc" : "dec", [.register(Registers.general(Int(op & 7), size: operandSize, rex: false))])
        case 0x50...0x57:
            var i = make("push", [.register(Registers.general(Int(op & 7) + rexB, size: stackOperandSize, rex: true))])
            i.implicitMemory = [stackSlot(offset: -Int64(stackOperandSize), access: .write)]
            return i
        case 0x58...0x5F:
            var i = make("pop", [.register(Registers.general(Int(op & 7) + rexB, size: stackOperandSize, rex: true))])
            i.implicitMemory = [stackSlot(offset: 0, access: .read)]
            return i
        case 0x63 where mode == .bits64:
            let m = try modRM()
            return make("movsxd", [regOperand(m, size: operandSize), try rmOperand(m, size: 4, access: .read)])
        case 0x68, 0x6A:
            var i = make("push", [try immediate(op == 0x68 ? izSize : 1, operandSize: stackOperandSize)])
            i.implicitMemory = [stackSlot(offset: -Int64(stackOperandSize), access: .write)]
            return i
        case 0x69, 0x6B:
            let m = try modRM()
            let dst = regOperand(m, size: operandSize), src = try rmOperand(m, size: operandSize, access: .read)
            return make("imul", [dst, src, try immediate(op == 0x69 ? izSize : 1, operandSize: operandSize)])
        case 0x6C...0x6F:
            var i = stringInstruction(op < 0x6E ? "ins" : "outs", size: op & 1 == 0 ? 1 : min(operandSize, 4), source: op >= 0x6E, destination: op < 0x6E ? .write : nil)
            i.isPrivileged = true
            return i
        case 0x70...0x7F:
            var i = make("j" + Self.conditions[Int(op & 0xF)], [.relative(UInt64(bitPattern: try signed(1)))])
            i.flow = .conditionalJump
            return i
        case 0x80, 0x81, 0x83:
            let m = try modRM()
            let size = op == 0x80 ? 1 : operandSize
            let name = Self.alu[m.reg]
            let dst = try rmOperand(m, size: size, access: name == "cmp" ? .read : .readWrite)
            return make(name, [dst, try immediate(op == 0x81 ? izSize : 1, operandSize: size)])
        case 0x84, 0x85:
            let m = try modRM(); let size = op == 0x84 ? 1 : operandSize
            return make("test", [try rmOperand(m, size: size, access: .read), regOperand(m, size: size)])
        case 0x86, 0x87:
            let m = try modRM(); let size = op == 0x86 ? 1 : operandSize
            return make("xchg", [try rmOperand(m, size: size, access: .readWrite), regOperand(m, size: size)])
        case 0x88, 0x89:
            let m = try modRM(); let size = op == 0x88 ? 1 : operandSize
            return make("mov", [try rmOperand(m, size: size, access: .write), regOperand(m, size: size)])
        case 0x8A, 0x8B:
            let m = try modRM(); let size = op == 0x8A ? 1 : operandSize
            return make("mov", [regOperand(m, size: size), try rmOperand(m, size: size, access: .read)])
        case 0x8C, 0x8E:
            let m = try modRM()
            guard m.reg < 6 else { throw .unknown }
            let seg = X86Operand.register(X86Register(name: Registers.segments[m.reg], size: 2))
            if op == 0x8C { return make("mov", [try rmOperand(m, size: m.mod == 3 ? operandSize : 2, access: .write), seg]) }
            return make("mov", [seg, try rmOperand(m, size: 2, access: .read)])
        case 0x8D:
            let m = try modRM()
            guard m.mod != 3 else { throw .unknown }
            return make("lea", [regOperand(m, size: operandSize), .memory(try memory(m))])
        case 0x8F:
            let m = try modRM()
            guard m.reg == 0 else { throw .unknown }
            var i = make("pop", [try rmOperand(m, size: stackOperandSize, access: .write)])
            i.implicitMemory = [stackSlot(offset: 0, access: .read)]
            return i
        case 0x90:
            if rexB != 0 { return make("xchg", [.register(Registers.general(8, size: operandSize, rex: true)), .register(Registers.general(0, size: operandSize, rex: true))]) }
            return make(rep == 0xF3 ? "pause" : "nop", [])
        case 0x91...0x97:
            return make("xchg", [.register(Registers.general(Int(op & 7) + rexB, size: operandSize, rex: true)), .register(Registers.general(0, size: operandSize, rex: true))])
        case 0x98: return make(operandSize == 8 ? "cdqe" : operandSize == 2 ? "cbw" : "cwde", [])
        case 0x99: return make(operandSize == 8 ? "cqo" : operandSize == 2 ? "cwd" : "cdq", [])
        case 0x9C, 0x9D:
            var i = make(op == 0x9C ? (mode == .bits64 ? "pushfq" : "pushfd") : (mode == .bits64 ? "popfq" : "popfd"), [])
            i.implicitMemory = [stackSlot(offset: op == 0x9C ? -Int64(stackOperandSize) : 0, access: op == 0x9C ? .write : .read)]
            return i
        case 0x9E: return make("sahf", [])
        case 0x9F: return make("lahf", [])
        case 0xA0...0xA3:
            var mem = X86Memory()
            mem.segment = segment
            mem.displacement = Int64(bitPattern: try unsigned(addressSize))
            let size = op & 1 == 0 ? 1 : operandSize
            mem.size = size
            mem.access = op < 0xA2 ? .read : .write
            let acc = X86Operand.register(Registers.general(0, size: size, rex: false))
            return make("mov", op < 0xA2 ? [acc, .memory(mem)] : [.memory(mem), acc])
        case 0xA4, 0xA5: return stringInstruction("movs", size: op == 0xA4 ? 1 : operandSize, source: true, destination: .write)
        case 0xA6, 0xA7: return stringInstruction("cmps", size: op == 0xA6 ? 1 : operandSize, source: true, destination: .read)
        case 0xA8, 0xA9:
            let size = op == 0xA8 ? 1 : operandSize
            return make("test", [.register(Registers.general(0, size: size, rex: false)), try immediate(op == 0xA8 ? 1 : izSize, operandSize: size)])
        case 0xAA, 0xAB: return stringInstruction("stos", size: op == 0xAA ? 1 : operandSize, source: false, destination: .write)
        case 0xAC, 0xAD: return stringInstruction("lods", size: op == 0xAC ? 1 : operandSize, source: true, destination: nil)
        case 0xAE, 0xAF: return stringInstruction("scas", size: op == 0xAE ? 1 : operandSize, source: false, destination: .read)
        case 0xB0...0xB7:
            return make("mov", [.register(Registers.general(Int(op & 7) + rexB, size: 1, rex: hasREX)), try immediate(1, operandSize: 1)])
        case 0xB8...0xBF:
            let size = operandSize
            return make("mov", [.register(Registers.general(Int(op & 7) + rexB, size: size, rex: true)), try immediate(size == 8 ? 8 : izSize, operandSize: size)])
        case 0xC0, 0xC1, 0xD0, 0xD1, 0xD2, 0xD3:
            let m = try modRM()
            let size = op & 1 == 0 ? 1 : operandSize
            let dst = try rmOperand(m, size: size, access: .readWrite)
            let count: X86Operand = op <= 0xC1 ? try immediate(1, operandSize: 1)
                : op <= 0xD1 ? .immediate(1, signed: false) : .register(X86Register(name: "cl", size: 1))
            return make(Self.shifts[m.reg], [dst, count])
        case 0xC2, 0xC3:
            var i = make("ret", op == 0xC2 ? [try immediate(2, operandSize: 2)] : [])
            i.flow = .ret
            i.implicitMemory = [stackSlot(offset: 0, access: .read, size: stackOperandSize)]
            return i
        case 0xC6, 0xC7:
            let m = try modRM()
            let size = op == 0xC6 ? 1 : operandSize
            guard m.reg == 0 else { throw .unknown }
            let dst = try rmOperand(m, size: size, access: .write)
            return make("mov", [dst, try immediate(op == 0xC6 ? 1 : izSize, operandSize: size)])
        case 0xC8:
            let frame = try immediate(2, operandSize: 2), level = try immediate(1, operandSize: 1)
            return make("enter", [frame, level])
        case 0xC9:
            var i = make("leave", [])
            i.implicitMemory = [X86Memory(base: Registers.general(5, size: addressSize, rex: true), size: stackOperandSize, access: .read)]
            return i
        case 0xCA, 0xCB:
            var i = make("retf", op == 0xCA ? [try immediate(2, operandSize: 2)] : [])
            i.flow = .farRet
            i.implicitMemory = [stackSlot(offset: 0, access: .read, size: stackOperandSize)]
            return i
        case 0xCC: return make("int3", [])
        case 0xCD: return make("int", [try immediate(1, operandSize: 1)])
        case 0xCF:
            var i = make(operandSize == 8 ? "iretq" : operandSize == 2 ? "iret" : "iretd", [])
            i.flow = .interruptReturn
            i.isPrivileged = true
            i.implicitMemory = [stackSlot(offset: 0, access: .read, size: stackOperandSize)]
            return i
        case 0xE0...0xE3:
            let names = ["loopne", "loope", "loop", addressSize == 8 ? "jrcxz" : addressSize == 4 ? "jecxz" : "jcxz"]
            var i = make(names[Int(op & 3)], [.relative(UInt64(bitPattern: try signed(1)))])
            i.flow = .conditionalJump
            return i
        case 0xE4...0xE7, 0xEC...0xEF:
            let size = op & 1 == 0 ? 1 : min(operandSize, 4)
            let acc = X86Operand.register(Registers.general(0, size: size, rex: false))
            let port: X86Operand = op <= 0xE7 ? try immediate(1, operandSize: 1) : .register(X86Register(name: "dx", size: 2))
            var i = make(op & 2 == 0 ? "in" : "out", op & 2 == 0 ? [acc, port] : [port, acc])
            i.isPrivileged = true
            return i
        case 0xE8:
            var i = make("call", [.relative(UInt64(bitPattern: try signed(mode == .bits64 || !operandSizeOverride ? 4 : 2)))])
            i.flow = .call
            i.implicitMemory = [stackSlot(offset: -Int64(stackOperandSize), access: .write, size: stackOperandSize)]
            return i
        case 0xE9, 0xEB:
            var i = make("jmp", [.relative(UInt64(bitPattern: try signed(op == 0xEB ? 1 : (mode == .bits64 || !operandSizeOverride ? 4 : 2))))])
            i.flow = .jump
            return i
        case 0xF4: var i = make("hlt", []); i.isPrivileged = true; return i
        case 0xF5: return make("cmc", [])
        case 0xF6, 0xF7:
            let m = try modRM()
            let size = op == 0xF6 ? 1 : operandSize
            switch m.reg {
            case 0, 1:
                let dst = try rmOperand(m, size: size, access: .read)
                return make("test", [dst, try immediate(op == 0xF6 ? 1 : izSize, operandSize: size)])
            case 2, 3:
                return make(m.reg == 2 ? "not" : "neg", [try rmOperand(m, size: size, access: .readWrite)])
            default:
                var i = make(["mul", "imul", "div", "idiv"][m.reg - 4], [try rmOperand(m, size: size, access: .read)])
                i.canDivideByZero = m.reg >= 6
                return i
            }
        case 0xF8: return make("clc", [])
        case 0xF9: return make("stc", [])
        case 0xFA, 0xFB: var i = make(op == 0xFA ? "cli" : "sti", []); i.isPrivileged = true; return i
        case 0xFC: return make("cld", [])
        case 0xFD: return make("std", [])
        case 0xFE:
            let m = try modRM()
            guard m.reg < 2 else { throw .unknown }
            return make(m.reg == 0 ? "inc" : "dec", [try rmOperand(m, size: 1, access: .readWrite)])
        case 0xFF:
            let m = try modRM()
            switch m.reg {
            case 0, 1: return make(m.reg == 0 ? "inc" : "dec", [try rmOperand(m, size: operandSize, access: .readWrite)])
            case 2, 4:
                // Near call/jmp: 64-bit operands in long mode.
                let size = mode == .bits64 ? 8 : operandSize
                var i = make(m.reg == 2 ? "call" : "jmp", [try rmOperand(m, size: size, access: .read)])
                i.flow = m.reg == 2 ? .call : .jump
                if m.reg == 2 { i.implicitMemory = [stackSlot(offset: -Int64(stackOperandSize), access: .write, size: stackOperandSize)] }
                return i
            case 3, 5:
                guard m.mod != 3 else { throw .unknown }
                var mem = try memory(m)
                mem.size = operandSize + 2
                mem.access = .read
                var i = make(m.reg == 3 ? "callf" : "jmpf", [.memory(mem)])
                i.flow = m.reg == 3 ? .farCall : .farJump
                return i
            case 6:
                var i = make("push", [try rmOperand(m, size: stackOperandSize, access: .read)])
                i.implicitMemory = [stackSlot(offset: -Int64(stackOperandSize), access: .write)]
                return i
            default: throw .unknown
            }
        default:
            throw .unknown
        }
    }

    func stackSlot(offset: Int64, access: X86Access, size: Int? = nil) -> X86Memory {
        X86Memory(base: stackPointer, displacement: offset, size: size ?? stackOperandSize, access: access)
    }

    /// movs/cmps/stos/lods/scas/ins/outs: `source` when `[rsi]` is read, `destination` how
    /// `es:[rdi]` is used (nil when it is not).
    func stringInstruction(_ base: String, size: Int, source: Bool, destination: X86Access?) -> X86Instruction {
        let suffix = ["", "b", "w", "", "d", "", "", "", "q"][size]
        var i = X86Instruction(length: 0, prefix: rep == 0xF3 ? (base == "cmps" || base == "scas" ? "repe " : "rep ") : rep == 0xF2 ? "repne " : "",
                               mnemonic: base + suffix, operands: [])
        let a = addressSize
        if source { i.implicitMemory.append(X86Memory(segment: segment, base: Registers.general(6, size: a, rex: true), size: size, access: .read)) }
        if let destination { i.implicitMemory.append(X86Memory(segment: "es", base: Registers.general(7, size: a, rex: true), size: size, access: destination)) }
        return i
    }

    // MARK: 0F map

    var vectorPrefix: UInt8 { rep != 0 ? rep : operandSizeOverride ? 0x66 : 0 }

    mutating func twoByte() throws(X86DecodeError) -> X86Instruction {
        let op = try byte()
        switch op {
        case 0x05: return make("syscall", [])
        case 0x0B: return make("ud2", [])
        case 0x31: return make("rdtsc", [])
        case 0xA2: return make("cpuid", [])
        case 0x06: var i = make("clts", []); i.isPrivileged = true; return i
        case 0x08, 0x09: var i = make(op == 0x08 ? "invd" : "wbinvd", []); i.isPrivileged = true; return i
        case 0x30, 0x32: var i = make(op == 0x30 ? "wrmsr" : "rdmsr", []); i.isPrivileged = true; return i
        case 0x01:
            let m = try modRM()
            guard m.mod != 3, m.reg != 5 else {
                if m.mod == 3 && m.reg == 7 && m.rm == 0 { var i = make("swapgs", []); i.isPrivileged = true; return i }
                throw .unknown
            }
            let names = ["sgdt", "sidt", "lgdt", "lidt", "smsw", "", "lmsw", "invlpg"]
            var mem = try memory(m)
            mem.size = m.reg == 4 || m.reg == 6 ? 2 : m.reg == 7 ? 1 : (mode == .bits64 ? 10 : 6)
            mem.access = m.reg < 2 || m.reg == 4 ? .write : .read
            var i = make(names[m.reg], [.memory(mem)])
            i.isPrivileged = [2, 3, 6, 7].contains(m.reg)
            return i
        case 0x18, 0x0D:
            let m = try modRM()
            guard m.mod != 3 else { throw .unknown }
            var mem = try memory(m); mem.size = 1
            let names = op == 0x0D ? ["prefetch", "prefetchw", "prefetch", "prefetch", "prefetch", "prefetch", "prefetch", "prefetch"]
                : ["prefetchnta", "prefetcht0", "prefetcht1", "prefetcht2", "nop", "nop", "nop", "nop"]
            return make(names[m.reg], [.memory(mem)])
        case 0x1F:
            let m = try modRM()
            return make("nop", [try rmOperand(m, size: operandSize, access: nil)])
        case 0x10, 0x11:
            let names: [UInt8: (String, Int)] = [0: ("movups", 16), 0x66: ("movupd", 16), 0xF3: ("movss", 4), 0xF2: ("movsd", 8)]
            let (name, size) = names[vectorPrefix]!
            return try vectorMove(name, load: op == 0x10, size: size)
        case 0x28, 0x29:
            guard vectorPrefix == 0 || vectorPrefix == 0x66 else { throw .unknown }
            return try vectorMove(vectorPrefix == 0 ? "movaps" : "movapd", load: op == 0x28, size: 16)
        case 0x6F, 0x7F:
            let names: [UInt8: String] = [0x66: "movdqa", 0xF3: "movdqu"]
            guard let name = names[vectorPrefix] else { throw .unknown }
            return try vectorMove(name, load: op == 0x6F, size: 16)
        case 0xE7:
            guard vectorPrefix == 0x66 else { throw .unknown }
            return try vectorMove("movntdq", load: false, size: 16)
        case 0x2B:
            guard vectorPrefix == 0 || vectorPrefix == 0x66 else { throw .unknown }
            return try vectorMove(vectorPrefix == 0 ? "movntps" : "movntpd", load: false, size: 16)
        case 0x6E, 0x7E:
            if op == 0x7E && vectorPrefix == 0xF3 {
                let m = try modRM()
                return make("movq", [.register(Registers.vector(m.reg + rexR, size: 16)), try rmOperand(m, size: 8, vector: true, access: .read)])
            }
            guard vectorPrefix == 0x66 else { throw .unknown }
            let m = try modRM()
            let size = rexW ? 8 : 4
            let name = rexW ? "movq" : "movd"
            let x = X86Operand.register(Registers.vector(m.reg + rexR, size: 16))
            if op == 0x6E { return make(name, [x, try rmOperand(m, size: size, access: .read)]) }
            return make(name, [try rmOperand(m, size: size, access: .write), x])
        case 0xD6:
            guard vectorPrefix == 0x66 else { throw .unknown }
            let m = try modRM()
            return make("movq", [try rmOperand(m, size: 8, vector: true, access: .write), .register(Registers.vector(m.reg + rexR, size: 16))])
        case 0x2E, 0x2F:
            guard vectorPrefix == 0 || vectorPrefix == 0x66 else { throw .unknown }
            let m = try modRM()
            let double = vectorPrefix == 0x66
            let name = (op == 0x2E ? "ucomis" : "comis") + (double ? "d" : "s")
            return make(name, [.register(Registers.vector(m.reg + rexR, size: 16)), try rmOperand(m, size: double ? 8 : 4, vector: true, access: .read)])
        case 0x54, 0x57, 0xEF:
            let names: [UInt8: [UInt8: String]] = [0x54: [0: "andps", 0x66: "andpd"], 0x57: [0: "xorps", 0x66: "xorpd"], 0xEF: [0x66: "pxor"]]
            guard let name = names[op]?[vectorPrefix] else { throw .unknown }
            let m = try modRM()
            return make(name, [.register(Registers.vector(m.reg + rexR, size: 16)), try rmOperand(m, size: 16, vector: true, access: .read)])
        case 0x40...0x4F:
            let m = try modRM()
            return make("cmov" + Self.conditions[Int(op & 0xF)], [regOperand(m, size: operandSize), try rmOperand(m, size: operandSize, access: .read)])
        case 0x80...0x8F:
            var i = make("j" + Self.conditions[Int(op & 0xF)], [.relative(UInt64(bitPattern: try signed(mode == .bits64 || !operandSizeOverride ? 4 : 2)))])
            i.flow = .conditionalJump
            return i
        case 0x90...0x9F:
            let m = try modRM()
            return make("set" + Self.conditions[Int(op & 0xF)], [try rmOperand(m, size: 1, access: .write)])
        case 0xA3, 0xAB, 0xB3, 0xBB:
            let m = try modRM()
            let name = ["bt", "bts", "btr", "btc"][Int((op >> 3) & 3)]
            return make(name, [try rmOperand(m, size: operandSize, access: name == "bt" ? .read : .readWrite), regOperand(m, size: operandSize)])
        case 0xBA:
            let m = try modRM()
            guard m.reg >= 4 else { throw .unknown }
            let name = ["bt", "bts", "btr", "btc"][m.reg - 4]
            let dst = try rmOperand(m, size: operandSize, access: name == "bt" ? .read : .readWrite)
            return make(name, [dst, try immediate(1, operandSize: 1)])
        case 0xA4, 0xA5, 0xAC, 0xAD:
            let m = try modRM()
            let dst = try rmOperand(m, size: operandSize, access: .readWrite)
            let count: X86Operand = op & 1 == 0 ? try immediate(1, operandSize: 1) : .register(X86Register(name: "cl", size: 1))
            return make(op < 0xA8 ? "shld" : "shrd", [dst, regOperand(m, size: operandSize), count])
        case 0xAF:
            let m = try modRM()
            return make("imul", [regOperand(m, size: operandSize), try rmOperand(m, size: operandSize, access: .read)])
        case 0xB0, 0xB1, 0xC0, 0xC1:
            let m = try modRM()
            let size = op & 1 == 0 ? 1 : operandSize
            return make(op < 0xC0 ? "cmpxchg" : "xadd", [try rmOperand(m, size: size, access: .readWrite), regOperand(m, size: size)])
        case 0xB6, 0xB7, 0xBE, 0xBF:
            let m = try modRM()
            return make(op < 0xB8 ? "movzx" : "movsx", [regOperand(m, size: operandSize), try rmOperand(m, size: op & 1 == 0 ? 1 : 2, access: .read)])
        case 0xBC, 0xBD:
            let m = try modRM()
            let name = rep == 0xF3 ? (op == 0xBC ? "tzcnt" : "lzcnt") : (op == 0xBC ? "bsf" : "bsr")
            return make(name, [regOperand(m, size: operandSize), try rmOperand(m, size: operandSize, access: .read)])
        case 0xC7:
            let m = try modRM()
            guard m.reg == 1, m.mod != 3 else { throw .unknown }
            var mem = try memory(m)
            mem.size = rexW ? 16 : 8
            mem.access = .readWrite
            return make(rexW ? "cmpxchg16b" : "cmpxchg8b", [.memory(mem)])
        case 0xC8...0xCF:
            return make("bswap", [.register(Registers.general(Int(op & 7) + rexB, size: operandSize == 8 ? 8 : 4, rex: true))])
        default:
            throw .unknown
        }
    }

    /// A vector move between a register and a register or memory (`load`: register ← r/m).
    mutating func vectorMove(_ name: String, load: Bool, size: Int, registerSize: Int = 16) throws(X86DecodeError) -> X86Instruction {
        let m = try modRM()
        let reg = X86Operand.register(Registers.vector(m.reg + rexR, size: registerSize))
        let rm = try rmOperand(m, size: m.mod == 3 ? registerSize : size, vector: true, access: load ? .read : .write)
        return make(name, load ? [reg, rm] : [rm, reg])
    }

    // MARK: VEX

    mutating func vex(_ first: UInt8) throws(X86DecodeError) -> X86Instruction {
        guard !operandSizeOverride, rep == 0, !lock, rex == 0 else { throw .unknown }
        let b1 = try byte()
        var map = 1, pp = 0, w = false
        let r = (b1 & 0x80) == 0
        var x = false, b = false
        let vvvv: UInt8, l: Bool
        if first == 0xC5 {
            vvvv = (~b1 >> 3) & 0xF
            l = b1 & 4 != 0
            pp = Int(b1 & 3)
        } else {
            x = (b1 & 0x40) == 0
            b = (b1 & 0x20) == 0
            map = Int(b1 & 0x1F)
            let b2 = try byte()
            w = b2 & 0x80 != 0
            vvvv = (~b2 >> 3) & 0xF
            l = b2 & 4 != 0
            pp = Int(b2 & 3)
        }
        if mode == .bits64 {
            rex = 0x40 | (w ? 8 : 0) | (r ? 4 : 0) | (x ? 2 : 0) | (b ? 1 : 0)
        }
        vexRegister = Int(vvvv)
        guard map == 1 else { throw .unknown }
        let op = try byte()
        let size = l ? 32 : 16
        let prefix = [0, 0x66, 0xF3, 0xF2][pp]
        switch (op, prefix) {
        case (0x10, 0), (0x11, 0): return try vectorMove("vmovups", load: op == 0x10, size: size, registerSize: size)
        case (0x10, 0x66), (0x11, 0x66): return try vectorMove("vmovupd", load: op == 0x10, size: size, registerSize: size)
        case (0x28, 0), (0x29, 0): return try vectorMove("vmovaps", load: op == 0x28, size: size, registerSize: size)
        case (0x28, 0x66), (0x29, 0x66): return try vectorMove("vmovapd", load: op == 0x28, size: size, registerSize: size)
        case (0x6F, 0x66), (0x7F, 0x66): return try vectorMove("vmovdqa", load: op == 0x6F, size: size, registerSize: size)
        case (0x6F, 0xF3), (0x7F, 0xF3): return try vectorMove("vmovdqu", load: op == 0x6F, size: size, registerSize: size)
        case (0xE7, 0x66): return try vectorMove("vmovntdq", load: false, size: size, registerSize: size)
        case (0x10, 0xF3), (0x11, 0xF3), (0x10, 0xF2), (0x11, 0xF2):
            let m = try modRM()
            guard m.mod != 3 else { throw .unknown } // the register-merging forms are not decoded
            let elem = prefix == 0xF3 ? 4 : 8
            let reg = X86Operand.register(Registers.vector(m.reg + rexR, size: 16))
            let mem = try rmOperand(m, size: elem, vector: true, access: op == 0x10 ? .read : .write)
            return make(prefix == 0xF3 ? "vmovss" : "vmovsd", op == 0x10 ? [reg, mem] : [mem, reg])
        case (0x57, 0), (0x57, 0x66), (0xEF, 0x66):
            let m = try modRM()
            let name = op == 0xEF ? "vpxor" : prefix == 0 ? "vxorps" : "vxorpd"
            return make(name, [.register(Registers.vector(m.reg + rexR, size: size)), .register(Registers.vector(vexRegister, size: size)),
                               try rmOperand(m, size: size, vector: true, access: .read)])
        default:
            throw .unknown
        }
    }
}
