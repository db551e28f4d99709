// The minidump reader, the stackwalker and the x86 decoder.
import Foundation
import MinidumpFormat
import Stackwalker
import X86Decoder

extension FuzzTargets {
    /// Decodes `bytes` from every offset below 256 in 32- and 64-bit mode and uses every result.
    static func decoder(_ bytes: [UInt8]) {
        for mode in [X86Mode.bits32, .bits64] {
            let decoder = X86Decoder(mode: mode)
            for start in 0..<min(bytes.count, 256) {
                let window = Array(bytes[start..<min(bytes.count, start + 16)])
                guard let i = try? decoder.decode(window, address: UInt64(start) &* 0x1_0000_0001) else { continue }
                precondition(i.length >= 1 && i.length <= min(15, window.count), "decoded length \(i.length) of \(window.count) bytes")
                _ = i.text
                _ = i.memoryOperands.map { ($0.size, $0.access, $0.displacement) }
            }
        }
    }

    /// One input = one minidump: parse it, decode every context, walk every thread (without
    /// symbols, crash analysis included) and render both outputs; the same bytes also go to the
    /// x86 decoder as instruction streams.
    static func minidump(_ bytes: [UInt8]) async {
        decoder(bytes)
        guard let dump = try? Minidump.parse(bytes) else { return }
        for t in dump.threads {
            if let c = t.contextBytes { _ = try? CPUContext.decode(c, architecture: dump.systemInfo?.processorArchitecture ?? 0) }
        }
        _ = dump.modules.map { ($0.debugId, $0.codeId, $0.debugFile, $0.versionInfo.version) }
        if let state = try? await Stackwalker(supplier: nil).process(dump) {
            _ = state.json(pretty: true)
            _ = state.humanReport(brief: false)
        }
    }
}
