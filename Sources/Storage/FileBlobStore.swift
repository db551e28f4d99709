import CSystemShims
import Foundation
import NIOPosix

/// Blobs as files under a root directory. A write goes to a temporary file in the target
/// directory, is fsynced, renamed over the key's path and the directory is fsynced: a reader sees
/// the old object or the whole new one, never a part, even if the process dies mid-write.
/// Leftover temporary files (names starting with `.tmp-`) are invisible to reads and listings and
/// are removed by `removeStaleTemporaryFiles`.
public struct FileBlobStore: BlobStore {
    public let root: URL
    /// Blocking file I/O runs here, off the concurrency pool.
    let threadPool: NIOThreadPool

    /// fsync waits on the disk, not the CPU: a crash's job spends most of its time waiting for
    /// its syncs, so the pool needs about as many threads as requests in flight. With 16, jobs
    /// queued behind waiting threads and the collector topped out near 480 crashes/s on 2 cores;
    /// with 64 it takes 850/s (docs/benchmarks.md). Idle threads cost only their stacks.
    public static let ioThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 64)
        pool.start()
        return pool
    }()

    public init(root: URL, threadPool: NIOThreadPool = FileBlobStore.ioThreads) throws {
        self.root = root.standardizedFileURL
        self.threadPool = threadPool
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
    }

    public var description: String { "filesystem \(root.path)" }

    /// The file that holds `key` (which may not exist): for streaming a large object to a client.
    public func filePath(for key: String) throws(BlobStoreError) -> String { try path(key) }

    func path(_ key: String) throws(BlobStoreError) -> String {
        try BlobKey.validate(key)
        return root.path + "/" + key
    }

    public func put(_ key: String, _ data: Data) async throws {
        let path = try path(key)
        try await threadPool.runIfActive { try Self.writeAtomically(path: path, key: key, data: data) }
    }

    /// One job on the I/O pool for the whole batch (a crash's files): every file is written and
    /// synced under a temporary name, then all but the last are renamed and their directories
    /// synced, then the last. One hand-off per batch instead of one per file.
    public func putAll(_ items: [(String, Data)]) async throws {
        guard !items.isEmpty else { return }
        let targets = try items.map { (key: $0.0, path: try path($0.0), data: $0.1) }
        try await threadPool.runIfActive {
            var written: [(temporary: String, path: String, key: String)] = []
            var done = 0
            defer { for w in written.dropFirst(done) { unlink(w.temporary) } }
            for t in targets { written.append((try Self.writeTemporary(path: t.path, key: t.key, data: t.data), t.path, t.key)) }
            func publish(_ range: Range<Int>) throws {
                var directories: [(String, String)] = []
                for i in range {
                    guard rename(written[i].temporary, written[i].path) == 0 else {
                        throw BlobStoreError.io(key: written[i].key, operation: "rename", errno: errno)
                    }
                    done = i + 1
                    let directory = (written[i].path as NSString).deletingLastPathComponent
                    if !directories.contains(where: { $0.0 == directory }) { directories.append((directory, written[i].key)) }
                }
                for (directory, key) in directories { try DirectorySync.shared.sync(directory, key: key) }
            }
            try publish(0..<(written.count - 1))
            try publish((written.count - 1)..<written.count)
        }
    }

    public func get(_ key: String) async throws -> Data? {
        let path = try path(key)
        return try await threadPool.runIfActive { () throws -> Data? in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT || errno == ENOTDIR { return nil }
                throw BlobStoreError.io(key: key, operation: "open", errno: errno)
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw BlobStoreError.io(key: key, operation: "stat", errno: errno) }
            if (st.st_mode & S_IFMT) == S_IFDIR { return nil }
            var data = Data(count: Int(st.st_size))
            var done = 0
            try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
                while done < buffer.count {
                    let n = read(fd, buffer.baseAddress! + done, buffer.count - done)
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 { throw BlobStoreError.io(key: key, operation: "read", errno: errno) }
                    if n == 0 { break }
                    done += n
                }
            }
            return done == data.count ? data : data.prefix(done)
        }
    }

    public func size(_ key: String) async throws -> Int? {
        let path = try path(key)
        return try await threadPool.runIfActive { () throws -> Int? in
            var st = stat()
            if stat(path, &st) != 0 {
                if errno == ENOENT || errno == ENOTDIR { return nil }
                throw BlobStoreError.io(key: key, operation: "stat", errno: errno)
            }
            return (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : nil
        }
    }

    public func delete(_ key: String) async throws {
        let path = try path(key)
        try await threadPool.runIfActive {
            if unlink(path) != 0 && errno != ENOENT && errno != ENOTDIR {
                throw BlobStoreError.io(key: key, operation: "unlink", errno: errno)
            }
        }
    }

    public func list(prefix: String) async throws -> [String] {
        try BlobKey.validatePrefix(prefix)
        let root = self.root.path
        return try await threadPool.runIfActive {
            // Walk only the directory the prefix names (up to its last `/`).
            let directoryPart = prefix.lastIndex(of: "/").map { String(prefix[..<$0]) } ?? ""
            var keys: [String] = []
            try Self.walk(root: root, relative: directoryPart, prefix: prefix, into: &keys)
            keys.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            return keys
        }
    }

    public func check() async throws {
        let root = self.root.path
        try await threadPool.runIfActive {
            guard access(root, R_OK | W_OK | X_OK) == 0 else {
                throw BlobStoreError.io(key: root, operation: "access", errno: errno)
            }
        }
    }

    /// Removes temporary files older than `age` left by writers that died mid-write.
    public func removeStaleTemporaryFiles(olderThan age: TimeInterval) async throws -> Int {
        let root = self.root.path
        return try await threadPool.runIfActive {
            var removed = 0
            let cutoff = Date().addingTimeInterval(-age)
            guard let e = FileManager.default.enumerator(atPath: root) else { return 0 }
            while let name = e.nextObject() as? String {
                guard (name as NSString).lastPathComponent.hasPrefix(".tmp-") else { continue }
                let full = root + "/" + name
                if let m = (try? FileManager.default.attributesOfItem(atPath: full))?[.modificationDate] as? Date, m < cutoff,
                   unlink(full) == 0 {
                    removed += 1
                }
            }
            return removed
        }
    }

    // MARK: - blocking helpers

    static func writeAtomically(path: String, key: String, data: Data) throws {
        let temporary = try writeTemporary(path: path, key: key, data: data)
        guard rename(temporary, path) == 0 else {
            let error = errno
            unlink(temporary)
            throw BlobStoreError.io(key: key, operation: "rename", errno: error)
        }
        // The rename is durable once the directory is synced; concurrent writers to one
        // directory share a sync.
        try DirectorySync.shared.sync((path as NSString).deletingLastPathComponent, key: key)
    }

    /// Writes `data` to a new temporary file beside `path` and syncs it; returns its path.
    static func writeTemporary(path: String, key: String, data: Data) throws -> String {
        let directory = (path as NSString).deletingLastPathComponent
        if !KnownDirectories.shared.contains(directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw BlobStoreError.io(key: key, operation: "mkdir", errno: errno == 0 ? EIO : errno)
            }
            KnownDirectories.shared.insert(directory)
        }
        let temporary = directory + "/.tmp-" + UUID().uuidString
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT { KnownDirectories.shared.remove(directory) }
            throw BlobStoreError.io(key: key, operation: "create", errno: error)
        }
        var complete = false
        defer { if !complete { unlink(temporary) } }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                guard pm_write_all(fd, buffer.baseAddress, buffer.count) == 0 else { throw BlobStoreError.io(key: key, operation: "write", errno: errno) }
            }
            // fdatasync: the data and what is needed to read it back (size, blocks), not timestamps.
            guard fdatasync(fd) == 0 else { throw BlobStoreError.io(key: key, operation: "fsync", errno: errno) }
        }
        complete = true
        return temporary
    }

    static func walk(root: String, relative: String, prefix: String, into keys: inout [String]) throws {
        let directory = relative.isEmpty ? root : root + "/" + relative
        guard let dir = opendir(directory) else {
            if errno == ENOENT || errno == ENOTDIR { return }
            throw BlobStoreError.io(key: relative, operation: "opendir", errno: errno)
        }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue } // ., .., temporary files
            let key = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(directory + "/" + name, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                // Descend only where keys can still match the prefix.
                if key.hasPrefix(prefix) || prefix.hasPrefix(key + "/") {
                    try walk(root: root, relative: key, prefix: prefix, into: &keys)
                }
            } else if (st.st_mode & S_IFMT) == S_IFREG, key.hasPrefix(prefix) {
                keys.append(key)
            }
        }
    }
}

