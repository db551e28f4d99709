import CrashModel
import ArgumentParser
import Foundation
import Logging
import Processor
import ServiceSupport
import Storage

/// Where the storage commands find the stores: the same configuration as the services.
struct StorageOptions: ParsableArguments {
    @Option(help: "Data directory of the embedded default. Default: ./postmortem-data or POSTMORTEM_DATA_DIR.")
    var data: String?

    @Option(help: "A JSON configuration file. Default: POSTMORTEM_CONFIG_FILE.")
    var config: String?

    /// The configuration (file, environment) with `--data` applied.
    func loadConfiguration() async throws -> PostmortemConfiguration {
        var configuration: PostmortemConfiguration
        do {
            configuration = try await PostmortemConfiguration.load(file: config)
        } catch {
            throw ValidationError("\(error)")
        }
        configuration.resolve(dataDirectory: data)
        return configuration
    }

    func open() async throws -> StorageContext {
        try await open(loadConfiguration())
    }

    func open(_ configuration: PostmortemConfiguration) async throws -> StorageContext {
        Observability.bootstrapLogging(format: "text", level: "warning")
        do {
            return try await StorageContext.open(configuration.storage, logger: Logger(label: "postmortem.cli"))
        } catch {
            throw fail("cannot open storage: \(error)")
        }
    }
}

struct BlobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blobs",
        abstract: "Read and write the blob store (filesystem or S3) that the services use.",
        subcommands: [Put.self, Get.self, List.self, Delete.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "put", abstract: "Store FILE (or standard input with -) under KEY, atomically.")
        @OptionGroup var storage: StorageOptions
        @Argument var key: String
        @Argument var file: String

        func run() async throws {
            let data: Data
            if file == "-" { data = FileHandle.standardInput.readDataToEndOfFile() } else {
                guard let d = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
                data = d
            }
            let context = try await storage.open()
            defer { Task { await context.close() } }
            do { try await context.blobs.put(key, data) } catch { throw fail("\(error)") }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Write the object under KEY to standard output.")
        @OptionGroup var storage: StorageOptions
        @Argument var key: String

        func run() async throws {
            let context = try await storage.open()
            let data: Data?
            do { data = try await context.blobs.get(key) } catch { await context.close(); throw fail("\(error)") }
            await context.close()
            guard let data else { throw fail("no object under \(key)") }
            FileHandleOutput.stdout(data)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Print the keys starting with PREFIX, one per line.")
        @OptionGroup var storage: StorageOptions
        @Argument var prefix: String = ""

        func run() async throws {
            let context = try await storage.open()
            let keys: [String]
            do { keys = try await context.blobs.list(prefix: prefix) } catch { await context.close(); throw fail("\(error)") }
            await context.close()
            FileHandleOutput.stdout(keys.map { $0 + "\n" }.joined())
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "delete", abstract: "Remove the object under KEY.")
        @OptionGroup var storage: StorageOptions
        @Argument var key: String

        func run() async throws {
            let context = try await storage.open()
            do { try await context.blobs.delete(key) } catch { await context.close(); throw fail("\(error)") }
            await context.close()
        }
    }
}

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect the processing queues: counts, dead letters; requeue dead letters; republish stored crashes never processed.",
        subcommands: [Status.self, DeadLetters.self, Requeue.self, Republish.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Ready, leased and dead messages per queue.")
        @OptionGroup var storage: StorageOptions

        func run() async throws {
            let context = try await storage.open()
            let counts: [QueueName: WorkQueue.Counts]
            do { counts = try await context.queue.counts() } catch { await context.close(); throw fail("\(error)") }
            await context.close()
            var out = "queue          ready   leased   dead\n"
            for q in QueueName.allCases {
                let c = counts[q] ?? WorkQueue.Counts()
                out += q.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(format: "%8d %8d %6d\n", c.ready, c.leased, c.deadLetters)
            }
            FileHandleOutput.stdout(out)
        }
    }

    struct DeadLetters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "dead-letters", abstract: "List messages that failed too often.")
        @OptionGroup var storage: StorageOptions
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            let context = try await storage.open()
            let letters: [DeadLetter]
            do { letters = try await context.queue.deadLetters(limit: limit) } catch { await context.close(); throw fail("\(error)") }
            await context.close()
            FileHandleOutput.stdout(letters.map { "\($0.id)\t\($0.queue.rawValue)\t\($0.item.message)\t\($0.attempts)\t\($0.lastError ?? "")\n" }.joined())
        }
    }

    struct Requeue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "requeue", abstract: "Put dead letters back on their queues.")
        @OptionGroup var storage: StorageOptions
        @Argument(help: "Dead-letter ids (from `queue dead-letters`).") var ids: [Int64]

        func run() async throws {
            let context = try await storage.open()
            var missing: [Int64] = []
            for id in ids {
                do { if try await !context.queue.requeue(deadLetter: id) { missing.append(id) } } catch { await context.close(); throw fail("\(error)") }
            }
            await context.close()
            if !missing.isEmpty { throw fail("no dead letter with id \(missing.map(String.init).joined(separator: ", "))") }
        }
    }

    struct Republish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "republish",
            abstract: "Queue the stored raw crashes of a day that have no processed crash and are not queued (Socorro's MissingProcessedCrash job; serve runs it daily for the previous day).")
        @OptionGroup var storage: StorageOptions
        @Option(help: "The UTC day, YYYY-MM-DD or YYYYMMDD. Default: yesterday.") var date: String?

        func run() async throws {
            let day: String
            if let date {
                let digits = date.replacingOccurrences(of: "-", with: "")
                guard digits.utf8.count == 8, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                    throw ValidationError("--date must be YYYY-MM-DD, not \(date)")
                }
                day = digits
            } else {
                day = BlobKeys.dayStamp(Date().addingTimeInterval(-86_400))
            }
            let context = try await storage.open()
            let republisher = Republisher(blobs: context.blobs, metadata: context.metadata, queue: context.queue)
            let report: Republisher.Report
            do {
                report = try await republisher.republish(day: day) { done, total in
                    FileHandleOutput.stderr("\rchecked \(done) of \(total) stored crashes")
                }
            } catch {
                await context.close()
                throw fail("\(error)")
            }
            await context.close()
            if report.stored > 0 { FileHandleOutput.stderr("\n") }
            var out = "\(day): \(report.stored) stored, \(report.processed) processed, \(report.waiting) queued or dead-lettered, \(report.queued.count) republished\n"
            for id in report.queued { out += id + "\n" }
            FileHandleOutput.stdout(out)
        }
    }
}
