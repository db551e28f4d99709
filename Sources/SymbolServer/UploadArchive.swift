import CSystemShims
import Foundation
import ZIPFoundation

/// A symbol upload's zip archive, read and validated as Tecken does (`symbols-server.md` §2,
/// "Archive validation"), plus what Tecken leaves out: no absolute or `..` paths, no symlinks, a
/// bounded member count and a bounded uncompressed size checked before anything is extracted — so
/// a rejected archive never leaves anything behind, and a zip bomb costs nothing.
///
/// Sendable by hand-off: one request owns an archive and hands it to a pool thread for
/// `extractAll` while it waits; no two threads read through one ZIPFoundation handle.
public struct UploadArchive: @unchecked Sendable {
    public struct Limits: Sendable {
        /// A build uploads hundreds of files per archive; `symbols upload` splits larger trees.
        public var maxMembers = 5_000
        public var maxUncompressedBytes: UInt64 = 4 << 30
        /// Members of at least 1 MiB that inflate more than this many times are refused: text
        /// symbol files compress 4–10×, a zip bomb a thousandfold.
        public var maxCompressionRatio: UInt64 = 200
        /// Member names containing one of these are refused (Tecken's default).
        public var disallowedSnippets = ["qcom/proprietary"]
        public init() {}
    }

    /// A file to store, under its path in the archive (`<debug_file>/<id>/<file>`).
    public struct Member: Sendable, Equatable {
        public let name: String
        public let size: UInt64
    }

    /// Why an archive is refused; `message` is the text of the 400 answer.
    public enum Rejection: Error, Equatable, CustomStringConvertible {
        case notAZip
        case duplicateWithDifferentSizes(name: String, first: UInt64, later: UInt64)
        case disallowedSnippet(String)
        case unrecognizedPattern(String)
        case unsafePath(String)
        case symlink(String)
        case tooManyMembers(limit: Int)
        case tooLarge(limit: UInt64)
        case compressionRatio(name: String, ratio: UInt64, limit: UInt64)
        case unreadable(String)

        public var message: String {
            switch self {
            case .notAZip: "File is not a zip file"
            case let .duplicateWithDifferentSizes(name, first, later):
                // Tecken names the later member's size first.
                "The zipfile buffer contains two files both called \(name) and they have difference sizes (\(later) != \(first))"
            case .disallowedSnippet(let s): "Content of archive file contains the snippet '\(s)' which is not allowed"
            case .unrecognizedPattern(let name):
                "Unrecognized file pattern. Should only be <module>/<hex>/<file> or <name>-symbols.txt and nothing else. (First unrecognized pattern was '\(name)')"
            case .unsafePath(let name): "The archive member '\(name)' is an absolute path or contains '.' or '..' components"
            case .symlink(let name): "The archive member '\(name)' is a symbolic link"
            case .tooManyMembers(let limit): "The archive has more than \(limit) members"
            case .tooLarge(let limit): "The archive's members are larger than \(limit) bytes uncompressed"
            case let .compressionRatio(name, ratio, limit):
                "The archive member '\(name)' inflates \(ratio) times (more than \(limit)): refused as a zip bomb"
            case .unreadable(let name): "The archive member '\(name)' is damaged (it does not inflate to its recorded size and CRC-32)"
            }
        }

        public var description: String { message }
    }

    public let members: [Member]
    /// Members Tecken ignores and reports: root-level `<name>-symbols.txt`, every `.DS_Store`.
    public let ignored: [String]
    /// Every file of the archive (stored and ignored), once per name: the upload's content hash.
    public let listing: [Member]
    private let archive: ZIPFoundation.Archive
    /// The zip file, when it stays in place (more handles read it in parallel).
    private let url: URL?

