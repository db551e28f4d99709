/// The tables of one parsed symbol file, read in place: either the parser's heap tables or a
/// memory-mapped index file (`SymbolIndexFile`). Lookups are binary searches: O(log n) in the
/// number of functions, plus O(log k) per inline level within the function.
///
/// Immutable once built, so it is safe to share between threads.
public final class SymbolTable: @unchecked Sendable {
    public let module: ModuleInfo
    public let stats: ParseStatistics

    enum Storage {
        case heap(TableMemory)
        case mapped(MappedFile)
    }

    let storage: Storage
    let s: Sections

    init(module: ModuleInfo, stats: ParseStatistics, storage: Storage, sections: Sections) {
        self.module = module
        self.stats = stats
        self.storage = storage
        self.s = sections
    }

    /// Counts of the tables as stored (after de-duplication).
    public var functionCount: Int { s.funcs.count }
    public var publicCount: Int { s.publics.count }
    public var lineCount: Int { s.lines.count }
    public var inlineRangeCount: Int { s.inlines.count }
    public var isMemoryMapped: Bool { if case .mapped = storage { return true } else { return false } }

    /// Calls `body` with every FUNC, in address order.
    public func forEachFunction(_ body: (FunctionMatch) -> Void) {
        for r in s.funcs { body(match(r)) }
    }

    // MARK: - strings

    @inline(__always)
    func string(_ r: StringRef) -> String {
        let start = Int(r.offset), end = start + Int(r.length)
        guard r.length > 0, end <= s.strings.count else { return "" }
        return String(decoding: UnsafeRawBufferPointer(rebasing: s.strings[start..<end]), as: UTF8.self)
    }

