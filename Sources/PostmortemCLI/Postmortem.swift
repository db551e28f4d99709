import ArgumentParser
import Foundation

@main
struct Postmortem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postmortem",
        abstract: "Crash reporting: collect, symbolicate, process and search crash reports.",
        subcommands: [
            ServeCommand.self, CollectorCommand.self, ProcessorCommand.self, ReprocessCommand.self, SymbolicationServerCommand.self, SymbolsServerCommand.self, SubmitCommand.self, StackwalkCommand.self, SymbolicateCommand.self, SignatureCommand.self,
            SymbolsCommand.self, BlobsCommand.self, QueueCommand.self, UsersCommand.self, GroupsCommand.self, TokensCommand.self, VersionsCommand.self, CleanupCommand.self,
            SchemaCommand.self, ExportCommand.self, BugsCommand.self, WebappCommand.self,
        ])

    /// Runs the command with the contract's exit codes: 0 success, 1 operational failure,
    /// 2 usage error (ArgumentParser would use 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandleOutput.stderr(fullMessage(for: error) + "\n")
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Prints one clear line to stderr; the returned code (1) marks an operational failure.
func fail(_ message: String) -> ExitCode {
    FileHandleOutput.stderr("postmortem: \(message)\n")
    return ExitCode(1)
}
