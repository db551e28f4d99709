/// An object file's defined function symbols, their names left in the string table until a
/// record needs them (a large binary has hundreds of thousands, most never written).
public struct FunctionSymbols: Sendable {
    public struct Entry: Sendable {
        /// Thumb bit cleared.
        public let address: UInt64
        /// Where the name starts in `strings` (past a platform prefix such as Mach-O's `_`).
        public let nameOffset: UInt64
        /// The name to prefer among several at one address.
        public let global: Bool

        public init(address: UInt64, nameOffset: UInt64, global: Bool) {
            self.address = address
            self.nameOffset = nameOffset
            self.global = global
        }
    }

    public var entries: [Entry]
    public let strings: ObjectBytes

    public init(entries: [Entry], strings: ObjectBytes) {
        self.entries = entries
        self.strings = strings
    }

    public func name(_ entry: Entry) -> String { strings.cString(entry.nameOffset) ?? "" }

    /// Whether the string at `offset` is empty (or outside the table).
    static func isEmptyName(_ strings: ObjectBytes, _ offset: UInt64) -> Bool {
        (try? strings.u8(offset, "symbol name")) ?? 0 == 0
    }
}
