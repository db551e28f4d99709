import CompressNIO
import Foundation
import NIOCore
import NIOPosix
import ObjectFiles
import SymbolDump

/// `.sym` files made from native debug files in an upload: an ELF member (or a `.dbg.gz`,
/// gzip around one) or a Mach-O member (each architecture of a fat file; a binary, a dSYM's
/// DWARF file, or the DWARF files of a `.dSYM.tar.bz2` bundle) is dumped with `SymbolFileWriter`, and the result stored as
/// `<debug_file>/<DEBUG_ID>/<debug_file>.sym`, the debug file being the member's module directory.
enum NativeSymbols {
    /// A `.dbg.gz` may inflate to at most this.
    static let maxInflated = 2 << 30

    /// The `.sym` files for the member at `path` — one for an ELF file, one per architecture of
    /// a Mach-O file (thin or fat; a binary or a dSYM's DWARF file) — or none when it is not a
    /// native debug file (or cannot be read: the member is still stored as uploaded).
    static func generate(path: String, memberName: String) async -> [(name: String, data: Data)] {
        let parts = memberName.split(separator: "/")
        guard parts.count == 3 else { return [] }
        let debugFile = String(parts[0])
        guard !debugFile.hasSuffix(".pdb"), !memberName.hasSuffix(".sym") else { return [] }
        let made = try? await NIOThreadPool.singleton.runIfActive { () -> [(String, Data)] in
            var bytes = try ObjectBytes.map(path: path)
            var files: [ObjectBytes] = []
            if memberName.hasSuffix(".dSYM.tar.bz2") {
                // Tecken's dSYM bundles: the DWARF files inside.
                files = try bytes.withUnsafeBytes { try DSYMTarball.dwarfFiles($0) }.map { ObjectBytes($0.data) }
            } else {
                if memberName.hasSuffix(".gz") {
                    guard (try? bytes.u8(0, "")) == 0x1F, (try? bytes.u8(1, "")) == 0x8B else { return [] }
                    bytes = try inflate(bytes)
                }
                files = [bytes]
            }
            var objects: [any DebugObject] = []
            for file in files { objects += try debugObjects(file) ?? [] }
            var out: [(String, Data)] = []
            for object in objects {
                guard object.hasDebugSection(".debug_info") || (try? object.functionSymbols().entries.isEmpty) == false else { continue }
                let (text, _, _) = try SymbolFileWriter.write(binary: object, debugFileName: debugFile,
                                                              options: .init(generator: "postmortem symbol server"))
                out.append(("\(debugFile)/\(object.debugID)/\(debugFile).sym", Data(text.utf8)))
            }
            return out
        }
        return (made ?? []).map { (name: $0.0, data: $0.1) }
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
