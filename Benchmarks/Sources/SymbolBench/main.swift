// symbol-bench: throughput, memory and lookup latency of the Breakpad symbol engine, each beside
// PyPI `symbolic` measured on the same file and addresses in the same run.
//
//   swift run -c release --package-path Benchmarks symbol-bench [--size-mb 300] [--keep DIR]
//
// Memory is measured in a child process per file (peak RSS from getrusage, minus the RSS the
// process had before parsing), so runs do not pollute each other.
import BreakpadSymbols
import BenchSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

let clock = benchClock

// MARK: child mode: parse one file, report time and memory

let args = CommandLine.arguments
if args.count >= 3, args[1] == "--child-parse" {
    // Warm the runtime up on a tiny file so the baseline includes what any parse loads once.
    let tiny = NSTemporaryDirectory() + "symbol-bench-tiny-\(getpid()).sym"
    try "MODULE Linux x86_64 A tiny\nFUNC 1000 10 0 f\n1000 10 1 0\n".write(toFile: tiny, atomically: true, encoding: .utf8)
    _ = try SymbolFileParser().parse(path: tiny)
    try? FileManager.default.removeItem(atPath: tiny)
    let before = procStatusKB("VmRSS")
    let start = clock.now
    let table = try SymbolFileParser().parse(path: args[2])
    let elapsed = seconds(clock.now - start)
    let peak = procStatusKB("VmHWM")
    print("{\"seconds\": \(elapsed), \"peak_kb\": \(peak), \"baseline_kb\": \(before), \"functions\": \(table.functionCount)}")
    exit(0)
}

// MARK: inputs

func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let sizeMB = Int(option("--size-mb") ?? "300") ?? 300
let workDir = option("--keep") ?? (NSTemporaryDirectory() + "symbol-bench-\(getpid())")
try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)

let crashClient = packageRoot + "/../shared/testdata/symbols/crash-client/509C0610949836F7B70BD88BCF03E5400/crash-client.sym"
guard FileManager.default.fileExists(atPath: crashClient) else {
    FileHandle.standardError.write(Data("symbol-bench: \(crashClient) not found\n".utf8))
    exit(1)
}

/// A deterministic synthetic symbol file shaped like a large C++/Rust module from dump_syms: per
/// function one FUNC, ~20 line records, a few nested INLINE records and a PUBLIC every 16
/// functions; then, as dump_syms orders them, a STACK CFI INIT plus deltas per function.
func generate(_ path: String, megabytes: Int) throws {
    let target = megabytes << 20
    FileManager.default.createFile(atPath: path, contents: nil)
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    let cfiPath = path + ".cfi"
    FileManager.default.createFile(atPath: cfiPath, contents: nil)
    let cfiHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: cfiPath))
    var cfi = ""
    var out = "MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 libsynthetic.so\nINFO CODE_ID 89674523AB01EFCD0123456789ABCDEF\n"
    for i in 0..<2000 { out += "FILE \(i) /builds/worker/checkouts/gecko/dom/module\(i % 97)/src/Source\(i).cpp\n" }
    for i in 0..<20000 { out += "INLINE_ORIGIN \(i) mozilla::dom::Namespace\(i % 113)::Class\(i % 571)::Method\(i)(int, nsTArray<RefPtr<T>>&)\n" }
    var written = 0
    var address: UInt64 = 0x1000
    var rng: UInt64 = 0x9E37_79B9
    func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
    var n = 0
    while written < target {
        let size = 0x40 + next() % 0x400
        out += "FUNC \(String(address, radix: 16)) \(String(size, radix: 16)) 0 mozilla::dom::Namespace\(n % 113)::Class\(n % 571)::Function\(n)(unsigned int, const nsACString&)\n"
        let inlines = Int(next() % 4)
        for k in 0..<inlines {
            // Each level nests inside its parent: [a + 4k, a + size/2 - 4k).
            let start = address + UInt64(k) * 4
            out += "INLINE \(k) \(next() % 3000) \(next() % 2000) \(next() % 20000) \(String(start, radix: 16)) \(String(size / 2 - UInt64(k) * 8, radix: 16))\n"
        }
        var a = address
        let end = address + size
        while a < end {
            let len = min(end - a, 2 + next() % 0x30)
            out += "\(String(a, radix: 16)) \(String(len, radix: 16)) \(1 + next() % 4000) \(next() % 2000)\n"
            a += len
        }
        cfi += "STACK CFI INIT \(String(address, radix: 16)) \(String(size, radix: 16)) .cfa: $rsp 8 + .ra: .cfa -8 + ^\n"
        cfi += "STACK CFI \(String(address + 1, radix: 16)) .cfa: $rsp 16 + $rbp: .cfa -16 + ^\n"
        cfi += "STACK CFI \(String(address + 4, radix: 16)) .cfa: $rbp 16 +\n"
        if n % 16 == 0 { out += "PUBLIC \(String(end + 8, radix: 16)) 0 _ZN7mozilla3dom10Trampoline\(n)Ev\n" }
        address = end + 0x10
        n += 1
        if out.utf8.count > 1 << 20 {
            h.write(Data(out.utf8))
            written += out.utf8.count + cfi.utf8.count
            out = ""
            cfiHandle.write(Data(cfi.utf8))
            cfi = ""
        }
    }
    h.write(Data(out.utf8))
    cfiHandle.write(Data(cfi.utf8))
    try cfiHandle.close()
    let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: cfiPath))
    while let chunk = try reader.read(upToCount: 8 << 20), !chunk.isEmpty { h.write(chunk) }
    try reader.close()
    try h.close()
    try FileManager.default.removeItem(atPath: cfiPath)
}

