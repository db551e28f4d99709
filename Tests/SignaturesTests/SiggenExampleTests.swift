import Foundation
import JSONSupport
import Testing
import TestSupport
@testable import Signatures

/// siggen's bundled lists, read from the installed PyPI package `siggen==2.2.20241029` (installed
/// by `.ci/run`; the lists are never copied into the project).
enum SiggenLists {
    struct Missing: Error, CustomStringConvertible {
        let why: String
        var description: String { "siggen's lists not found: \(why) (pip install siggen==2.2.20241029)" }
    }

    static func directory() throws -> String {
        guard let python = findExecutable("python3") else { throw Missing(why: "no python3") }
        let (status, out, err) = try runProcess(python, ["-c", "import siggen, os; print(os.path.join(os.path.dirname(siggen.__file__), 'siglists'))"])
        guard status == 0 else { throw Missing(why: String(decoding: err, as: UTF8.self)) }
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func generator() throws -> SignatureGenerator {
        // nil source: the debug log says "using included signature lists", as siggen's does.
        SignatureGenerator(lists: try SignatureLists(directory: try directory(), source: nil, includedLists: true))
    }
}

@Suite struct SiggenExampleTests {
    @Test func everyExampleReproducesSignatureNotesAndProtoSignature() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: try TestData.path("signatures/siggen-examples.json")))
        guard case .array(let cases)? = JSONValue.parse(data)?["cases"] else { Issue.record("no cases"); return }
        #expect(cases.count == 18)
        let generator = try SiggenLists.generator()
        for c in cases {
            let name = c["name"]?.stringValue ?? "?"
            let result = generator.generate(c["input"] ?? .null)
            #expect(result.signature == c["signature"]?.stringValue, "\(name)")
            #expect(JSONValue.array(result.notes.map { .string($0) }) == c["notes"], "\(name): \(result.notes)")
            #expect(JSONValue.array(result.debugLog.map { .string($0) }) == c["debug_log"], "\(name): \(result.debugLog)")
            #expect(.string(result.protoSignature) == c["proto_signature"], "\(name)")
            if case .array(let frames)? = c["normalized_frames"], !frames.isEmpty {
                #expect(result.normalizedFrames.map { JSONValue.array($0.map { .string($0) }) } == .array(frames), "\(name)")
            }
        }
    }
}
