import CSystemShims
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable array of trivial records in its own anonymous memory mapping. Parsing appends
/// millions of records; on Linux the mapping grows with `mremap`, which moves pages instead of
/// copying them, so a table never exists twice in memory, and its memory goes back to the system
/// as soon as the table is released (malloc'd blocks of this size would linger in the heap).
///
/// It is a struct used through a local variable of the parser, so appends need no runtime
/// exclusivity checks; ownership of the memory passes to `TableMemory` when parsing ends.
struct RecordBuffer<Element> {
    private(set) var base: UnsafeMutablePointer<Element>?
    private(set) var count = 0
    private var capacity = 0
    private(set) var mappedBytes = 0

    @inline(__always)
    mutating func append(_ element: Element) {
        if count == capacity { grow(minimum: count + 1) }
        base.unsafelyUnwrapped[count] = element
        count += 1
    }

    @inline(__always)
    mutating func reserve(_ minimum: Int) {
        if minimum > capacity { grow(minimum: minimum) }
    }

    private mutating func grow(minimum: Int) {
        var bytes = max(1 << 16, mappedBytes * 2)
        while bytes / MemoryLayout<Element>.stride < minimum { bytes *= 2 }
        var p: UnsafeMutableRawPointer?
        if let old = base, let moved = pm_remap(old, mappedBytes, bytes) {
            p = moved
        } else {
            // First allocation, or no mremap on this system: map anew (and copy).
            let fresh = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            if let fresh, fresh != MAP_FAILED {
                if let old = base {
                    fresh.copyMemory(from: old, byteCount: count * MemoryLayout<Element>.stride)
                    munmap(old, mappedBytes)
                }
                p = fresh
            }
        }
        guard let p else { fatalError("out of memory growing a symbol table to \(bytes) bytes") }

        base = p.assumingMemoryBound(to: Element.self)
        mappedBytes = bytes
        capacity = bytes / MemoryLayout<Element>.stride
    }

    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: base, count: count) }
    var readOnly: UnsafeBufferPointer<Element> { UnsafeBufferPointer(start: base, count: count) }

    mutating func truncate(to newCount: Int) { count = min(count, max(0, newCount)) }

    /// Appends `n` elements in one copy (the string section's bytes, merged record tables).
    @inline(__always)
    mutating func appendElements(_ start: UnsafePointer<Element>, _ n: Int) {
        reserve(count + n)
        (base.unsafelyUnwrapped + count).update(from: start, count: n)
        count += n
    }

    /// Unmaps the storage; the buffer is empty afterwards.
    mutating func release() {
        if let base { munmap(base, mappedBytes) }
        base = nil
        count = 0
        capacity = 0
        mappedBytes = 0
    }

    /// The mapping, for `TableMemory` to own.
    var region: (UnsafeMutableRawPointer, Int)? { base.map { (UnsafeMutableRawPointer($0), mappedBytes) } }
}

/// Owns the mappings of a parsed table and unmaps them when the last `SymbolTable` using them goes.
final class TableMemory: @unchecked Sendable {
    private let regions: [(UnsafeMutableRawPointer, Int)]
    init(regions: [(UnsafeMutableRawPointer, Int)?]) { self.regions = regions.compactMap { $0 } }
    deinit { for (p, n) in regions { munmap(p, n) } }
}
