import CSystemShims
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes written in order and read back once, held in memory up to `limit` and beyond it in an
/// unlinked temporary file: the STACK CFI records of a large binary (tens of megabytes) are made
/// on one thread while the FUNC records are written on another, and wait in the page cache
/// rather than in the process's memory. Without a temporary file everything stays in memory.
/// Used by one thread at a time (handed over when the writing thread is done).
final class SpooledBytes: @unchecked Sendable {
    private(set) var memory: [UInt8] = []
    /// Bytes already in the file, which hold offsets 0..<spilled.
    private(set) var spilled = 0
    private var file: UnsafeMutablePointer<FILE>?
    private var failed = false
    let limit: Int

    init(limit: Int = 4 << 20) { self.limit = limit }
    deinit { if let file { fclose(file) } }

    var count: Int { spilled + memory.count }

    /// Appends the bytes (the caller's buffer is emptied).
    func take(_ bytes: inout [UInt8]) {
        if memory.isEmpty { swap(&memory, &bytes) } else { memory += bytes; bytes.removeAll(keepingCapacity: true) }
        guard memory.count >= limit, !failed else { return }
        if file == nil { file = tmpfile() }
        guard let file, memory.withUnsafeBytes({ pm_write_all(fileno(file), $0.baseAddress, $0.count) }) == 0 else {
            failed = true // no temporary file: keep the rest in memory
            return
        }
        spilled += memory.count
        memory.removeAll(keepingCapacity: true)
    }

    /// The bytes at `range` of everything appended.
    func read(_ range: Range<Int>, into output: inout [UInt8]) {
        var position = range.lowerBound
        if position < spilled, let file {
            let end = min(range.upperBound, spilled)
            var block = [UInt8](repeating: 0, count: end - position)
            let n = block.withUnsafeMutableBytes { pread(fileno(file), $0.baseAddress, $0.count, off_t(position)) }
            if n > 0 { output += block[0..<n] }
            position = end
        }
        if position < range.upperBound { output += memory[(position - spilled)..<(range.upperBound - spilled)] }
    }

    /// Everything, in order, a block at a time.
    func drain(to output: ([UInt8]) -> Void) {
        var position = 0
        var block: [UInt8] = []
        while position < spilled {
            let end = min(spilled, position + (1 << 20))
            block.removeAll(keepingCapacity: true)
            read(position..<end, into: &block)
            guard !block.isEmpty else { break }
            output(block)
            position += block.count
        }
        if !memory.isEmpty { output(memory) }
    }
}
