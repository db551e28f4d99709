/// A deterministic pseudo-random generator (SplitMix64): the same seed gives the same dump.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A whole crashed process: modules with symbol files (functions, line records, STACK CFI or
/// STACK WIN in the layouts compilers produce) and threads whose stacks hold consistent call
/// chains built from those functions' frame layouts, with the junk real stacks have between
/// frames (spilled pointers, stale return addresses, zeros). For stackwalker tests against a
/// second implementation, and for benchmarks of realistic size.
public struct SyntheticProcess {
    public struct Options: Sendable {
        public var cpu: MinidumpBuilder.CPU
        public var os: MinidumpBuilder.OS
        public var threads = 8
        public var frames: ClosedRange<Int> = 2...12
        public var modulesWithSymbols = 3
        public var modulesWithoutSymbols = 2
        public var functionsPerModule = 64
        /// The first module's function count, when it should be larger (a libxul among small libraries).
        public var functionsInFirstModule: Int?
        /// Probability that a frame is in the first module (most of a Firefox stack is libxul).
        public var firstModuleShare = 0.0
        /// Bytes of stack memory captured per thread.
        public var stackBytes = 0x8000
        /// Line records per function (symbol file size).
        public var linesPerFunction = 4
        /// Fraction of junk stack words that look like code addresses (stale return addresses).
        public var codeJunk = 0.15
        /// Fraction of frames whose function has no unwind information.
        public var withoutUnwindInfo = 0.2
        /// Whether the outermost frame (whose return address is 0) may have unwind information.
        /// Breakpad before 2022 ended amd64 stacks on a CFI result of 0; today it falls back to
        /// other rules. Comparisons with the older one turn this off.
        public var outermostFrameMayHaveUnwindInfo = true
        public var seed: UInt64 = 1

        public init(cpu: MinidumpBuilder.CPU, os: MinidumpBuilder.OS) {
            self.cpu = cpu
            self.os = os
        }
    }

    /// How a function's frame is laid out (and described to the stackwalker).
    enum Layout: CaseIterable {
        /// Saves and sets up the frame pointer (x86 %ebp/%rbp, ARM64 x29, ARM r11); CFI or
        /// FrameData describe it.
        case framed
        /// No frame pointer; saved registers and locals below the return address (CFI, or FPO
        /// on Windows x86).
        case frameless
        /// Windows x86: FrameData with `.raSearch` and up to three words of alignment padding.
        case raSearchPadded
        /// Windows x86: FrameData aligning %esp with `@`, located from %ebp.
        case aligned
    }

    struct Function {
        var module: Int
        var offset: UInt64
        var size: UInt64
        var layout: Layout
        var locals: Int
        var saved: Int
        var parameters: Int
        var padding: Int
        var hasUnwindInfo: Bool
        var name: String
    }

    public private(set) var builder: MinidumpBuilder
    /// Symbol file text for each module that has symbols.
    public private(set) var symbolFiles: [(module: MinidumpBuilder.Module, text: String)] = []
    private var functions: [[Function]] = []
    private var rng: SeededGenerator
    private let options: Options
    private var w: UInt64 { UInt64(options.cpu.pointerSize) }

    public init(_ options: Options) {
        self.options = options
        rng = SeededGenerator(seed: options.seed)
        builder = MinidumpBuilder(cpu: options.cpu, os: options.os)
        makeModules()
        for t in 0..<options.threads { makeThread(id: UInt32(1000 + t)) }
        if let first = builder.threads.first { builder.exception = (first.id, 0xC000_0005, 0x45) }
    }

    // MARK: modules and symbols

    private var slot: UInt64 { 0x400 }

