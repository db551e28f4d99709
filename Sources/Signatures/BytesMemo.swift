import Foundation

/// A memo keyed by byte strings, for one thread: lookups hash the bytes where they lie, so a hit
/// builds no `String` and takes no lock. Bounded: cleared when full.
struct BytesMemo<Value> {
    private var slots: [Int32]
    private var hashes: [UInt64] = []
    private var keyStarts: [Int32] = []
    private var keyLengths: [Int32] = []
    private var arena: [UInt8] = []
    private var values: [Value] = []
    private let capacity: Int

    init(capacity: Int = 1 << 18) {
        self.capacity = capacity
        slots = [Int32](repeating: -1, count: capacity * 2)
    }

    /// The value for `key`, computed by `compute` (and stored) when not known.
    mutating func value(for key: UnsafeRawBufferPointer, compute: () -> Value) -> Value {
        let hash = Self.hash(key)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let index = Int(slots[slot])
            if index < 0 { break }
            if hashes[index] == hash, Int(keyLengths[index]) == key.count, equal(index, key) { return values[index] }
            slot = (slot + 1) & mask
        }
        let value = compute()
        if values.count >= capacity {
            clear()
            return value
        }
        slots[slot] = Int32(values.count)
        hashes.append(hash)
        keyStarts.append(Int32(arena.count))
        keyLengths.append(Int32(key.count))
        arena.append(contentsOf: key)
        values.append(value)
        return value
    }

    private func equal(_ index: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let start = Int(keyStarts[index])
        return arena.withUnsafeBytes { a in
            key.count == 0 || memcmp(a.baseAddress! + start, key.baseAddress!, key.count) == 0
        }
    }

    private mutating func clear() {
        for i in slots.indices { slots[i] = -1 }
        hashes.removeAll(keepingCapacity: true)
        keyStarts.removeAll(keepingCapacity: true)
        keyLengths.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
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
