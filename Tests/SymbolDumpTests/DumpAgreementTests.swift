import BreakpadSymbols
import Demangle
import Foundation
import JSONSupport
import ObjectFiles
import SymbolDump
import Testing
import TestSupport

/// `symbols dump` against a second implementation: binaries built here with gcc and clang (C and
/// C++ with templates, lambdas, inlining and recursion; -O0 and -O2; DWARF 4 and 5; zlib-compressed
/// debug sections; executables and shared libraries (ELF), relocatable objects and dylibs with
/// dSYMs and compact unwind information (Mach-O); aarch64 and Thumb)
/// are dumped to `.sym`, and every address of every FUNC looked up through the `.sym` must give
/// the function, file, line and inline chain PyPI `symbolic` 13.9.0 gives reading the binary
/// itself — at least 99.5 % of addresses, every difference listed — with equal debug and code ids.
@Suite(.serialized) struct DumpAgreementTests {
    /// The C++ body both C++ builds share: templates, a lambda, inlining, recursion.
    static let cppCore = #"""
    namespace geo {
    template <typename T> struct Vec {
        T x, y;
        T dot(const Vec& o) const { return x * o.x + y * o.y; }
    };
    template <typename T> __attribute__((noinline)) T norm2(const Vec<T>& v) { return v.dot(v); }
    }  // namespace geo
    static inline int twice(int v) { return v * 2; }
    static inline int quad(int v) { return twice(twice(v)); }
    __attribute__((noinline)) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
    __attribute__((noinline)) int apply(int n) {
        auto add = [n](int k) { return quad(k) + n; };
        int s = 0;
        for (int i = 0; i < n; i++) s += add(i);
        return s;
    }