    private mutating func makeModules() {
        let count = options.modulesWithSymbols + options.modulesWithoutSymbols
        for m in 0..<count {
            let functionCount = m == 0 ? options.functionsInFirstModule ?? options.functionsPerModule : options.functionsPerModule
            let base: UInt64 = options.cpu.pointerSize == 4 ? 0x1000_0000 + UInt64(m) * 0x0100_0000 : 0x7F00_0000_0000 + UInt64(m) * 0x1_0000_0000
            let size = UInt32(0x1000 + UInt64(functionCount) * slot + 0x1000)
            let name: String
            switch options.os {
            case .windows: name = "C:\\Program Files\\App\\lib\(m).dll"
            case .macOS, .iOS: name = "/Applications/App.app/Contents/MacOS/lib\(m).dylib"
            default: name = "/opt/app/lib\(m).so"
            }
            let module = builder.addModule(base: base, size: size, name: name)
            var fs: [Function] = []
            for i in 0..<functionCount {
                var layouts: [Layout] = [.framed, .frameless]
                if options.cpu == .x86, options.os == .windows { layouts += [.raSearchPadded, .aligned] }
                let layout = layouts.randomElement(using: &rng)!
                let hasUnwindInfo = m < options.modulesWithSymbols && Double.random(in: 0..<1, using: &rng) >= options.withoutUnwindInfo
                fs.append(Function(
                    module: m, offset: 0x1000 + UInt64(i) * slot, size: 0x300,
                    // Frameless functions without unwind information cannot be walked by any
                    // rule but scanning; keep those few.
                    layout: hasUnwindInfo || Double.random(in: 0..<1, using: &rng) < 0.3 ? layout : .framed,
                    locals: Int.random(in: 0...6, using: &rng) * Int(w), saved: Int.random(in: 0...3, using: &rng) * Int(w),
                    // Parameter sizes come with STACK WIN data (MSVC's FPO records carry them).
                    parameters: options.cpu == .x86 && hasUnwindInfo ? Int.random(in: 0...3, using: &rng) * 4 : 0,
                    padding: Int.random(in: 0...3, using: &rng), hasUnwindInfo: hasUnwindInfo,
                    name: "ns\(m)::Class\(i % 17)::method\(i)(int, char const*)"))
            }
            functions.append(fs)
            if m < options.modulesWithSymbols { symbolFiles.append((module, symbolFile(module, fs))) }
        }
    }

    private func symbolFile(_ module: MinidumpBuilder.Module, _ fs: [Function]) -> String {
        var out = builder.moduleLine(module) + "\n"
        out += "INFO CODE_ID 5F3E2A1B\(String(module.base, radix: 16).uppercased())\n"
        for i in 0..<8 { out += "FILE \(i) /builds/worker/checkouts/src/module/file\(i).cpp\n" }
        for f in fs {
            out += "FUNC \(hex(f.offset)) \(hex(f.size)) \(hex(UInt64(f.parameters))) \(f.name)\n"
            let step = f.size / UInt64(max(1, options.linesPerFunction))
            for l in 0..<options.linesPerFunction {
                out += "\(hex(f.offset + UInt64(l) * step)) \(hex(step)) \(100 + l * 3) \(Int(f.offset / slot) % 8)\n"
            }
        }
        for f in fs where f.hasUnwindInfo { out += unwindRecords(f) }
        return out
    }

    /// The STACK CFI or STACK WIN records a compiler's unwind tables would give for `f`.
    private func unwindRecords(_ f: Function) -> String {
        let o = f.offset, size = hex(f.size), W = Int(w)
        switch (options.cpu, options.os, f.layout) {
        case (.x86, .windows, .framed):
            return "STACK WIN 4 \(hex(o)) \(size) 3 0 \(hex(f.parameters)) 0 \(hex(f.locals)) 0 1 $T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + =\n"
        case (.x86, .windows, .frameless):
            return "STACK WIN 0 \(hex(o)) \(size) 0 0 \(hex(f.parameters)) \(hex(f.saved)) \(hex(f.locals)) 0 0 0\n"
        case (.x86, .windows, .raSearchPadded):
            return "STACK WIN 4 \(hex(o)) \(size) 0 0 \(hex(f.parameters)) \(hex(f.saved)) \(hex(f.locals)) 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =\n"
        case (.x86, .windows, .aligned):
            return "STACK WIN 4 \(hex(o)) \(size) 6 0 \(hex(f.parameters)) 4 \(hex(f.locals)) 0 1 "
                + "$T1 .raSearch = $T0 $T1 4 - 8 @ = $ebp $T1 4 - ^ = $eip $T1 ^ = $esp $T1 4 + =\n"
        case (.x86, _, .framed), (.amd64, _, .framed):
            let sp = options.cpu == .x86 ? "$esp" : "$rsp", fp = options.cpu == .x86 ? "$ebp" : "$rbp"
            return "STACK CFI INIT \(hex(o)) \(size) .cfa: \(sp) \(W) + .ra: .cfa -\(W) + ^\n"
                + "STACK CFI \(hex(o + 1)) .cfa: \(sp) \(2 * W) + \(fp): .cfa -\(2 * W) + ^\n"
                + "STACK CFI \(hex(o + 4)) .cfa: \(fp) \(2 * W) +\n"
        case (.x86, _, _), (.amd64, _, _):
            let sp = options.cpu == .x86 ? "$esp" : "$rsp", reg = options.cpu == .x86 ? "$ebx" : "$rbx"
            var rows = "STACK CFI INIT \(hex(o)) \(size) .cfa: \(sp) \(W) + .ra: .cfa -\(W) + ^\n"
            rows += "STACK CFI \(hex(o + 1)) .cfa: \(sp) \(2 * W) + \(reg): .cfa -\(2 * W) + ^\n"
            rows += "STACK CFI \(hex(o + 4)) .cfa: \(sp) \(2 * W + f.saved + f.locals) +\n"
            return rows
        case (.arm64, _, .framed):
            let n = 16 + f.locals
            return "STACK CFI INIT \(hex(o)) \(size) .cfa: sp 0 + .ra: x30\n"
                + "STACK CFI \(hex(o + 4)) .cfa: sp \(n) + .ra: .cfa -\(n - 8) + ^ x29: .cfa -\(n) + ^\n"
                + "STACK CFI \(hex(o + 8)) .cfa: x29 \(n) + .ra: .cfa -\(n - 8) + ^ x29: .cfa -\(n) + ^\n"
        case (.arm64, _, _):
            let n = 16 + f.locals + f.saved
            return "STACK CFI INIT \(hex(o)) \(size) .cfa: sp 0 + .ra: x30\n"
                + "STACK CFI \(hex(o + 4)) .cfa: sp \(n) + .ra: .cfa -8 + ^ x19: .cfa -16 + ^\n"
        case (.arm, _, .framed):
            return "STACK CFI INIT \(hex(o)) \(size) .cfa: sp 0 + .ra: lr\n"
                + "STACK CFI \(hex(o + 2)) .cfa: sp 12 + r4: .cfa -12 + ^ r11: .cfa -8 + ^ .ra: .cfa -4 + ^\n"
                + "STACK CFI \(hex(o + 4)) .cfa: r11 8 +\n"
        case (.arm, _, _):
            return "STACK CFI INIT \(hex(o)) \(size) .cfa: sp 0 + .ra: lr\n"
                + "STACK CFI \(hex(o + 2)) .cfa: sp \(8 + f.locals) + r4: .cfa -8 + ^ .ra: .cfa -4 + ^\n"
        }
    }