/// A CFI-heavy file shaped like dump_syms output for a large Linux x86_64 library: per function a
/// FUNC with a long C++ name, ~8 line records, and STACK CFI as compilers emit it for prologues
/// that push up to six registers (one delta per push, the frame allocation, a row saving them,
/// and the epilogue's pops). About a quarter of a million STACK CFI lines in 25 MB.
func generateCFIHeavy(_ path: String, megabytes: Int) throws {
    var out = "MODULE Linux x86_64 FEDCBA9876543210FEDCBA98765432100 libcfiheavy.so\nINFO CODE_ID 1032547698BADCFE1032547698BADCFE\n"
    for i in 0..<1500 { out += "FILE \(i) /builds/worker/checkouts/gecko/obj-x86_64-pc-linux-gnu/dist/include/mozilla/dom/Header\(i).h\n" }
    var funcs = "", cfi = ""
    var rng: UInt64 = 0x2545_F491_4F6C_DD1D
    func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
    func h(_ v: UInt64) -> String { String(v, radix: 16) }
    let registers = ["$r15", "$r14", "$r13", "$r12", "$rbp", "$rbx"]
    var address: UInt64 = 0x2_0000
    var n = 0
    while out.utf8.count + funcs.utf8.count + cfi.utf8.count < megabytes << 20 {
        let size = 0x30 + next() % 0x300
        funcs += "FUNC \(h(address)) \(h(size)) 0 mozilla::dom::binding_detail::GenericMethod<mozilla::dom::Namespace\(n % 97)::Class\(n % 389)>::Method\(n)(JSContext*, JS::Handle<JSObject*>, void*, JSJitMethodCallArgs const&)\n"
        var a = address
        while a < address + size {
            let len = min(address + size - a, 4 + next() % 0x60)
            funcs += "\(h(a)) \(h(len)) \(1 + next() % 9000) \(next() % 1500)\n"
            a += len
        }
        cfi += "STACK CFI INIT \(h(address)) \(h(size)) .cfa: $rsp 8 + .ra: .cfa -8 + ^\n"
        let pushes = Int(next() % 7)
        var at = address
        for p in 0..<pushes {
            at += 1 + next() % 2
            cfi += "STACK CFI \(h(at)) .cfa: $rsp \(16 + 8 * p) +\n"
        }
        if pushes > 0 {
            at += 4
            let frame = 8 + 8 * pushes + Int(next() % 8) * 16
            cfi += "STACK CFI \(h(at)) .cfa: $rsp \(frame) +\n"
            at += 4
            var saved = ""
            for p in 0..<pushes { saved += "\(registers[(6 - pushes + p) % 6]): .cfa -\(16 + 8 * p) + ^ " }
            cfi += "STACK CFI \(h(at)) \(saved.dropLast())\n"
            let epilogue = address + size - UInt64(pushes) - 2
            if epilogue > at {
                for p in 0..<pushes { cfi += "STACK CFI \(h(epilogue + UInt64(p))) .cfa: $rsp \(8 + 8 * (pushes - p)) +\n" }
            }
        }
        if n % 24 == 0 { funcs += "PUBLIC \(h(address + size + 4)) 0 _ZN7mozilla3dom8Thunk\(n)Ev\n" }
        address += size + 0x10
        n += 1
    }
    FileManager.default.createFile(atPath: path, contents: Data((out + funcs + cfi).utf8))
}

/// 1,000 addresses spread over the FUNC ranges (the middle of pseudo-randomly chosen functions).
func addresses(_ table: SymbolTable) -> [UInt64] {
    var middles: [UInt64] = []
    middles.reserveCapacity(table.functionCount)
    table.forEachFunction { middles.append($0.address &+ ($0.size ?? 0) / 2) }
    var rng: UInt64 = 12345
    return (0..<1000).map { _ in
        rng = rng &* 6364136223846793005 &+ 1442695040888963407
        return middles[Int(rng >> 33) % max(1, middles.count)]
    }
}

struct Row {
    var name: String
    var mb: Double
    var parseSeconds: Double
    var peakMB: Double
    var parseMB: Double
    var coldSeconds: Double
    var warmSeconds: Double
    var symbolicCold: Double
    var symbolicWarm: Double
}