    /// The bytes of a string (empty when the reference is out of range).
    @inline(__always)
    func bytes(_ r: StringRef) -> UnsafeBufferPointer<UInt8> {
        let start = Int(r.offset), end = start + Int(r.length)
        guard r.length > 0, end <= s.strings.count, let base = s.strings.baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self) + start, count: Int(r.length))
    }

    func fileName(_ id: UInt32) -> String? {
        guard id != InlineRecord.noFile, let i = exactIndex(s.files, id, key: { $0.id }) else { return nil }
        return string(s.files[i].name)
    }

    func originName(_ id: UInt32) -> String {
        guard let i = exactIndex(s.origins, id, key: { $0.id }) else { return "" }
        return string(s.origins[i].name)
    }

    // MARK: - functions, lines, inlines

    /// The FUNC covering `address`, else the PUBLIC that applies (see `symbol-files.md` §4).
    public func function(at address: UInt64) -> FunctionMatch? {
        if let f = funcIndex(covering: address) { return match(s.funcs[f]) }
        guard let p = publicIndex(for: address) else { return nil }
        let r = s.publics[p]
        return FunctionMatch(name: string(r.name), address: r.address, size: nil,
                             parameterSize: r.parameterSize, isPublic: true, isMultiple: r.flags & 1 != 0)
    }

    /// Function, source line and inline chain for a module-relative address.
    public func lookup(_ address: UInt64) -> SymbolLookup? {
        guard let fi = funcIndex(covering: address) else {
            guard let function = function(at: address) else { return nil }
            return SymbolLookup(function: function, file: nil, line: 0, lineRecordAddress: nil, inlines: [])
        }
        let fn = s.funcs[fi]
        let function = match(fn)
        let rel = address - fn.address
        var lineFile: String?
        var lineNumber: UInt32 = 0
        var lineAddress: UInt64?
        if rel <= UInt64(UInt32.max), let line = lineRecord(fn, UInt32(rel)) {
            lineFile = fileName(line.file)
            lineNumber = line.line
            lineAddress = fn.address + UInt64(line.offset)
        }
        let chain = rel <= UInt64(UInt32.max) ? inlineChain(fn, UInt32(rel)) : []
        guard let outermost = chain.first else {
            return SymbolLookup(function: function, file: lineFile, line: lineNumber, lineRecordAddress: lineAddress, inlines: [])
        }
        // The physical frame sits at the call site of the level-0 inline; level k sits at the call
        // site recorded by level k+1, and the deepest level at the line record.
        var inlines: [InlineFrameInfo] = []
        inlines.reserveCapacity(chain.count)
        for (k, record) in chain.enumerated() {
            let name = originName(record.origin)
            if k + 1 < chain.count {
                let next = chain[k + 1]
                inlines.append(InlineFrameInfo(function: name, file: fileName(next.callFile), line: next.callLine))
            } else {
                inlines.append(InlineFrameInfo(function: name, file: lineFile, line: lineNumber))
            }
        }
        inlines.reverse()
        return SymbolLookup(function: function, file: fileName(outermost.callFile), line: outermost.callLine,
                            lineRecordAddress: lineAddress, callSiteRangeAddress: fn.address + UInt64(outermost.offset),
                            inlines: inlines)
    }

    private func match(_ r: FuncRecord) -> FunctionMatch {
        FunctionMatch(name: string(r.name), address: r.address, size: r.size,
                      parameterSize: r.parameterSize, isPublic: false, isMultiple: r.flags & 1 != 0)
    }

    func funcIndex(covering address: UInt64) -> Int? {
        guard let i = lastIndex(s.funcs, atOrBelow: address, key: { $0.address }) else { return nil }
        let f = s.funcs[i]
        return address - f.address < f.size ? i : nil
    }

    /// The nearest PUBLIC at or below `address`, unless a FUNC starts after it and at or below
    /// `address` (then the address is past that function's end and belongs to nothing known).
    func publicIndex(for address: UInt64) -> Int? {
        guard let p = lastIndex(s.publics, atOrBelow: address, key: { $0.address }) else { return nil }
        if let f = lastIndex(s.funcs, atOrBelow: address, key: { $0.address }), s.funcs[f].address > s.publics[p].address {
            return nil
        }
        return p
    }

    private func lineRecord(_ fn: FuncRecord, _ rel: UInt32) -> LineRecord? {
        let start = Int(fn.lineStart), count = Int(fn.lineCount)
        guard count > 0, start + count <= s.lines.count else { return nil }
        let lines = UnsafeBufferPointer(rebasing: s.lines[start..<start + count])
        guard let i = lastIndex(lines, atOrBelow: UInt64(rel), key: { UInt64($0.offset) }) else { return nil }
        let l = lines[i]
        return rel - l.offset < l.size ? l : nil
    }

    private func inlineChain(_ fn: FuncRecord, _ rel: UInt32) -> [InlineRecord] {
        let start = Int(fn.inlineStart), count = Int(fn.inlineCount)
        guard count > 0, start + count <= s.inlines.count else { return [] }
        let records = UnsafeBufferPointer(rebasing: s.inlines[start..<start + count])
        var chain: [InlineRecord] = []
        var depth: UInt32 = 0
        while true {
            let key = UInt64(depth) << 32 | UInt64(rel)
            guard let i = lastIndex(records, atOrBelow: key, key: { UInt64($0.depth) << 32 | UInt64($0.offset) }) else { break }
            let r = records[i]
            guard r.depth == depth, rel - r.offset < r.size else { break }
            chain.append(r)
            if depth == UInt32.max { break }
            depth += 1
        }
        return chain
    }

    // MARK: - unwind information

    /// The STACK CFI rules in force at `address`: the INIT record's rules with every delta at or
    /// below the address applied in order. Nil when no INIT range covers the address.
    public func cfiRules(at address: UInt64) -> CFIRules? {
        guard let i = lastIndex(s.cfiInit, atOrBelow: address, key: { $0.address }) else { return nil }
        let initRecord = s.cfiInit[i]
        guard address - initRecord.address < initRecord.size else { return nil }
        var rules = CFIRules()
        rules.apply(bytes: bytes(initRecord.rules))
        // Deltas in [init.address, address], in address order.
        if var d = firstIndex(s.cfiDelta, atOrAbove: initRecord.address, key: { $0.address }) {
            while d < s.cfiDelta.count, s.cfiDelta[d].address <= address {
                rules.apply(bytes: bytes(s.cfiDelta[d].rules))
                d += 1
            }
        }
        return rules
    }

    /// The STACK WIN record covering `address`, FrameData (type 4) preferred over FPO (type 0).
    public func stackWin(at address: UInt64) -> StackWinInfo? {
        for table in [s.winFrameData, s.winFPO] {
            guard let i = lastIndex(table, atOrBelow: address, key: { UInt64($0.rva) }) else { continue }
            let r = table[i]
            guard address - UInt64(r.rva) < UInt64(r.codeSize) else { continue }
            return StackWinInfo(
                type: r.type == 4 ? .frameData : .fpo, rva: r.rva, codeSize: r.codeSize, prologueSize: r.prologueSize,
                epilogueSize: r.epilogueSize, parameterSize: r.parameterSize, savedRegisterSize: r.savedRegisterSize,
                localSize: r.localSize, maxStackSize: r.maxStackSize,
                programString: r.type == 4 ? string(r.program) : nil, allocatesBasePointer: r.allocatesBasePointer != 0)
        }
        return nil
    }

    /// Bytes of stack parameters the function at `address` pops: from STACK WIN, else FUNC, else PUBLIC.
    public func parameterSize(at address: UInt64) -> UInt32? {
        if let w = stackWin(at: address) { return w.parameterSize }
        return function(at: address)?.parameterSize
    }
}

