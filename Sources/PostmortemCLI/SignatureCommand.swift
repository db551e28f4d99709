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
        if jsonl {
            do {
                try generator.jsonLinesMapper(debugLog: verbose).map(fileDescriptor: 0) { FileHandleOutput.stdout($0) }
            } catch { throw fail(error.description) }
        } else {
            let input = FileHandle.standardInput.readDataToEndOfFile()
            guard let document = JSONValue.parse(input) else { throw fail("standard input is not valid JSON") }
            var out = JSONOutput()
            generator.generate(SignatureGenerator.crashData(from: document)).write(into: &out, debugLog: verbose)
            out.newline()
            out.bytes.withUnsafeBytes { FileHandleOutput.stdout($0) }
        }
    }
}
