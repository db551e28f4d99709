// stackwalk-bench: wall time and peak memory of stackwalking each test dump, without symbols,
// with symbols parsed from text (cold) and from the on-disk index (warm); and time per frame on
// synthetic x86 dumps of 100 to 100,000 frame-pointer frames (linear scaling).
//
//   swift run -c release --package-path Benchmarks stackwalk-bench
//
// Each measurement runs in a child process (so peak memory, VmHWM, is that run's alone); the
// reported time is the best of several walks inside that process.
import BenchSupport
import Foundation
import MinidumpFormat
import MinidumpSynth
import Stackwalker
import SymbolSources

let clock = benchClock
let args = CommandLine.arguments
let testdata = packageRoot + "/../shared/testdata"

/// Walks `dump` `runs` times; symbols from `symbols` (nil: none) with the cache in `cache`.
/// With `fresh`, every run gets a new cache directory, so symbols are parsed from text each time.
func walk(_ dump: String, symbols: String?, cache: String, fresh: Bool, runs: Int) async throws -> (Double, Int) {
    var best = Double.infinity, frames = 0
    for run in 0..<runs {
        let cacheDir = fresh ? cache + "/run\(run)" : cache
        let supplier = symbols.map { SymbolSupplier(configuration: SymbolSourcesConfiguration(symbolPaths: [$0], cacheDirectory: cacheDir)) }
        let start = clock.now
        let minidump = try Minidump.open(path: dump)
        let state = try await Stackwalker(supplier: supplier).process(minidump)
        _ = state.json(pretty: false)
        best = min(best, seconds(clock.now - start))
        frames = state.threads.reduce(0) { $0 + $1.frames.count }
        await supplier?.shutdown()
    }
    return (best, frames)
}

func ms(_ s: Double) -> String { String(format: "%.2f", s * 1000) }
func mb(_ m: Double) -> String { String(format: "%.1f", m) }

/// A crash the size of a real Firefox Linux crash: amd64, 130 threads, ~1,200 frames over
/// 12 KiB stacks, 40 modules; libxul-sized symbols for the first module (80,000 functions with
/// line records and STACK CFI, about 22 MB), which holds three quarters of the frames, and two
/// small symbol files. Writes `dump.dmp` and a
/// symbol tree `symbols/` into `dir`.
func writeLargeCrash(to dir: String) throws {
    var options = SyntheticProcess.Options(cpu: .amd64, os: .linux)
    options.threads = 130
    options.frames = 4...14
    options.modulesWithSymbols = 3
    options.modulesWithoutSymbols = 37
    options.functionsPerModule = 400
    options.functionsInFirstModule = 80_000
    options.linesPerFunction = 6
    options.stackBytes = 0x3000
    options.firstModuleShare = 0.75
    options.seed = 20261129
    let process = SyntheticProcess(options)
    try FileManager.default.createDirectory(atPath: dir + "/symbols", withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: dir + "/dump.dmp", contents: Data(process.builder.build()))
    for (module, text) in process.symbolFiles {
        let folder = dir + "/symbols/\(module.debugFile)/\(module.debugId)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/\(module.debugFile).sym", contents: Data(text.utf8))
    }
}

if args.count == 3, args[1] == "--write-large" {
    try writeLargeCrash(to: args[2])
    exit(0)
}

