import CompressNIO
import CrashModel
import Crypto
import Foundation
import JSONSupport
import NIOCore
import Storage

/// The public export for data warehouses (`data-and-access.md` §6): each processed crash reduced
/// to its public fields, then to the export schema with the legacy aliases, written as
/// `v1/crash_report/<YYYYMMDD>/<crash id>`; and per day one gzip JSON-lines file with a manifest
/// (`v1/crash_report_daily/<YYYYMMDD>/crashes.jsonl.gz`, `…/manifest.json`) for bulk loading.
/// Written on a crash's first processing when `export.enabled`, and by `postmortem export --date`,
/// which is idempotent: the same stored crashes give byte-identical objects.
public struct CrashExporter: Sendable {
    /// Where processed crashes are read from.
    let source: any BlobStore
    /// Where the export goes (a directory or an S3 bucket/prefix).
    public let target: any BlobStore
    let processedSchema: CrashSchema
    let exportSchema: ExportSchema

    public init(source: any BlobStore, target: any BlobStore, schemas: CrashSchemas) {
        self.source = source
        self.target = target
        processedSchema = schemas.processed
        exportSchema = schemas.export
    }


    /// The export document of a processed crash: public fields only, the aliases, the schema's
    /// fields and types only, keys in the schema's order.
    public func document(_ processed: JSONValue) -> JSONValue {
        exportSchema.export(processedSchema.reduce(processed, permissions: ["public"]))
    }

    /// Writes one crash's export object (the processor calls this on first processing).
    public func exportCrash(_ crashID: String, processed: JSONValue) async throws {
        guard CrashID.isValid(crashID) else { return }
        try await target.put(BlobKeys.exportedCrash(crashID), Data(document(processed).serialized().utf8))
    }

    public struct DayOutcome: Sendable, Equatable {
        public var crashes = 0
        /// Raw crashes of the day with no processed crash (yet).
        public var unprocessed = 0
        public var bytes = 0
    }

    /// Exports every processed crash received on `day` (`YYYYMMDD`): the per-crash objects and
    /// the day's JSON-lines file and manifest. `progress` gets (done, total).
    public func exportDay(_ day: String, progress: (@Sendable (Int, Int) -> Void)? = nil) async throws -> DayOutcome {
        let ids = try await source.list(prefix: BlobKeys.rawCrashDay(day)).compactMap { $0.split(separator: "/").last.map(String.init) }
            .filter { CrashID.isValid($0) }.sorted()
        var outcome = DayOutcome()
        // The day's lines are compressed as they come (1 MiB at a time), so memory holds the
        // compressed file, not every document of the day.
        let compressor = CompressionAlgorithm.gzip().compressor
        try compressor.startStream()
        defer { try? compressor.finishStream() }
        var compressed = Data()
        var lines = ByteBuffer()
        func flush(_ mode: CompressNIOFlush) throws {
            let out = try lines.compressStream(with: compressor, flush: mode)
            compressed.append(contentsOf: out.readableBytesView)
            lines.clear()
        }
        for (i, id) in ids.enumerated() {
            if let data = try await source.get(BlobKeys.processedCrash(id)), let processed = JSONValue.parse(data) {
                let line = Data(document(processed).serialized().utf8)
                try await target.put(BlobKeys.exportedCrash(id), line)
                lines.writeBytes(line)
                lines.writeInteger(UInt8(0x0A))
                if lines.readableBytes >= 1 << 20 { try flush(.sync) }
                outcome.crashes += 1
            } else {
                outcome.unprocessed += 1
            }
            if i % 100 == 99 || i == ids.count - 1 { progress?(i + 1, ids.count) }
        }
        try flush(.finish)
        outcome.bytes = compressed.count
        let manifest = JSONValue.object([
            ("day", .string(day)), ("crashes", .int(Int64(outcome.crashes))), ("target_version", .int(exportSchema.targetVersion)),
            ("file", .string("crashes.jsonl.gz")), ("bytes", .int(Int64(compressed.count))),
            ("sha256", .string(SHA256.hash(data: compressed).map { String(format: "%02x", $0) }.joined())),
            ("fields", .array(exportSchema.fieldNames.map { .string($0) })),
        ])
        try await target.put(BlobKeys.exportDay(day), compressed)
        try await target.put(BlobKeys.exportManifest(day), Data(manifest.serialized().utf8))
        return outcome
    }
}