    /// Reads and validates `data`; nothing is extracted yet. The bytes go through a temporary
    /// file: ZIPFoundation's in-memory reader traps on offsets past the end of a hostile archive
    /// (found by the `symbolupload` fuzz target), its file reader does not.
    public init(data: Data, limits: Limits = Limits()) throws(Rejection) {
        let path = NSTemporaryDirectory() + "/postmortem-archive-\(UUID().uuidString).zip"
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else { throw .notAZip }
        // The open file outlives its name.
        defer { unlink(path) }
        let archive: ZIPFoundation.Archive
        do { archive = try ZIPFoundation.Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch { throw .notAZip }
        try self.init(archive: archive, url: nil, limits: limits)
    }

    /// Reads and validates the zip file at `url`, which must stay in place while members are read.
    public init(url: URL, limits: Limits = Limits()) throws(Rejection) {
        let archive: ZIPFoundation.Archive
        do { archive = try ZIPFoundation.Archive(url: url, accessMode: .read) } catch { throw .notAZip }
        try self.init(archive: archive, url: url, limits: limits)
    }

    private init(archive: ZIPFoundation.Archive, url: URL?, limits: Limits) throws(Rejection) {
        self.url = url
        // Counted and summed from the central directory before any member is read.
        var entries: [Entry] = []
        var total: UInt64 = 0
        for entry in archive {
            entries.append(entry)
            guard entries.count <= limits.maxMembers else { throw .tooManyMembers(limit: limits.maxMembers) }
            let (sum, overflow) = total.addingReportingOverflow(entry.uncompressedSize)
            guard !overflow, sum <= limits.maxUncompressedBytes else { throw .tooLarge(limit: limits.maxUncompressedBytes) }
            total = sum
            if entry.uncompressedSize >= 1 << 20 {
                let ratio = entry.uncompressedSize / max(1, entry.compressedSize)
                guard ratio <= limits.maxCompressionRatio else {
                    throw .compressionRatio(name: entry.path, ratio: ratio, limit: limits.maxCompressionRatio)
                }
            }
        }
        // Tecken's order: duplicates first, then each member in archive order.
        var sizes: [String: UInt64] = [:]
        for entry in entries where entry.type != .directory {
            if let first = sizes[entry.path], first != entry.uncompressedSize {
                throw .duplicateWithDifferentSizes(name: entry.path, first: first, later: entry.uncompressedSize)
            }
            sizes[entry.path] = entry.uncompressedSize
        }
        var members: [Member] = [], ignored: [String] = [], seen = Set<String>(), listed = Set<String>(), listing: [Member] = []
        for entry in entries where entry.type != .directory {
            let name = entry.path
            if listed.insert(name).inserted { listing.append(Member(name: name, size: entry.uncompressedSize)) }
            if let snippet = limits.disallowedSnippets.first(where: { name.contains($0) }) { throw .disallowedSnippet(snippet) }
            guard entry.type != .symlink else { throw .symlink(name) }
            if Self.isIgnored(name) { ignored.append(name); continue }
            guard Self.matchesKeyPattern(name) else { throw .unrecognizedPattern(name) }
            guard !name.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) else {
                throw .unsafePath(name)
            }
            if seen.insert(name).inserted { members.append(Member(name: name, size: entry.uncompressedSize)) }
        }
        self.listing = listing
        self.members = members
        self.ignored = ignored
        self.archive = archive
    }

