import Foundation
import MinidumpFormat
import MinidumpSynth
import Testing
import TestSupport
@testable import Stackwalker

/// Frame-by-frame comparison with Google Breakpad's stackwalker on synthetic processes: every
/// CPU, realistic frame layouts with STACK CFI / STACK WIN, junk on the stacks, stacks in memory
/// lists. Breakpad runs from PyPI `symbolic` 8.7.3, the last release that embeds its processor
/// (`Tests/Oracles/breakpad_stackwalk.py`); the test installs it into `.build/oracles/` when it
/// is not there.
///
/// That Breakpad is from 2021. Rules Breakpad added later are not compared here and are covered
/// by the scenario suites instead (see `docs/stackwalking.md`): Windows x64 leaf functions and
/// no frame pointers there (so amd64 Windows is left out). Breakpad's symbolizer in that
/// package has no function names, so a scanned address counts as plausible anywhere in a module;
/// the generator only puts code addresses inside functions, where both agree.
@Suite(.serialized) struct BreakpadDifferentialTests {
    struct Config: CustomStringConvertible, Sendable {
        var cpu: MinidumpBuilder.CPU
        var os: MinidumpBuilder.OS
        var description: String { "\(cpu)-\(os)" }
    }

    static let configs: [Config] = [
        Config(cpu: .x86, os: .windows), Config(cpu: .x86, os: .linux), Config(cpu: .amd64, os: .linux),
        Config(cpu: .amd64, os: .macOS), Config(cpu: .arm64, os: .android), Config(cpu: .arm64, os: .macOS),
        Config(cpu: .arm, os: .android), Config(cpu: .arm, os: .iOS),
    ]

    struct Frame: Equatable, CustomStringConvertible {
        var pc: UInt64
        var sp: UInt64
        var trust: String
        var description: String { "\(trust) pc=0x\(String(pc, radix: 16)) sp=0x\(String(sp, radix: 16))" }
    }

    static func ours(_ f: StackFrame) -> Frame {
        let trust: String
        switch f.trust {
        case .context: trust = "context"
        case .cfi: trust = "cfi"
        case .cfiScan: trust = "cfi-scan"
        case .framePointer: trust = "fp"
        case .scan: trust = "scan"
        case .leaf: trust = "leaf"
        case .prewalked: trust = "prewalked"
        case .none: trust = "none"
        }
        return Frame(pc: f.context.instructionPointer, sp: f.context.stackPointer, trust: trust)
    }

    @Test(arguments: configs)
    func framesAgreeWithBreakpad(_ config: Config) async throws {
        let dir = TestData.temporaryDirectory("breakpad-diff")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var jobs: [(dump: String, symbols: String)] = []
        var ourThreads: [[[Frame]]] = []
        var ourStates: [(ProcessState, Minidump, InMemorySymbols)] = []
        for seed in 1...6 {
            var options = SyntheticProcess.Options(cpu: config.cpu, os: config.os)
            options.seed = config.description.utf8.reduce(UInt64(seed)) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
            options.threads = 20
            options.outermostFrameMayHaveUnwindInfo = config.cpu != .amd64
            let process = SyntheticProcess(options)
            let bytes = process.builder.build()
            let base = dir + "/\(seed)"
            try FileManager.default.createDirectory(atPath: base + "/symbols", withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: base + "/dump.dmp"))
            for (module, text) in process.symbolFiles {
                let folder = base + "/symbols/\(module.debugFile)/\(module.debugId)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try text.write(toFile: folder + "/\(module.debugFile).sym", atomically: true, encoding: .utf8)
            }
            jobs.append((base + "/dump.dmp", base + "/symbols"))
            let symbols = try InMemorySymbols(symbolFiles: process.symbolFiles.map(\.text))
            let minidump = try Minidump.parse(bytes)
            let state = try await Stackwalker(symbols: symbols).process(minidump)
            ourThreads.append(state.threads.map { $0.frames.map(Self.ours) })
            ourStates.append((state, minidump, symbols))
        }
        let theirs = try BreakpadOracle.walk(jobs)
        var total = 0, agreeing = 0, explained = 0, threadsAgreeing = 0, threadCount = 0
        var report: [String] = []
        for (dumpIndex, (ours, breakpad)) in zip(ourThreads, theirs).enumerated() {
            #expect(ours.count == breakpad.count)
            for (t, (a, b)) in zip(ours, breakpad).enumerated() {
                threadCount += 1
                total += max(a.count, b.count)
                let common = zip(a, b).prefix { $0 == $1 }.count
                agreeing += common
                if a == b { threadsAgreeing += 1; continue }
                let (state, minidump, symbols) = ourStates[dumpIndex]
                if common == b.count, a.count > b.count,
                   try await Self.cfiGivesZeroReturnAddress(state.threads[t].frames[common - 1], minidump.threads[t], minidump, symbols) {
                    explained += a.count - b.count
                } else if report.count < 5 {
                    report.append("dump \(dumpIndex + 1) thread \(t):\n  ours:     \(a)\n  breakpad: \(b)")
                }
            }
        }
        print("\(config): \(agreeing) of \(total) frames, \(threadsAgreeing) of \(threadCount) threads agree with Breakpad; "
              + "\(explained) frames after a CFI return address of 0 (this Breakpad ends the stack there, today's falls back)")
        for r in report { print(r) }
        #expect(total > threadCount * 3, "the generator should give deep stacks")
        #expect(agreeing + explained == total, "\(config): \(total - agreeing - explained) frames differ")
        #expect(explained == 0 || config.cpu == .amd64)
    }

    /// Whether the STACK CFI rules at `frame` give the caller a return address of 0: 2021
    /// Breakpad ends an amd64 stack there, today's tries the frame pointer and scanning.
    static func cfiGivesZeroReturnAddress(_ frame: StackFrame, _ thread: MinidumpThread, _ dump: Minidump,
                                          _ symbols: InMemorySymbols) async throws -> Bool {
        guard let (_, module) = dump.module(containing: frame.instruction),
              let table = await symbols.symbols(for: module).table,
              let rules = table.cfiRules(at: frame.instruction - module.baseAddress) else { return false }
        var vars: [String: UInt64] = [:]
        for (k, v) in frame.context.values { vars["$" + k] = v }
        let result = try? rules.evaluate(callee: vars, wordSize: 8, memory: ThreadMemory(region: thread.stack))
        return result?[".ra"] == 0
    }
}

