import ArgumentParser
import Foundation
import JSONSupport
import Signatures

struct SignatureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signature",
        abstract: "Generate the crash signature of crash data (siggen format) or a processed crash read from standard input.")

    @Option(help: "A directory with the four signature lists (Socorro's format). Default: the bundled lists.")
    var siglists: String?

    @Flag(name: .customShort("v"), help: "Also print the debug log.")
    var verbose = false

    @Flag(help: "Read one JSON document per line and write one result per line.")
    var jsonl = false

    func run() throws {
        let lists: SignatureLists
        do {
            lists = try siglists.map { try SignatureLists(directory: $0) } ?? SignatureLists.bundled()
        } catch { throw fail("\(error)") }
        let generator = SignatureGenerator(lists: lists)
        let input = FileHandle.standardInput.readDataToEndOfFile()

        func render(_ document: JSONValue) -> String {
            let r = generator.generate(SignatureGenerator.crashData(from: document))
            var out: [(String, JSONValue)] = [
                ("signature", .string(r.signature)), ("proto_signature", .string(r.protoSignature)),
                ("notes", .array(r.notes.map { .string($0) })), ("rules_version", .string(r.rulesVersion)),
            ]
            if verbose { out.append(("debug_log", .array(r.debugLog.map { .string($0) }))) }
            return JSONValue.object(out).serialized()
        }

        if jsonl {
            var output = ""
            for (n, line) in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                guard let document = JSONValue.parse(Data(line)) else { throw fail("line \(n + 1): not valid JSON") }
                output += render(document) + "\n"
                if output.utf8.count > 1 << 20 { FileHandleOutput.stdout(output); output = "" }
            }
            FileHandleOutput.stdout(output)
        } else {
            guard let document = JSONValue.parse(input) else { throw fail("standard input is not valid JSON") }
            FileHandleOutput.stdout(render(document) + "\n")
        }
    }
}