    private func hex<T: BinaryInteger>(_ v: T) -> String { String(v, radix: 16) }

    // MARK: threads

    private func address(_ f: Function, at offset: UInt64) -> UInt64 {
        builder.modules[f.module].base + f.offset + offset
    }

    /// A return address into `f` past its prologue (Thumb code on ARM sets the low bit).
    private mutating func returnAddress(into f: Function) -> UInt64 {
        var a = address(f, at: UInt64.random(in: 0x20..<(f.size - 4), using: &rng) & ~3)
        if options.cpu == .arm, f.offset / slot % 2 == 1 { a |= 1 }
        return a
    }

    private mutating func randomFunction() -> Function {
        let first = Double.random(in: 0..<1, using: &rng) < options.firstModuleShare
        let m = first ? 0 : Int.random(in: 0..<functions.count, using: &rng)
        return functions[m].randomElement(using: &rng)!
    }

    /// A junk stack word: zero, a small integer, a pointer into the stack, or a stale code address.
    private mutating func junk(_ stack: SyntheticStack, stackEnd: UInt64) -> UInt64 {
        let r = Double.random(in: 0..<1, using: &rng)
        if r < options.codeJunk {
            let f = randomFunction()
            return address(f, at: UInt64.random(in: 2..<f.size, using: &rng))
        }
        if r < 0.45 { return 0 }
        if r < 0.65 { return UInt64.random(in: 1...0xFFFF, using: &rng) }
        if r < 0.9 { return min(stackEnd, stack.here + UInt64.random(in: 1...64, using: &rng) * w) & ~(w - 1) }
        return options.cpu.pointerSize == 4 ? UInt64(UInt32.random(in: 0...UInt32.max, using: &rng)) : UInt64.random(in: 0...UInt64.max, using: &rng)
    }

    private mutating func junkWords(_ n: Int, _ stack: inout SyntheticStack, stackEnd: UInt64) {
        for _ in 0..<max(0, n) { stack.word(junk(stack, stackEnd: stackEnd)) }
    }

