import MinidumpFormat
import MinidumpSynth
import Testing
@testable import Stackwalker

/// Where thread stacks are found (Windows writers leave the thread descriptor's RVA 0 and store
/// the bytes in the MemoryList or Memory64List) and where a stack ends (Breakpad's
/// `TerminateWalk` and scan budget).
@Suite struct StackMemoryAndTerminationTests {
    /// An amd64 Windows thread with CFI for two frames and a frame-pointer-free caller found by
    /// scanning, with its stack stored in `placement`.
    static func windowsScenario(_ placement: MinidumpBuilder.StackPlacement) -> UnwindScenario {
        var s = UnwindScenario(.amd64, .windows)
        s.dump.addModule(base: 0x7FF6_0000_0000, size: 0x10000, name: "C:\\app\\firefox.exe")
        s.dump.addModule(base: 0x7FFA_0000_0000, size: 0x10000, name: "C:\\Windows\\System32\\ntdll.dll")
        s.symbols["C:\\app\\firefox.exe"] = """
            FUNC 1000 100 0 crash
            STACK CFI INIT 1000 100 .cfa: $rsp 40 + .ra: .cfa 8 - ^
            FUNC 2000 100 0 main
            STACK CFI INIT 2000 100 .cfa: $rsp 56 + .ra: .cfa 8 - ^ $rbx: .cfa 16 - ^
            """
        var stack = SyntheticStack(base: 0x0000_00A0_0000_0000, pointerSize: 8)
        stack.fill(32); stack.d64(0x7FF6_0000_2010)  // crash → main
        stack.fill(40); stack.d64(0xB0B); stack.d64(0x7FFA_0000_5010)  // main → ntdll (rbx saved)
        stack.fill(256)
        s.dump.addThread(id: 7, registers: ["rip": 0x7FF6_0000_1010, "rsp": stack.base, "rbx": 0x1], stack: stack, placement: placement)
        // A second thread whose stack is elsewhere in the same list.
        var other = SyntheticStack(base: 0x0000_00B0_0000_0000, pointerSize: 8)
        other.d64(0x7FFA_0000_6000); other.fill(64)
        s.dump.addThread(id: 8, registers: ["rip": 0x7FFA_0000_1000, "rsp": other.base], stack: other, placement: placement)
        s.dump.exception = (7, 0xC000_0005, 0x45)
        return s
    }

    @Test(arguments: [MinidumpBuilder.StackPlacement.threadList, .memoryList, .memory64List])
    func stacksAreFoundWhereverTheWriterPutThem(_ placement: MinidumpBuilder.StackPlacement) async throws {
        let s = Self.windowsScenario(placement)
        let state = try await s.walk()
        let crashing = try #require(state.requestingThread.map { state.threads[$0] })
        expectFrames(crashing.frames, [
            ExpectedFrame(trust: .context, ip: 0x7FF6_0000_1010),
            ExpectedFrame(trust: .cfi, ip: 0x7FF6_0000_2010, sp: 0xA0_0000_0028),
            ExpectedFrame(trust: .cfi, ip: 0x7FFA_0000_5010, sp: 0xA0_0000_0060, registers: ["rbx": 0xB0B]),
        ])
        #expect(crashing.frames.map(\.function) == ["crash", "main", nil])
        // The other thread: a leaf in ntdll returning to its caller.
        expectFrames(state.threads[1].frames, [
            ExpectedFrame(trust: .context, ip: 0x7FFA_0000_1000),
            ExpectedFrame(trust: .leaf, ip: 0x7FFA_0000_6000, sp: 0xB0_0000_0008),
        ])
    }

    /// The reader never takes the file header for stack memory.
    @Test func aZeroRVAStackDescriptorIsNotReadFromTheFileHeader() throws {
        let s = Self.windowsScenario(.memoryList)
        let dump = try Minidump.parse(s.dump.build())
        #expect(dump.threads[0].stack == nil)
        #expect(dump.threads[0].stackStart == 0xA0_0000_0000)
        #expect(dump.memoryRegion(containing: 0xA0_0000_0000) != nil)
    }

    /// The whole path, as `postmortem stackwalk` prints it.
    @Test func theJSONOutputShowsTheMemoryListStack() async throws {
        let s = Self.windowsScenario(.memory64List)
        let json = try await s.walk().json(pretty: false)
        #expect(json.contains("\"function\":\"main\""))
        #expect(!json.contains("0xa061a793504d444d"))
        // The leaf frame of thread 8 in rust-minidump's trust vocabulary; Breakpad's words in the human report.
        #expect(!json.contains("\"trust\":\"leaf\""))
        #expect(try await s.walk().humanReport(brief: false).contains("Found by: simulating a return from leaf function"))
    }

