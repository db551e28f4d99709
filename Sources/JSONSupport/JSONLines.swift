import Foundation

/// A line of JSON-lines input that is not valid JSON (1-based line number).
public struct JSONLinesError: Error, Sendable, CustomStringConvertible {
    public let line: Int
    public var description: String { "line \(line): not valid JSON" }
}

/// Bulk JSON-lines processing: one JSON document per input line is turned into one output record,
/// using all cores. Input is taken in blocks (at most `blockSize` bytes plus one line), each block
/// is cut at line ends into one chunk per worker, and the chunks' outputs are emitted in input
/// order, so memory stays bounded however long the input is. Lines holding only spaces, tabs or
/// CR are skipped.
public struct JSONLinesMapper: Sendable {
    public typealias Transform = @Sendable (JSONValue, inout JSONOutput) -> Void
    /// A transform of one line's bytes; false when the line is not valid JSON.
    public typealias LineTransform = @Sendable (UnsafeRawBufferPointer, inout JSONOutput) -> Bool

    public let workers: Int
    public let blockSize: Int
    let transform: LineTransform

    public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, blockSize: Int = 4 << 20,
                transform: @escaping Transform) {
        self.init(workers: workers, blockSize: blockSize, lineTransform: { line, out in
            guard let document = JSONValue.parse(line) else { return false }
            transform(document, &out)
            return true
        })
    }

    /// For transforms that read the line's bytes themselves (e.g. through a `JSONTape`).
    public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, blockSize: Int = 4 << 20,
                lineTransform: @escaping LineTransform) {
        self.workers = max(1, workers)
        self.blockSize = max(1, blockSize)
        self.transform = lineTransform
    }

    /// Maps all of `input`; `emit` receives the output in order. On an invalid line, the output
    /// of the lines before it has been emitted and the error names the line.
    public func map(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(JSONLinesError) {
        var state = Progress()
        var start = 0
        while start < input.count {
            var end = min(input.count, start + blockSize)
            if end < input.count, let nl = Self.lastNewline(input, from: start, to: end) { end = nl + 1 }
            else if end < input.count { end = Self.nextNewline(input, from: end).map { $0 + 1 } ?? input.count }
            try mapBlock(UnsafeRawBufferPointer(rebasing: input[start..<end]), state: &state, emit: emit)
            start = end
        }
    }

    /// Maps everything readable from `fd` until end of file.
    public func map(fileDescriptor fd: Int32, emit: (UnsafeRawBufferPointer) -> Void) throws(JSONLinesError) {
        var state = Progress()
        var buffer = [UInt8](repeating: 0, count: blockSize + 64 << 10)
        var filled = 0
        var eof = false
        while !eof || filled > 0 {
            if !eof {
                if filled == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
                let n = buffer.withUnsafeMutableBytes { b in read(fd, b.baseAddress! + filled, b.count - filled) }
                if n > 0 { filled += n } else if n == 0 || errno != EINTR { eof = true }
                if !eof && filled < blockSize { continue }
            }
            let cut: Int = buffer.withUnsafeBytes { b in
                if eof { return filled }
                return Self.lastNewline(b, from: 0, to: filled).map { $0 + 1 } ?? 0
            }
            if cut == 0 { continue } // one line longer than the buffer: read more
            let failure: JSONLinesError? = buffer.withUnsafeBytes { b in
                do throws(JSONLinesError) {
                    try mapBlock(UnsafeRawBufferPointer(rebasing: b[0..<cut]), state: &state, emit: emit)
                    return nil
                } catch { return error }
            }
            if let failure { throw failure }
            buffer.withUnsafeMutableBytes { b in
                if cut < filled { b.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[cut..<filled])) }
            }
            filled -= cut
        }
    }

    struct Progress {
        var linesBefore = 0
        /// Output buffers of the previous block, reused: fresh megabyte buffers cost page faults,
        /// which serialize the workers on the kernel's memory-map lock.
        var spareOutputs: [JSONOutput] = []
    }

    struct ChunkResult {
        var output: JSONOutput
        var lines = 0
        var failedLine: Int?
    }

    private func mapBlock(_ block: UnsafeRawBufferPointer, state: inout Progress,
                          emit: (UnsafeRawBufferPointer) -> Void) throws(JSONLinesError) {
        // Chunk boundaries at line ends, about equal in bytes.
        var bounds = [0]
        // Several chunks per worker, so a slow chunk does not leave the other cores idle.
        let parts = block.count < 64 << 10 || workers == 1 ? 1 : workers * 16
        for k in 1..<max(parts, 1) {
            let target = max(bounds.last!, block.count * k / parts)
            let b = target >= block.count ? block.count : (Self.nextNewline(block, from: target).map { $0 + 1 } ?? block.count)
            bounds.append(b)
        }
        bounds.append(block.count)
        var results = (1..<bounds.count).map { _ in ChunkResult(output: state.spareOutputs.popLast() ?? JSONOutput(capacity: 1 << 16)) }
        let transform = self.transform
        let chunkBounds = bounds
        nonisolated(unsafe) let block = block
        results.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            DispatchQueue.concurrentPerform(iterations: chunkBounds.count - 1) { k in
                Self.mapChunk(UnsafeRawBufferPointer(rebasing: block[chunkBounds[k]..<chunkBounds[k + 1]]), transform, into: &out[k])
            }
        }
        for var r in results {
            r.output.bytes.withUnsafeBytes { emit($0) }
            if let failed = r.failedLine { throw JSONLinesError(line: state.linesBefore + failed) }
            state.linesBefore += r.lines
            r.output.bytes.removeAll(keepingCapacity: true)
            state.spareOutputs.append(r.output)
        }
    }

    private static func mapChunk(_ chunk: UnsafeRawBufferPointer, _ transform: LineTransform, into result: inout ChunkResult) {
        var start = 0
        while start < chunk.count {
            let end = nextNewline(chunk, from: start) ?? chunk.count
            result.lines += 1
            let line = UnsafeRawBufferPointer(rebasing: chunk[start..<end])
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard transform(line, &result.output) else {
                result.failedLine = result.lines
                return
            }
        }
    }

    static func nextNewline(_ b: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < b.count, let base = b.baseAddress,
              let p = memchr(base + from, 0x0A, b.count - from) else { return nil }
        return UnsafeRawPointer(p) - base
    }

    static func lastNewline(_ b: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard to > from else { return nil }
        var i = to - 1
        while i >= from {
            if b[i] == 0x0A { return i }
            i -= 1
        }
        return nil
    }
}
