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

    @Option(name: [.customLong("evil-json"), .customLong("raw-json")],
            help: "A raw crash JSON file; its ModuleSignatureInfo sets modules' cert_subject.")
    var evilJSON: String?

    @Option(help: "Print the human report (to --output-file or standard output) and write the JSON report to this file.")
    var cyborg: String?

    @Option(help: "Log level: off, error, warn, info, debug, trace.")
    var verbose: StackwalkLog.Level = .error

    @Option(name: .customLong("log-file"), help: "Write the log here instead of standard error.")
    var logFile: String?

    @Flag(name: .customLong("no-color"), help: "Accepted for minidump-stackwalk compatibility; the report is never colored.")
    var noColor = false

    @Option(help: "Output features, as minidump-stackwalk names them: stable-basic, stable-all or unstable-all (all give the same report).")
    var features: StackwalkFeatures = .stableBasic

    @OptionGroup var sources: SymbolSourceOptions

    @Option(name: .customLong("output-file"), help: "Write the report here instead of standard output.")
    var outputFile: String?

    @Argument(help: "The minidump.")
    var dump: String

    @Argument(help: "More local symbol directories.")
    var symbolDirectories: [String] = []

    func validate() throws {
        if cyborg != nil, json { throw ValidationError("--cyborg already writes the JSON report; drop --json") }
    }

    func run() async throws {
        let log = try StackwalkLog(level: verbose, path: logFile)
        let minidump: Minidump
        do { minidump = try Minidump.open(path: dump) } catch {
            log.failure("\(dump): \(error)")
            throw fail("\(dump): \(error)")
        }
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
            log.failure("\(dump): \(error)")
            throw fail("\(dump): \(error)")
        }
        await supplier?.shutdown()
        log.summarize(state, dump: dump)
        if let cyborg {
            do { try (state.json(pretty: pretty) + "\n").write(toFile: cyborg, atomically: true, encoding: .utf8) } catch {
                throw fail("\(cyborg): \(error)")
            }
        }
        let text = json ? state.json(pretty: pretty) + "\n" : state.humanReport(brief: brief)
        if let outputFile {
            do { try text.write(toFile: outputFile, atomically: true, encoding: .utf8) } catch { throw fail("\(outputFile): \(error)") }
        } else {
            FileHandleOutput.stdout(text)
        }
    }
}

/// minidump-stackwalk's `--features` sets; every report field Postmortem has is stable.
enum StackwalkFeatures: String, ExpressibleByArgument, CaseIterable {
    case stableBasic = "stable-basic", stableAll = "stable-all", unstableAll = "unstable-all"
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
