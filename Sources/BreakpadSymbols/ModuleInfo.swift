/// What the MODULE and INFO records say about the module a symbol file describes.
public struct ModuleInfo: Sendable, Equatable, Codable {
    public var os: String
    public var arch: String
    public var debugId: String
    public var debugFile: String
    public var codeId: String?
    public var codeFile: String?
    public var generator: String?
    public var url: String?
    /// The module name Eliot-compatible symbolication reports: the code file of a leading
    /// `INFO CODE_ID <id> <file>` line (e.g. `xul.pdb` → `xul.dll`). See `SymbolFileParser`.
    public var symbolicationName: String?

    public init(os: String, arch: String, debugId: String, debugFile: String) {
        self.os = os
        self.arch = arch
        self.debugId = debugId
        self.debugFile = debugFile
    }
}

/// Record counts of a parsed file; malformed and unknown lines are counted, never fatal.
public struct ParseStatistics: Sendable, Equatable, Codable {
    public var bytes: UInt64 = 0
    public var lines: UInt64 = 0
    public var files: UInt64 = 0
    public var inlineOrigins: UInt64 = 0
    public var functions: UInt64 = 0
    public var lineRecords: UInt64 = 0
    public var inlineRecords: UInt64 = 0
    public var publics: UInt64 = 0
    public var stackWin: UInt64 = 0
    public var stackCFIInit: UInt64 = 0
    public var stackCFI: UInt64 = 0
    public var info: UInt64 = 0
    /// Lines that looked like a known record but could not be read, or line/INLINE records with no FUNC.
    public var malformed: UInt64 = 0
    /// Lines of record types this parser does not know (skipped, as the format asks).
    public var unknown: UInt64 = 0
    /// FUNC or PUBLIC records at an address already taken by an earlier record (the first is kept).
    public var duplicates: UInt64 = 0
    /// Line records or same-depth inline ranges overlapping an earlier one of their function (dropped,
    /// as Breakpad's range maps do).
    public var overlaps: UInt64 = 0
    /// Line or inline ranges that start before their FUNC or more than 4 GiB after it (dropped).
    public var outOfRange: UInt64 = 0
    /// STACK WIN records of types other than FPO (0) and FrameData (4), or whose type and
    /// has_program_string disagree (ignored, as rust-minidump does).
    public var ignoredStackWin: UInt64 = 0
    /// The first few malformed lines (line number and reason), for diagnostics.
    public var firstErrors: [String] = []

    public init() {}

    /// Adds the counts of a later part of the same file; its error line numbers are shifted by
    /// `lineOffset`, the lines before that part.
    mutating func absorb(_ o: ParseStatistics, lineOffset: UInt64) {
        bytes += o.bytes; lines += o.lines; files += o.files; inlineOrigins += o.inlineOrigins; functions += o.functions
        lineRecords += o.lineRecords; inlineRecords += o.inlineRecords; publics += o.publics; stackWin += o.stackWin
        stackCFIInit += o.stackCFIInit; stackCFI += o.stackCFI; info += o.info; malformed += o.malformed; unknown += o.unknown
        duplicates += o.duplicates; overlaps += o.overlaps; outOfRange += o.outOfRange; ignoredStackWin += o.ignoredStackWin
        for e in o.firstErrors where firstErrors.count < 10 {
            // "line N: reason"
            if e.hasPrefix("line "), let colon = e.firstIndex(of: ":"), let n = UInt64(e[e.index(e.startIndex, offsetBy: 5)..<colon]) {
                firstErrors.append("line \(n + lineOffset)\(e[colon...])")
            } else {
                firstErrors.append(e)
            }
        }
    }

    mutating func noteMalformed(_ reason: String) {
        malformed += 1
        if firstErrors.count < 10 { firstErrors.append("line \(lines): \(reason)") }
    }
}
