/// The CPU families whose contexts are decoded.
public enum ContextCPU: Sendable, Equatable {
    case x86, amd64, arm, arm64

    /// The CPU family of a SystemInfo processor architecture (other architectures unwind as amd64).
    public init(architecture: UInt16) {
        switch architecture {
        case 0, 10: self = .x86
        case 5: self = .arm
        case 12, 0x8003: self = .arm64
        default: self = .amd64
        }
    }

    public var pointerSize: Int { self == .x86 || self == .arm ? 4 : 8 }
    /// Registers in rust-minidump's output order.
    public var registerOrder: [String] {
        switch self {
        case .x86: return ["eip", "esp", "ebp", "ebx", "esi", "edi", "eax", "ecx", "edx", "eflags"]
        case .amd64: return ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp"] + (8...15).map { "r\($0)" } + ["rip"]
        case .arm: return (0...10).map { "r\($0)" } + ["r12", "fp", "sp", "lr", "pc"]
        case .arm64: return (0...28).map { "x\($0)" } + ["fp", "lr", "sp", "pc"]
        }
    }
    public var instructionPointer: String {
        switch self { case .x86: return "eip"; case .amd64: return "rip"; case .arm, .arm64: return "pc" }
    }
    public var stackPointer: String {
        switch self { case .x86: return "esp"; case .amd64: return "rsp"; case .arm, .arm64: return "sp" }
    }
    public var framePointer: String {
        switch self { case .x86: return "ebp"; case .amd64: return "rbp"; case .arm, .arm64: return "fp" }
    }
    /// Registers a callee preserves; CFI copies them to the caller when no rule mentions them.
    public var calleeSaved: [String] {
        switch self {
        case .x86: return ["ebp", "ebx", "edi", "esi"]
        case .amd64: return ["rbx", "rbp", "r12", "r13", "r14", "r15"]
        case .arm: return (4...10).map { "r\($0)" } + ["fp"]
        case .arm64: return (19...28).map { "x\($0)" } + ["fp"]
        }
    }
}

/// A thread's registers: values by rust-minidump register name, and which of them are known.
public struct CPUContext: Sendable, Equatable {
    public let cpu: ContextCPU
    public var values: [String: UInt64]

    public init(cpu: ContextCPU, values: [String: UInt64]) {
        self.cpu = cpu
        self.values = values
    }

    public subscript(_ name: String) -> UInt64? {
        get { values[name] }
        set { values[name] = newValue }
    }

    public var instructionPointer: UInt64 { values[cpu.instructionPointer] ?? 0 }
    public var stackPointer: UInt64 { values[cpu.stackPointer] ?? 0 }

    /// `(name, value)` of the known registers in output order.
    public var orderedRegisters: [(String, UInt64)] {
        cpu.registerOrder.compactMap { name in values[name].map { (name, $0) } }
    }

    /// Decodes a context for the dump's processor architecture, checking the CPU flag bits.
    /// Larger-than-struct contexts (XSTATE) are accepted.
    public static func decode(_ v: ByteView, architecture: UInt16) throws(MinidumpError) -> CPUContext {
        func bad(_ why: String) -> MinidumpError { .badStream(stream: "CPU context", reason: why) }
        switch architecture {
        case 0, 10: // x86
            guard v.count >= 204 else { throw bad("x86 context of \(v.count) bytes") }
            let flags = try v.u32(0, "x86 context")
            guard flags & 0x0001_0000 != 0 || flags == 0 else { throw bad(String(format: "x86 context with flags 0x%08x", flags)) }
            var r: [String: UInt64] = [:]
            for (name, off) in [("edi", 156), ("esi", 160), ("ebx", 164), ("edx", 168), ("ecx", 172), ("eax", 176),
                                ("ebp", 180), ("eip", 184), ("eflags", 192), ("esp", 196)] {
                r[name] = UInt64(try v.u32(UInt64(off), "x86 context"))
            }
            return CPUContext(cpu: .x86, values: r)
        case 9: // amd64
            guard v.count >= 256 else { throw bad("amd64 context of \(v.count) bytes") }
            let flags = try v.u32(48, "amd64 context")
            guard flags & 0x0010_0000 != 0 || flags == 0 else { throw bad(String(format: "amd64 context with flags 0x%08x", flags)) }
            var r: [String: UInt64] = ["eflags": UInt64(try v.u32(68, "amd64 context"))]
            let names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"] + (8...15).map { "r\($0)" } + ["rip"]
            for (i, name) in names.enumerated() { r[name] = try v.u64(120 + UInt64(i) * 8, "amd64 context") }
            r["eflags"] = nil
            return CPUContext(cpu: .amd64, values: r)
        case 5: // arm
            guard v.count >= 72 else { throw bad("arm context of \(v.count) bytes") }
            var r: [String: UInt64] = [:]
            for i in 0..<16 {
                let name: String
                switch i { case 11: name = "fp"; case 13: name = "sp"; case 14: name = "lr"; case 15: name = "pc"; default: name = "r\(i)" }
                r[name] = UInt64(try v.u32(4 + UInt64(i) * 4, "arm context"))
            }
            return CPUContext(cpu: .arm, values: r)
        case 12, 0x8003: // arm64: Microsoft layout, or Breakpad's older one
            guard v.count >= 272 else { throw bad("arm64 context of \(v.count) bytes") }
            // Microsoft's layout (flags u32 + cpsr u32) and Breakpad's (flags u64) both put x0 at 8,
            // sp at 256 and pc at 264.
            var r: [String: UInt64] = [:]
            for i in 0..<31 {
                let name = i == 29 ? "fp" : i == 30 ? "lr" : "x\(i)"
                r[name] = try v.u64(8 + UInt64(i) * 8, "arm64 context")
            }
            r["sp"] = try v.u64(256, "arm64 context")
            r["pc"] = try v.u64(264, "arm64 context")
            return CPUContext(cpu: .arm64, values: r)
        default:
            throw bad("unsupported processor architecture \(architecture)")
        }
    }
}