func childParse(_ path: String) throws -> (Double, Double, Double) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: currentExecutable)
    p.arguments = ["--child-parse", path]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let j = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let peak = (j["peak_kb"] as! NSNumber).doubleValue / 1024
    let baseline = (j["baseline_kb"] as! NSNumber).doubleValue / 1024
    return ((j["seconds"] as! NSNumber).doubleValue, peak, peak - baseline)
}

func symbolicTimes(_ path: String, _ addrs: [UInt64]) throws -> (Double, Double) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", packageRoot + "/Benchmarks/scripts/symbolic_bench.py", path, workDir + "/bench.symcache"]
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    try p.run()
    inPipe.fileHandleForWriting.write(Data((addrs.map(String.init).joined(separator: "\n") + "\n").utf8))
    try inPipe.fileHandleForWriting.close()
    let data = outPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let j = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        return (.nan, .nan)
    }
    return ((j["cold"] as! NSNumber).doubleValue, (j["warm"] as! NSNumber).doubleValue)
}

func measure(_ name: String, _ path: String, parseRuns: Int) throws -> Row {
    let size = Double((try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).int64Value) / 1e6
    // Throughput: best of `parseRuns` in-process parses.
    var best = Double.infinity
    var table: SymbolTable!
    for _ in 0..<parseRuns {
        let start = clock.now
        table = try SymbolFileParser().parse(path: path)
        best = min(best, seconds(clock.now - start))
    }
    let addrs = addresses(table)
    // Cold: parse + 1,000 lookups (best of the runs above plus the lookups, timed together once more).
    var cold = Double.infinity
    for _ in 0..<max(1, parseRuns) {
        let start = clock.now
        let t = try SymbolFileParser().parse(path: path)
        var found = 0
        for a in addrs where t.lookup(a) != nil { found += 1 }
        cold = min(cold, seconds(clock.now - start))
        precondition(found == addrs.count)
    }
    // Warm: open the on-disk index (mmap + checksum) and answer 1,000 lookups; best of 20.
    let index = workDir + "/\(name).symc"
    try SymbolIndexFile.write(table, to: index)
    table = nil
    var warm = Double.infinity
    for _ in 0..<20 {
        let start = clock.now
        let t = try SymbolIndexFile.open(index)
        var found = 0
        for a in addrs where t.lookup(a) != nil { found += 1 }
        warm = min(warm, seconds(clock.now - start))
        precondition(found == addrs.count)
    }
    let (_, peak, parseMem) = try childParse(path)
    let (sCold, sWarm) = try symbolicTimes(path, addrs)
    return Row(name: name, mb: size, parseSeconds: best, peakMB: peak, parseMB: parseMem,
               coldSeconds: cold, warmSeconds: warm, symbolicCold: sCold, symbolicWarm: sWarm)
}

let synthetic = workDir + "/synthetic.sym"
if !FileManager.default.fileExists(atPath: synthetic) {
    FileHandle.standardError.write(Data("generating a \(sizeMB) MB synthetic symbol file…\n".utf8))
    try generate(synthetic, megabytes: sizeMB)
}
let cfiHeavy = workDir + "/cfi-heavy.sym"
if !FileManager.default.fileExists(atPath: cfiHeavy) { try generateCFIHeavy(cfiHeavy, megabytes: 25) }
var rows: [Row] = []
FileHandle.standardError.write(Data("measuring crash-client.sym…\n".utf8))
rows.append(try measure("crash-client.sym", crashClient, parseRuns: 10))
FileHandle.standardError.write(Data("measuring cfi-heavy.sym…\n".utf8))
rows.append(try measure("cfi-heavy-25MB.sym", cfiHeavy, parseRuns: 10))
FileHandle.standardError.write(Data("measuring synthetic.sym…\n".utf8))
rows.append(try measure("synthetic-\(sizeMB)MB.sym", synthetic, parseRuns: 3))

func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
print("| file | size MB | parse MB/s | parse s | peak RSS MB | parse memory MB (× file) | cold 1k lookups ms | symbolic cold ms | cold speed-up | warm 1k lookups ms | symbolic warm ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows {
    print("| \(r.name) | \(f(r.mb)) | \(f(r.mb / r.parseSeconds, 0)) | \(f(r.parseSeconds, 3)) | \(f(r.peakMB)) | \(f(r.parseMB)) (\(f(r.parseMB / r.mb, 2))×) | \(f(r.coldSeconds * 1000, 1)) | \(f(r.symbolicCold * 1000, 1)) | \(f(r.symbolicCold / r.coldSeconds, 1))× | \(f(r.warmSeconds * 1000, 2)) | \(f(r.symbolicWarm * 1000, 2)) |")
}
if option("--keep") == nil { try? FileManager.default.removeItem(atPath: workDir) }
