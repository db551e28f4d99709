// Fixed-layout records of a parsed symbol file. The same structs are the in-memory tables and the
// sections of the on-disk index (SymbolIndexFile), so they contain only fixed-width integers laid
// out without padding; `IndexLayoutTests` pins their sizes.

/// A reference into the string section.
public struct StringRef: Sendable, Equatable {
    public var offset: UInt32
    public var length: UInt32
    public static let empty = StringRef(offset: 0, length: 0)
}

/// A FILE or INLINE_ORIGIN record: id → name (and, for old-format origins, a file id).
struct NamedEntry {
    var id: UInt32
    var name: StringRef
}

struct FuncRecord {
    var address: UInt64
    var size: UInt64
    var name: StringRef
    var lineStart: UInt32
    var lineCount: UInt32
    var inlineStart: UInt32
    var inlineCount: UInt32
    var parameterSize: UInt32
    var flags: UInt32          // bit 0: `m` (several symbols folded here)
    var end: UInt64 { address &+ size }
}

/// A line record; its address is stored relative to its FUNC (functions are far below 4 GiB) to
/// keep the table at 16 bytes per record.
struct LineRecord {
    var offset: UInt32
    var size: UInt32
    var line: UInt32
    var file: UInt32
}

/// One address range of an INLINE record, relative to its FUNC. Records of a function are sorted
/// by (depth, offset).
struct InlineRecord {
    var depth: UInt32
    var callLine: UInt32
    var callFile: UInt32       // `noFile` when absent (old format or -1)
    var origin: UInt32
    var offset: UInt32
    var size: UInt32
    static let noFile = UInt32.max
}

struct PublicRecord {
    var address: UInt64
    var name: StringRef
    var parameterSize: UInt32
    var flags: UInt32
}

struct StackWinRecord {
    var type: UInt32
    var rva: UInt32
    var codeSize: UInt32
    var prologueSize: UInt32
    var epilogueSize: UInt32
    var parameterSize: UInt32
    var savedRegisterSize: UInt32
    var localSize: UInt32
    var maxStackSize: UInt32
    var allocatesBasePointer: UInt32
    var program: StringRef
}

struct CFIInitRecord {
    var address: UInt64
    var size: UInt64
    var rules: StringRef
}

struct CFIDeltaRecord {
    var address: UInt64
    var rules: StringRef
}
