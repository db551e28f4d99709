import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk cache directory: parsed-symbol indexes keyed by module, a staging area for
/// downloads, and least-recently-used eviction by total size. "Use" is recorded in the file's
/// modification time, so it survives restarts and works on `noatime` mounts.
struct DiskCache: Sendable {
    let root: String
    let sizeLimit: Int64
    /// Staging directory for downloads; `<root>/tmp` when nil.
    var staging: String? = nil

    /// `<root>/<first>/<SECOND>.<suffix>`, or nil when a component is unsafe.
    func path(_ first: String, _ second: String, suffix: String) -> String? {
        guard isSafePathComponent(first), isSafePathComponent(second) else { return nil }
        return "\(root)/\(first)/\(second).\(suffix)"
    }

    /// A fresh file name in the staging directory.
    func stagingPath() -> String {
        let dir = staging ?? root + "/tmp"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return "\(dir)/\(UUID().uuidString).part"
    }

    func touch(_ path: String) {
        _ = utimensat(AT_FDCWD, path, nil, 0)
    }

    /// Deletes least recently used entries until the cache is within its size limit.
    /// Staged downloads still in progress are never touched.
    func evictIfNeeded() {
        guard let e = FileManager.default.enumerator(atPath: root) else { return }
        var entries: [(path: String, size: Int64, used: Int64)] = []
        var total: Int64 = 0
        while let rel = e.nextObject() as? String {
            if rel.hasPrefix("tmp/") || rel == "tmp" { continue }
            let full = root + "/" + rel
            var st = stat()
            guard stat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let size = Int64(st.st_blocks) * 512
            total += size
            entries.append((full, size, Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)))
        }
        guard total > sizeLimit else { return }
        entries.sort { $0.used < $1.used }
        for entry in entries where total > sizeLimit {
            if unlink(entry.path) == 0 { total -= entry.size }
        }
    }
}
