import BreakpadSymbols
import Foundation
import MinidumpFormat
import MinidumpSynth
import Testing
@testable import Stackwalker

/// A synthetic dump plus symbol files for some of its modules, walked the way `stackwalk` does.
struct UnwindScenario {
    var dump: MinidumpBuilder
    /// Symbol file bodies (everything after the MODULE line) by module name.
    var symbols: [String: String] = [:]

    init(_ cpu: MinidumpBuilder.CPU, _ os: MinidumpBuilder.OS = .linux) {
        dump = MinidumpBuilder(cpu: cpu, os: os)
    }

    /// The full text of the symbol file of every module that has symbols.
    var symbolFiles: [String] {
        dump.modules.compactMap { m in symbols[m.name].map { dump.moduleLine(m) + "\n" + $0 } }
    }

    func walk(_ name: String = #function) async throws -> ProcessState {
        let bytes = dump.build()
        if let dir = ProcessInfo.processInfo.environment["POSTMORTEM_EXPORT_SCENARIOS"] { try export(bytes, to: dir, name: name) }
        let minidump = try Minidump.parse(bytes)
        return try await Stackwalker(symbols: try InMemorySymbols(symbolFiles: symbolFiles)).process(minidump)
    }

    /// The first thread's frames.
    func frames(_ name: String = #function) async throws -> [StackFrame] {
        try await walk(name).threads[0].frames
    }

    /// Writes the dump and a symbol tree (`<debug file>/<debug id>/<name>.sym`) for another
    /// stackwalker to compare with.
    func export(_ bytes: [UInt8], to dir: String, name: String) throws {
        let base = dir + "/" + name.prefix { $0 != "(" }
        try FileManager.default.createDirectory(atPath: base + "/symbols", withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: base + "/dump.dmp"))
        for m in dump.modules {
            guard let body = symbols[m.name] else { continue }
            let folder = base + "/symbols/\(m.debugFile)/\(m.debugId)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try (dump.moduleLine(m) + "\n" + body + "\n").write(toFile: folder + "/\(m.debugFile).sym", atomically: true, encoding: .utf8)
        }
    }
}

/// What a test expects of one frame; nil fields are not checked.
struct ExpectedFrame: CustomStringConvertible {
    var trust: FrameTrust
    var ip: UInt64
    var sp: UInt64?
    var registers: [String: UInt64] = [:]
    /// Registers that must not be reported (unknown for this frame).
    var unknown: [String] = []

    var description: String { "\(trust) ip=0x\(String(ip, radix: 16)) sp=\(sp.map { "0x" + String($0, radix: 16) } ?? "-")" }
}

/// Checks `frames` against `expected`, frame count included, with readable failures.
func expectFrames(_ frames: [StackFrame], _ expected: [ExpectedFrame], sourceLocation: SourceLocation = #_sourceLocation) {
    let got = frames.map { f in
        "\(f.trust) ip=0x\(String(f.context.instructionPointer, radix: 16)) sp=0x\(String(f.context.stackPointer, radix: 16))"
    }
    #expect(frames.count == expected.count, "frames: \(got)", sourceLocation: sourceLocation)
    for (i, (f, e)) in zip(frames, expected).enumerated() {
        #expect(f.trust == e.trust, "frame \(i) trust; frames: \(got)", sourceLocation: sourceLocation)
        #expect(f.context.instructionPointer == e.ip, "frame \(i) ip; frames: \(got)", sourceLocation: sourceLocation)
        if let sp = e.sp { #expect(f.context.stackPointer == sp, "frame \(i) sp; frames: \(got)", sourceLocation: sourceLocation) }
        for (r, v) in e.registers {
            #expect(f.context[r] == v, "frame \(i) \(r) = \(f.context[r].map { String($0, radix: 16) } ?? "unknown")", sourceLocation: sourceLocation)
        }
        for r in e.unknown { #expect(f.context[r] == nil, "frame \(i) \(r) should be unknown", sourceLocation: sourceLocation) }
    }
}
