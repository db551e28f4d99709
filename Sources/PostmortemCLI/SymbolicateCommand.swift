import ArgumentParser
import Foundation
import SymbolSources
import Symbolication

struct SymbolicateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "symbolicate",
        abstract: "Symbolicate an Eliot /symbolicate/v5 (or v4) request read from standard input.",
        discussion: """
        Prints the response the symbolication service would give. A request the API would refuse \
        prints its JSON error body on standard error and exits with 1.
        """)

    @OptionGroup var sources: SymbolSourceOptions

    @Flag(name: .customLong("v4"), help: "Read a v4 request and print a v4 response.")
    var v4 = false

    @Flag(help: "Add the debug statistics a 'Debug: true' request header adds (v5).")
    var debug = false

    func run() async throws {
        let body = FileHandle.standardInput.readDataToEndOfFile()
        // Eliot keeps no negative cache: a module missing now is looked up again next time.
        let supplier = SymbolSupplier(configuration: sources.configuration(negativeCacheTTL: .zero))
        let result = await Symbolicator(supplier: supplier).symbolicate(body: body, version: v4 ? .v4 : .v5, debug: debug && !v4)
        await supplier.shutdown()
        switch result {
        case .success(let json):
            FileHandleOutput.stdout(json + "\n")
        case .failure(let failure):
            FileHandleOutput.stderr(failure.body + "\n")
            throw ExitCode(1)
        }
    }
}
