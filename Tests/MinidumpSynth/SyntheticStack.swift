/// A place in a `SyntheticStack` (or any address) whose value may be known only later: a frame
/// record can point at the next record before that record is written.
public final class Label: @unchecked Sendable {
    public fileprivate(set) var value: UInt64?
    public init() {}
    public init(_ value: UInt64) { self.value = value }

    /// The address; a test that reads a label it never marked has a bug, so this says so.
    public var address: UInt64 {
        guard let value else { preconditionFailure("label read before it was marked") }
        return value
    }
}

/// Stack memory written from its lowest address up, with words that may refer to labels marked
/// later (what Breakpad's test assembler `Section` and rust-minidump's `test_assembler` do).
public struct SyntheticStack {
    public let base: UInt64
    public let pointerSize: Int
    public private(set) var bytes: [UInt8] = []
    private var fixups: [(offset: Int, size: Int, label: Label, addend: Int64)] = []

    public init(base: UInt64, pointerSize: Int) {
        self.base = base
        self.pointerSize = pointerSize
    }

    /// The address the next byte goes to.
    public var here: UInt64 { base + UInt64(bytes.count) }

    @discardableResult
    public mutating func mark(_ label: Label) -> SyntheticStack {
        label.value = here
        return self
    }

    /// `count` zero bytes (or `byte`).
    public mutating func fill(_ count: Int, byte: UInt8 = 0) {
        bytes += [UInt8](repeating: byte, count: count)
    }

    public mutating func d32(_ v: UInt32) { bytes += withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    public mutating func d64(_ v: UInt64) { bytes += withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A pointer-sized word.
    public mutating func word(_ v: UInt64) {
        if pointerSize == 4 { d32(UInt32(truncatingIfNeeded: v)) } else { d64(v) }
    }

    /// A pointer-sized word holding `label + addend`, resolved when the stack is finished.
    public mutating func word(_ label: Label, plus addend: Int64 = 0) {
        fixups.append((bytes.count, pointerSize, label, addend))
        fill(pointerSize)
    }

    /// The bytes with every label reference filled in.
    public func finished() -> [UInt8] {
        var out = bytes
        for f in fixups {
            let v = UInt64(bitPattern: Int64(bitPattern: f.label.address) &+ f.addend)
            for i in 0..<f.size { out[f.offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        return out
    }
}