/// Runs Breakpad's processor (PyPI `symbolic` 8.7.3) on dumps with symbol trees.
enum BreakpadOracle {
    struct Unavailable: Error, CustomStringConvertible {
        let why: String
        var description: String { "Breakpad oracle unavailable: \(why)" }
    }

    /// Where symbolic 8.7.3 is installed: `BREAKPAD_SYMBOLIC_PATH` (scripts/test sets it), else
    /// `.build/oracles/symbolic8` in the package, installed there from PyPI on first use.
    static func packagePath() throws -> String {
        if let path = ProcessInfo.processInfo.environment["BREAKPAD_SYMBOLIC_PATH"] { return path }
        let path = TestData.packageRoot + "/.build/oracles/symbolic8"
        if FileManager.default.fileExists(atPath: path + "/symbolic/minidump.py") { return path }
        guard let python = findExecutable("python3") else { throw Unavailable(why: "python3 not on PATH") }
        let (status, _, err) = try runProcess(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                                        "--target", path, "symbolic==8.7.3"])
        guard status == 0 else { throw Unavailable(why: "pip install symbolic==8.7.3 failed: \(String(decoding: err, as: UTF8.self))") }
        return path
    }

    struct Job: Sendable { var dump: String; var symbols: String }

    static func walk(_ jobs: [(dump: String, symbols: String)]) throws -> [[[BreakpadDifferentialTests.Frame]]] {
        guard let python = findExecutable("python3") else { throw Unavailable(why: "python3 not on PATH") }
        let script = TestData.packageRoot + "/Tests/Oracles/breakpad_stackwalk.py"
        let input = jobs.map { "\($0.dump)\t\($0.symbols)\n" }.joined()
        let env = "BREAKPAD_SYMBOLIC_PATH=" + (try packagePath())
        let (status, out, err) = try runProcess("/usr/bin/env", [env, python, script, "--batch"], stdin: Data(input.utf8))
        guard status == 0 else { throw Unavailable(why: String(decoding: err, as: UTF8.self)) }
        return try String(decoding: out, as: UTF8.self).split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let threads = object["threads"] as? [[String: Any]] else { throw Unavailable(why: "unreadable output") }
            return threads.map { thread in
                ((thread["frames"] as? [[String: Any]]) ?? []).map { f in
                    let registers = f["registers"] as? [String: Any] ?? [:]
                    let sp = ["esp", "rsp", "sp"].compactMap { (registers[$0] as? NSNumber)?.uint64Value }.first ?? 0
                    return BreakpadDifferentialTests.Frame(pc: (f["pc"] as? NSNumber)?.uint64Value ?? 0, sp: sp,
                                                           trust: f["trust"] as? String ?? "?")
                }
            }
        }
    }
}
