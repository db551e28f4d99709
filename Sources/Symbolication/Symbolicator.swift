import JSONSupport
import BreakpadSymbols
import Foundation
import SymbolSources

/// Eliot-compatible symbolication (`symbolication-api.md`): validates a v4/v5 body, fetches each
/// referenced module once per request (concurrently), looks every frame up and renders the
/// response. The CLI (`postmortem symbolicate`) and the HTTP service share this type.
public struct Symbolicator: Sendable {
    public let supplier: SymbolSupplier

    public init(supplier: SymbolSupplier) {
        self.supplier = supplier
    }

    /// Symbolicates a raw request body. Returns the JSON response text, or the 400 failure.
    /// With `debug` (v5 only), the response carries the `debug` statistics.
    public func symbolicate(body: Data, version: SymbolicationAPIVersion, debug: Bool = false) async -> Result<String, SymbolicationFailure> {
        let clock = ContinuousClock()
        let start = clock.now
        let jobs: [SymbolicationJob]
        do { jobs = try SymbolicationRequestParser.parse(JSONValue.parse(body), version: version) }
        catch { return .failure(error) }

        // Each (debug_filename, debug_id) referenced by a frame is fetched once per request.
        var wanted = Set<SymbolicationJob.Module>()
        for job in jobs {
            for stack in job.stacks {
                for frame in stack where frame.moduleIndex >= 0 {
                    let m = job.modules[frame.moduleIndex]
                    if !m.debugFile.isEmpty && !m.debugId.isEmpty { wanted.insert(m) }
                }
            }
        }
        let fetched = await fetchAll(wanted.sorted { ($0.debugFile, $0.debugId) < ($1.debugFile, $1.debugId) })

        var stats = DebugStatistics()
        var results: [JSONValue] = []
        for job in jobs {
            results.append(render(job, fetched, version: version, stats: &stats))
        }
        switch version {
        case .v4:
            return .success(results[0].serialized())
        case .v5:
            var top: [(String, JSONValue)] = [("results", .array(results))]
            if debug {
                for (module, outcome) in fetched { stats.add(module.key, outcome.report, found: outcome.table != nil, attempted: outcome.attempted) }
                top.append(("debug", stats.json(totalSeconds: (clock.now - start).inSeconds)))
            }
            return .success(JSONValue.object(top).serialized())
        }
    }

    struct Outcome: Sendable {
        var table: SymbolTable?
        var report: SymbolFetchReport
        var attempted: Bool
    }

    /// Modules fetched at once for one request; a request may name hundreds.
    static let maxConcurrentFetches = 8

    private func fetchAll(_ modules: [SymbolicationJob.Module]) async -> [SymbolicationJob.Module: Outcome] {
        let supplier = self.supplier
        @Sendable func fetch(_ module: SymbolicationJob.Module) async -> (SymbolicationJob.Module, Outcome) {
            // A debug id that is not a GUID+age (32–40 hex digits) cannot be normalized
            // (Eliot's bad_debug_id): the module is reported missing without a lookup.
            guard (32...40).contains(module.debugId.count) else {
                return (module, Outcome(table: nil, report: SymbolFetchReport(), attempted: false))
            }
            let result = await supplier.symbols(for: ModuleIdentity(debugFile: module.debugFile, debugId: module.debugId))
            return (module, Outcome(table: result.table, report: result.report, attempted: true))
        }
        return await withTaskGroup(of: (SymbolicationJob.Module, Outcome).self) { group in
            for module in modules.prefix(Self.maxConcurrentFetches) { group.addTask { await fetch(module) } }
            var pending = modules.dropFirst(Self.maxConcurrentFetches)
            var result: [SymbolicationJob.Module: Outcome] = [:]
            for await (module, outcome) in group {
                result[module] = outcome
                if let next = pending.popFirst() { group.addTask { await fetch(next) } }
            }
            return result
        }
    }

