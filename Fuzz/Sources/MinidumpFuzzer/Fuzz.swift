// One fuzz input = one minidump: parse it, decode every context, walk every thread (without
// symbols) and render both outputs. Any trap, overflow or sanitizer report is a finding.
import Foundation
import MinidumpFormat
import Stackwalker

final class Box<T>: @unchecked Sendable { var value: T? }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
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
