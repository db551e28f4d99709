import Foundation
import JSONSupport
import Testing
import TestSupport
@testable import Signatures

/// 5,000 generated crash-data documents, signed by us and by PyPI `siggen==2.2.20241029` with the
/// same (siggen's bundled) lists: the signatures must be identical for every document.
@Suite struct SiggenDifferentialTests {
    @Test func signaturesAreIdenticalToSiggenOnTheGeneratedCorpus() throws {
        let generator = try SiggenLists.generator()
        let lists = generator.lists
        var corpus = SyntheticCrashCorpus(seed: 20_241_029, listEntries: lists.irrelevant.entries + lists.prefix.entries + lists.sentinels)
        let documents = (0..<5_000).map { _ in corpus.document() }
        let input = documents.map { $0.serialized() }.joined(separator: "\n") + "\n"

        guard let python = findExecutable("python3") else { Issue.record("python3 is required"); return }
        let (status, out, err) = try runProcess(python, [TestData.packageRoot + "/Tests/Oracles/siggen_signatures.py"], stdin: Data(input.utf8))
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        let expected = String(decoding: out, as: UTF8.self).split(separator: "\n").map { JSONValue.parse(Data($0.utf8)) }
        #expect(expected.count == documents.count)

        // The bulk path (`--jsonl`) reads frames from a tape instead of decoded JSON: it must agree too.
        var bulk: [UInt8] = []
        try input.utf8CString.withUnsafeBytes { raw in
            try generator.jsonLinesMapper(debugLog: false).map(UnsafeRawBufferPointer(rebasing: raw.dropLast())) { bulk.append(contentsOf: $0) }
        }
        let bulkLines = bulk.split(separator: 0x0A).map { JSONValue.parse(Data($0)) }
        #expect(bulkLines.count == documents.count)

        var differences: [String] = []
        var noteDifferences = 0
        var distinct = Set<String>()
        for (i, (document, oracle)) in zip(documents, expected).enumerated() {
            let ours = generator.generate(document)
            let theirs = oracle?["signature"]?.stringValue
            distinct.insert(ours.signature)
            if JSONValue.array(ours.notes.map { .string($0) }) != oracle?["notes"] {
                noteDifferences += 1
                if noteDifferences <= 5 { print("notes #\(i): ours \(ours.notes) siggen \(oracle?["notes"]?.serialized() ?? "?")") }
            }
            if i < bulkLines.count, bulkLines[i]?["signature"]?.stringValue != theirs
                || bulkLines[i]?["notes"] != .array(ours.notes.map { .string($0) }) {
                differences.append("#\(i) (--jsonl path): ours \(bulkLines[i]?.serialized() ?? "?") siggen \(oracle?.serialized() ?? "?")")
            }
            if ours.signature != theirs {
                differences.append("#\(i): ours \"\(ours.signature)\" siggen \"\(theirs ?? "?")\"\n    input: \(document.serialized().prefix(600))")
            }
        }
        for d in differences.prefix(15) { print(d) }
        print("siggen differential: \(documents.count - differences.count) of \(documents.count) signatures identical "
              + "(\(distinct.count) distinct signatures; notes differ on \(noteDifferences))")
        #expect(distinct.count > 1_000)
        #expect(differences.isEmpty, "\(differences.count) signatures differ; the first: \(differences.first ?? "")")
    }
}
