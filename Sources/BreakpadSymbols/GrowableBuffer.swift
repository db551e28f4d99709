import Foundation

/// A manually managed, growable array of trivial records. Parsing appends millions of records; a
/// raw `realloc`-grown buffer lets large tables grow by `mremap` instead of copying, and the
/// finished memory is handed to `SymbolTable` without another copy.
final class GrowableBuffer<Element>: @unchecked Sendable {
    private(set) var base: UnsafeMutablePointer<Element>?
    private(set) var count = 0
    private var capacity = 0

    init() {}
    deinit { free(base) }

    @inline(__always)
    func append(_ element: Element) {
        if count == capacity { grow(minimum: count + 1) }
        base.unsafelyUnwrapped[count] = element
        count += 1
    }

    @inline(__always)
    func reserve(_ minimum: Int) {
        if minimum > capacity { grow(minimum: minimum) }
    }

    private func grow(minimum: Int) {
        var newCapacity = max(64, capacity * 2)
        while newCapacity < minimum { newCapacity *= 2 }
        let bytes = newCapacity * MemoryLayout<Element>.stride
        guard let p = realloc(base, bytes) else { fatalError("out of memory growing a symbol table to \(bytes) bytes") }
        base = p.assumingMemoryBound(to: Element.self)
        capacity = newCapacity
    }

    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: base, count: count) }

    func truncate(to newCount: Int) { count = min(count, max(0, newCount)) }
}

/// The string section under construction: names, paths and CFI/WIN program text, back to back.
final class StringTableBuilder: @unchecked Sendable {
    let bytes = GrowableBuffer<UInt8>()

    /// Appends `length` bytes at `start`; nil when the table would exceed 4 GiB.
    @inline(__always)
    func append(_ start: UnsafePointer<UInt8>, _ length: Int) -> StringRef? {
        let offset = bytes.count
        guard offset + length <= Int(UInt32.max) else { return nil }
        if length > 0 {
            bytes.reserve(offset + length)
            let dst = bytes.base.unsafelyUnwrapped + offset
            dst.update(from: start, count: length)
            bytes.setCount(offset + length)
        }
        return StringRef(offset: UInt32(offset), length: UInt32(length))
    }
}

extension GrowableBuffer {
    fileprivate func setCount(_ n: Int) { count = n }
}
