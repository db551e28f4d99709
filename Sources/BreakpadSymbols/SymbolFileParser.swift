#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Streaming parser of Breakpad `.sym` text. It reads fixed-size chunks (so a 300 MB file never
/// sits in memory as text), splits lines with `memchr`, and appends fixed-layout records into
/// growable tables that become the `SymbolTable` without another copy.
public struct SymbolFileParser {
    /// Longest line accepted; longer lines (e.g. a file of NULs) are counted as malformed and skipped.
    public static let maxLineLength = 4 << 20
    static let chunkSize = 1 << 20

    /// Files at least this large are parsed by several threads at once.
    public var parallelThreshold = 64 << 20
    static let maxWorkers = 8
    /// Forces the number of parts (tests); nil uses one per core, at most `maxWorkers`.
    var parts: Int?

    public init() {}

    /// Parses the file at `path`. Files of 64 MiB or more are split at FUNC and STACK records and the parts
    /// parsed concurrently; the result is the same table a sequential parse gives.
    public func parse(path: String) throws(SymbolFileError) -> SymbolTable {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        #if os(Linux)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        #endif
        var st = stat()
        let size = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : 0
        let workers = size >= parallelThreshold ? parts ?? min(Self.maxWorkers, sysconf(Int32(_SC_NPROCESSORS_ONLN))) : 1
        if workers > 1 {
            let bounds = Self.splitPoints(fd, size: size, parts: workers)
            if bounds.count > 2 { return try parseInParallel(fd, path: path, bounds: bounds) }
        }
        var builder = SymbolTableBuilder()
        try Self.read(fd, path: path, range: nil, into: &builder)
        return try builder.finish()
    }

    /// Reads lines from `fd` into `builder`: the whole stream, or the byte `range` with `pread`.
    static func read(_ fd: Int32, path: String, range: Range<Int>?, into builder: inout SymbolTableBuilder) throws(SymbolFileError) {
        let capacity = chunkSize + maxLineLength
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var offset = range?.lowerBound ?? 0
        var filled = 0          // bytes in buffer
        var skipping = false    // inside an over-long line
        while true {
            var want = min(chunkSize, capacity - filled)
            if let range { want = min(want, range.upperBound - offset) }
            let n = want == 0 ? 0 : range == nil ? Glibc.read(fd, buffer + filled, want) : pread(fd, buffer + filled, want, off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                throw .readFailed(path: path, errno: errno)
            }
            if n == 0 { break }
            offset += n
            builder.stats.bytes += UInt64(n)
            filled += n
            var start = 0
            if skipping {
                guard let nl = memchr(buffer, 0x0A, filled) else { filled = 0; continue }
                start = buffer.distance(to: nl.assumingMemoryBound(to: UInt8.self)) + 1
                skipping = false
            }
            start = builder.consumeLines(UnsafePointer(buffer) + start, UnsafePointer(buffer) + filled, final: false)
                - UnsafePointer(buffer)
            let remaining = filled - start
            if remaining >= maxLineLength {
                builder.lineTooLong()
                skipping = true
                filled = 0
            } else {
                if start > 0 && remaining > 0 { memmove(buffer, buffer + start, remaining) }
                filled = remaining
            }
        }
        if filled > 0 && !skipping {
            _ = builder.consumeLines(UnsafePointer(buffer), UnsafePointer(buffer) + filled, final: true)
        }
    }

