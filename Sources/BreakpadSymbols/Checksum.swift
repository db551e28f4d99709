/// A fast 64-bit checksum (four independent multiply-rotate lanes, in the style of xxHash64) that
/// guards the on-disk index. It is not cryptographic; it only has to catch torn or corrupted
/// cache files, and it must be fast enough to verify a 4 MB index in well under a millisecond.
func checksum64(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
    let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    let p3: UInt64 = 0x1656_67B1_9E37_79F9, p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    @inline(__always) func round(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        let x = acc &+ v &* p2
        return ((x << 31) | (x >> 33)) &* p1
    }
    let n = bytes.count
    guard n > 0, let base = bytes.baseAddress else { return seed ^ p3 }
    var i = 0
    var h: UInt64
    if n >= 32 {
        var a = seed &+ p1 &+ p2, b = seed &+ p2, c = seed, d = seed &- p1
        while i + 32 <= n {
            a = round(a, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            b = round(b, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            c = round(c, base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            d = round(d, base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        h = ((a << 1) | (a >> 63)) &+ ((b << 7) | (b >> 57)) &+ ((c << 12) | (c >> 52)) &+ ((d << 18) | (d >> 46))
        for lane in [a, b, c, d] { h = (h ^ round(0, lane)) &* p1 &+ p4 }
    } else {
        h = seed &+ p3
    }
    h = h &+ UInt64(n)
    while i + 8 <= n {
        h ^= round(0, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        h = ((h << 27) | (h >> 37)) &* p1 &+ p4
        i += 8
    }
    while i < n {
        h ^= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &* p3
        h = ((h << 11) | (h >> 53)) &* p1
        i += 1
    }
    h ^= h >> 33; h = h &* p2
    h ^= h >> 29; h = h &* p3
    h ^= h >> 32
    return h
}
