import Demangle
import Foundation
import Testing
import TestSupport

/// The demangler against the C++ runtime's own (`abi::__cxa_demangle`, what Breakpad's dump_syms
/// calls) on every C++ symbol of libstdc++ and of the system's C++ libraries, Rust legacy names
/// against symbolic 8's demangler, and hostile names.
@Suite struct DemanglerTests {
    /// Mangled names exported by the libraries in `paths` (`nm -D`), version suffixes cut.
    static func exported(_ paths: [String], limit: Int) throws -> [String] {
        var names = Set<String>()
        for path in paths {
            let (status, out, _) = try runProcess("/usr/bin/env", ["nm", "-D", "--defined-only", path])
            guard status == 0 else { continue }
            for line in String(decoding: out, as: UTF8.self).split(separator: "\n") {
                guard let name = line.split(separator: " ").last, name.hasPrefix("_Z") else { continue }
                names.insert(String(name.prefix { $0 != "@" }))
            }
            if names.count >= limit { break }
        }
        return Array(names).sorted().prefix(limit).map { $0 }
    }

    static func runtime(_ names: [String]) throws -> [String?] {
        let python = try #require(findExecutable("python3"), "python3 is required")
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/cxa_demangle.py"],
                                                stdin: Data(names.joined(separator: "\n").utf8), timeout: .seconds(300))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        return String(decoding: out, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).prefix(names.count).map { $0 == "<nil>" ? nil : String($0) }
    }

    func compare(_ names: [String]) throws -> (exact: Int, unread: Int, wrong: [String]) {
        let expected = try Self.runtime(names)
        #expect(expected.count == names.count)
        var exact = 0, unread = 0
        var wrong: [String] = []
        for (name, runtime) in zip(names, expected) {
            let ours = Demangler.demangle(name)
            if ours == runtime { exact += 1 } else if ours == name { unread += 1 } else { wrong.append("\(name)\n  runtime: \(runtime ?? "-")\n  ours:    \(ours)") }
        }
        return (exact, unread, wrong)
    }

    @Test func libstdcxxNamesAreExactlyTheRuntimes() throws {
        let library = ["/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6"].first { FileManager.default.fileExists(atPath: $0) }
        let names = try Self.exported([try #require(library, "libstdc++ is required")], limit: 20_000)
        #expect(names.count > 3000)
        let (exact, unread, wrong) = try compare(names)
        // Nothing printed differently; the few left mangled are ones the runtime cannot read
        // either, or transaction clones of names it can.
        #expect(wrong.isEmpty, "\(wrong.prefix(10).joined(separator: "\n"))")
        #expect(Double(exact) / Double(names.count) >= 0.995, "\(exact) exact, \(unread) left mangled of \(names.count)")
        print("libstdc++: \(exact) of \(names.count) names exactly as __cxa_demangle prints them, \(unread) left mangled")
    }

    @Test func theSystemsCxxLibrariesAlmostAllAgree() throws {
        let dir = "/usr/lib/x86_64-linux-gnu"
        let libraries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".so.") }.sorted().map { dir + "/" + $0 }
        let names = try Self.exported(libraries, limit: 30_000)
        guard names.count >= 5000 else { return }
        let (exact, unread, wrong) = try compare(names)
        let report = "\(exact) exact, \(unread) left mangled, \(wrong.count) printed differently of \(names.count)\n" + wrong.prefix(5).joined(separator: "\n")
        #expect(Double(exact) / Double(names.count) >= 0.985, "\(report)")
        #expect(Double(wrong.count) / Double(names.count) <= 0.003, "\(report)")
        print("system C++ libraries: " + report.prefix(200))
    }

    @Test func rustLegacyNames() {
        // Expected as rustc-demangle's alternate form prints them (symbolic 8 agrees).
        let cases = [
            "_ZN3std2rt10lang_start17h0123456789abcdefE": "std::rt::lang_start",
            "_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$17h1b4b3e16f5c3c3a2E":
                "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>",
            "_ZN4core3fmt9Formatter3pad17h75e1e5a6a4c1c4b2E.llvm.123": "core::fmt::Formatter::pad",
            "_ZN70_$LT$alloc..vec..Vec$LT$T$C$A$GT$$u20$as$u20$core..ops..drop..Drop$GT$4drop17h6fd5f1b4a3c2d1e0E":
                "<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop",
            "_ZN4core6option15Option$LT$T$GT$6unwrap17h0000000000000000E": "core::option::Option<T>::unwrap",
        ]
        for (mangled, expected) in cases { #expect(Demangler.demangle(mangled) == expected, "\(mangled)") }
        // Not a hash: an ordinary C++ nested name.
        #expect(Demangler.demangle("_ZN3foo3barEv") == "foo::bar()")
    }

    @Test func commonShapesPrintAsTheRuntimeDoes() {
        let cases = [
            "_Z7computei": "compute(int)",
            "_ZNSt6vectorIiSaIiEED2Ev": "std::vector<int, std::allocator<int> >::~vector()",
            "_ZN3geo5norm2IdEET_RKNS_3VecIS1_EE": "double geo::norm2<double>(geo::Vec<double> const&)",
            "_ZZ5applyiENKUliE_clEi": "apply(int)::{lambda(int)#1}::operator()(int) const",
            "_ZN12_GLOBAL__N_13fooEv": "(anonymous namespace)::foo()",
            "_Z3fooPFviE": "foo(void (*)(int))",
            "_Z3fooRA3_i": "foo(int (&) [3])",
            "_ZN3Foo3barEv.isra.0": "Foo::bar() [clone .isra.0]",
            "_Z4mainv.cold": "main() [clone .cold]",
            "_ZTV3Foo": "vtable for Foo",
            "_ZNK3Foo3getB5cxx11Ev": "Foo::get[abi:cxx11]() const",
        ]
        for (mangled, expected) in cases { #expect(Demangler.demangle(mangled) == expected, "\(mangled) → \(Demangler.demangle(mangled))") }
    }

    @Test func hostileNamesNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("_ZNKSTIEJLXDpOFRPAMCv0123456789abcdefghijklmnopqrstuvwxyz$.".utf8)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...80, using: &rng)
            let bytes = [UInt8]("_Z".utf8) + (0..<length).map { _ in alphabet.randomElement(using: &rng)! }
            _ = Demangler.demangle(String(decoding: bytes, as: UTF8.self))
        }
        // Deep nesting and huge inputs end in an unchanged name, not a stack overflow.
        let deep = "_Z1f" + String(repeating: "P", count: 100_000) + "i"
        #expect(Demangler.demangle(deep) == deep)
        let nested = "_Z1f" + String(repeating: "N1a", count: 2000) + String(repeating: "E", count: 2000)
        #expect(Demangler.demangle(nested) == nested)
        #expect(Demangler.demangle("_ZN99999999999999999999") == "_ZN99999999999999999999")
        #expect(Demangler.demangle("_Z1fS999_") == "_Z1fS999_")
        #expect(Demangler.demangle("plain") == "plain")
    }
}
