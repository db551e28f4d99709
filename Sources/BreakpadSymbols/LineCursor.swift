/// Reads the fields of one text line in place. Fields are separated by spaces (runs and tabs are
/// tolerated); numbers are parsed directly from the bytes, never through `String`.
struct LineCursor {
    var p: UnsafePointer<UInt8>
    let end: UnsafePointer<UInt8>

    init(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) {
        self.p = start
        self.end = end
    }

    var atEnd: Bool { p >= end }

    @inline(__always)
    mutating func skipSpaces() {
        while p < end, p.pointee == 0x20 || p.pointee == 0x09 { p += 1 }
    }

    /// Consumes `keyword` followed by a space (or the end of line).
    @inline(__always)
    mutating func consume(_ keyword: StaticString) -> Bool {
        let n = keyword.utf8CodeUnitCount
        guard end - p >= n else { return false }
        let k = keyword.utf8Start
        for i in 0..<n where p[i] != k[i] { return false }
        if p + n < end, p[n] != 0x20, p[n] != 0x09 { return false }
        p += n
        skipSpaces()
        return true
    }

    /// A lowercase or uppercase hex number of at most 16 significant digits, followed by a
    /// separator or the end.
    @inline(__always)
    mutating func hex() -> UInt64? {
        var value: UInt64 = 0
        let start = p
        while p < end {
            let c = p.pointee
            var d = c &- 0x30
            if d > 9 {
                d = (c | 0x20) &- 0x61   // folds A–F onto a–f
                if d > 5 { break }
                d += 10
            }
            if value >> 60 != 0 { return nil }
            value = value << 4 | UInt64(d)
            p += 1
        }
        guard p > start, fieldEnded() else { return nil }
        skipSpaces()
        return value
    }

    /// An unsigned decimal number that fits in 32 bits.
    @inline(__always)
    mutating func decimal32() -> UInt32? {
        var value: UInt64 = 0
        var digits = 0
        while p < end {
            let d = p.pointee &- 0x30
            if d >= 10 { break }
            value = value * 10 + UInt64(d)
            if value > UInt64(UInt32.max) { return nil }
            digits += 1
            p += 1
        }
        guard digits > 0, fieldEnded() else { return nil }
        skipSpaces()
        return UInt32(value)
    }

    /// A decimal number that may be `-1`, mapped to `nil` in the second result ("no value").
    @inline(__always)
    mutating func decimal32OrMinusOne() -> (ok: Bool, value: UInt32?) {
        if p < end, p.pointee == 0x2D {
            guard end - p >= 2, p[1] == 0x31, end - p == 2 || p[2] == 0x20 || p[2] == 0x09 else { return (false, nil) }
            p += 2
            skipSpaces()
            return (true, nil)
        }
        guard let v = decimal32() else { return (false, nil) }
        return (true, v)
    }

    @inline(__always)
    private func fieldEnded() -> Bool {
        p >= end || p.pointee == 0x20 || p.pointee == 0x09
    }

    /// The next whitespace-delimited token.
    mutating func token() -> UnsafeBufferPointer<UInt8>? {
        skipSpaces()
        let start = p
        while p < end, p.pointee != 0x20, p.pointee != 0x09 { p += 1 }
        guard p > start else { return nil }
        let t = UnsafeBufferPointer(start: start, count: p - start)
        skipSpaces()
        return t
    }

    /// Everything left on the line (a name with spaces, a program string), trailing blanks trimmed.
    mutating func rest() -> (UnsafePointer<UInt8>, Int) {
        var e = end
        while e > p, e[-1] == 0x20 || e[-1] == 0x09 { e -= 1 }
        let r = (p, e - p)
        p = end
        return r
    }

    /// Counts whitespace-separated tokens from the current position without consuming them.
    func tokenCount() -> Int {
        var n = 0
        var q = p
        var inToken = false
        while q < end {
            let blank = q.pointee == 0x20 || q.pointee == 0x09
            if !blank && !inToken { n += 1 }
            inToken = !blank
            q += 1
        }
        return n
    }
}

@inline(__always)
func isAllDigits(_ t: UnsafeBufferPointer<UInt8>) -> Bool {
    guard !t.isEmpty else { return false }
    var i = 0
    if t[0] == 0x2D { i = 1; if t.count == 1 { return false } }
    while i < t.count { if t[i] &- 0x30 >= 10 { return false }; i += 1 }
    return true
}

