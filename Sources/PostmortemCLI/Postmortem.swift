import ArgumentParser

@main
struct Postmortem: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postmortem",
        abstract: "Crash reporting: collect, symbolicate, process and search crash reports.",
        subcommands: [SymbolicateCommand.self, SymbolsCommand.self])
}

/// Prints one clear line to stderr; the returned code (1) marks an operational failure.
func fail(_ message: String) -> ExitCode {
    FileHandleOutput.stderr("postmortem: \(message)\n")
    return ExitCode(1)
}
