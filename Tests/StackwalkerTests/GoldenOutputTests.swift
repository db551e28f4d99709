import Foundation
import JSONSupport
import MinidumpFormat
import SymbolSources
import Testing
import TestSupport
@testable import Stackwalker

/// The rust-minidump goldens of `testdata/expected/` (options as the README there gives them).
@Suite struct GoldenOutputTests {
    /// A symbols directory holding only `test_app.pdb`, as rust-minidump's own test data does.
    static func testAppOnlySymbols() throws -> String {
        let dir = TestData.temporaryDirectory("syms")
        try FileManager.default.createSymbolicLink(atPath: dir + "/test_app.pdb", withDestinationPath: try TestData.path("symbols/test_app.pdb"))
        return dir
    }

    static func walk(_ dump: String, symbols: [String] = [], certs: [String: String] = [:]) async throws -> ProcessState {
        let minidump = try Minidump.open(path: try TestData.path("minidumps/" + dump))
        let supplier = symbols.isEmpty ? nil : SymbolSupplier(configuration: SymbolSourcesConfiguration(
            symbolPaths: symbols, cacheDirectory: TestData.temporaryDirectory("cache")))
        let state = try await Stackwalker(supplier: supplier, certSubjects: certs).process(minidump)
        await supplier?.shutdown()
        return state
    }

    static func expected(_ name: String) throws -> String {
        try String(contentsOfFile: try TestData.path("expected/" + name), encoding: .utf8)
    }

    static func trimmed(_ s: String) -> String {
        var t = s
        while let last = t.last, last.isWhitespace { t.removeLast() }
        return t
    }

    @Test func testDumpWithoutSymbolsMatchesPrettyAndCompactJSONByteForByte() async throws {
        let state = try await Self.walk("test.dmp")
        #expect(Self.trimmed(state.json(pretty: true)) == Self.trimmed(try Self.expected("test.dmp.nosyms.json")))
        #expect(Self.trimmed(state.json(pretty: false)) == Self.trimmed(try Self.expected("test.dmp.nosyms.compact.json")))
    }

    @Test func testDumpWithSymbolsMatchesJSON() async throws {
        let state = try await Self.walk("test.dmp", symbols: [try Self.testAppOnlySymbols()])
        #expect(Self.trimmed(state.json(pretty: true)) == Self.trimmed(try Self.expected("test.dmp.json")))
    }

    @Test func evilJSONSetsCertificateSubjects() async throws {
        let state = try await Self.walk("test.dmp", symbols: [try Self.testAppOnlySymbols()],
                                        certs: ["test_app.exe": "rust-minidump", "whatever.dll": "rust-minidump"])
        #expect(Self.trimmed(state.json(pretty: true)) == Self.trimmed(try Self.expected("test.dmp.evil.json")))
    }

    /// The amd64 goldens, crash analysis included (instruction, memory accesses, bit flips).
    @Test(arguments: [("linux-mini.dmp", false), ("pipeline-inlines-macos-segv.dmp", true)])
    func amd64JSONMatches(_ dump: String, _ withSymbols: Bool) async throws {
        let state = try await Self.walk(dump, symbols: withSymbols ? [try TestData.path("symbols")] : [])
        #expect(Self.trimmed(state.json(pretty: true)) == Self.trimmed(try Self.expected(dump + ".json")))
    }

    @Test func testDumpHumanOutputsMatch() async throws {
        let plain = try await Self.walk("test.dmp")
        #expect(Self.trimmed(plain.humanReport(brief: false)) == Self.trimmed(try Self.expected("test.dmp.nosyms.human.txt")))
        #expect(Self.trimmed(plain.humanReport(brief: true)) == Self.trimmed(try Self.expected("test.dmp.nosyms.human-brief.txt")))
        let symbolized = try await Self.walk("test.dmp", symbols: [try Self.testAppOnlySymbols()])
        #expect(Self.trimmed(symbolized.humanReport(brief: false)) == Self.trimmed(try Self.expected("test.dmp.human.txt")))
    }

    /// The human goldens of the amd64 dumps, crash-analysis block included.
    @Test(arguments: [("linux-mini.dmp", false), ("pipeline-inlines-macos-segv.dmp", true)])
    func amd64HumanOutputMatches(_ dump: String, _ withSymbols: Bool) async throws {
        let state = try await Self.walk(dump, symbols: withSymbols ? [try TestData.path("symbols")] : [])
        #expect(Self.trimmed(state.humanReport(brief: false)) == Self.trimmed(try Self.expected(dump + ".human.txt")))
    }
}
