/// What a decoded instruction is, in the terms crash analysis needs: its text, its operands
/// (with the memory they touch) and what kind of control flow it is.
public enum X86Mode: Sendable, Equatable {
    /// Protected mode, 32-bit code (x86).
    case bits32
    /// Long mode, 64-bit code (amd64).
    case bits64
}

/// How an instruction uses a memory operand.
public enum X86Access: String, Sendable, Equatable {
    case read, write, readWrite = "readwrite"
}

/// A register by name (`rax`, `r8d`, `al`, `xmm3`) and size in bytes.
public struct X86Register: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let size: Int
    public var description: String { name }
}

/// `segment:[base + index * scale ± displacement]`, `size` bytes (nil when the instruction does
/// not say, e.g. `lea`).
public struct X86Memory: Sendable, Equatable {
    public var segment: String?
    public var base: X86Register?
    public var index: X86Register?
    public var scale: UInt8 = 1
    public var displacement: Int64 = 0
    /// `[rip + disp]`: relative to the next instruction.
    public var ripRelative = false
    public var size: Int?
    public var access: X86Access?
}

public enum X86Operand: Sendable, Equatable {
    case register(X86Register)
    /// `value` as the instruction uses it; `signed` when it was sign-extended from a shorter
    /// encoding (printed as `-0x8` rather than `0xfffffffffffffff8`).
    case immediate(Int64, signed: Bool)
    case memory(X86Memory)
    /// A branch target: the address of the next instruction plus the encoded offset.
    case relative(UInt64)
}

public struct X86Instruction: Sendable, Equatable {
    public enum Flow: Sendable, Equatable {
        case none, call, jump, conditionalJump, ret, farCall, farJump, farRet, interruptReturn
    }

    public var length: Int
    /// `lock `, `rep `, `repne ` or empty.
    public var prefix: String
    public var mnemonic: String
    public var operands: [X86Operand]
    public var flow: Flow = .none
    /// Memory touched without an operand saying so: the stack for push/pop/call/ret, `[rsi]`
    /// and `[rdi]` for string instructions.
    public var implicitMemory: [X86Memory] = []
    /// div/idiv: the instruction that can raise a divide error.
    public var canDivideByZero = false
    /// Instructions that fault outside ring 0 (hlt, cli, in/out, lgdt, …).
    public var isPrivileged = false

    /// The instruction in Intel syntax as rust-minidump prints it: `mov dword [0x45], 0x5`.
    public var text: String {
        var s = prefix + mnemonic
        if !operands.isEmpty { s += " " + operands.map { Self.render($0, lea: mnemonic == "lea") }.joined(separator: ", ") }
        return s
    }

    /// All memory the instruction accesses: explicit operands (not `lea`'s) then implicit ones.
    public var memoryOperands: [X86Memory] {
        var out: [X86Memory] = []
        if mnemonic != "lea" && mnemonic != "nop" {
            for case .memory(let m) in operands { out.append(m) }
        }
        return out + implicitMemory
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    static func render(_ operand: X86Operand, lea: Bool) -> String {
        switch operand {
        case .register(let r): return r.name
        case .immediate(let v, let signed):
            return signed && v < 0 ? "-" + hex(v.magnitude) : hex(UInt64(bitPattern: v))
        case .relative(let target): return hex(target)
        case .memory(let m):
            var s = ""
            if !lea, let size = m.size { s += sizeName(size) + " " }
            if let seg = m.segment { s += seg + ":" }
            var parts: [String] = []
            if m.ripRelative { parts.append("rip") }
            if let b = m.base { parts.append(b.name) }
            if let i = m.index { parts.append(m.scale > 1 ? "\(i.name) * \(m.scale)" : i.name) }
            var inner = parts.joined(separator: " + ")
            if parts.isEmpty {
                // An absolute address: as encoded (a 32-bit displacement prints as 32 bits).
                inner = hex(UInt64(bitPattern: m.displacement) & (m.displacement < 0 && m.displacement >= -0x8000_0000 ? 0xFFFF_FFFF : ~0))
            } else if m.displacement != 0 {
                inner += m.displacement < 0 ? " - " + hex(m.displacement.magnitude) : " + " + hex(UInt64(m.displacement))
            }
            return s + "[" + inner + "]"
        }
    }

    static func sizeName(_ size: Int) -> String {
        switch size {
        case 1: return "byte"
        case 2: return "word"
        case 4: return "dword"
        case 6: return "far"
        case 8: return "qword"
        case 10: return "tword"
        case 16: return "xmmword"
        case 32: return "ymmword"
        default: return "\(size)-byte"
        }
    }
}

/// Why bytes did not decode.
public enum X86DecodeError: Error, Sendable, Equatable {
    /// The bytes end inside the instruction.
    case truncated
    /// Not an encoding this decoder knows (or not a valid one).
    case unknown
}
