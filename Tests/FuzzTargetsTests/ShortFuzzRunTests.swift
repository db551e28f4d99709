import Foundation
import FuzzTargets
import MinidumpSynth
import Testing
import TestSupport

/// The short fuzz run CI does: every target of `FuzzTargets` gets its committed seeds
/// (`Fuzz/Corpus/<target>`, plus the shared test dumps and symbol files) and then random
/// mutations of them — bit flips, byte runs, boundary numbers, splices, truncations — for a fixed
/// budget. A trap ends the test process, which is the finding; coverage-guided long runs use
/// libFuzzer on the same targets (docs/fuzzing.md). `POSTMORTEM_FUZZ_INPUTS` and
/// `POSTMORTEM_FUZZ_TARGETS` make a longer run of some targets.
@Suite(.serialized) struct ShortFuzzRunTests {
    /// Inputs per target (seeds included); POSTMORTEM_FUZZ_INPUTS changes it.
    static let budget = Int(ProcessInfo.processInfo.environment["POSTMORTEM_FUZZ_INPUTS"] ?? "") ?? 2500

    static func seeds(_ target: String) throws -> [[UInt8]] {
        var paths: [String] = []
        let corpus = TestData.packageRoot + "/Fuzz/Corpus/" + target
        for name in (try? FileManager.default.contentsOfDirectory(atPath: corpus)) ?? [] { paths.append(corpus + "/" + name) }
        switch target {
        case "minidump": paths += try TestData.files(under: "minidumps", suffix: ".dmp")
        case "sym": paths += try TestData.files(under: "symbols", suffix: ".sym").prefix(4)
        default: break
        }
        let seeds = paths.compactMap { FileManager.default.contents(atPath: $0).map { Array($0.prefix(1 << 20)) } }
        guard !seeds.isEmpty else { throw TestServices.Unavailable(description: "no seeds for \(target) in \(corpus)") }
        return seeds
    }

    /// One random change of `input`, drawn from `rng`.
    static func mutate(_ input: [UInt8], _ seeds: [[UInt8]], _ rng: inout SeededGenerator) -> [UInt8] {
        var b = input
        let edits = 1 + Int(rng.next() % 4)
        for _ in 0..<edits {
            let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            switch rng.next() % 8 {
            case 0 where !b.isEmpty: b[at] ^= UInt8(1) << (rng.next() % 8)
            case 1 where !b.isEmpty: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b.insert(contentsOf: [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next()), count: Int(rng.next() % 64)), at: at)
            case 3 where !b.isEmpty: b.removeSubrange(at..<min(b.count, at + Int(rng.next() % 64) + 1))
            case 4 where b.count >= 4:
                // Boundary numbers where lengths, offsets and counts live.
                let values: [UInt32] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]
                let v = values[Int(rng.next() % UInt64(values.count))]
                let p = min(at, b.count - 4)
                for i in 0..<4 { b[p + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            case 5:
                let text: [String] = ["-1", "1e308", "nan", "inf", "99999999999999999999", "-9223372036854775808", "%", "%zz", "\u{0}", "&", "=", "\"", "[", "{", "\\", "@(.+)+#", "../", "\r\n"]
                b.insert(contentsOf: Array(text[Int(rng.next() % UInt64(text.count))].utf8), at: at)
            case 6:
                let other = seeds[Int(rng.next() % UInt64(seeds.count))]
                if !other.isEmpty {
                    let from = Int(rng.next() % UInt64(other.count))
                    b.insert(contentsOf: other[from..<min(other.count, from + Int(rng.next() % 256) + 1)], at: at)
                }
            default: b = Array(b.prefix(at))
            }
        }
        return b
    }

    @Test(arguments: FuzzTargets.names)
    func mutationsOfTheSeedsNeverTrap(_ target: String) async throws {
        // POSTMORTEM_FUZZ_TARGETS=a,b runs only those (a longer run of one reader).
        if let only = ProcessInfo.processInfo.environment["POSTMORTEM_FUZZ_TARGETS"], !only.split(separator: ",").contains(Substring(target)) { return }
        let seeds = try Self.seeds(target)
        var rng = SeededGenerator(seed: UInt64(target.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        var inputs = 0
        for seed in seeds {
            #expect(await FuzzTargets.run(target, seed))
            inputs += 1
        }
        var current = seeds[0]
        while inputs < Self.budget {
            current = Self.mutate(rng.next() % 4 == 0 ? seeds[Int(rng.next() % UInt64(seeds.count))] : current, seeds, &rng)
            if current.count > 1 << 20 { current = Array(current.prefix(1 << 20)) }
            _ = await FuzzTargets.run(target, current)
            inputs += 1
            // Targets are synchronous in parts (parsing): leave the two-thread pool to the
            // other suites now and then.
            if inputs % 16 == 0 { await Task.yield() }
        }
        #expect(inputs == Self.budget)
    }
}