/// Directories this process created or found: writers skip `mkdir` for them (a blob store has
/// a handful: one per dump kind and day). A directory removed behind the store's back makes the
/// write fail with ENOENT once, and is then created again.
final class KnownDirectories: @unchecked Sendable {
    static let shared = KnownDirectories()
    private let lock = NSLock()
    private var known: Set<String> = []

    func contains(_ directory: String) -> Bool { lock.lock(); defer { lock.unlock() }; return known.contains(directory) }
    func insert(_ directory: String) { lock.lock(); defer { lock.unlock() }; known.insert(directory) }
    func remove(_ directory: String) { lock.lock(); defer { lock.unlock() }; known.remove(directory) }
}

/// Group commit for directory fsyncs: a writer takes a ticket after its rename; an fsync that
/// starts after the ticket covers it. While one thread syncs a directory, the writers that
/// arrive meanwhile wait and are all covered by the next single fsync. Each directory has its
/// own condition, so finishing a sync wakes only that directory's writers.
final class DirectorySync: @unchecked Sendable {
    static let shared = DirectorySync()

    private final class State {
        let condition = NSCondition()
        var requested: UInt64 = 0
        var completed: UInt64 = 0
        var running = false
    }

    private let lock = NSLock()
    /// One entry per directory ever synced (a few: dump kinds and days), kept so tickets stay ordered.
    private var states: [String: State] = [:]

    private func state(_ directory: String) -> State {
        lock.lock(); defer { lock.unlock() }
        if let s = states[directory] { return s }
        let s = State()
        states[directory] = s
        return s
    }

    func sync(_ directory: String, key: String) throws {
        let state = state(directory)
        let condition = state.condition
        condition.lock()
        state.requested += 1
        let ticket = state.requested
        defer { condition.unlock() }
        while true {
            if state.completed >= ticket { return }
            if state.running { condition.wait(); continue }
            state.running = true
            let target = state.requested
            condition.unlock()
            var failure: Int32 = 0
            let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { failure = errno } else {
                if fsync(fd) != 0 { failure = errno }
                close(fd)
            }
            condition.lock()
            state.running = false
            if failure == 0 { state.completed = max(state.completed, target) }
            condition.broadcast()
            if failure != 0 { throw BlobStoreError.io(key: key, operation: "fsync directory", errno: failure) }
            if target >= ticket { return }
        }
    }
}