    /// Tecken's `content_hash`: the first 30 hex digits of the MD5 of the sorted `name:size`
    /// lines of every file in the archive.
    public var contentHash: String {
        let text = listing.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }.map { "\($0.name):\($0.size)" }.joined(separator: "\n")
        return String(SymbolStore.md5Hex(Data(text.utf8)).prefix(30))
    }

    /// The bytes of a member, stopping at its declared size (a lying header cannot inflate more).
    public func contents(of member: Member) throws -> Data {
        guard let entry = archive[member.name] else { throw CocoaError(.fileNoSuchFile) }
        var out = Data()
        out.reserveCapacity(Int(clamping: member.size))
        // The checksum is zlib's (ZIPFoundation's own is a bytewise table, a fifth of an upload's
        // time when every member is skipped).
        _ = try archive.extract(entry, bufferSize: 1 << 18, skipCRC32: true) { chunk in
            guard UInt64(out.count) + UInt64(chunk.count) <= member.size else { throw Rejection.tooLarge(limit: member.size) }
            out.append(chunk)
        }
        let crc = out.withUnsafeBytes { pm_crc32(0, $0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
        guard crc == entry.checksum, UInt64(out.count) == member.size else { throw ChecksumMismatch(name: member.name) }
        return out
    }

    /// Inflates every member into `directory` (member `i` of `members` into the file named `i`),
    /// checking its CRC-32 and size: a damaged archive is refused before anything is stored (the
    /// directory alone cannot show it), and storing then reads plain files. `workers` threads
    /// share the members, each with its own handle on the zip (ZIPFoundation reads serially).
    /// Blocking: run it on a thread pool.
    public func extractAll(into directory: String, workers: Int) throws(Rejection) {
        let workerCount = url == nil ? 1 : max(1, min(workers, members.count))
        let failure = FirstFailure()
        DispatchQueue.concurrentPerform(iterations: workerCount) { worker in
            let handle: ZIPFoundation.Archive
            if worker == 0 {
                handle = archive
            } else {
                guard let url, let opened = try? ZIPFoundation.Archive(url: url, accessMode: .read) else {
                    failure.set(.notAZip)
                    return
                }
                handle = opened
            }
            for index in stride(from: worker, to: members.count, by: workerCount) where !failure.isSet {
                let member = members[index]
                do {
                    try Self.extract(member, from: handle, to: "\(directory)/\(index)")
                } catch {
                    failure.set(.unreadable(member.name))
                    return
                }
            }
        }
        if let rejection = failure.value { throw rejection }
    }

    static func extract(_ member: Member, from archive: ZIPFoundation.Archive, to path: String) throws {
        guard let entry = archive[member.name] else { throw ChecksumMismatch(name: member.name) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        var crc: UInt32 = 0, size: UInt64 = 0
        _ = try archive.extract(entry, bufferSize: 1 << 18, skipCRC32: true) { chunk in
            size += UInt64(chunk.count)
            guard size <= member.size else { throw ChecksumMismatch(name: member.name) }
            try chunk.withUnsafeBytes { raw in
                crc = pm_crc32(crc, raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
                guard pm_write_all(fd, raw.baseAddress, raw.count) == 0 else { throw CocoaError(.fileWriteUnknown) }
            }
        }
        guard crc == entry.checksum, size == member.size else { throw ChecksumMismatch(name: member.name) }
    }

    public struct ChecksumMismatch: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "The archive member '\(name)' is damaged (its CRC-32 or size differs from the archive's directory)" }
    }

    /// Root-level `<something>-symbols.txt`, or any member whose file name is `.DS_Store`.
    static func isIgnored(_ name: String) -> Bool {
        if name.split(separator: "/").last == ".DS_Store" { return true }
        return !name.contains("/") && name.hasSuffix("-symbols.txt") && name.count > "-symbols.txt".count
    }

    /// `<KEY>/<hex>/<KEY>`: KEY is one or more bytes that are not control characters, not ≥ 0x80
    /// and not one of `\ ^ ` < > { } [ ] # % " ' | /`.
    static func matchesKeyPattern(_ name: String) -> Bool {
        let parts = name.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty, parts[1].allSatisfy(isHexDigit) else { return false }
        return isKey(parts[0]) && isKey(parts[2])
    }

    static func isKey(_ bytes: Substring.UTF8View.SubSequence) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { b in b >= 0x20 && b < 0x7f && !forbiddenKeyBytes.contains(b) }
    }

    static let forbiddenKeyBytes: Set<UInt8> = Set(#"\^`<>{}[]#%"'|/"#.utf8)

    static func isHexDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x46).contains(b) || (0x61...0x66).contains(b) }
}

/// The first error of parallel workers.
final class FirstFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: UploadArchive.Rejection?
    var isSet: Bool { lock.withLock { stored != nil } }
    var value: UploadArchive.Rejection? { lock.withLock { stored } }
    func set(_ r: UploadArchive.Rejection) { lock.withLock { if stored == nil { stored = r } } }
}
