import ArgumentParser
import Foundation
import JSONSupport
import MinidumpFormat
import Stackwalker
import SymbolSources

struct StackwalkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stackwalk",
        abstract: "Walk the stacks of a minidump and print the report (minidump-stackwalk compatible).")

    @Flag(help: "Print the JSON report (minidump-stackwalk --json schema).")
    var json = false

    @Flag(help: "Print the human-readable report (the default).")
    var human = false

    @Flag(help: "With --json: indent the output.")
    var pretty = false

    @Flag(help: "With --human: only the header and the crashing thread.")
    var brief = false

    @Option(name: .customLong("evil-json"), help: "A raw crash JSON file; its ModuleSignatureInfo sets modules' cert_subject.")
    var evilJSON: String?

    @OptionGroup var sources: SymbolSourceOptions

    @Option(name: .customLong("output-file"), help: "Write the report here instead of standard output.")
    var outputFile: String?

    @Argument(help: "The minidump.")
    var dump: String

    @Argument(help: "More local symbol directories.")
    var symbolDirectories: [String] = []

    func run() async throws {
        let minidump: Minidump
        do { minidump = try Minidump.open(path: dump) } catch { throw fail("\(dump): \(error)") }
        var certs: [String: String] = [:]
        if let evilJSON {
            do { certs = try EvilJSON.certificateSubjects(path: evilJSON) } catch { throw fail("\(evilJSON): \(error)") }
        }
        var options = sources
        options.symbolsPaths += symbolDirectories
        let useSymbols = !options.symbolsPaths.isEmpty || !options.symbolsURLs.isEmpty
        let supplier = useSymbols ? SymbolSupplier(configuration: options.configuration(negativeCacheTTL: .seconds(300))) : nil
        let state: ProcessState
        do {
            state = try await Stackwalker(supplier: supplier, certSubjects: certs).process(minidump)
        } catch {
            await supplier?.shutdown()
            throw fail("\(dump): \(error)")
        }
        await supplier?.shutdown()
        let text = json ? state.json(pretty: pretty) + "\n" : state.humanReport(brief: brief)
        if let outputFile {
            do { try text.write(toFile: outputFile, atomically: true, encoding: .utf8) } catch { throw fail("\(outputFile): \(error)") }
        } else {
            FileHandleOutput.stdout(text)
        }
    }
}

/// Reads `ModuleSignatureInfo` from a raw crash JSON: a JSON string (or object) mapping a signer
/// subject to module file names.
enum EvilJSON {
    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static func certificateSubjects(path: String) throws -> [String: String] {
        guard let raw = JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: path))) else { throw Invalid(description: "not valid JSON") }
        guard var info = raw["ModuleSignatureInfo"] else { return [:] }
        if case .string(let text) = info {
            guard let parsed = JSONValue.parse(Data(text.utf8)) else { throw Invalid(description: "ModuleSignatureInfo is not valid JSON") }
            info = parsed
        }
        guard case .object(let pairs) = info else { return [:] }
        var out: [String: String] = [:]
        for (subject, files) in pairs {
            guard case .array(let list) = files else { continue }
            for case .string(let file) in list { out[file] = subject }
        }
        return out
    }
}
