import ArgumentParser
import Foundation
import JSONSupport
import ServiceSupport
import Signatures

struct SignatureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signature",
        abstract: "Generate the crash signature of crash data (siggen format) or a processed crash read from standard input.")

    @Option(help: "A directory with the four signature lists (Socorro's format). Default: signatures.lists_dir of the configuration, else the bundled lists.")
    var siglists: String?

    @Option(help: "A JSON configuration file. Default: POSTMORTEM_CONFIG_FILE.")
    var config: String?

    @Flag(name: .customShort("v"), help: "Also print the debug log.")
    var verbose = false

    @Flag(help: "Read one JSON document per line and write one result per line.")
    var jsonl = false

    func run() async throws {
        let lists: SignatureLists
        do {
            if let siglists {
                lists = try SignatureLists(directory: siglists)
            } else {
                lists = try signatureLists(try await PostmortemConfiguration.load(file: config))
            }
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
