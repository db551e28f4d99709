import BreakpadSymbols
import MinidumpFormat
import SymbolSources

/// What a symbol provider found for one module.
public struct ModuleSymbolsResult: Sendable {
    public var table: SymbolTable?
    public var status: SymbolStatus
    /// Where the symbols came from, when it was a server (printed as `symbol_url`).
    public var url: String?

    public init(table: SymbolTable?, status: SymbolStatus, url: String? = nil) {
        self.table = table
        self.status = status
        self.url = url
    }
}

/// Where the walker gets symbols from. `SymbolSupplier` (local trees, servers, caches) is the
/// production implementation; tests and the fuzzer pass tables they built themselves.
public protocol SymbolProvider: Sendable {
    func symbols(for module: MinidumpModule) async -> ModuleSymbolsResult
}

extension SymbolSupplier: SymbolProvider {
    public func symbols(for m: MinidumpModule) async -> ModuleSymbolsResult {
        let identity = ModuleIdentity(debugFile: m.debugFile.isEmpty ? m.codeFile : m.debugFile, debugId: m.debugId,
                                      codeFile: m.codeFile, codeId: m.codeId.uppercased())
        let fetch = await symbols(for: identity)
        switch (fetch.table, fetch.notFound) {
        case (let t?, _):
            return ModuleSymbolsResult(table: t, status: .loaded, url: fetch.report.source.flatMap { $0.hasPrefix("http") ? $0 : nil })
        case (nil, .malformed?), (nil, .debugIdMismatch?):
            return ModuleSymbolsResult(table: nil, status: .corrupt)
        default:
            return ModuleSymbolsResult(table: nil, status: .missing)
        }
    }
}

/// Symbol tables keyed by debug id, for tests, tools and the fuzzer: no files, no HTTP.
public struct InMemorySymbols: SymbolProvider {
    public var tables: [String: SymbolTable]

    public init(tables: [String: SymbolTable]) { self.tables = tables }

    /// Parses each `.sym` text and files it under its MODULE line's debug id.
    public init(symbolFiles: [String]) throws(SymbolFileError) {
        var tables: [String: SymbolTable] = [:]
        for text in symbolFiles {
            let table = try SymbolFileParser().parse(Array(text.utf8))
            tables[table.module.debugId.uppercased()] = table
        }
        self.tables = tables
    }

    public func symbols(for module: MinidumpModule) async -> ModuleSymbolsResult {
        guard let t = tables[module.debugId.uppercased()] else { return ModuleSymbolsResult(table: nil, status: .missing) }
        return ModuleSymbolsResult(table: t, status: .loaded)
    }
}

/// Symbols of the dump's modules, fetched on first use and shared by all threads of one walk;
/// records each module's symbol status for the output.
actor ModuleSymbols {
    private let modules: [MinidumpModule]
    private let provider: (any SymbolProvider)?
    private var tables: [Int: SymbolTable?] = [:]
    private(set) var status: [Int: (SymbolStatus, String?, String?)] = [:]

    init(modules: [MinidumpModule], provider: (any SymbolProvider)?) {
        self.modules = modules
        self.provider = provider
    }

    func table(_ index: Int) async -> SymbolTable? {
        if let known = tables[index] { return known }
        guard let provider else { tables[index] = .some(nil); return nil }
        let result = await provider.symbols(for: modules[index])
        if let cached = tables[index] { return cached }  // another thread finished first
        tables[index] = .some(result.table)
        status[index] = (result.status, result.url, result.table?.module.debugId)
        return result.table
    }
}

/// The symbol tables one thread's walk has already asked for, so that each frame does not hop to
/// the shared `ModuleSymbols` actor again. Used by one task only.
final class ThreadTables {
    private let symbols: ModuleSymbols
    private var known: [Int: SymbolTable?] = [:]

    init(symbols: ModuleSymbols) { self.symbols = symbols }

    func table(_ index: Int) async -> SymbolTable? {
        if let t = known[index] { return t }
        let t = await symbols.table(index)
        known[index] = .some(t)
        return t
    }
}
