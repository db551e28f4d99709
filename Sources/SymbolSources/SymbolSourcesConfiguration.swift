import Foundation

/// Where symbols come from and how they are cached.
public struct SymbolSourcesConfiguration: Sendable {
    /// Local symbol trees laid out `<debug_file>/<DEBUG_ID>/<name>.sym`, searched in order first.
    public var symbolPaths: [String]
    /// Symbol server base URLs (Tecken layout), tried in order after the local trees.
    public var symbolURLs: [String]
    /// Parsed-symbol indexes live here (`<debug_file>/<DEBUG_ID>.symc`); downloads are staged here.
    public var cacheDirectory: String
    /// The cache is trimmed to this many bytes, least recently used first.
    public var cacheSizeLimit: Int64
    /// How long a module that was not found anywhere is remembered as missing (0 disables it).
    public var negativeCacheTTL: Duration
    /// The same, when only local trees were asked (a miss there is cheap to repeat, and a file
    /// copied into a tree must be seen by the next crash).
    public var localNegativeCacheTTL: Duration = .seconds(3)
    /// Downloads larger than this (after decompression) are abandoned.
    public var maxSymbolFileSize: Int64
    /// Attempts per URL for retryable failures (429, 500, 503, 504, connection errors).
    public var attempts: Int
    /// First retry delay; it doubles on each further attempt.
    public var retryBaseDelay: Duration
    public var requestTimeout: Duration
    /// Opened tables kept in memory (they are memory-mapped, so this mostly bounds open mappings).
    public var memoryCacheEntries: Int
    /// Modules remembered as missing at most; past it the soonest-expiring half is forgotten, so
    /// requests naming endless made-up modules cannot grow the cache without bound.
    public var negativeCacheEntries = 50_000
    /// Where downloads are assembled before they are renamed into the cache (default
    /// `<cacheDirectory>/tmp`). Must be on the cache's file system; processes sharing one cache
    /// may each use their own.
    public var stagingDirectory: String?

    public init(symbolPaths: [String] = [], symbolURLs: [String] = [], cacheDirectory: String,
                cacheSizeLimit: Int64 = 20 << 30, negativeCacheTTL: Duration = .seconds(300),
                maxSymbolFileSize: Int64 = 4 << 30, attempts: Int = 5, retryBaseDelay: Duration = .milliseconds(500),
                requestTimeout: Duration = .seconds(300), memoryCacheEntries: Int = 64) {
        self.symbolPaths = symbolPaths
        self.symbolURLs = symbolURLs
        self.cacheDirectory = cacheDirectory
        self.cacheSizeLimit = cacheSizeLimit
        self.negativeCacheTTL = negativeCacheTTL
        self.maxSymbolFileSize = maxSymbolFileSize
        self.attempts = max(1, attempts)
        self.retryBaseDelay = retryBaseDelay
        self.requestTimeout = requestTimeout
        self.memoryCacheEntries = max(1, memoryCacheEntries)
    }

    /// `$XDG_CACHE_HOME/postmortem/symbols`, else `~/.cache/postmortem/symbols`.
    public static var defaultCacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/postmortem/symbols" }
        return NSHomeDirectory() + "/.cache/postmortem/symbols"
    }
}

/// The identity of a module whose symbols are wanted, as a minidump or a request names it.
public struct ModuleIdentity: Hashable, Sendable, CustomStringConvertible {
    public var debugFile: String
    public var debugId: String
    public var codeFile: String
    public var codeId: String

    public init(debugFile: String, debugId: String, codeFile: String = "", codeId: String = "") {
        self.debugFile = debugFile
        self.debugId = debugId
        self.codeFile = codeFile
        self.codeId = codeId
    }

    public var description: String { debugId.isEmpty ? "\(codeFile)/\(codeId)" : "\(debugFile)/\(debugId)" }

    /// `debug_file` with a trailing `.pdb` replaced by `.sym`, otherwise `debug_file.sym`.
    public static func symbolFileName(for debugFile: String) -> String {
        let base = baseName(debugFile)
        if base.lowercased().hasSuffix(".pdb") { return String(base.dropLast(4)) + ".sym" }
        return base + ".sym"
    }

    /// For code-id lookups: the code file with its extension replaced by `.sym`
    /// (`ShowSSEConfig.exe` → `ShowSSEConfig.sym`), the name Tecken's code-id redirect expects.
    public static func symbolFileName(forCodeFile codeFile: String) -> String {
        let base = baseName(codeFile)
        let stem = (base as NSString).deletingPathExtension
        return (stem.isEmpty ? base : stem) + ".sym"
    }
}

/// A path component taken from a request or a dump must not walk out of a symbol tree.
func isSafePathComponent(_ s: String) -> Bool {
    !s.isEmpty && s != "." && s != ".." && !s.contains("/") && !s.contains("\\") && !s.contains("\0")
}

/// The last component of a Unix or Windows path (`C:\\build\\xul.pdb` → `xul.pdb`).
public func baseName(_ path: String) -> String {
    guard let i = path.lastIndex(where: { $0 == "/" || $0 == "\\" }) else { return path }
    return String(path[path.index(after: i)...])
}