    """#

    /// A hosted C++ executable: the core plus the standard library.
    static let cpp = "#include <cstdio>\n#include <vector>\n" + cppCore + #"""
    int main(int argc, char** argv) {
        geo::Vec<double> v{1.5, argc * 1.0};
        std::vector<int> xs(argc + 3, 7);
        int t = 0;
        for (int x : xs) t += quad(x);
        std::printf("%f %d %d %d %s\n", geo::norm2(v), fib(argc + 10), apply(argc + 5), t, argv[0]);
        return 0;
    }
    """#

    static let c = #"""
    static inline int sq(int x) { return x * x; }
    static inline int cube(int x) { return sq(x) * x; }
    __attribute__((noinline)) int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += cube(i); return s; }
    __attribute__((noinline)) int walk(int n) { return n <= 0 ? 0 : walk(n - 1) + sq(n); }
    int entry(int n) { return sum(n) + walk(n) + cube(n); }
    """#

    /// Frames of every compact unwind kind: callee-saved registers (x19–x24 pairs; rbx, r12–r15),
    /// floating-point registers live across calls, a frameless frame the encoding can size, one
    /// too large for it (x86_64 keeps the size in the `sub` instruction), a variable-length
    /// array (a frame pointer), a leaf.
    static let unwindC = #"""
    extern int sink(int);
    __attribute__((noinline)) int keep(int a, int b, int c, int d, int e, int f) {
        int x = sink(a), y = sink(b), z = sink(c), w = sink(d), u = sink(e), v = sink(f);
        return x + y + z + w + u + v + a + b + c + d + e + f;
    }
    __attribute__((noinline)) double floats(double a, double b, double c) {
        double x = a * 2, y = b * 3, z = c * 4;
        sink((int)x);
        return x + y + z + sink((int)(y + z));
    }
    __attribute__((noinline)) int big(int n) { volatile char buf[512]; for (int i = 0; i < 512; i++) buf[i] = (char)(i * n); sink(buf[n & 511]); return buf[3]; }
    __attribute__((noinline)) int huge(int n) { volatile char buf[9000]; buf[n % 9000] = 1; sink(buf[7]); return buf[n % 7]; }
    __attribute__((noinline)) int vla(int n) { volatile char buf[n]; buf[0] = 1; sink(buf[0]); return buf[0]; }
    int leaf(int x) { return x * 3; }
    int sink(int x) { return x ^ 0x55; }
    int entry(int n) { return keep(n, n + 1, n + 2, n + 3, n + 4, n + 5) + (int)floats(n, n, n) + big(n) + huge(n) + vla(n + 1) + leaf(n); }
    """#

    /// The core without the standard library (no macOS SDK here).
    static let freestandingCpp = cppCore + """
    double entry(int n) { geo::Vec<double> v{1.5, n * 1.0}; return geo::norm2(v) + fib(n) + apply(n); }
    """

    struct Build: Sendable, CustomTestStringConvertible {
        let name: String
        let compiler: String
        let source: String
        let arguments: [String]
        /// Mach-O images: the object is linked by Debian's ld64.lld-14 with these arguments, and
        /// its DWARF moved into a dSYM by dsymutil-14 (symbolic reads the dSYM, we the image
        /// with the dSYM as its debug file).
        var link: [String] = []
        var testDescription: String { name }
    }

    static let builds: [Build] = [
        Build(name: "g++ -O0 dwarf4 executable", compiler: "g++", source: "cpp", arguments: ["-O0", "-gdwarf-4"]),
        Build(name: "g++ -O2 dwarf5 executable", compiler: "g++", source: "cpp", arguments: ["-O2", "-gdwarf-5"]),
        Build(name: "g++ -O2 zlib-compressed debug sections", compiler: "g++", source: "cpp", arguments: ["-O2", "-g", "-gz=zlib"]),
        Build(name: "clang++ -O2 dwarf5 executable", compiler: "clang++", source: "cpp", arguments: ["-O2", "-gdwarf-5"]),
        Build(name: "clang++ -O0 dwarf4 executable", compiler: "clang++", source: "cpp", arguments: ["-O0", "-gdwarf-4"]),
        Build(name: "gcc -O2 shared library", compiler: "gcc", source: "c", arguments: ["-O2", "-g", "-shared", "-fPIC"]),
        Build(name: "clang aarch64 shared library", compiler: "clang", source: "c",
              arguments: ["-target", "aarch64-linux-gnu", "-O2", "-g", "-nostdlib", "-shared", "-fPIC", "-fuse-ld=lld"]),
        Build(name: "clang arm thumb shared library", compiler: "clang", source: "c",
              arguments: ["-target", "armv7a-linux-gnueabihf", "-mthumb", "-O2", "-gdwarf-4", "-nostdlib", "-shared", "-fPIC", "-fuse-ld=lld"]),
        // Mach-O objects, and images linked by Debian's lld 14 (the Swift toolchain's lld links
        // no Mach-O) with their DWARF in a dSYM, and compact unwind information.
        Build(name: "clang x86_64 macOS object", compiler: "clang", source: "c", arguments: ["-target", "x86_64-apple-macos11", "-O2", "-g", "-c"]),
        Build(name: "clang arm64 macOS object", compiler: "clang", source: "c", arguments: ["-target", "arm64-apple-macos11", "-O2", "-g", "-c"]),
        Build(name: "clang++ arm64 macOS object", compiler: "clang++", source: "freestanding-cpp",
              arguments: ["-target", "arm64-apple-macos11", "-O2", "-g", "-c", "-fno-exceptions"]),
        Build(name: "clang arm64 macOS dylib + dSYM", compiler: "clang", source: "c",
              arguments: ["-target", "arm64-apple-macos11", "-O2", "-g", "-c"],
              link: ["-arch", "arm64", "-platform_version", "macos", "11.0", "11.0", "-dylib"]),
        Build(name: "clang x86_64 macOS dylib + dSYM", compiler: "clang", source: "c",
              arguments: ["-target", "x86_64-apple-macos11", "-O2", "-g", "-c"],
              link: ["-arch", "x86_64", "-platform_version", "macos", "11.0", "11.0", "-dylib"]),
        Build(name: "clang arm64 macOS dylib, every compact unwind kind", compiler: "clang", source: "unwind-c",
              arguments: ["-target", "arm64-apple-macos11", "-O2", "-g", "-c", "-fno-stack-protector"],
              link: ["-arch", "arm64", "-platform_version", "macos", "11.0", "11.0", "-dylib"]),
        Build(name: "clang x86_64 macOS dylib, frameless compact unwind", compiler: "clang", source: "unwind-c",
              arguments: ["-target", "x86_64-apple-macos11", "-O2", "-g", "-c", "-fno-stack-protector", "-fomit-frame-pointer"],
              link: ["-arch", "x86_64", "-platform_version", "macos", "11.0", "11.0", "-dylib"]),
        Build(name: "clang x86_64 macOS dylib, rbp frames saving registers", compiler: "clang", source: "unwind-c",
              arguments: ["-target", "x86_64-apple-macos11", "-O2", "-g", "-c", "-fno-stack-protector"],
              link: ["-arch", "x86_64", "-platform_version", "macos", "11.0", "11.0", "-dylib"]),
    ]

    typealias Frame = (name: String, file: String, line: UInt32)

    @Test(arguments: builds)
    func everyFunctionAddressAgreesWithSymbolic(_ build: Build) throws {
        let dir = TestData.temporaryDirectory("dump")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let compiler = try #require(findExecutable(build.compiler), "\(build.compiler) is required")
        let source = dir + (build.source.hasSuffix("cpp") ? "/test.cpp" : "/test.c")
        let program = switch build.source {
        case "cpp": Self.cpp
        case "c": Self.c
        case "unwind-c": Self.unwindC
        default: Self.freestandingCpp
        }
        try Data(program.utf8).write(to: URL(fileURLWithPath: source))
        let binary = dir + "/test.bin"
        let compiled = build.link.isEmpty ? binary : dir + "/test.o"
        let (status, _, err) = try runProcess(compiler, build.arguments + ["-o", compiled, source], timeout: .seconds(120))
        #expect(status == 0, "\(build.compiler): \(String(decoding: err, as: UTF8.self).suffix(1500))")
        guard status == 0 else { return }
        // The file symbolic reads for lookups: the binary, or its dSYM's DWARF file.
        var debugPath = binary
        if !build.link.isEmpty {
            let linker = try #require(findExecutable("ld64.lld-14"), "Debian's lld-14 (ld64.lld-14) is required to link Mach-O")
            let (linkStatus, _, linkErr) = try runProcess(linker, build.link + ["-o", binary, compiled])
            #expect(linkStatus == 0, "\(String(decoding: linkErr, as: UTF8.self).suffix(1500))")
            let dsymutil = try #require(findExecutable("dsymutil-14"), "Debian's llvm-14 (dsymutil-14) is required for dSYMs")
            let (dsymStatus, _, dsymErr) = try runProcess(dsymutil, [binary, "-o", dir + "/test.dSYM"])
            #expect(dsymStatus == 0, "\(String(decoding: dsymErr, as: UTF8.self).suffix(1500))")
            debugPath = dir + "/test.dSYM/Contents/Resources/DWARF/test.bin"
            guard linkStatus == 0, dsymStatus == 0 else { return }
        }

        let mapped = try ObjectBytes.map(path: binary)
        let elf: any DebugObject = ELFFile.isELF(mapped) ? try ELFFile(bytes: mapped) : try MachOFile(bytes: mapped)
        let debugObject: (any DebugObject)? = debugPath == binary ? nil : try MachOFile(bytes: ObjectBytes.map(path: debugPath))
        if let debugObject {
            #expect(debugObject.debugID == elf.debugID, "the dSYM carries the image's UUID")
            #expect(!(elf as! MachOFile).isRelocatable && elf.hasDebugSection(".unwind_info"), "a linked image with compact unwind information")
        }
        let (text, summary, problems) = try SymbolFileWriter.write(binary: elf, debug: debugObject, debugFileName: "test.bin")
        #expect(problems.isEmpty, "\(problems)")
        #expect(summary.functions >= 3, "\(text.prefix(600))")
        let symPath = dir + "/test.sym"
        try Data(text.utf8).write(to: URL(fileURLWithPath: symPath))
        let table = try SymbolFileParser().parse(path: symPath)
        #expect(table.stats.malformed == 0 && table.stats.unknown == 0, "the .sym reads back cleanly: \(table.stats.firstErrors)")

        // The ids symbolic reads from the binary.
        let python = try #require(findExecutable("python3"), "python3 with PyPI symbolic is required")
        let (idStatus, idOut, idErr) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_ids.py", binary])
        #expect(idStatus == 0, "\(String(decoding: idErr, as: UTF8.self).suffix(800))")
        let ids = try #require(JSONValue.parse(idOut))
        #expect(elf.debugID.lowercased() == (ids["debug_id"]?.stringValue ?? "").replacingOccurrences(of: "-", with: "") + "0", "\(ids.serialized())")
        if let code = ids["code_id"]?.stringValue {
            #expect(elf.codeIdentifier?.lowercased() == code, "\(ids.serialized())")
        } else if let elf = elf as? ELFFile {
            // No build id (clang's default link): symbolic has no code id; Breakpad writes the
            // text-hash identifier, as we do.
            #expect(elf.buildID() == nil)
        } else {
            #expect(elf.codeIdentifier == nil, "a Mach-O object has no UUID")
        }

        // Every address of every FUNC, through the .sym and through symbolic.
        var addresses: [UInt64] = []
        table.forEachFunction { f in
            guard !f.isPublic, let size = f.size else { return }
            for a in f.address..<(f.address + size) { addresses.append(a) }
        }
        #expect(!addresses.isEmpty)
        let load = elf.loadAddress
        let input = addresses.map { String($0 + load) }.joined(separator: "\n")
        let (lookStatus, lookOut, lookErr) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_lookup.py", debugPath],
                                                            stdin: Data(input.utf8), timeout: .seconds(300))
        #expect(lookStatus == 0, "\(String(decoding: lookErr, as: UTF8.self).suffix(800))")
        let oracle = String(decoding: lookOut, as: UTF8.self).split(separator: "\n").compactMap { JSONValue.parse(Data($0.utf8)) }
        #expect(oracle.count == addresses.count)
        var agree = 0, explained: [String: Int] = [:]
        var differences: [String] = []
        for (address, answer) in zip(addresses, oracle) {
            // symbolic answers raw (mangled) names; ours are demangled (the demangler is checked
            // against the C++ runtime's in DemangleTests).
            let theirs: [Frame] = (answer["frames"]?.arrayValue ?? []).map {
                (Demangler.demangle($0["symbol"]?.stringValue ?? "", returnTypes: false), $0["file"]?.stringValue ?? "", UInt32($0["line"]?.intValue ?? 0))
            }
            var ours: [Frame] = []
            if let hit = table.lookup(address) {
                ours = hit.inlines.map { ($0.function, $0.file ?? "", $0.line) } + [(hit.function.name, hit.file ?? "", hit.line)]
            }
            // Explained difference: symbolic names every range of a split function after the
            // symbol at its lowest range (`main.cold`), where the symbol table names the hot
            // range `main`; the outer frame may differ by that suffix only.
            func sameName(_ a: String, _ b: String, outer: Bool) -> Bool { a == b || (outer && (a + ".cold" == b || b + ".cold" == a)) }
            let cold = ours.count == theirs.count && zip(ours, theirs).enumerated().allSatisfy({ i, pair in
                sameName(pair.0.name, pair.1.name, outer: i == ours.count - 1) && pair.0.file == pair.1.file && pair.0.line == pair.1.line
            })
            if ours.count == theirs.count, zip(ours, theirs).allSatisfy({ $0.0.name == $0.1.name && $0.0.file == $0.1.file && $0.0.line == $0.1.line }) {
                agree += 1
            } else if cold {
                explained["symbolic names a split function's hot range after its .cold symbol", default: 0] += 1
            } else if elf.architecture == .arm, theirs.count == 1, theirs[0].file.isEmpty, theirs[0].line == 0, ours.last?.name == theirs[0].name,
                      let first = ours.last, first.line != 0 {
                // symbolic takes the symbol table's odd Thumb address literally and answers no
                // line from there to the next line row; the line table (llvm-dwarfdump) has a
                // row at the even address covering these bytes.
                explained["symbolic gives no line right after a Thumb symbol's odd address", default: 0] += 1
            } else if elf.isRelocatable, theirs.count == 1, theirs[0].file.isEmpty, theirs[0].line == 0, ours.last?.name == theirs[0].name,
                      (answer["frames"]?.arrayValue?.first?["sym_addr"]?.intValue ?? -1) == 0, let outer = ours.last, outer.line != 0 {
                // symbolic has no lines for a function starting at address 0 (the first
                // function of an object file); the line table (llvm-dwarfdump) covers it.
                explained["symbolic gives no line in an object's function at address 0", default: 0] += 1
            } else if differences.count < 25 {
                func show(_ frames: [Frame]) -> String { frames.map { "\($0.name) \($0.file):\($0.line)" }.joined(separator: " ← ") }
                differences.append(String(address, radix: 16) + ": ours " + show(ours) + " | symbolic " + show(theirs))
            }
        }
        let explainedCount = explained.values.reduce(0, +)
        let rate = addresses.isEmpty ? 0 : Double(agree + explainedCount) / Double(addresses.count)
        let report = "\(build.name): \(agree) of \(addresses.count) addresses agree, \(explainedCount) differ for a known reason "
            + "(\(String(format: "%.2f", rate * 100)) %)\n" + explained.map { "  explained: \($0.value) × \($0.key)" }.joined(separator: "\n")
            + "\n" + differences.joined(separator: "\n")
        #expect(rate >= 0.995, "\(report)")
        #expect(differences.isEmpty, "every difference is explained: \(report)")
        print(report)

        // STACK CFI against symbolic's CfiCache (Breakpad text too): the same records, rules
        // compared as sets. Explained: after an epilogue we restate registers restored to their
        // unspecified initial rule as `reg: reg` (Breakpad readers otherwise keep the previous
        // row's rule); symbolic leaves them out.
        let (cfiStatus, cfiOut, cfiErr) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_cfi.py", binary])
        #expect(cfiStatus == 0, "\(String(decoding: cfiErr, as: UTF8.self).suffix(800))")
        func records(_ text: String) -> [String: Set<String>] {
            var out: [String: Set<String>] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix("STACK CFI ") {
                var fields = line.split(separator: " ").dropFirst(2).map(String.init)
                let isInit = fields.first == "INIT"
                if isInit { fields.removeFirst() }
                let key = (isInit ? "INIT " : "") + fields[0] + (isInit ? " " + fields[1] : "")
                let rules = fields.dropFirst(isInit ? 2 : 1).joined(separator: " ")
                // Split "a: x y + b: z" into "a: x y +" tokens.
                var tokens: [String] = [], current = ""
                for word in rules.split(separator: " ") {
                    if word.hasSuffix(":"), !current.isEmpty { tokens.append(current); current = "" }
                    current += (current.isEmpty ? "" : " ") + word
                }
                if !current.isEmpty { tokens.append(current) }
                let kept = Set(tokens.filter { t in
                    let parts = t.split(separator: " ")
                    let restated = parts.count == 2 && (parts[0].dropLast() == parts[1] || (!isInit && parts[0] == ".ra:"))
                    return !restated
                })
                // A row left with nothing but restated registers is one symbolic does not write.
                if isInit || !kept.isEmpty { out[key] = kept }
            }
            return out
        }
        let ourCFI = records(text), theirCFI = records(String(decoding: cfiOut, as: UTF8.self))
        // A Mach-O object's functions without __eh_frame entries have compact unwind entries
        // (`__compact_unwind`) only, which symbolic does not read in objects. Ours are checked
        // against symbolic's records of the same object linked into a dylib (the linker turns
        // those entries into __unwind_info): the same rules at the same function.
        var fromObjectCompactUnwind = Set<String>()
        let objectOnly = ourCFI.keys.filter { $0.hasPrefix("INIT ") && theirCFI[$0] == nil }
        if elf.isRelocatable, elf is MachOFile, !objectOnly.isEmpty {
            let linker = try #require(findExecutable("ld64.lld-14"), "Debian's lld-14 (ld64.lld-14) is required to link Mach-O")
            let arch = elf.architecture.breakpadName
            let dylib = dir + "/linked.dylib"
            let (ld, _, ldErr) = try runProcess(linker, ["-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-dylib", "-o", dylib, binary])
            #expect(ld == 0, "\(String(decoding: ldErr, as: UTF8.self).suffix(800))")
            let (linkedStatus, linkedOut, _) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_cfi.py", dylib])
            #expect(linkedStatus == 0)
            // Their INIT records by range; the object's addresses moved by where the linker put __text.
            let linked = records(String(decoding: linkedOut, as: UTF8.self)).compactMap { key, rules -> (UInt64, UInt64, Set<String>)? in
                let f = key.split(separator: " ")
                guard f.count == 3, let start = UInt64(f[1], radix: 16), let size = UInt64(f[2], radix: 16) else { return nil }
                return (start, start + size, rules)
            }
            let objectText = try #require((elf as? MachOFile)?.section(named: "__text")?.address)
            let dylibText = try #require(try MachOFile(bytes: ObjectBytes.map(path: dylib)).section(named: "__text")?.address)
            for key in objectOnly {
                guard let start = UInt64(key.split(separator: " ")[1], radix: 16) else { continue }
                let moved = start - objectText + dylibText
                if let record = linked.first(where: { $0.0 <= moved && moved < $0.1 }), record.2 == ourCFI[key] { fromObjectCompactUnwind.insert(key) }
            }
        }
        // An arm64 Mach-O object may carry compact unwind only (no __eh_frame): none from symbolic.
        #expect(!theirCFI.isEmpty || (!fromObjectCompactUnwind.isEmpty && build.name.contains("macOS")), "\(build.name): no STACK CFI from symbolic")
        let keys = Set(ourCFI.keys).union(theirCFI.keys).subtracting(fromObjectCompactUnwind)
        let sameCFI = keys.filter { ourCFI[$0] == theirCFI[$0] }.count
        // Explained: an x86_64 Mach-O frame too large for its compact encoding (more than 255
        // words) keeps its size in the function's `sub $size, %rsp`; we read the instruction, as
        // libunwind does, where symbolic writes its guess for a function without a frame.
        let stacklessGuess: Set<String> = [".cfa: $rsp 8 +", ".ra: .cfa -8 + ^"]
        let explainedCFI = keys.filter { key in
            guard ourCFI[key] != theirCFI[key], theirCFI[key] == stacklessGuess, let ours = ourCFI[key],
                  let cfa = ours.first(where: { $0.hasPrefix(".cfa: $rsp ") }), let size = Int(cfa.split(separator: " ")[2]) else { return false }
            return size > 255 * 8 && ours.contains(".ra: .cfa -8 + ^")
        }
        let cfiDifferences = keys.filter { ourCFI[$0] != theirCFI[$0] && !explainedCFI.contains($0) }.sorted().prefix(20)
            .map { "\($0): ours \(ourCFI[$0]?.sorted() ?? []) | symbolic \(theirCFI[$0]?.sorted() ?? [])" }
        let cfiReport = "\(build.name): \(sameCFI) of \(keys.count) STACK CFI records agree, \(explainedCFI.count) differ as explained\n"
            + cfiDifferences.joined(separator: "\n")
        #expect(keys.isEmpty || Double(sameCFI + explainedCFI.count) / Double(keys.count) >= 0.995, "\(cfiReport)")
        #expect(cfiDifferences.isEmpty, "\(cfiReport)")
        print("\(build.name): \(sameCFI) of \(keys.count) STACK CFI records agree with symbolic"
              + (explainedCFI.isEmpty ? "" : ", \(explainedCFI.count) × an x86_64 frame sized by its sub instruction (symbolic guesses none)")
              + (fromObjectCompactUnwind.isEmpty ? "" : ", \(fromObjectCompactUnwind.count) from the object's __compact_unwind, equal to symbolic's of the linked dylib"))
    }
}
