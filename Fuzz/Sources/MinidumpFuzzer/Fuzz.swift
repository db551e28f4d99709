// One fuzz input = one minidump: parse it, decode every context, walk every thread (without
// symbols, crash analysis included) and render both outputs. The same bytes also go to the x86
// decoder as instruction streams in both modes, from each of the first 256 offsets. Any trap,
// overflow or sanitizer report is a finding.
import Foundation
import MinidumpFormat
import Stackwalker
import X86Decoder

/// Decodes `bytes` from every offset below 256 in 32- and 64-bit mode and uses every result.
func fuzzDecoder(_ bytes: [UInt8]) {
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

final class Box<T>: @unchecked Sendable { var value: T? }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzDecoder(bytes)
    guard let dump = try? Minidump.parse(bytes) else { return 0 }
    for t in dump.threads {
        if let c = t.contextBytes { _ = try? CPUContext.decode(c, architecture: dump.systemInfo?.processorArchitecture ?? 0) }
    }
    _ = dump.modules.map { ($0.debugId, $0.codeId, $0.debugFile, $0.versionInfo.version) }
    let done = DispatchSemaphore(value: 0)
    let result = Box<ProcessState>()
    Task.detached {
        result.value = try? await Stackwalker(supplier: nil).process(dump)
        done.signal()
    }
    done.wait()
    if let state = result.value {
        _ = state.json(pretty: true)
        _ = state.humanReport(brief: false)
    }
    return 0
}

// SwiftPM links executables with `main` aliased to `<Module>_main`, so libFuzzer's own `main` is
// not used: this entry point hands control to libFuzzer's driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("MinidumpFuzzer_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzOneInput(data, size)
    }
}
