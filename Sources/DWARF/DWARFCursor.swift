import ObjectFiles

/// A read position in a DWARF section: fixed-size integers, LEB128, strings, and the offsets
/// and addresses whose size the unit decides. Every read is bounds-checked.
struct DWARFCursor {
    let data: ObjectBytes
    var offset: UInt64

    init(_ data: ObjectBytes, at offset: UInt64 = 0) {
        self.data = data
        self.offset = offset
    }

    var atEnd: Bool { offset >= UInt64(data.count) }

    // The position moves only after a read succeeded: a failed read at a wild offset (a hostile
    // CIE pointer) must not move it past the end of the number range (found by the macho fuzz target).
    mutating func u8() throws(ObjectFileError) -> UInt8 { let v = try data.u8(offset, "DWARF byte"); offset += 1; return v }
    mutating func u16() throws(ObjectFileError) -> UInt16 { let v = try data.u16(offset, "DWARF u16"); offset += 2; return v }
    mutating func u32() throws(ObjectFileError) -> UInt32 { let v = try data.u32(offset, "DWARF u32"); offset += 4; return v }
    mutating func u64() throws(ObjectFileError) -> UInt64 { let v = try data.u64(offset, "DWARF u64"); offset += 8; return v }

    /// A 3-byte little-endian value (DW_FORM_strx3, addrx3).
    mutating func u24() throws(ObjectFileError) -> UInt64 {
        let a = UInt64(try u8()), b = UInt64(try u8()), c = UInt64(try u8())
        return data.bigEndian ? a << 16 | b << 8 | c : a | b << 8 | c << 16
    }

    mutating func uleb() throws(ObjectFileError) -> UInt64 {
        var result: UInt64 = 0, shift: UInt64 = 0
        while true {
            let b = try u8()
            if shift < 64 { result |= UInt64(b & 0x7F) << shift }
            shift += 7
            if b & 0x80 == 0 { return result }
            if shift > 640 { throw .malformed("an unsigned LEB128 number runs on past 90 bytes") }
        }
    }

    mutating func sleb() throws(ObjectFileError) -> Int64 {
        var result: Int64 = 0, shift: Int64 = 0, b: UInt8 = 0
        repeat {
            b = try u8()
            if shift < 64 { result |= Int64(b & 0x7F) << shift }
            shift += 7
            if shift > 640 { throw .malformed("a signed LEB128 number runs on past 90 bytes") }
        } while b & 0x80 != 0
        // Sign extension without negating (the shift may be 63).
        if shift < 64, b & 0x40 != 0 { result |= ~Int64(0) << shift }
        return result
    }

    /// An unsigned value of `size` bytes (1, 2, 4 or 8).
    mutating func unsigned(size: Int) throws(ObjectFileError) -> UInt64 {
        switch size {
        case 1: UInt64(try u8())
        case 2: UInt64(try u16())
        case 4: UInt64(try u32())
        case 8: try u64()
        default: throw .notSupported("a \(size)-byte value")
        }
    }

    /// A section offset: 4 bytes in 32-bit DWARF, 8 in 64-bit.
    mutating func sectionOffset(dwarf64: Bool) throws(ObjectFileError) -> UInt64 { dwarf64 ? try u64() : UInt64(try u32()) }

    mutating func cString() throws(ObjectFileError) -> String {
        guard let s = data.cString(offset) else { throw .truncated(what: "DWARF string", offset: offset, size: 1) }
        offset += UInt64(s.utf8.count) + 1
        return s
    }

    /// Steps over a NUL-terminated string; returns where it starts.
    mutating func skipCString() throws(ObjectFileError) -> UInt64 {
        let start = offset
        guard let length = data.cStringLength(offset) else { throw .truncated(what: "DWARF string", offset: offset, size: 1) }
        offset += UInt64(length) + 1
        return start
    }

    mutating func skip(_ n: UInt64) throws(ObjectFileError) {
        guard data.contains(offset, n) else { throw .truncated(what: "DWARF data", offset: offset, size: n) }
        offset += n
    }

    /// A unit's initial length: (length, is 64-bit DWARF).
    mutating func initialLength() throws(ObjectFileError) -> (UInt64, Bool) {
        let first = try u32()
        if first == 0xFFFF_FFFF { return (try u64(), true) }
        guard first < 0xFFFF_FFF0 else { throw .malformed("reserved unit length \(first)") }
        return (UInt64(first), false)
    }
}
