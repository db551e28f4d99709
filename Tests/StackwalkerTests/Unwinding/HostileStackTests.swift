import MinidumpFormat
import MinidumpSynth
import Testing
@testable import Stackwalker

/// Untrusted stacks never trap the walker: synthetic processes of every CPU, with their symbol
/// files (STACK CFI, STACK WIN), walked after random corruption of the dump's bytes — stack
/// words, contexts, descriptors — including extreme values (0, all ones, sign bits).
@Suite struct HostileStackTests {
    @Test(arguments: [MinidumpBuilder.CPU.x86, .amd64, .arm, .arm64])
    func corruptedStacksNeverTrap(_ cpu: MinidumpBuilder.CPU) async throws {
        var options = SyntheticProcess.Options(cpu: cpu, os: cpu == .x86 ? .windows : .linux)
        options.threads = 4
        options.stackBytes = 0x1000
        options.seed = 77
        let process = SyntheticProcess(options)
        let symbols = try InMemorySymbols(symbolFiles: process.symbolFiles.map(\.text))
        let clean = process.builder.build()
        var rng = SeededGenerator(seed: 0xBAD)
        let extremes: [UInt64] = [0, .max, 1 << 63, 1 << 31, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFF0, 0x7FFF_FFFF_FFFF_FFFF]
        var walked = 0
        for _ in 0..<150 {
            var bytes = clean
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                let at = Int.random(in: 0..<(bytes.count - 8), using: &rng)
                if Bool.random(using: &rng) {
                    bytes[at] = UInt8.random(in: 0...255, using: &rng)
                } else {
                    let v = extremes.randomElement(using: &rng)!
                    for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
                }
            }
            guard let dump = try? Minidump.parse(bytes) else { continue }
            var walker = Stackwalker(symbols: symbols)
            walker.maxFrames = 2000
            if let state = try? await walker.process(dump) {
                walked += 1
                _ = state.json(pretty: false)
            }
        }
        #expect(walked > 50, "most corrupted dumps still parse and are walked")
    }
}