    /// Offsets that split the file into about `parts` pieces, each after the first starting at
    /// a line that begins a FUNC or STACK record; always begins with 0 and ends with `size`.
    static func splitPoints(_ fd: Int32, size: Int, parts: Int) -> [Int] {
        var bounds = [0]
        let window = 1 << 18
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: window)
        defer { buffer.deallocate() }
        for i in 1..<parts {
            var at = max(size / parts * i, bounds[bounds.count - 1] + 1)
            var found: Int?
            // Look up to 16 MiB past the target for a safe line start.
            while found == nil, at < size, at < size / parts * i + (16 << 20) {
                let n = pread(fd, buffer, min(window, size - at), off_t(at))
                guard n > 16 else { break }
                var q = 0
                while q < n - 16 {
                    guard let nl = memchr(buffer + q, 0x0A, n - 16 - q) else { break }
                    let line = buffer.distance(to: nl.assumingMemoryBound(to: UInt8.self)) + 1
                    if memcmp(buffer + line, "FUNC ", 5) == 0 || memcmp(buffer + line, "STACK ", 6) == 0 {
                        found = at + line
                        break
                    }
                    q = line
                }
                at += max(1, n - 16)
            }
            guard let found, found < size else { break }
            bounds.append(found)
        }
        bounds.append(size)
        return bounds
    }

    private func parseInParallel(_ fd: Int32, path: String, bounds: [Int]) throws(SymbolFileError) -> SymbolTable {
        let parts = bounds.count - 1
        let builders = UnsafeMutableBufferPointer<SymbolTableBuilder>.allocate(capacity: parts)
        let errors = UnsafeMutableBufferPointer<SymbolFileError?>.allocate(capacity: parts)
        defer {
            builders.deinitialize().deallocate()
            errors.deinitialize().deallocate()
        }
        for i in 0..<parts {
            var b = SymbolTableBuilder()
            if i > 0 {
                b.continuesAnotherPart = true
                b.sawFirstRecord = true
                b.scanningLeadingInfo = false
            }
            (builders.baseAddress! + i).initialize(to: b)
            (errors.baseAddress! + i).initialize(to: nil)
        }
        nonisolated(unsafe) let b = builders, e = errors
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            do throws(SymbolFileError) { try Self.read(fd, path: path, range: bounds[i]..<bounds[i + 1], into: &b[i]) } catch { e[i] = error }
        }
        if let error = errors.first(where: { $0 != nil }) ?? nil { throw error }
        var first = builders[0]
        for i in 1..<parts { first.absorb(&builders[i]) }
        return try first.finish()
    }

    /// Parses symbol text already in memory (e.g. a downloaded body).
    public func parse(bytes: UnsafeRawBufferPointer) throws(SymbolFileError) -> SymbolTable {
        var builder = SymbolTableBuilder()
        builder.stats.bytes = UInt64(bytes.count)
        if let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 {
            _ = builder.consumeLines(base, base + bytes.count, final: true)
        }
        return try builder.finish()
    }

    public func parse(_ bytes: [UInt8]) throws(SymbolFileError) -> SymbolTable {
        let result: Result<SymbolTable, SymbolFileError> = bytes.withUnsafeBytes { raw in
            do throws(SymbolFileError) { return .success(try parse(bytes: raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// Symbol text parsed as it arrives in blocks — the output of a generator such as the symbol
/// dumper — so the whole text is never held: only a line split across two blocks is.
public struct SymbolStreamParser {
    var builder = SymbolTableBuilder()
    var tail: [UInt8] = []

    public init() {}

    /// Consumes the complete lines of `bytes` (with what the previous block left unfinished).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return }
        builder.stats.bytes += UInt64(bytes.count)
        var start = base
        let end = base + bytes.count
        if !tail.isEmpty {
            // The unfinished line ends at this block's first newline.
            guard let nl = memchr(start, 0x0A, end - start) else {
                if tail.count < SymbolFileParser.maxLineLength { tail.append(contentsOf: UnsafeBufferPointer(start: start, count: end - start)) }
                return
            }
            let newline = UnsafePointer(nl.assumingMemoryBound(to: UInt8.self))
            tail.append(contentsOf: UnsafeBufferPointer(start: start, count: newline - start + 1))
            if tail.count > SymbolFileParser.maxLineLength {
                builder.lineTooLong()
            } else {
                tail.withUnsafeBufferPointer { b in _ = builder.consumeLines(b.baseAddress!, b.baseAddress! + b.count, final: true) }
            }
            tail.removeAll(keepingCapacity: true)
            start = newline + 1
        }
        let rest = builder.consumeLines(start, end, final: false)
        if rest < end { tail.append(contentsOf: UnsafeBufferPointer(start: rest, count: end - rest)) }
    }

    /// The table of everything fed (a last line without a newline counts).
    public mutating func finish() throws(SymbolFileError) -> SymbolTable {
        if !tail.isEmpty {
            tail.withUnsafeBufferPointer { b in _ = builder.consumeLines(b.baseAddress!, b.baseAddress! + b.count, final: true) }
            tail.removeAll()
        }
        return try builder.finish()
    }
}

/// Accumulates records while lines are consumed.
struct SymbolTableBuilder {
    var stats = ParseStatistics()
    var module: ModuleInfo?
    var sawFirstRecord = false
    /// Eliot's module-name scan: still looking at leading INFO lines.
    var scanningLeadingInfo = true

    var strings = RecordBuffer<UInt8>()
    var files = RecordBuffer<NamedEntry>()
    var origins = RecordBuffer<NamedEntry>()
    var funcs = RecordBuffer<FuncRecord>()
    var lines = RecordBuffer<LineRecord>()
    var inlines = RecordBuffer<InlineRecord>()
    var publics = RecordBuffer<PublicRecord>()
    var winFrameData = RecordBuffer<StackWinRecord>()
    var winFPO = RecordBuffer<StackWinRecord>()
    var cfiInit = RecordBuffer<CFIInitRecord>()
    var cfiDelta = RecordBuffer<CFIDeltaRecord>()

    /// Index of the FUNC that line and INLINE records attach to, or -1.
    var currentFunc = -1
    var stringOverflow = false

    /// A builder for a later part of a file split for parallel parsing. Until its first FUNC,
    /// line and INLINE records belong to the previous part's last FUNC: their text is kept in
    /// `carried` and replayed by that part's builder when the parts are joined.
    var continuesAnotherPart = false
    /// Whether a FUNC line (well-formed or not) has been seen; before it, a continuation carries.
    var sawFuncLine = false
    var carried: [UInt8] = []
    var carriedLines: UInt64 = 0

    mutating func lineTooLong() {
        stats.lines += 1
        stats.noteMalformed("line longer than \(SymbolFileParser.maxLineLength) bytes")
    }

    /// Consumes complete lines in [start, end); returns where the unconsumed tail begins.
    /// With `final`, a last line without a newline is consumed too.
    mutating func consumeLines(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, final: Bool) -> UnsafePointer<UInt8> {
        var p = start
        while p < end {
            guard let nlRaw = memchr(p, 0x0A, end - p) else {
                if final { line(p, end) ; return end }
                return p
            }
            let nl = UnsafePointer(nlRaw.assumingMemoryBound(to: UInt8.self))
            line(p, nl)
            p = nl + 1
        }
        return p
    }

    @inline(__always)
    private mutating func string(_ s: (UnsafePointer<UInt8>, Int)) -> StringRef {
        let offset = strings.count
        guard offset + s.1 <= Int(UInt32.max) else { stringOverflow = true; return .empty }
        if s.1 > 0 { strings.appendElements(s.0, s.1) }
        return StringRef(offset: UInt32(offset), length: UInt32(s.1))
    }

    private mutating func line(_ start: UnsafePointer<UInt8>, _ lineEnd: UnsafePointer<UInt8>) {
        stats.lines += 1
        var e = lineEnd
        if e > start, e[-1] == 0x0D { e -= 1 }
        if e == start { return }
        var c = LineCursor(start, e)
        let first = start.pointee

        if !sawFirstRecord {
            sawFirstRecord = true
            if c.consume("MODULE") { moduleRecord(&c); return }
            return // no MODULE: finish() reports it
        }
        switch first {
        case UInt8(ascii: "F"):
            if c.consume("FUNC") { funcRecord(&c); return }
            if c.consume("FILE") { if let e = namedRecord(&c, isInlineOrigin: false) { files.append(e) }; stats.files += 1; scanningLeadingInfo = false; return }
        case UInt8(ascii: "P"):
            if c.consume("PUBLIC") { publicRecord(&c); return }
        case UInt8(ascii: "S"):
            if c.consume("STACK") {
                if c.consume("CFI") {
                    if c.consume("INIT") { cfiInitRecord(&c) } else { cfiDeltaRecord(&c) }
                    return
                }
                if c.consume("WIN") { stackWinRecord(&c); return }
            }
        case UInt8(ascii: "I"):
            if continuesAnotherPart, !sawFuncLine, c.consume("INLINE") { carry(start, e); return }
            if c.consume("INLINE") { inlineRecord(&c); return }
            if c.consume("INLINE_ORIGIN") { if let e = namedRecord(&c, isInlineOrigin: true) { origins.append(e) }; stats.inlineOrigins += 1; return }
            if c.consume("INFO") { infoRecord(&c); return }
        case UInt8(ascii: "M"):
            if c.consume("MODULE") { stats.noteMalformed("second MODULE record"); return }
        default:
            break
        }
        // A line record starts with a hex address; any other leading word is an unknown record.
        guard let address = c.hex() else { stats.unknown += 1; return }
        if continuesAnotherPart, !sawFuncLine { carry(start, e); return }
        lineRecord(address, &c)
    }

    private mutating func carry(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) {
        carried.append(contentsOf: UnsafeBufferPointer(start: start, count: end - start))
        carried.append(0x0A)
        carriedLines += 1
    }

    /// Appends the records of the builder of the part that follows this one (`next`, whose
    /// string references and line/inline indexes are shifted), after replaying the line and
    /// INLINE records it carried for this part's last FUNC. `next` is emptied.
    mutating func absorb(_ next: inout SymbolTableBuilder) {
        if !next.carried.isEmpty {
            let lineCount = stats.lines
            next.carried.withUnsafeBufferPointer { b in
                _ = consumeLines(b.baseAddress!, b.baseAddress! + b.count, final: true)
            }
            stats.lines = lineCount  // `next` counted these lines already
        }
        // Each table of `next` is unmapped as soon as it is copied, so the merge never holds two
        // copies of everything.
        let shift = UInt32(truncatingIfNeeded: strings.count)
        if strings.count + next.strings.count > Int(UInt32.max) { stringOverflow = true }
        if let base = next.strings.base { strings.appendElements(base, next.strings.count) }
        next.strings.release()
        func moved(_ r: StringRef) -> StringRef { r.length == 0 ? r : StringRef(offset: r.offset &+ shift, length: r.length) }
        let lineBase = UInt32(truncatingIfNeeded: lines.count), inlineBase = UInt32(truncatingIfNeeded: inlines.count)
        if lines.count + next.lines.count > Int(UInt32.max) || inlines.count + next.inlines.count > Int(UInt32.max) { stringOverflow = true }
        let funcsBefore = funcs.count
        for f in next.files.readOnly { files.append(NamedEntry(id: f.id, name: moved(f.name))) }
        for o in next.origins.readOnly { origins.append(NamedEntry(id: o.id, name: moved(o.name))) }
        for var f in next.funcs.readOnly {
            f.name = moved(f.name)
            f.lineStart &+= lineBase
            f.inlineStart &+= inlineBase
            funcs.append(f)
        }
        next.funcs.release()
        if let base = next.lines.base { lines.appendElements(base, next.lines.count) }
        next.lines.release()
        if let base = next.inlines.base { inlines.appendElements(base, next.inlines.count) }
        next.inlines.release()
        for var p in next.publics.readOnly { p.name = moved(p.name); publics.append(p) }
        for var w in next.winFrameData.readOnly { w.program = moved(w.program); winFrameData.append(w) }
        for var w in next.winFPO.readOnly { w.program = moved(w.program); winFPO.append(w) }
        for var c in next.cfiInit.readOnly { c.rules = moved(c.rules); cfiInit.append(c) }
        next.cfiInit.release()
        for var c in next.cfiDelta.readOnly { c.rules = moved(c.rules); cfiDelta.append(c) }
        if next.stringOverflow { stringOverflow = true }
        // The state a sequential pass would be in after `next`'s lines.
        if next.sawFuncLine {
            sawFuncLine = true
            currentFunc = next.currentFunc >= 0 ? funcsBefore + next.currentFunc : -1
        }
        stats.absorb(next.stats, lineOffset: stats.lines)
        next.release()
    }

    /// Unmaps every table (after `absorb` copied them).
    mutating func release() {
        strings.release(); files.release(); origins.release(); funcs.release(); lines.release(); inlines.release()
        publics.release(); winFrameData.release(); winFPO.release(); cfiInit.release(); cfiDelta.release()
    }

    // MARK: records

    private mutating func moduleRecord(_ c: inout LineCursor) {
        guard let os = c.token(), let arch = c.token(), let id = c.token() else { return }
        let name = c.rest()
        guard name.1 > 0 else { return }
        module = ModuleInfo(os: utf8String(os), arch: utf8String(arch), debugId: utf8String(id),
                            debugFile: utf8String(UnsafeBufferPointer(start: name.0, count: name.1)))
    }

    private mutating func infoRecord(_ c: inout LineCursor) {
        stats.info += 1
        if c.consume("CODE_ID") {
            let fieldCount = c.tokenCount() + 2
            guard let id = c.token() else { stats.noteMalformed("INFO CODE_ID without an id"); return }
            let file = c.rest()
            module?.codeId = utf8String(id)
            if file.1 > 0 { module?.codeFile = utf8String(UnsafeBufferPointer(start: file.0, count: file.1)) }
            // Eliot takes the module name from a leading `INFO CODE_ID <id> <file>` split on single
            // spaces into exactly four fields; any other shape of that line ends the scan.
            if scanningLeadingInfo {
                if fieldCount == 4, file.1 > 0, module?.symbolicationName == nil {
                    let codeFile = module?.codeFile
                    module?.symbolicationName = codeFile
                }
                scanningLeadingInfo = false
            }
        } else if c.consume("GENERATOR") {
            let g = c.rest()
            module?.generator = utf8String(UnsafeBufferPointer(start: g.0, count: g.1))
        } else if c.consume("URL") {
            let u = c.rest()
            module?.url = utf8String(UnsafeBufferPointer(start: u.0, count: u.1))
        }
    }

    private mutating func namedRecord(_ c: inout LineCursor, isInlineOrigin: Bool) -> NamedEntry? {
        // For FILE records, UInt32.max is reserved for "no file" in the tables.
        guard let id = c.decimal32(), isInlineOrigin || id != InlineRecord.noFile else { stats.noteMalformed("bad id"); return nil }
        if isInlineOrigin {
            // Old INLINE_ORIGIN format: `<id> <file_id> <name>`; the file id is all digits (or -1).
            var probe = c
            if let t = probe.token(), isAllDigits(t), !probe.atEnd { c = probe }
        }
        return NamedEntry(id: id, name: string(c.rest()))
    }

    private mutating func funcRecord(_ c: inout LineCursor) {
        scanningLeadingInfo = false
        sawFuncLine = true
        var flags: UInt32 = 0
        if c.consume("m") { flags = 1 }
        guard let address = c.hex(), let size = c.hex(), let param = c.hex(), param <= UInt64(UInt32.max) else {
            currentFunc = -1
            stats.noteMalformed("bad FUNC record")
            return
        }
        let name = c.rest()
        stats.functions += 1
        funcs.append(FuncRecord(address: address, size: size, name: string(name),
                                lineStart: UInt32(truncatingIfNeeded: lines.count), lineCount: 0,
                                inlineStart: UInt32(truncatingIfNeeded: inlines.count), inlineCount: 0,
                                parameterSize: UInt32(param), flags: flags))
        currentFunc = funcs.count - 1
    }

    private mutating func lineRecord(_ address: UInt64, _ c: inout LineCursor) {
        guard let size = c.hex(), let line = c.decimal32(), let file = c.decimal32(), c.atEnd else {
            stats.noteMalformed("bad line record")
            return
        }
        guard currentFunc >= 0 else { stats.noteMalformed("line record outside a FUNC"); return }
        let f = funcs.base.unsafelyUnwrapped + currentFunc
        guard address >= f.pointee.address, address - f.pointee.address <= UInt64(UInt32.max), lines.count < Int(UInt32.max) else {
            stats.outOfRange += 1
            return
        }
        stats.lineRecords += 1
        lines.append(LineRecord(offset: UInt32(address - f.pointee.address), size: UInt32(min(size, UInt64(UInt32.max))),
                                line: line, file: file))
        f.pointee.lineCount += 1
    }

    private mutating func inlineRecord(_ c: inout LineCursor) {
        // New format: level line file origin (addr size)+ — an even token count; old: no file, odd.
        let count = c.tokenCount()
        guard count >= 5 else { stats.noteMalformed("INLINE record with \(count) fields"); return }
        let newFormat = count % 2 == 0
        guard let depth = c.decimal32(), let callLine = c.decimal32() else { stats.noteMalformed("bad INLINE record"); return }
        var callFile = InlineRecord.noFile
        if newFormat {
            let (ok, v) = c.decimal32OrMinusOne()
            guard ok else { stats.noteMalformed("bad INLINE call-site file"); return }
            callFile = v ?? InlineRecord.noFile
        }
        guard let origin = c.decimal32() else { stats.noteMalformed("bad INLINE origin"); return }
        guard currentFunc >= 0 else { stats.noteMalformed("INLINE record outside a FUNC"); return }
        let f = funcs.base.unsafelyUnwrapped + currentFunc
        let base = f.pointee.address
        var ranges = 0
        while !c.atEnd {
            guard let address = c.hex(), let size = c.hex() else { stats.noteMalformed("bad INLINE range"); return }
            guard address >= base, address - base <= UInt64(UInt32.max), inlines.count < Int(UInt32.max) else {
                stats.outOfRange += 1
                continue
            }
            inlines.append(InlineRecord(depth: depth, callLine: callLine, callFile: callFile, origin: origin,
                                        offset: UInt32(address - base), size: UInt32(min(size, UInt64(UInt32.max)))))
            f.pointee.inlineCount += 1
            ranges += 1
        }
        if ranges > 0 { stats.inlineRecords += 1 }
    }

    private mutating func publicRecord(_ c: inout LineCursor) {
        scanningLeadingInfo = false
        var flags: UInt32 = 0
        if c.consume("m") { flags = 1 }
        guard let address = c.hex(), let param = c.hex(), param <= UInt64(UInt32.max) else {
            stats.noteMalformed("bad PUBLIC record")
            return
        }
        stats.publics += 1
        publics.append(PublicRecord(address: address, name: string(c.rest()), parameterSize: UInt32(param), flags: flags))
    }

    private mutating func stackWinRecord(_ c: inout LineCursor) {
        var f = [UInt32](repeating: 0, count: 10)
        for i in 0..<10 {
            guard let v = c.hex(), v <= UInt64(UInt32.max) else { stats.noteMalformed("bad STACK WIN record"); return }
            f[i] = UInt32(v)
        }
        let type = f[0], hasProgram = f[9] != 0
        let rest = c.rest()
        var record = StackWinRecord(type: type, rva: f[1], codeSize: f[2], prologueSize: f[3], epilogueSize: f[4],
                                    parameterSize: f[5], savedRegisterSize: f[6], localSize: f[7], maxStackSize: f[8],
                                    allocatesBasePointer: 0, program: .empty)
        switch (type, hasProgram) {
        case (4, true):
            guard rest.1 > 0 else { stats.noteMalformed("STACK WIN 4 without a program string"); return }
            record.program = string(rest)
            winFrameData.append(record)
        case (0, false):
            var r = LineCursor(rest.0, rest.0 + rest.1)
            guard let flag = r.hex() else { stats.noteMalformed("STACK WIN 0 without allocates_base_pointer"); return }
            record.allocatesBasePointer = flag != 0 ? 1 : 0
            winFPO.append(record)
        default:
            stats.ignoredStackWin += 1
            return
        }
        stats.stackWin += 1
    }

    private mutating func cfiInitRecord(_ c: inout LineCursor) {
        guard let address = c.hex(), let size = c.hex() else { stats.noteMalformed("bad STACK CFI INIT record"); return }
        let rules = c.rest()
        guard rules.1 > 0 else { stats.noteMalformed("STACK CFI INIT without rules"); return }
        stats.stackCFIInit += 1
        cfiInit.append(CFIInitRecord(address: address, size: size, rules: string(rules)))
    }

    private mutating func cfiDeltaRecord(_ c: inout LineCursor) {
        guard let address = c.hex() else { stats.noteMalformed("bad STACK CFI record"); return }
        let rules = c.rest()
        guard rules.1 > 0 else { stats.noteMalformed("STACK CFI without rules"); return }
        stats.stackCFI += 1
        cfiDelta.append(CFIDeltaRecord(address: address, rules: string(rules)))
    }


    // MARK: finishing

    mutating func finish() throws(SymbolFileError) -> SymbolTable {
        let memory = TableMemory(regions: [strings.region, files.region, origins.region, funcs.region, lines.region,
                                           inlines.region, publics.region, winFrameData.region, winFPO.region,
                                           cfiInit.region, cfiDelta.region])
        guard let module else { throw .missingModuleRecord }
        if stringOverflow { throw .tooLarge("more than 4 GiB of names") }
        sortAndDeduplicate()
        let sections = Sections(
            strings: UnsafeRawBufferPointer(strings.readOnly), files: files.readOnly, origins: origins.readOnly,
            funcs: funcs.readOnly, lines: lines.readOnly, inlines: inlines.readOnly, publics: publics.readOnly,
            winFrameData: winFrameData.readOnly, winFPO: winFPO.readOnly, cfiInit: cfiInit.readOnly, cfiDelta: cfiDelta.readOnly)
        return SymbolTable(module: module, stats: stats, storage: .heap(memory), sections: sections)
    }

    private mutating func sortAndDeduplicate() {
        // Swift's sort is stable, so among records at one address the first in the file stays first.
        var f = funcs.buffer
        if !isSorted(f, by: { $0.address }) { f.sort { $0.address < $1.address } }
        let kept = deduplicate(f, by: { $0.address })
        stats.duplicates += UInt64(f.count - kept)
        funcs.truncate(to: kept)
        for i in 0..<kept {
            let fn = f[i]
            if fn.lineCount > 0, let lineBase = lines.base {
                var l = UnsafeMutableBufferPointer(start: lineBase + Int(fn.lineStart), count: Int(fn.lineCount))
                if !isSorted(l, by: { $0.offset }) { l.sort { $0.offset < $1.offset } }
                let n = dropOverlaps(l, start: { UInt64($0.offset) }, size: { UInt64($0.size) }, group: { _ in 0 })
                stats.overlaps += UInt64(l.count - n)
                f[i].lineCount = UInt32(n)
            }
            if fn.inlineCount > 0, let inlineBase = inlines.base {
                var b = UnsafeMutableBufferPointer(start: inlineBase + Int(fn.inlineStart), count: Int(fn.inlineCount))
                func key(_ r: InlineRecord) -> UInt64 { UInt64(r.depth) << 32 | UInt64(r.offset) }
                if !isSorted(b, by: key) { sortSmall(&b, by: key) }
                let n = dropOverlaps(b, start: { UInt64($0.offset) }, size: { UInt64($0.size) }, group: { $0.depth })
                stats.overlaps += UInt64(b.count - n)
                f[i].inlineCount = UInt32(n)
            }
        }
        var p = publics.buffer
        if !isSorted(p, by: { $0.address }) { p.sort { $0.address < $1.address } }
        let keptPublics = deduplicate(p, by: { $0.address })
        stats.duplicates += UInt64(p.count - keptPublics)
        publics.truncate(to: keptPublics)
        for i in 0..<2 {
            var b = i == 0 ? files.buffer : origins.buffer
            if !isSorted(b, by: { $0.id }) { b.sort { $0.id < $1.id } }
            let kept = deduplicate(b, by: { $0.id })
            if i == 0 { files.truncate(to: kept) } else { origins.truncate(to: kept) }
        }
        for var b in [winFrameData.buffer, winFPO.buffer] where !isSorted(b, by: { $0.rva }) {
            b.sort { $0.rva < $1.rva }
        }
        var ci = cfiInit.buffer
        if !isSorted(ci, by: { $0.address }) { ci.sort { $0.address < $1.address } }
        var cd = cfiDelta.buffer
        if !isSorted(cd, by: { $0.address }) { cd.sort { $0.address < $1.address } }
    }
}

/// Insertion sort for the short runs of one function's records (dump_syms writes INLINE records in
/// nesting order, so nearly every function needs a sort); larger runs use the standard sort.
/// The standard sort allocates a merge buffer per call, which dominated for thousands of tiny runs.
func sortSmall<T, K: Comparable>(_ b: inout UnsafeMutableBufferPointer<T>, by key: (T) -> K) {
    guard b.count <= 32 else { b.sort { key($0) < key($1) }; return }
    for i in 1..<max(1, b.count) {
        let x = b[i]
        let k = key(x)
        var j = i
        while j > 0, key(b[j - 1]) > k {
            b[j] = b[j - 1]
            j -= 1
        }
        b[j] = x
    }
}

@inline(__always)
func isSorted<T, K: Comparable>(_ b: UnsafeMutableBufferPointer<T>, by key: (T) -> K) -> Bool {
    guard b.count > 1 else { return true }
    var prev = key(b[0])
    for i in 1..<b.count {
        let k = key(b[i])
        if k < prev { return false }
        prev = k
    }
    return true
}

/// Like Breakpad's range maps, which refuse a range that overlaps one already stored: within each
/// group (sorted by group, then start), drops a record that starts inside the previous kept one.
/// Returns the new count.
func dropOverlaps<T>(_ b: UnsafeMutableBufferPointer<T>, start: (T) -> UInt64, size: (T) -> UInt64, group: (T) -> UInt32) -> Int {
    guard b.count > 1 else { return b.count }
    var w = 1
    for r in 1..<b.count {
        let prev = b[w - 1]
        if group(b[r]) == group(prev), start(b[r]) < start(prev) &+ size(prev) { continue }
        if w != r { b[w] = b[r] }
        w += 1
    }
    return w
}

/// Removes later records whose key equals an earlier one (input sorted); returns the new count.
func deduplicate<T, K: Equatable>(_ b: UnsafeMutableBufferPointer<T>, by key: (T) -> K) -> Int {
    guard b.count > 1 else { return b.count }
    var w = 1
    for r in 1..<b.count where key(b[r]) != key(b[w - 1]) {
        if w != r { b[w] = b[r] }
        w += 1
    }
    return w
}

@inline(__always)
func utf8String(_ b: UnsafeBufferPointer<UInt8>) -> String { String(decoding: b, as: UTF8.self) }
