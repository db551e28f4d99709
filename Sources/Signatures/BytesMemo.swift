import Foundation

/// A memo keyed by byte strings, for one thread: lookups hash the bytes where they lie, so a hit
/// builds no `String` and takes no lock. Bounded: cleared when full.
///
/// Laid out for few cache misses on large tables: a probe reads one 8-byte slot holding 32 bits
/// of the hash and the record index; only a likely match reads the record and the key bytes.
struct BytesMemo<Value> {
    private struct Record {
        var start: UInt32
        var length: UInt32
        var value: Value
    }

    private var slots: [UInt64]
    private var records: [Record] = []
    private var arena: [UInt8] = []
    private let capacity: Int

    init(capacity: Int = 1 << 18) {
        self.capacity = capacity
        slots = [UInt64](repeating: 0, count: capacity * 2)
    }

    /// The value for `key`, computed by `compute` (and stored) when not known.
    mutating func value(for key: UnsafeRawBufferPointer, compute: () -> Value) -> Value {
        let hash = Self.hash(key)
        let tag = hash >> 32
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let s = slots[slot]
            if s == 0 { break }
            if s >> 32 == tag {
                let index = Int(truncatingIfNeeded: s & 0xFFFF_FFFF) - 1
                if Int(records[index].length) == key.count, equal(Int(records[index].start), key) { return records[index].value }
            }
            slot = (slot + 1) & mask
        }
        let value = compute()
        if records.count >= capacity || arena.count + key.count > Int(UInt32.max) {
            clear()
            return value
        }
        slots[slot] = tag << 32 | UInt64(records.count + 1)
        records.append(Record(start: UInt32(arena.count), length: UInt32(key.count), value: value))
        arena.append(contentsOf: key)
        return value
    }

    private func equal(_ start: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        arena.withUnsafeBytes { a in
            key.count == 0 || memcmp(a.baseAddress! + start, key.baseAddress!, key.count) == 0
        }
    }

    private mutating func clear() {
        for i in slots.indices { slots[i] = 0 }
        records.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
    }

    /// 64-bit multiply-xorshift hash over 8-byte words.
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        var i = 0
        while i + 8 <= key.count {
            h = (h ^ key.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < key.count { tail |= UInt64(key[i]) << shift; shift += 8; i += 1 }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        return h ^ (h >> 29)
    }
}
