import ArgumentParser
import BreakpadSymbols
import Foundation
import SymbolSources

struct SymbolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "symbols",
        abstract: "Inspect Breakpad symbol files; upload them to a symbol server.",
        subcommands: [Info.self, Lookup.self, SymbolsUploadCommand.self])

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "info", abstract: "Print a symbol file's module header, record counts and parse time.")

        @Argument(help: "A Breakpad .sym file.")
        var file: String

        func run() throws {
            let clock = ContinuousClock()
            let start = clock.now
            let table: SymbolTable
            do { table = try SymbolFileParser().parse(path: file) } catch { throw fail("\(file): \(error)") }
            let elapsed = clock.now - start
            let m = table.module, s = table.stats
            var out = """
            MODULE \(m.os) \(m.arch) \(m.debugId) \(m.debugFile)
            code id:          \(m.codeId ?? "-")
            code file:        \(m.codeFile ?? "-")
            generator:        \(m.generator ?? "-")

            """
            if let url = m.url { out += "url:              \(url)\n" }
            let seconds = elapsed.inSeconds
            let rows: [(String, UInt64)] = [
                ("bytes", s.bytes), ("lines", s.lines), ("FILE", s.files), ("INLINE_ORIGIN", s.inlineOrigins),
                ("FUNC", s.functions), ("line records", s.lineRecords), ("INLINE", s.inlineRecords),
                ("PUBLIC", s.publics), ("STACK WIN", s.stackWin), ("STACK CFI INIT", s.stackCFIInit),
                ("STACK CFI", s.stackCFI), ("INFO", s.info), ("duplicates", s.duplicates),
                ("out of range", s.outOfRange), ("ignored STACK WIN", s.ignoredStackWin),
                ("unknown", s.unknown), ("malformed", s.malformed),
            ]
            for (name, value) in rows { out += name.padding(toLength: 18, withPad: " ", startingAt: 0) + "\(value)\n" }
            for e in s.firstErrors { out += "  \(e)\n" }
            let mbps = seconds > 0 ? Double(s.bytes) / 1e6 / seconds : 0
            out += String(format: "parse time:       %.3f s (%.0f MB/s)\n", seconds, mbps)
            FileHandleOutput.stdout(out)
        }
    }

    struct Lookup: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "lookup", abstract: "Look up module-relative addresses (hex) in a symbol file.")

        @Argument(help: "A Breakpad .sym file.")
        var file: String

        @Argument(help: "Module-relative addresses in hex (with or without 0x).")
        var addresses: [String]

        func run() throws {
            let table: SymbolTable
            do { table = try SymbolFileParser().parse(path: file) } catch { throw fail("\(file): \(error)") }
            for text in addresses {
                let digits = text.hasPrefix("0x") ? String(text.dropFirst(2)) : text
                guard let address = UInt64(digits, radix: 16) else { throw fail("not a hex address: \(text)") }
                guard let r = table.lookup(address) else {
                    FileHandleOutput.stdout("0x\(String(address, radix: 16)): no symbol\n")
                    continue
                }
                var line = "0x\(String(address, radix: 16)): \(r.function.name) + 0x\(String(address - r.function.address, radix: 16))"
                if let f = r.file { line += " [\(f):\(r.line)]" }
                FileHandleOutput.stdout(line + "\n")
                for i in r.inlines {
                    FileHandleOutput.stdout("    inlined: \(i.function)" + (i.file.map { " [\($0):\(i.line)]" } ?? "") + "\n")
                }
            }
        }
    }
}
