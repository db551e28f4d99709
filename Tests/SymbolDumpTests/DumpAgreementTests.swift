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
/// debug sections; executables and shared libraries (ELF), relocatable objects (Mach-O); aarch64 and Thumb)
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

    /// The core without the standard library (no macOS SDK here).
    static let freestandingCpp = cppCore + """
    double entry(int n) { geo::Vec<double> v{1.5, n * 1.0}; return geo::norm2(v) + fib(n) + apply(n); }
    """

    struct Build: Sendable, CustomTestStringConvertible {
        let name: String
        let compiler: String
        let source: String
        let arguments: [String]
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
        // Mach-O: objects only (this toolchain's lld does not link for macOS).
        Build(name: "clang x86_64 macOS object", compiler: "clang", source: "c", arguments: ["-target", "x86_64-apple-macos11", "-O2", "-g", "-c"]),
        Build(name: "clang arm64 macOS object", compiler: "clang", source: "c", arguments: ["-target", "arm64-apple-macos11", "-O2", "-g", "-c"]),
        Build(name: "clang++ arm64 macOS object", compiler: "clang++", source: "freestanding-cpp",
              arguments: ["-target", "arm64-apple-macos11", "-O2", "-g", "-c", "-fno-exceptions"]),
    ]

    typealias Frame = (name: String, file: String, line: UInt32)

    @Test(arguments: builds)
    func everyFunctionAddressAgreesWithSymbolic(_ build: Build) throws {
        let dir = TestData.temporaryDirectory("dump")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let compiler = try #require(findExecutable(build.compiler), "\(build.compiler) is required")
        let source = dir + (build.source == "c" ? "/test.c" : "/test.cpp")
        try Data((build.source == "cpp" ? Self.cpp : build.source == "c" ? Self.c : Self.freestandingCpp).utf8).write(to: URL(fileURLWithPath: source))
        let binary = dir + "/test.bin"
        let (status, _, err) = try runProcess(compiler, build.arguments + ["-o", binary, source], timeout: .seconds(120))
        #expect(status == 0, "\(build.compiler): \(String(decoding: err, as: UTF8.self).suffix(1500))")
        guard status == 0 else { return }

        let mapped = try ObjectBytes.map(path: binary)
        let elf: any DebugObject = ELFFile.isELF(mapped) ? try ELFFile(bytes: mapped) : try MachOFile(bytes: mapped)
        let (text, summary, problems) = try SymbolFileWriter.write(binary: elf, debugFileName: "test.bin")
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
        let (lookStatus, lookOut, lookErr) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_lookup.py", binary],
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
        // An arm64 Mach-O object may carry compact unwind only (no __eh_frame): none on either side.
        #expect(!theirCFI.isEmpty || (ourCFI.isEmpty && build.name.contains("macOS")), "\(build.name): no STACK CFI from symbolic")
        let keys = Set(ourCFI.keys).union(theirCFI.keys)
        let sameCFI = keys.filter { ourCFI[$0] == theirCFI[$0] }.count
        let cfiDifferences = keys.filter { ourCFI[$0] != theirCFI[$0] }.sorted().prefix(20).map { "\($0): ours \(ourCFI[$0]?.sorted() ?? []) | symbolic \(theirCFI[$0]?.sorted() ?? [])" }
        let cfiReport = "\(build.name): \(sameCFI) of \(keys.count) STACK CFI records agree\n" + cfiDifferences.joined(separator: "\n")
        #expect(keys.isEmpty || Double(sameCFI) / Double(keys.count) >= 0.995, "\(cfiReport)")
        print("\(build.name): \(sameCFI) of \(keys.count) STACK CFI records agree with symbolic")
    }
}
