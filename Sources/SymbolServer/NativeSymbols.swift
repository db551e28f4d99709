import CompressNIO
import Foundation
import NIOCore
import NIOPosix
import ObjectFiles
import SymbolDump

/// `.sym` files made from native debug files in an upload: an ELF member (or a `.dbg.gz`,
/// gzip around one) is dumped with `SymbolFileWriter`, and the result stored as
/// `<debug_file>/<DEBUG_ID>/<debug_file>.sym`, the debug file being the member's module directory.
enum NativeSymbols {
    /// A `.dbg.gz` may inflate to at most this.
    static let maxInflated = 2 << 30

    /// The `.sym` for the member at `path`, or nil when it is not a native debug file (or cannot
    /// be read: the member is still stored as uploaded).
    static func generate(path: String, memberName: String) async -> (name: String, data: Data)? {
        let parts = memberName.split(separator: "/")
        guard parts.count == 3 else { return nil }
        let debugFile = String(parts[0])
        guard !debugFile.hasSuffix(".pdb"), !memberName.hasSuffix(".sym") else { return nil }
        return try? await NIOThreadPool.singleton.runIfActive { () -> (String, Data)? in
            var bytes = try ObjectBytes.map(path: path)
            if memberName.hasSuffix(".gz") {
                guard bytes.count >= 2, bytes.bytes.prefix(2) == [0x1F, 0x8B] else { return nil }
                bytes = try inflate(bytes)
            }
            guard ELFFile.isELF(bytes) else { return nil }
            let elf = try ELFFile(bytes: bytes)
            guard elf.section(named: ".debug_info") != nil || (try? elf.symbols().isEmpty) == false else { return nil }
            let (text, _, _) = try SymbolFileWriter.write(binary: elf, debugFileName: debugFile,
                                                          options: .init(generator: "postmortem symbol server"))
            return ("\(debugFile)/\(elf.debugID)/\(debugFile).sym", Data(text.utf8))
        }.map { (name: $0.0, data: $0.1) }
    }

    static func inflate(_ bytes: ObjectBytes) throws -> ObjectBytes {
        var input = bytes.withUnsafeBytes { ByteBuffer(bytes: $0) }
        var output = ByteBuffer()
        let decompressor = CompressionAlgorithm.gzip().decompressor
        decompressor.window = ByteBufferAllocator().buffer(capacity: 64 << 10)
        var tooLarge = false
        try decompressor.startStream()
        defer { try? decompressor.finishStream() }
        try input.decompressStream(with: decompressor) { window in
            if output.readableBytes + window.readableBytes > maxInflated { tooLarge = true; return }
            var w = window
            output.writeBuffer(&w)
        }
        guard !tooLarge else { throw ObjectFileError.malformed("the .dbg.gz inflates past \(maxInflated) bytes") }
        return ObjectBytes(Array(output.readableBytesView))
    }
}