    private mutating func makeThread(id: UInt32) {
        let cpu = options.cpu
        var chain = (0..<Int.random(in: options.frames, using: &rng)).map { _ in randomFunction() }
        if !options.outermostFrameMayHaveUnwindInfo,
           let f = functions.joined().filter({ !$0.hasUnwindInfo && $0.layout == .framed }).randomElement(using: &rng) {
            chain[chain.count - 1] = f
        }
        let stackBase: UInt64 = cpu.pointerSize == 4 ? 0x0800_0000 + UInt64(id - 1000) * 0x10_0000 : 0x7FFE_0000_0000 + UInt64(id - 1000) * 0x100_0000
        var stack = SyntheticStack(base: stackBase, pointerSize: cpu.pointerSize)
        let stackEnd = stackBase + UInt64(options.stackBytes)
        // Frame pointer of each frame (a label where the frame saved its caller's), innermost first.
        let records = chain.map { _ in Label() }
        // The frame pointer value while frame i runs: its own record if framed, else its caller's.
        func framePointer(_ i: Int) -> Label? {
            var j = i
            while j < chain.count {
                if chain[j].layout == .framed || chain[j].layout == .aligned { return records[j] }
                j += 1
            }
            return nil
        }
        junkWords(Int.random(in: 0...3, using: &rng), &stack, stackEnd: stackEnd)
        let sp0 = stack.here
        var lr0: UInt64 = 0
        for (i, f) in chain.enumerated() {
            let isLast = i == chain.count - 1
            let ra: UInt64 = isLast ? 0 : returnAddress(into: chain[i + 1])
            if i == 0 { lr0 = Bool.random(using: &rng) ? ra : returnAddress(into: f) }
            let callerFP = framePointer(i + 1)
            func saveFP(_ s: inout SyntheticStack) { if let callerFP { s.word(callerFP) } else { s.word(0) } }
            switch (cpu, f.layout) {
            case (.x86, .framed), (.amd64, .framed):
                junkWords(f.locals / Int(w), &stack, stackEnd: stackEnd)
                stack.mark(records[i]); saveFP(&stack); stack.word(ra)
            case (.x86, .aligned):
                junkWords(f.locals / Int(w) + Int.random(in: 0...1, using: &rng), &stack, stackEnd: stackEnd)
                stack.mark(records[i]); saveFP(&stack); stack.word(ra)
            case (.x86, .frameless), (.x86, .raSearchPadded):
                junkWords((f.locals + f.saved) / Int(w), &stack, stackEnd: stackEnd)
                if f.layout == .raSearchPadded { for _ in 0..<f.padding { stack.word(UInt64.random(in: 1...0xFFFF, using: &rng)) } }
                stack.word(ra)
            case (.amd64, _):
                junkWords((f.locals + f.saved) / Int(w), &stack, stackEnd: stackEnd)
                stack.word(UInt64.random(in: 1...0xFFFF_FFFF, using: &rng))  // saved %rbx
                stack.word(ra)
            case (.arm64, .framed):
                stack.mark(records[i]); saveFP(&stack); stack.word(ra)
                junkWords(f.locals / Int(w), &stack, stackEnd: stackEnd)
            case (.arm64, _):
                junkWords((f.locals + f.saved) / Int(w), &stack, stackEnd: stackEnd)
                stack.word(UInt64.random(in: 1...0xFFFF, using: &rng))  // x19
                stack.word(ra)
            case (.arm, .framed):
                junkWords(f.locals / Int(w), &stack, stackEnd: stackEnd)
                stack.word(UInt64.random(in: 1...0xFFFF, using: &rng))  // r4
                stack.mark(records[i]); saveFP(&stack); stack.word(ra)
            case (.arm, _):
                junkWords(f.locals / Int(w), &stack, stackEnd: stackEnd)
                stack.word(UInt64.random(in: 1...0xFFFF, using: &rng))  // r4
                stack.word(ra)
            }
            // The caller's outgoing parameters (x86 callee-pops or cdecl: Breakpad skips them).
            if cpu == .x86, options.os == .windows, !isLast { junkWords(f.parameters / 4, &stack, stackEnd: stackEnd) }
        }
        while stack.here < stackEnd { stack.word(0) }
        let f0 = chain[0]
        let pc = address(f0, at: UInt64.random(in: 0x20..<(f0.size - 4), using: &rng) & ~3)
        var registers: [String: UInt64] = [:]
        let fp0 = framePointer(0)
        // ARM contexts hold the pc without the Thumb bit (that is in cpsr); r11 points at the
        // saved r11, as `push {r4, r11, lr}; add r11, sp, #4` leaves it.
        switch cpu {
        case .x86: registers = ["eip": pc, "esp": sp0, "ebp": fp0?.address ?? 0, "ebx": 0xB1, "esi": 0x51, "edi": 0xD1]
        case .amd64: registers = ["rip": pc, "rsp": sp0, "rbp": fp0?.address ?? 0, "rbx": 0xB1, "r12": 0x12, "rax": 0xA]
        case .arm64: registers = ["pc": pc, "sp": sp0, "fp": fp0?.address ?? 0, "lr": lr0, "x19": 0x19]
        case .arm:
            // iOS code keeps its frame pointer in r7, Android's in r11.
            registers = ["pc": pc, "sp": sp0, options.os == .iOS ? "r7" : "fp": fp0.map { $0.address } ?? 0, "lr": lr0, "r4": 0x4]
        }
        builder.addThread(id: id, registers: registers, stack: stack,
                          placement: options.os == .windows && id % 2 == 1 ? .memoryList : .threadList)
    }
}
