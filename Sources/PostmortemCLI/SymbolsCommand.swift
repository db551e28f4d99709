import ArgumentParser
import BreakpadSymbols
import ObjectFiles
import SymbolDump
import Foundation
import ServiceSupport
import SymbolSources

struct SymbolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "symbols",
        abstract: "Inspect Breakpad symbol files; write them from ELF/DWARF files; upload them to a symbol server.",
        subcommands: [Info.self, Lookup.self, Dump.self, SymbolsUploadCommand.self])

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dump",
            abstract: "Write a Breakpad .sym from an ELF or Mach-O file with DWARF (dump_syms): MODULE, INFO, FILE, INLINE_ORIGIN, FUNC, INLINE, lines, PUBLIC, STACK CFI.",
            discussion: """
            Without --tree the .sym goes to standard output. With --tree OUT every FILE is written to \
            OUT/<debug file>/<DEBUG_ID>/<debug file>.sym, the symbol-server layout, every architecture of a fat \
            Mach-O file unless --arch names one. Mach-O: thin or fat, images, objects and dSYM companions \
            (--debug-file), compact unwind. ELF: executables, shared libraries, separate debug files and objects.
            """)
        @Argument(help: "ELF or Mach-O executables, shared libraries or objects.") var files: [String]
        @Option(name: .customLong("debug-file"), help: "The separate debug file (.debug / .dbg) holding the DWARF of the single FILE.") var debugFile: String?
        @Option(help: "Write a symbol-server tree under this directory instead of standard output.") var tree: String?
        @Flag(name: .customLong("no-inlines"), help: "Leave out INLINE and INLINE_ORIGIN records.") var noInlines = false
        @Flag(name: .customLong("no-cfi"), help: "Leave out STACK CFI records.") var noCFI = false
        @Option(help: "The slice of a fat Mach-O file to dump (x86, x86_64, arm, arm64); default the first.") var arch: String?

        /// Every architecture of an ELF or Mach-O file (one for ELF and thin Mach-O).
        static func slices(_ path: String) throws -> [any DebugObject] {
            guard let objects = try debugObjects(ObjectBytes.map(path: path)) else {
                throw ObjectFileError.notSupported("\(path) is neither an ELF nor a Mach-O file")
            }
            return objects
        }

        /// An ELF or Mach-O file (one slice of a fat one).
        static func open(_ path: String, arch: String?) throws -> any DebugObject {
            let slices = try slices(path)
            guard let chosen = arch.map({ a in slices.first { $0.architecture.breakpadName == a } }) ?? slices.first else {
                throw ObjectFileError.notSupported("\(path) has no \(arch ?? "") slice (it has \(slices.map(\.architecture.breakpadName).joined(separator: ", ")))")
            }
            return chosen
        }

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("name at least one file") }
            if tree == nil, files.count > 1 { throw ValidationError("several files need --tree OUT") }
            if debugFile != nil, files.count > 1 { throw ValidationError("--debug-file goes with a single FILE") }
        }

        func run() throws {
            var failed = 0
            for (n, path) in files.enumerated() {
                if files.count > 1 { FileHandleOutput.stderr("[\(n + 1)/\(files.count)] \(path)\n") }
                do {
                  // A tree gets every architecture of a fat file; standard output one.
                  let binaries = tree != nil && arch == nil ? try Self.slices(path) : [try Self.open(path, arch: arch)]
                  for binary in binaries {
                    let debug = try debugFile.map { try Self.open($0, arch: binary.architecture.breakpadName) }
                    let name = (path as NSString).lastPathComponent
                    let options = SymbolFileWriter.Options(inlines: !noInlines, cfi: !noCFI, generator: "postmortem \(PostmortemVersion.current)",
                                                           threads: ProcessInfo.processInfo.activeProcessorCount)
                    // The records go out as they are written: to the tree (under a temporary
                    // name until complete) or to standard output.
                    let target: String?, handle: FileHandle
                    if let tree {
                        let directory = "\(tree)/\(name)/\(binary.debugID)"
                        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                        target = "\(directory)/\(name).sym"
                        guard FileManager.default.createFile(atPath: target! + ".partial", contents: nil),
                              let h = FileHandle(forWritingAtPath: target! + ".partial") else { throw ValidationError("cannot write \(target!)") }
                        handle = h
                    } else {
                        (target, handle) = (nil, FileHandle.standardOutput)
                    }
                    var writeError: (any Error)?
                    let (summary, problems) = try SymbolFileWriter.write(binary: binary, debug: debug, debugFileName: name, options: options) { block in
                        guard writeError == nil else { return }
                        do { try handle.write(contentsOf: block) } catch { writeError = error }
                    }
                    if let writeError { throw writeError }
                    for p in problems.prefix(20) { FileHandleOutput.stderr("\(path): skipped DWARF \(p)\n") }
                    if let target {
                        try handle.close()
                        if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
                        try FileManager.default.moveItem(atPath: target + ".partial", toPath: target)
                        FileHandleOutput.stderr("\(target): \(summary.functions) FUNC, \(summary.lines) lines, \(summary.inlines) INLINE, \(summary.publics) PUBLIC\n")
                    }
                  }
                } catch {
                    FileHandleOutput.stderr("\(path): \(error)\n")
                    failed += 1
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }

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
