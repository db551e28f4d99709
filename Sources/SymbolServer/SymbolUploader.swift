import Foundation
import Storage

/// Stores a validated, extracted upload archive: one upload record, each member stored (or
/// skipped when the same content is there), the record completed with its stored, skipped and
/// ignored keys. The archive was validated and inflated whole before this runs, so a refused
/// archive stores nothing; a storage failure half-way keeps what was stored, and a retry skips
/// it (Tecken's rule).
public struct SymbolUploader: Sendable {
    public let store: SymbolStore
    public var bucketName: String
    /// Members compressed and stored at once (gzip is CPU-bound; storage waits on I/O).
    public var concurrency = 4
    static let recordBatch = 200
    /// Called with the `.sym` files an upload stored: crashes waiting for them are reprocessed.
    public var onStored: @Sendable ([SymbolFileRecord]) async -> Void

    public init(store: SymbolStore, bucketName: String, onStored: @escaping @Sendable ([SymbolFileRecord]) async -> Void = { _ in }) {
        self.store = store
        self.bucketName = bucketName
        self.onStored = onStored
    }

    /// `extracted`: the directory `UploadArchive.extractAll` inflated the members into (member
    /// `i` in the file named `i`).
    public func upload(_ archive: UploadArchive, extracted: String, filename: String, size: Int64, accountID: Int64?, isTry: Bool,
                       downloadURL: String? = nil, redirectURLs: [String] = []) async throws -> SymbolUploadRecord {
        let metadata = store.metadata
        let id = try await metadata.createSymbolUpload(accountID: accountID, filename: filename, size: size, contentHash: archive.contentHash,
                                                       isTry: isTry, bucket: bucketName, downloadURL: downloadURL, redirectURLs: redirectURLs)
        var stored: [SymbolFileRecord] = [], skipped: [String] = []
        var unrecorded: [SymbolStore.StoredFile] = []
        let store = self.store
        do {
        try await withThrowingTaskGroup(of: (String, SymbolStore.StoredFile?).self) { group in
            var inFlight = 0
            func collect(_ result: (String, SymbolStore.StoredFile?)) async throws {
                if let file = result.1 {
                    stored.append(file.file)
                    unrecorded.append(file)
                } else {
                    skipped.append(result.0)
                }
                // Recorded in batches: one database sync per batch.
                if unrecorded.count >= Self.recordBatch {
                    try await metadata.recordSymbolFiles(unrecorded)
                    unrecorded.removeAll()
                }
            }
            let memberNames = Set(archive.members.map(\.name))
            for (index, member) in archive.members.enumerated() {
                let path = "\(extracted)/\(index)"
                let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
                if inFlight >= concurrency, let result = try await group.next() {
                    inFlight -= 1
                    try await collect(result)
                }
                group.addTask { (member.name, try await store.write(name: member.name, data: data, uploadID: id, isTry: isTry)) }
                inFlight += 1
                // A native debug file (ELF, Mach-O) also gets its .sym (one per architecture),
                // under the ids derived from it — unless the archive brings that .sym itself.
                for native in await NativeSymbols.generate(path: path, memberName: member.name) where !memberNames.contains(native.name) {
                    if inFlight >= concurrency, let result = try await group.next() {
                        inFlight -= 1
                        try await collect(result)
                    }
                    group.addTask { (native.name, try await store.write(name: native.name, data: native.data, uploadID: id, isTry: isTry)) }
                    inFlight += 1
                }
            }
            while let result = try await group.next() { try await collect(result) }
        }
        } catch {
            // What was stored before the failure is recorded, so a retry skips it.
            try? await metadata.recordSymbolFiles(unrecorded)
            throw error
        }
        try await metadata.recordSymbolFiles(unrecorded)
        // Keys in archive order, as a client listed them.
        let order = Dictionary(uniqueKeysWithValues: archive.members.enumerated().map { (SymbolStore.key($0.element.name, isTry: isTry), $0.offset) })
        stored.sort { (order[$0.key] ?? 0) < (order[$1.key] ?? 0) }
        let memberOrder = Dictionary(uniqueKeysWithValues: archive.members.enumerated().map { ($0.element.name, $0.offset) })
        skipped.sort { (memberOrder[$0] ?? 0) < (memberOrder[$1] ?? 0) }
        try await metadata.completeSymbolUpload(id: id, stored: stored.map(\.key), skipped: skipped, ignored: archive.ignored)
        if !stored.isEmpty { store.invalidateLookups() }
        let symbols = stored.filter { $0.debugFilename != nil && $0.debugId != nil }
        if !symbols.isEmpty { await onStored(symbols) }
        guard let record = try await metadata.symbolUpload(id: id) else { throw CocoaError(.fileNoSuchFile) }
        return record
    }
}