    private func render(_ job: SymbolicationJob, _ fetched: [SymbolicationJob.Module: Outcome],
                        version: SymbolicationAPIVersion, stats: inout DebugStatistics) -> JSONValue {
        var referenced = Set<Int>()
        var stacksOut: [JSONValue] = []
        for stack in job.stacks {
            var framesOut: [JSONValue] = []
            for (j, frame) in stack.enumerated() {
                var module: SymbolicationJob.Module?
                if frame.moduleIndex >= 0 {
                    module = job.modules[frame.moduleIndex]
                    referenced.insert(frame.moduleIndex)
                }
                let table = module.flatMap { fetched[$0]?.table }
                var name = module.map(\.debugFile) ?? ""
                if name.isEmpty { name = "<unknown>" }
                if let override = table?.module.symbolicationName { name = override }
                let offsetText = frame.offset < 0 ? "-0x\(String(-frame.offset, radix: 16))" : "0x\(String(frame.offset, radix: 16))"
                var out: [(String, JSONValue)] = [("frame", .int(Int64(j))), ("module", .string(name)), ("module_offset", .string(offsetText))]
                if let table, frame.offset >= 0, let hit = table.lookup(UInt64(frame.offset)) {
                    out.append(("function", .string(hit.function.name)))
                    out.append(("function_offset", .string("0x" + String(UInt64(frame.offset) - hit.function.address, radix: 16))))
                    if let file = hit.file.flatMap(SourcePath.clean) {
                        out.append(("file", .string(file)))
                        if hit.line != 0 { out.append(("line", .int(Int64(hit.line)))) }
                    }
                    if !hit.inlines.isEmpty {
                        out.append(("inlines", .array(hit.inlines.map { inline in
                            var i: [(String, JSONValue)] = [("function", .string(inline.function))]
                            if let file = inline.file.flatMap(SourcePath.clean) {
                                i.append(("file", .string(file)))
                                if inline.line != 0 { i.append(("line", .int(Int64(inline.line)))) }
                            }
                            return .object(i)
                        })))
                    }
                }
                if version == .v4 {
                    let function = out.first(where: { $0.0 == "function" }).map { pair -> String in
                        if case .string(let s) = pair.1 { return s } else { return "" }
                    }
                    framesOut.append(.string("\(function ?? offsetText) (in \(name))"))
                } else {
                    framesOut.append(.object(out))
                }
            }
            stacksOut.append(.array(framesOut))
        }
        // true/false for modules this job's frames referenced, null for the others.
        func known(_ i: Int) -> JSONValue {
            let m = job.modules[i]
            guard referenced.contains(i), !m.debugFile.isEmpty, !m.debugId.isEmpty else { return .null }
            return .bool(fetched[m]?.table != nil)
        }
        switch version {
        case .v4:
            return .object([("symbolicatedStacks", .array(stacksOut)),
                            ("knownModules", .array(job.modules.indices.map(known)))])
        case .v5:
            var found: [(String, JSONValue)] = []
            var seen = Set<String>()
            for i in job.modules.indices where seen.insert(job.modules[i].key).inserted {
                let value = known(i)
                found.append((job.modules[i].key, value))
                if value != .null { stats.noteModule(job.modules[i].key) }
            }
            return .object([("stacks", .array(stacksOut)), ("found_modules", .object(found))])
        }
    }
}

/// Eliot's `Debug: true` statistics (`symbolication-api.md` §5).
struct DebugStatistics {
    var cacheLookups = 0, cacheHits = 0, cacheSeconds = 0.0
    var downloads = 0, downloadBytes: Int64 = 0, downloadSeconds = 0.0
    var sizePerModule: [(String, JSONValue)] = [], timePerModule: [(String, JSONValue)] = []
    var failTimePerModule: [(String, JSONValue)] = []
    var parseSeconds = 0.0, parsePerModule: [(String, JSONValue)] = [], parseFailPerModule: [(String, JSONValue)] = []
    var saveSeconds = 0.0, savePerModule: [(String, JSONValue)] = []
    var moduleCount = 0
    var stacksPerModule: [String: Int] = [:]
    var moduleOrder: [String] = []

    mutating func noteModule(_ key: String) {
        moduleCount += 1
        if stacksPerModule[key] == nil { moduleOrder.append(key) }
        stacksPerModule[key, default: 0] += 1
    }

    mutating func add(_ key: String, _ r: SymbolFetchReport, found: Bool, attempted: Bool) {
        guard attempted else { return }
        cacheLookups += 1
        cacheSeconds += r.cacheLookupSeconds
        if r.cacheHit { cacheHits += 1 }
        if let bytes = r.downloadBytes, let t = r.downloadSeconds {
            downloads += 1
            downloadBytes += bytes
            downloadSeconds += t
            sizePerModule.append((key, .int(bytes)))
            timePerModule.append((key, .double(t)))
        } else if let t = r.downloadFailedSeconds {
            downloads += 1
            downloadSeconds += t
            failTimePerModule.append((key, .double(t)))
        }
        if let t = r.parseSeconds { parseSeconds += t; parsePerModule.append((key, .double(t))) }
        if let t = r.parseFailedSeconds { parseSeconds += t; parseFailPerModule.append((key, .double(t))) }
        if let t = r.saveSeconds { saveSeconds += t; savePerModule.append((key, .double(t))) }
    }

    func json(totalSeconds: Double) -> JSONValue {
        func section(_ base: [(String, JSONValue)], _ maps: [(String, [(String, JSONValue)])]) -> JSONValue {
            .object(base + maps.filter { !$0.1.isEmpty }.map { ($0.0, .object($0.1)) })
        }
        return .object([
            ("time", .double(totalSeconds)),
            ("cache_lookups", .object([("count", .int(Int64(cacheLookups))), ("hits", .int(Int64(cacheHits))), ("time", .double(cacheSeconds))])),
            ("downloads", section([("count", .int(Int64(downloads))), ("size", .int(downloadBytes)), ("time", .double(downloadSeconds))],
                                  [("size_per_module", sizePerModule), ("time_per_module", timePerModule), ("fail_time_per_module", failTimePerModule)])),
            ("parse_sym", section([("time", .double(parseSeconds))], [("time_per_module", parsePerModule), ("fail_time_per_module", parseFailPerModule)])),
            ("save_symcache", section([("time", .double(saveSeconds))], [("time_per_module", savePerModule)])),
            ("modules", .object([("count", .int(Int64(moduleCount))),
                                 ("stacks_per_module", .object(moduleOrder.map { ($0, .int(Int64(stacksPerModule[$0] ?? 0))) }))])),
        ])
    }
}