    /// A caller instruction pointer inside the first page ends the stack.
    @Test func aNullishReturnAddressEndsTheStack() async throws {
        var s = X86UnwindTests.scenario()
        var stack = X86UnwindTests.stack()
        let ebp = Label()
        stack.fill(8); stack.mark(ebp); stack.d32(0x8000_0040); stack.d32(0xFFF)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_1000, "esp": stack.base, "ebp": ebp.address], stack: stack)
        expectFrames(try await s.frames(), [ExpectedFrame(trust: .context, ip: 0x4000_1000)])
    }

    /// The stack pointer must grow; it may stay equal only for the context frame's caller (a
    /// leaf that keeps its return address in a register). Here CFI says "caller = %ebx, same
    /// %esp" at every frame: the first unwind is taken, the second would not grow the stack.
    @Test func theStackPointerMayStayEqualOnlyOnTheFirstUnwind() async throws {
        var s = X86UnwindTests.scenario(.linux)
        s.symbols["module1"] = "FUNC 1000 100 0 a\nSTACK CFI INIT 1000 100 .cfa: $esp 0 + .ra: $ebx\n"
        var stack = X86UnwindTests.stack()
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_1010, "esp": stack.base, "ebp": stack.base + 8, "ebx": 0x4000_1050], stack: stack)
        expectFrames(try await s.frames(), [
            ExpectedFrame(trust: .context, ip: 0x4000_1010),
            ExpectedFrame(trust: .cfi, ip: 0x4000_1050, sp: stack.base),
        ])
    }

    /// A frame record whose saved frame pointer points down the stack would make the stack
    /// shrink: the walk ends there.
    @Test func aFrameChainPointingDownTheStackEnds() async throws {
        var s = ARM64UnwindTests.scenario()
        var stack = SyntheticStack(base: 0x8000_0000, pointerSize: 8)
        let lower = Label(), upper = Label()
        stack.fill(16)
        stack.mark(lower); stack.d64(0); stack.d64(0x5000_0300)
        stack.fill(32)
        stack.mark(upper); stack.word(lower); stack.d64(0x5000_0200)
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["pc": 0x4000_5010, "lr": 0x5000_0100, "sp": stack.base, "fp": upper.address], stack: stack)
        expectFrames(try await s.frames(), [
            ExpectedFrame(trust: .context, ip: 0x4000_5010),
            ExpectedFrame(trust: .framePointer, ip: 0x5000_0100, sp: upper.address + 16, registers: ["fp": lower.address]),
        ])
    }

    /// Scanning stops once a thread has used its scanned-frame budget; other rules go on.
    @Test func scannedFramesAreBudgeted() async throws {
        var s = AMD64UnwindTests.scenario(.windows)
        var stack = AMD64UnwindTests.stack()
        for i in 0..<50 { stack.d64(AMD64UnwindTests.module2 + 0x100 + UInt64(i)) }
        stack.fill(64)
        s.dump.addThread(id: 1, registers: ["rip": AMD64UnwindTests.module1, "rsp": stack.base + 16], stack: stack)
        let minidump = try Minidump.parse(s.dump.build())
        var walker = Stackwalker(symbols: nil)
        walker.maxScannedFrames = 10
        let frames = try await walker.process(minidump).threads[0].frames
        // Frame 1 is a simulated leaf return (not a scan), then ten scanned frames.
        #expect(frames.count == 12)
        #expect(frames.filter { $0.trust == .scan }.count == 10)
        walker.maxScannedFrames = 1 << 14
        #expect(try await walker.process(minidump).threads[0].frames.count == 49)
    }

    /// A corrupt stack cannot make a walk run away: at most `maxFrames` frames.
    @Test func framesPerThreadAreCapped() async throws {
        var s = X86UnwindTests.scenario()
        var stack = X86UnwindTests.stack()
        let labels = (0..<300).map { _ in Label() }
        for i in 0..<300 {
            stack.mark(labels[i])
            if i + 1 < 300 { stack.word(labels[i + 1]) } else { stack.d32(0) }
            stack.d32(0x4000_2000 + UInt32(i))
        }
        s.dump.addThread(id: 1, registers: ["eip": 0x4000_1000, "esp": stack.base, "ebp": stack.base], stack: stack)
        let minidump = try Minidump.parse(s.dump.build())
        var walker = Stackwalker(symbols: nil)
        #expect(try await walker.process(minidump).threads[0].frames.count == 301)
        walker.maxFrames = 100
        #expect(try await walker.process(minidump).threads[0].frames.count == 100)
    }

    /// A dump's work is bounded as a whole: threads walked, and frames over all threads.
    @Test func threadsAndTotalFramesPerDumpAreCapped() async throws {
        var s = X86UnwindTests.scenario()
        for t in 0..<40 {
            var stack = SyntheticStack(base: 0x8000_0000 + UInt64(t) * 0x10000, pointerSize: 4)
            let labels = (0..<50).map { _ in Label() }
            for i in 0..<50 {
                stack.mark(labels[i])
                if i + 1 < 50 { stack.word(labels[i + 1]) } else { stack.d32(0) }
                stack.d32(0x4000_2000 + UInt32(i))
            }
            s.dump.addThread(id: UInt32(100 + t), registers: ["eip": 0x4000_1000, "esp": stack.base, "ebp": stack.base], stack: stack)
        }
        let minidump = try Minidump.parse(s.dump.build())
        var walker = Stackwalker(symbols: nil)
        #expect(try await walker.process(minidump).threads.map(\.frames.count) == Array(repeating: 51, count: 40))
        walker.maxThreads = 10
        let fewer = try await walker.process(minidump).threads
        #expect(fewer.count == 40 && fewer.prefix(10).allSatisfy { $0.frames.count == 51 } && fewer.dropFirst(10).allSatisfy { $0.frames.isEmpty })
        walker.maxThreads = 4_096
        walker.maxTotalFrames = 500
        let total = try await walker.process(minidump).threads.reduce(0) { $0 + $1.frames.count }
        #expect(total <= 500 && total >= 400)
    }

    /// amd64 dumps keep processor feature bits where x86 dumps keep the CPUID vendor.
    @Test func theCPUVendorIsReadOnlyFromX86Dumps() async throws {
        var x86 = X86UnwindTests.scenario()
        x86.dump.addThread(id: 1, registers: ["eip": 0x4000_1000], stack: nil)
        #expect(try await x86.walk().systemInfo.cpuInfo == "GenuineIntel family 6 model 13 stepping 8")
        var amd64 = AMD64UnwindTests.scenario(.windows)
        amd64.dump.addThread(id: 1, registers: ["rip": 0x1000], stack: nil)
        #expect(try await amd64.walk().systemInfo.cpuInfo == "family 6 model 13 stepping 8")
    }
}
