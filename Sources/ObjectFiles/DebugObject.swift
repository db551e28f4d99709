/// What writing a `.sym` needs from an object file, whatever its container (ELF, Mach-O).
public protocol DebugObject: Sendable {
    var architecture: ELFFile.Machine { get }
    var is64: Bool { get }
    /// The MODULE line's operating system: `Linux`, `mac`.
    var operatingSystem: String { get }
    var debugID: String { get }
    /// INFO CODE_ID (nil: none is written).
    var codeIdentifier: String? { get }
    /// The address `.sym` records are relative to.
    var loadAddress: UInt64 { get }
    /// An object not linked yet: every address counts (no executable-section filter).
    var isRelocatable: Bool { get }
    /// [start, end) of the sections holding code.
    func executableRanges() -> [(UInt64, UInt64)]
    /// Defined function symbols: address (Thumb bit cleared) and name as the linker spells it,
    /// without a platform prefix (`_` on Mach-O). `global` marks the name to prefer at an address.
    func functionSymbols() throws(ObjectFileError) -> FunctionSymbols
    /// A debug section by its ELF name (`.debug_info`, `.eh_frame`, `.debug_frame`): contents and address.
    func debugSection(_ elfName: String) throws(ObjectFileError) -> (data: ObjectBytes, address: UInt64)?
    /// Whether that section exists (without reading or inflating it).
    func hasDebugSection(_ elfName: String) -> Bool
    /// Why the debug information may not be trusted as it is (an unrelocated object), or nil.
    var debugInformationCaveat: String? { get }
}

/// Every architecture of a native debug file: one for an ELF or thin Mach-O file, one per slice
/// of a fat Mach-O file; nil when the bytes are neither.
public func debugObjects(_ bytes: ObjectBytes) throws(ObjectFileError) -> [any DebugObject]? {
    if ELFFile.isELF(bytes) { return [try ELFFile(bytes: bytes)] }
    guard MachOFile.isMachO(bytes) else { return nil }
    var objects: [any DebugObject] = []
    for slice in try MachOFile.slices(bytes) { objects.append(try MachOFile(bytes: slice.bytes)) }
    return objects
}

extension ELFFile: DebugObject {
    public var architecture: Machine { machine }
    public var operatingSystem: String { "Linux" }
    public var codeIdentifier: String? { codeID.uppercased() }
    public var isRelocatable: Bool { fileType == 1 }

    public func executableRanges() -> [(UInt64, UInt64)] {
        sections.filter { $0.flags & 0x6 == 0x6 && $0.size > 0 }.map { ($0.address, $0.address &+ $0.size) }
    }

    public func functionSymbols() throws(ObjectFileError) -> FunctionSymbols {
        guard let (data, strings) = try symbolTable() else { return FunctionSymbols(entries: [], strings: ObjectBytes([])) }
        var entries: [FunctionSymbols.Entry] = []
        try forEachSymbol(data) { name, info, shndx, value, _ in
            // STT_FUNC, defined, named.
            guard info & 0xF == 2, shndx != 0, !FunctionSymbols.isEmptyName(strings, UInt64(name)) else { return }
            entries.append(FunctionSymbols.Entry(address: machine == .arm ? value & ~1 : value, nameOffset: UInt64(name), global: info >> 4 == 1))
        }
        return FunctionSymbols(entries: entries, strings: strings)
    }

    public func debugSection(_ elfName: String) throws(ObjectFileError) -> (data: ObjectBytes, address: UInt64)? {
        guard let s = section(named: elfName) else { return nil }
        var data = try contents(of: s)
        // An object file's debug sections hold zeros where the linker would write addresses.
        if isRelocatable { data = try applyRelocations(to: data, of: s) }
        return (data, s.address)
    }

    public func hasDebugSection(_ elfName: String) -> Bool { section(named: elfName) != nil }

    public var debugInformationCaveat: String? {
        guard isRelocatable else { return nil }
        // Relocations of types not applied (a machine or a relocation this reader does not know).
        var unapplied = 0
        for s in sections where s.name.hasPrefix(".debug_") || s.name.hasPrefix(".zdebug_") || s.name == ".eh_frame" {
            try? forEachRelocation(of: s) { r in
                if r.type != 0, ELFFile.relocationKind(machine, r.type) == nil { unapplied += 1 }
            }
        }
        return unapplied == 0 ? nil : "relocatable object: \(unapplied) relocations of the debug sections are of types not applied; addresses and ranges may be wrong"
    }
}
