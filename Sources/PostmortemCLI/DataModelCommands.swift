import ArgumentParser
import CrashModel
import Foundation
import Processor
import ServiceSupport
import Storage

// The crash data model's configuration (schemas, products, export) and its commands:
// `schema check|export`, `export`, `bugs associate|remove`.

/// The deployment's schemas: `schema.dir`, else the shipped ones.
func crashSchemas(_ configuration: PostmortemConfiguration) throws -> CrashSchemas {
    try CrashSchemas.load(directory: configuration.reader.string(forKey: "schema.dir", default: ""))
}

/// The deployment's products: the `*.json` files of `products.dir` (none: any product).
func productCatalog(_ configuration: PostmortemConfiguration) throws -> ProductCatalog {
    try ProductCatalog.load(directory: configuration.reader.string(forKey: "products.dir", default: ""))
}

/// Where the public export goes: `export.to` (a directory, or `s3://bucket/prefix` reached with
/// the `s3.*` endpoint and credentials), by default `<data>/export`.
func exportStore(_ configuration: PostmortemConfiguration, to override: String? = nil) throws -> any BlobStore {
    let target = override ?? configuration.reader.string(forKey: "export.to", default: "")
    if target.hasPrefix("s3://") {
        let rest = target.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        var prefix = String(rest.dropFirst(bucket.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard !bucket.isEmpty else { throw ValidationError("export target \(target) names no bucket") }
        guard var s3 = configuration.s3 else { throw ValidationError("exporting to \(target) needs the s3.* settings (endpoint and credentials)") }
        if !prefix.isEmpty { prefix += "/" }
        s3.bucket = bucket
        s3.keyPrefix = prefix
        return try S3BlobStore(configuration: s3)
    }
    let directory = target.isEmpty ? configuration.dataDirectory + "/export" : target
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return try FileBlobStore(root: URL(fileURLWithPath: directory))
}

/// The exporter the processor runs on first processing, when `export.enabled`.
func crashExporter(_ configuration: PostmortemConfiguration, storage: StorageContext, schemas: CrashSchemas) throws -> CrashExporter? {
    guard configuration.reader.bool(forKey: "export.enabled", default: false) else { return nil }
    return CrashExporter(source: storage.blobs, target: try exportStore(configuration), schemas: schemas)
}

struct SchemaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Check crash schema files against the meta-schema's rules, or write the shipped ones to start from.",
        subcommands: [Check.self, Export.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Check a schema directory (raw_crash.schema.yaml, processed_crash.schema.yaml, telemetry_socorro_crash.json); the shipped files when no directory is given.")
        @Argument(help: "The directory. Default: the shipped schemas.") var directory: String?

        func run() async throws {
            var problems: [SchemaCheck.Problem]
            var label = directory ?? "the shipped schemas"
            if let directory {
                problems = SchemaCheck.check(directory: directory)
            } else {
                // The shipped files, checked from a temporary copy exactly as a deployment's would be.
                let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("postmortem-schema-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: temporary) }
                _ = try CrashSchemas.exportBundled(to: temporary)
                problems = SchemaCheck.check(directory: temporary).map {
                    SchemaCheck.Problem(file: "(shipped) " + ($0.file as NSString).lastPathComponent, field: $0.field, reason: $0.reason)
                }
                label = "the shipped schemas"
            }
            guard problems.isEmpty else {
                for p in problems { FileHandleOutput.stderr(p.description + "\n") }
                throw fail("\(label): \(problems.count) problem\(problems.count == 1 ? "" : "s")")
            }
            let schemas = try CrashSchemas.load(directory: directory)
            FileHandleOutput.stdout("\(label): ok (\(schemas.raw.fieldNames.count) raw fields, \(schemas.processed.fieldNames.count) processed fields, "
                                    + "\(schemas.processed.annotationCopies.count) copied from annotations, \(schemas.export.fieldNames.count) export fields)\n")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export", abstract: "Write the shipped schema files into a directory (for schema.dir); existing files are kept unless --force.")
        @Argument(help: "The directory to write.") var directory: String
        @Flag(help: "Overwrite existing files.") var force = false

        func run() async throws {
            let written = try CrashSchemas.exportBundled(to: directory, overwrite: force)
            for path in written { FileHandleOutput.stdout("wrote \(path)\n") }
            if written.isEmpty { FileHandleOutput.stdout("every file exists already in \(directory) (use --force to overwrite)\n") }
        }
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a day's processed crashes (public fields, export schema) for a data warehouse.",
        discussion: """
        Writes v1/crash_report/<YYYYMMDD>/<crash id> for each processed crash received that day, and \
        v1/crash_report_daily/<YYYYMMDD>/crashes.jsonl.gz with manifest.json. Running it again for a day gives the same \
        objects. See docs/export.md for loading into DuckDB, ClickHouse or BigQuery.
        """)
    @OptionGroup var storage: StorageOptions
    @Option(help: "The day (UTC), YYYY-MM-DD.") var date: String
    @Option(help: "A directory or s3://bucket/prefix. Default: export.to of the configuration, else <data>/export.") var to: String?

    func validate() throws {
        guard Self.day(date) != nil else { throw ValidationError("--date must be YYYY-MM-DD") }
    }

    static func day(_ text: String) -> String? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1970...9999).contains(y), (1...12).contains(m), (1...31).contains(d) else { return nil }
        return String(format: "%04d%02d%02d", y, m, d)
    }

    func run() async throws {
        let configuration = try await storage.loadConfiguration()
        let schemas: CrashSchemas
        do { schemas = try crashSchemas(configuration) } catch { throw fail("\(error)") }
        let target = try exportStore(configuration, to: to)
        let context = try await storage.open(configuration)
        let exporter = CrashExporter(source: context.blobs, target: target, schemas: schemas)
        let day = Self.day(date)!
        let terminal = isatty(2) != 0
        let outcome: CrashExporter.DayOutcome
        do {
            outcome = try await exporter.exportDay(day) { done, total in
                FileHandleOutput.stderr((terminal ? "\r" : "") + "exported \(done)/\(total)" + (terminal ? "   " : "\n"))
            }
        } catch {
            await context.close()
            throw fail("export failed: \(error)")
        }
        await context.close()
        if terminal { FileHandleOutput.stderr("\n") }
        FileHandleOutput.stdout("\(day): \(outcome.crashes) crash\(outcome.crashes == 1 ? "" : "es") exported to \(target.description)"
                                + (outcome.unprocessed > 0 ? " (\(outcome.unprocessed) not processed yet)" : "") + ", daily file \(outcome.bytes) bytes\n")
    }
}

struct BugsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bugs", abstract: "Associate bugs with signatures (the Bugs and SignaturesByBugs models, the report's Bugzilla tab).",
        subcommands: [Associate.self, Remove.self])

    struct Associate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "associate", abstract: "Associate a bug with one or more signatures.")
        @OptionGroup var change: BugChange

        func validate() throws {
            guard change.bug > 0 else { throw ValidationError("the bug number must be positive") }
            guard !change.signatures.isEmpty, change.signatures.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 2048 }) else {
                throw ValidationError("give one or more signatures (at most 2048 bytes each)")
            }
        }

        func run() async throws { try await change.apply(associate: true) }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a bug's association with signatures.")
        @OptionGroup var change: BugChange
        func run() async throws { try await change.apply(associate: false) }
    }

    /// The arguments of `associate` and `remove`.
    struct BugChange: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Argument(help: "The bug number.") var bug: Int64
        @Argument(help: "Signatures (quote each).") var signatures: [String]

        func apply(associate: Bool) async throws {
            let context = try await storage.open()
            do {
                for s in signatures {
                    let changed = associate ? try await context.metadata.associateBug(bug, signature: s)
                        : try await context.metadata.removeBugAssociation(bug, signature: s)
                    let verdict = associate ? (changed ? "associated" : "already associated") : (changed ? "removed" : "not associated")
                    FileHandleOutput.stdout("\(verdict): bug \(bug) ↔ \(s)\n")
                }
            } catch { await context.close(); throw fail("\(error)") }
            await context.close()
        }
    }
}