struct Sections {
    var strings: UnsafeRawBufferPointer
    var files: UnsafeBufferPointer<NamedEntry>
    var origins: UnsafeBufferPointer<NamedEntry>
    var funcs: UnsafeBufferPointer<FuncRecord>
    var lines: UnsafeBufferPointer<LineRecord>
    var inlines: UnsafeBufferPointer<InlineRecord>
    var publics: UnsafeBufferPointer<PublicRecord>
    var winFrameData: UnsafeBufferPointer<StackWinRecord>
    var winFPO: UnsafeBufferPointer<StackWinRecord>
    var cfiInit: UnsafeBufferPointer<CFIInitRecord>
    var cfiDelta: UnsafeBufferPointer<CFIDeltaRecord>
}

// MARK: - results

public struct FunctionMatch: Sendable, Equatable {
    public var name: String
    /// Module-relative start address (`function_base`).
    public var address: UInt64
    /// Nil for PUBLIC symbols, which have no size.
    public var size: UInt64?
    public var parameterSize: UInt32
    public var isPublic: Bool
    public var isMultiple: Bool
}

public struct InlineFrameInfo: Sendable, Equatable {
    public var function: String
    public var file: String?
    /// 0 means unknown.
    public var line: UInt32
}

public struct SymbolLookup: Sendable, Equatable {
    /// The outermost (physical) function.
    public var function: FunctionMatch
    /// Where in the outermost function the address is: the call site of the level-0 inline when
    /// there are inlines, else the covering line record. `line` 0 means unknown.
    public var file: String?
    public var line: UInt32
    /// Start of the line record covering the address, if one does.
    public var lineRecordAddress: UInt64?
    /// With inlines: start of the level-0 inline range covering the address, the base that the
    /// outer frame's source-line offset (`source_line_base`) is measured from.
    public var callSiteRangeAddress: UInt64? = nil
    /// Inlined calls, innermost first, each with its own location.
    public var inlines: [InlineFrameInfo]
}

public struct StackWinInfo: Sendable, Equatable {
    public enum Kind: Sendable { case fpo, frameData }
    public var type: Kind
    public var rva: UInt32
    public var codeSize: UInt32
    public var prologueSize: UInt32
    public var epilogueSize: UInt32
    public var parameterSize: UInt32
    public var savedRegisterSize: UInt32
    public var localSize: UInt32
    public var maxStackSize: UInt32
    public var programString: String?
    public var allocatesBasePointer: Bool
}

// MARK: - binary search

/// Index of the last element whose key is ≤ `x` (the input is sorted by key).
@inline(__always)
func lastIndex<T>(_ b: UnsafeBufferPointer<T>, atOrBelow x: UInt64, key: (T) -> UInt64) -> Int? {
    var lo = 0, hi = b.count      // first index with key > x
    while lo < hi {
        let mid = (lo + hi) >> 1
        if key(b[mid]) <= x { lo = mid + 1 } else { hi = mid }
    }
    return lo > 0 ? lo - 1 : nil
}

/// Index of the first element whose key is ≥ `x`.
@inline(__always)
func firstIndex<T>(_ b: UnsafeBufferPointer<T>, atOrAbove x: UInt64, key: (T) -> UInt64) -> Int? {
    var lo = 0, hi = b.count
    while lo < hi {
        let mid = (lo + hi) >> 1
        if key(b[mid]) < x { lo = mid + 1 } else { hi = mid }
    }
    return lo < b.count ? lo : nil
}

@inline(__always)
func exactIndex(_ b: UnsafeBufferPointer<NamedEntry>, _ id: UInt32, key: (NamedEntry) -> UInt32) -> Int? {
    guard let i = lastIndex(b, atOrBelow: UInt64(id), key: { UInt64(key($0)) }), b[i].id == id else { return nil }
    return i
}