/// Runs `command` `runs` times as a whole process (what a pipeline calling `postmortem
/// stackwalk` pays): the best wall time, and the peak resident memory of one more run measured
/// by `/usr/bin/time` (a child of this large process would report this process's high-water mark
/// as its own: `ru_maxrss` is carried across `exec`).
func wholeProcess(_ command: [String], runs: Int, before: () -> Void = {}) throws -> (seconds: Double, peakMB: Double?) {
    // posix_spawn + waitpid: Foundation's Process polls for the child's exit every 50 ms.
    func run(_ command: [String]) throws {
        let argv = command.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0, status: Int32 = 0
        guard posix_spawn(&pid, command[0], &actions, nil, argv, environ) == 0, waitpid(pid, &status, 0) == pid, status == 0 else {
            throw CocoaError(.executableLoad)
        }
    }
    var best = Double.infinity
    for _ in 0..<runs {
        before()
        let start = clock.now
        try run(command)
        best = min(best, seconds(clock.now - start))
    }
    let time = "/usr/bin/time", out = NSTemporaryDirectory() + "stackwalk-bench-rss-\(getpid())"
    guard FileManager.default.isExecutableFile(atPath: time) else { return (best, nil) }
    before()
    try run([time, "-f", "%M", "-o", out] + command)
    defer { try? FileManager.default.removeItem(atPath: out) }
    let kb = Double((try String(contentsOfFile: out, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
    return (best, kb / 1024)
}

/// `--large [POSTMORTEM]`: the Firefox-sized crash through the `postmortem` executable (release,
/// statically linked: `swift build -c release --static-swift-stdlib`): start-up alone, no symbols,
/// cold symbols (a fresh cache: every .sym parsed) and warm (the on-disk index), each the best of
/// several whole-process runs, against issue #15's targets.
if args.count >= 2, args[1] == "--large" {
    let binary = args.count >= 3 ? args[2] : packageRoot + "/.build/release/postmortem"
    let dir = NSTemporaryDirectory() + "stackwalk-bench-large-\(getpid())"
    try writeLargeCrash(to: dir)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let cache = dir + "/cache"
    let dump = dir + "/dump.dmp"
    let symbols = ["--symbols-cache", cache, dump, dir + "/symbols"]
    let startup = try wholeProcess([binary, "--help"], runs: 20)
    let none = try wholeProcess([binary, "stackwalk", "--json", dump], runs: 20)
    let cold = try wholeProcess([binary, "stackwalk", "--json"] + symbols, runs: 10) { try? FileManager.default.removeItem(atPath: cache) }
    let warm = try wholeProcess([binary, "stackwalk", "--json"] + symbols, runs: 20)
    let size = (try FileManager.default.attributesOfItem(atPath: dump)[.size] as? Int) ?? 0
    print("Large crash: \(String(format: "%.1f", Double(size) / 1e6)) MB dump, 130 threads (\(binary))")
    print("")
    print("| run | whole process ms | target ms | peak MB |")
    print("|---|---|---|---|")
    func peak(_ m: Double?) -> String { m.map(mb) ?? "n/a (no /usr/bin/time)" }
    print("| start-up (`postmortem --help`) | \(ms(startup.seconds)) | | \(peak(startup.peakMB)) |")
    print("| no symbols | \(ms(none.seconds)) | | \(peak(none.peakMB)) |")
    print("| cold symbols (22 MB .sym parsed) | \(ms(cold.seconds)) | ≤ 125 | \(peak(cold.peakMB)) (target ≤ 60) |")
    print("| warm symbols (index) | \(ms(warm.seconds)) | ≤ 25 | \(peak(warm.peakMB)) (target ≤ 60) |")
    exit(0)
}

// MARK: child mode

if args.count >= 6, args[1] == "--child" {
    let (dump, mode, cache, runs) = (args[2], args[3], args[4], Int(args[5]) ?? 5)
    let symbols = mode == "none" ? nil : testdata + "/symbols"
    if mode == "warm" { _ = try await walk(dump, symbols: symbols, cache: cache, fresh: false, runs: 1) }  // build the index
    let before = procStatusKB("VmRSS")
    let (t, frames) = try await walk(dump, symbols: symbols, cache: cache, fresh: mode == "cold", runs: runs)
    print("\(t) \(frames) \(procStatusKB("VmHWM")) \(before)")
    exit(0)
}

/// A synthetic x86 Windows dump: one thread whose stack holds an EBP chain of `frames` frames,
/// all returning into one module without symbols (so every caller is found by frame pointer).
func syntheticDump(frames: Int) -> [UInt8] {
    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    let stackBase: UInt32 = 0x0010_0000
    var stack = [UInt8]()
    for i in 0..<frames {
        let next = stackBase + UInt32((i + 1) * 16)
        stack += le(i == frames - 1 ? UInt32(0) : next) + le(UInt32(0x0040_1000 + (i % 512) * 8)) + le(UInt32(0)) + le(UInt32(0))
    }
    var context = [UInt8](repeating: 0, count: 716)
    func put(_ off: Int, _ v: UInt32) { for (i, b) in le(v).enumerated() { context[off + i] = b } }
    put(0, 0x0001_0007); put(180, stackBase); put(184, 0x0040_1234); put(196, stackBase - 16)
    let name = "C:\\synthetic.exe".utf16.flatMap { le($0) }
    // Layout: header, directory (3 streams), SystemInfo, ThreadList, ModuleList, context, name, stack.
    let dirRVA = 32, sysRVA = dirRVA + 36, threadRVA = sysRVA + 56, moduleRVA = threadRVA + 4 + 48
    let contextRVA = moduleRVA + 4 + 108, nameRVA = contextRVA + 716, stackRVA = nameRVA + 4 + name.count
    var out = le(UInt32(0x504D_444D)) + le(UInt32(0xA793)) + le(UInt32(3)) + le(UInt32(dirRVA)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt64(0))
    out += le(UInt32(7)) + le(UInt32(56)) + le(UInt32(sysRVA))
    out += le(UInt32(3)) + le(UInt32(52)) + le(UInt32(threadRVA))
    out += le(UInt32(4)) + le(UInt32(112)) + le(UInt32(moduleRVA))
    var sys = le(UInt16(0)) + le(UInt16(6)) + le(UInt16(0x0d08)) + [1, 1] + le(UInt32(5)) + le(UInt32(1)) + le(UInt32(2600)) + le(UInt32(2))
    sys += le(UInt32(0)) + le(UInt16(0)) + le(UInt16(0)) + [UInt8](repeating: 0, count: 24)
    out += sys
    out += le(UInt32(1)) + le(UInt32(1)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt64(0))
    out += le(UInt64(stackBase - 16)) + le(UInt32(stack.count + 16)) + le(UInt32(stackRVA))
    out += le(UInt32(716)) + le(UInt32(contextRVA))
    var module = le(UInt64(0x0040_0000)) + le(UInt32(0x10000)) + le(UInt32(0)) + le(UInt32(0x1234_5678)) + le(UInt32(nameRVA))
    module += [UInt8](repeating: 0, count: 108 - module.count)
    out += le(UInt32(1)) + module
    out += context + le(UInt32(name.count)) + name + [UInt8](repeating: 0, count: 16) + stack
    return out
}

func child(_ dump: String, _ mode: String, _ runs: Int) throws -> (Double, Int, Double, Double) {
    let cache = NSTemporaryDirectory() + "stackwalk-bench-\(getpid())-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: cache) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: currentExecutable)
    p.arguments = ["--child", dump, mode, cache, String(runs)]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let f = String(decoding: data, as: UTF8.self).split(separator: " ").map { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan }
    return (f[0], Int(f[1]), f[2] / 1024, (f[2] - f[3]) / 1024)
}


print("| dump | frames | no symbols ms | peak MB | cold symbols ms | peak MB | warm index ms | peak MB (growth) |")
print("|---|---|---|---|---|---|---|---|")
let dumps = try FileManager.default.contentsOfDirectory(atPath: testdata + "/minidumps")
    .filter { $0.hasSuffix(".dmp") && !$0.hasPrefix("invalid-") }.sorted()
for name in dumps {
    let path = testdata + "/minidumps/" + name
    let none = try child(path, "none", 10), cold = try child(path, "cold", 5), warm = try child(path, "warm", 10)
    print("| \(name) | \(warm.1) | \(ms(none.0)) | \(mb(none.2)) | \(ms(cold.0)) | \(mb(cold.2)) | \(ms(warm.0)) | \(mb(warm.2)) (+\(mb(warm.3))) |")
}
print("")
print("| synthetic x86 frames | walk ms | µs per frame | peak MB |")
print("|---|---|---|---|")
for frames in [100, 1_000, 10_000, 100_000] {
    let path = NSTemporaryDirectory() + "stackwalk-bench-\(frames).dmp"
    FileManager.default.createFile(atPath: path, contents: Data(syntheticDump(frames: frames)))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let r = try child(path, "none", 3)
    print("| \(r.1) | \(ms(r.0)) | \(String(format: "%.2f", r.0 * 1e6 / Double(max(1, r.1)))) | \(mb(r.2)) |")
}
