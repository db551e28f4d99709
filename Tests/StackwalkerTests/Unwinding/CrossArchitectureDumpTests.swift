import Foundation
import MinidumpFormat
import Testing
import TestSupport
@testable import Stackwalker

/// Real dumps of ARM64, ARM (Thumb) and x86-64 code: `Tests/Tools/selfdump/selfdump.c`, built
/// with Debian's cross compilers and run under qemu-user, crashes through
/// crash_here ← level2 ← level1 ← main and writes a minidump of itself. Without symbols, each
/// walk must find what Breakpad's rules can find there (checked against the binary's symbol
/// table) and equal Breakpad's walk of the same file frame for frame.
@Suite(.serialized) struct CrossArchitectureDumpTests {
    struct Variant: CustomStringConvertible, Sendable {
        var cpu: String
        var flags: [String]
        /// The functions the walk must find first, in order.
        var chain: [String]
        var description: String { "\(cpu) \(flags.joined(separator: " "))" }
    }

    static let variants: [Variant] = [
        // Frame records: the lr frame, then the chain.
        Variant(cpu: "aarch64", flags: ["-O2", "-fno-omit-frame-pointer"], chain: ["crash_here", "level2", "level1", "main"]),
        // No frame records and no CFI: the lr frame, then only what the stack still holds.
        Variant(cpu: "aarch64", flags: ["-O2", "-fomit-frame-pointer"], chain: ["crash_here", "level2"]),
        // Thumb, no CFI: Linux ARM is scanned; level2's return address only ever lived in lr.
        Variant(cpu: "arm", flags: ["-O2"], chain: ["crash_here", "level1", "main"]),
        Variant(cpu: "x86_64", flags: ["-O2", "-fomit-frame-pointer"], chain: ["crash_here", "level2", "level1", "main"]),
    ]

    static func tool(_ name: String) throws -> String {
        guard let path = findExecutable(name) else {
            throw TestServices.Unavailable(description: "\(name) not found: apt-get install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user (.ci/run does)")
        }
        return path
    }

    @Test(arguments: variants)
    func realDumpsWalkAsBreakpadDoes(_ v: Variant) async throws {
        let source = TestData.packageRoot + "/Tests/Tools/selfdump/selfdump.c"
        let work = TestData.temporaryDirectory("cross")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let binary = work + "/selfdump", dumpPath = work + "/crash.dmp"
        let (cc, nm, runner): (String, String, [String])
        switch v.cpu {
        case "aarch64": (cc, nm, runner) = ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-nm", [try Self.tool("qemu-aarch64"), "-L", "/usr/aarch64-linux-gnu"])
        case "arm": (cc, nm, runner) = ("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-nm", [try Self.tool("qemu-arm"), "-L", "/usr/arm-linux-gnueabihf"])
        default: (cc, nm, runner) = ("cc", "nm", [])
        }
        let build = try runProcess(try Self.tool(cc), v.flags + ["-o", binary, source])
        #expect(build.status == 0, "\(String(decoding: build.stderr, as: UTF8.self))")
        let command = runner + [binary, dumpPath]
        let run = try runProcess(command[0], Array(command.dropFirst()))
        #expect(run.status == 0, "\(v): \(String(decoding: run.stderr, as: UTF8.self))")

        let state = try await Stackwalker(symbols: nil).process(try Minidump.open(path: dumpPath))
        let crashing = try #require(state.requestingThread.map { state.threads[$0] })
        let symbols = try runProcess(try Self.tool(nm), ["-S", "--defined-only", binary])
        var functions: [(String, UInt64, UInt64)] = []
        for line in String(decoding: symbols.stdout, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 4, f[2].lowercased() == "t", let start = UInt64(f[0], radix: 16), let size = UInt64(f[1], radix: 16) else { continue }
            functions.append((String(f[3]), start, start + size))
        }
        let names: [String] = crashing.frames.compactMap { f in
            guard let i = f.moduleIndex, MinidumpFormat.baseName(state.modules[i].module.codeFile) == "selfdump" else { return nil }
            // Thumb code addresses carry bit 0; symbol tables do not.
            let offset = (f.instruction - state.modules[i].module.baseAddress) & ~1
            return functions.first { offset >= $0.1 && offset < $0.2 }?.0
        }
        #expect(Array(names.prefix(v.chain.count)) == v.chain, "\(v): \(names)")

        let breakpad = try #require(try BreakpadOracle.walk([(dumpPath, "")]).first)
        let ours = state.threads.map { $0.frames.map(BreakpadDifferentialTests.ours) }
        #expect(ours == breakpad, "\(v):\n  ours:     \(ours)\n  breakpad: \(breakpad)")
    }
}
