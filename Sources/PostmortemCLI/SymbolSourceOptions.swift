import ArgumentParser
import SymbolSources

/// The symbol-source flags shared by `symbolicate` and `stackwalk`.
struct SymbolSourceOptions: ParsableArguments {
    @Option(name: .customLong("symbols-path"), help: "A local symbol tree (<debug_file>/<DEBUG_ID>/<name>.sym, or the native debug file <debug_file>/<DEBUG_ID>/<debug_file>). Repeatable.")
    var symbolsPaths: [String] = []

    @Option(name: .customLong("symbols-url"), help: "A symbol server base URL (Tecken layout). Repeatable; tried in order.")
    var symbolsURLs: [String] = []

    @Option(name: .customLong("symbols-cache"), help: "Directory for parsed-symbol indexes and downloads.")
    var symbolsCache: String = SymbolSourcesConfiguration.defaultCacheDirectory

    @Option(name: .customLong("symbols-cache-size"), help: "Cache size limit in MiB (least recently used entries go first).")
    var symbolsCacheSizeMiB: Int64 = 20 * 1024

    @Option(name: .customLong("symbols-tmp"),
            help: "Where downloads are assembled before they move into the cache (on the cache's file system; default <cache>/tmp).")
    var symbolsTmp: String?

    func configuration(negativeCacheTTL: Duration) -> SymbolSourcesConfiguration {
        var c = SymbolSourcesConfiguration(symbolPaths: symbolsPaths, symbolURLs: symbolsURLs, cacheDirectory: symbolsCache,
                                           cacheSizeLimit: symbolsCacheSizeMiB << 20, negativeCacheTTL: negativeCacheTTL)
        c.stagingDirectory = symbolsTmp
        return c
    }
}
