import Foundation
import MinidumpSynth
import Symbolication
import Testing
import TestSupport

/// Source paths are cleaned as symbolic (Eliot's engine) cleans them.
@Suite struct SourcePathTests {
    @Test func knownCases() {
        let cases: [(String, String?)] = [
            ("/src/./a/b.h", "/src/a/b.h"), ("/src/a/../c//d.h", "/src/c/d.h"), (#"C:\src\.\x\..\y.cpp"#, #"C:\src\y.cpp"#),
            ("../rel/./z.c", "../rel/z.c"), ("git:github.com/x/y:./src/./q.cc:abc", "git:github.com/x/y:./src/q.cc:abc"),
            ("/src/a/b/", "/src/a/b"), ("a/../../b", "../b"), ("/../a", "../a"), ("//server/share/./x", #"\\server\share\x"#),
            ("./a", "a"), ("C:/a/./b", #"C:\a\b"#), ("/a/b/../..", nil), ("/", nil), ("x", "x"), (#"C:\..\a"#, "a"),
            ("/a/./../b/./c.h", "b/c.h"), ("a/.../b", "a/.../b"), ("../obj/./../x.cpp", "../obj/../x.cpp"), (#"..\main.rs"#, "../main.rs"),
            ("/obj//a//..//a//x.cpp//main.rs", "/obj//a//a//x.cpp/main.rs"), ("<stdin>", "<stdin>"), ("", nil),
            ("/builds/worker/checkouts/gecko/xpcom/base/nsCOMPtr.h", "/builds/worker/checkouts/gecko/xpcom/base/nsCOMPtr.h"),
        ]
        for (input, expected) in cases { #expect(SourcePath.clean(input) == expected, "\(input)") }
    }

    /// Generated paths (Unix, Windows, UNC, relative, VCS-style, with `.`, `..` and doubled
    /// separators) through symbolic's own symbol cache and through `SourcePath`.
    @Test func agreesWithSymbolicOnGeneratedPaths() throws {
        var rng = SeededGenerator(seed: 17)
        let roots = ["/", #"C:\"#, "c:/", "", "../", "./", #"..\"#, "hg:hg.mozilla.org/mozilla-central:", "git:github.com/x/y:", #"\\srv\share\"#, "//srv/"]
        let names = ["src", "a", "obj-x86_64", "dist", "include", ".", "..", "b.h", "..", ".", "C:", ""]
        let seps = ["/", "/", #"\"#, "//"]
        var paths: [String] = []
        for _ in 0..<3000 {
            var p = roots[Int(rng.next() % UInt64(roots.count))]
            let n = 1 + Int(rng.next() % 6)
            for i in 0..<n {
                p += names[Int(rng.next() % UInt64(names.count))]
                if i < n - 1 || rng.next() % 8 == 0 { p += seps[Int(rng.next() % UInt64(seps.count))] }
            }
            p += ["x.cpp", "b.h", "main.rs", ""][Int(rng.next() % 4)]
            if !p.trimmingCharacters(in: .whitespaces).isEmpty, !p.contains("\n") { paths.append(p) }
        }
        paths = Array(Set(paths)).sorted()
        var sym = "MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 t.so\n"
        for (i, p) in paths.enumerated() { sym += "FILE \(i) \(p)\n" }
        for i in paths.indices { sym += "FUNC \(String(0x1000 + 16 * i, radix: 16)) 10 0 f\(i)\n\(String(0x1000 + 16 * i, radix: 16)) 2 1 \(i)\n" }
        let file = TestData.temporaryDirectory("source-paths") + "/t.sym"
        try sym.write(toFile: file, atomically: true, encoding: .utf8)
        let python = try #require(findExecutable("python3"), "python3 with PyPI symbolic (scripts/test installs it)")
        let input = paths.indices.map { String(0x1000 + 16 * $0) }.joined(separator: "\n") + "\n"
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/symbolic_lookup.py", file], stdin: Data(input.utf8))
        try #require(status == 0, "symbolic oracle: \(String(decoding: err, as: UTF8.self))")
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n")
        try #require(lines.count == paths.count)
        var mismatches: [String] = []
        for (path, line) in zip(paths, lines) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard let frame = (object["frames"] as? [[String: Any]])?.last else { continue }
            let expected = frame["file"] as? String
            if SourcePath.clean(path) != expected { mismatches.append("\(path) → \(expected ?? "nil"), ours \(SourcePath.clean(path) ?? "nil")") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(paths.count): \(mismatches.prefix(10))")
    }
}
