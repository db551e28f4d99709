// libFuzzer's entry: FUZZ_TARGET names the target (`FuzzTargets.names`) each input goes to.
import Foundation
import FuzzTargets

final class Box: @unchecked Sendable { var known = true }

let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "minidump"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // libFuzzer calls from its own thread: wait here for the async target.
    let done = DispatchSemaphore(value: 0)
    let result = Box()
    Task.detached {
        result.known = await FuzzTargets.run(target, bytes)
        done.signal()
    }
    done.wait()
    if !result.known {
        FileHandle.standardError.write(Data("FUZZ_TARGET must be one of \(FuzzTargets.names.joined(separator: ", ")), not \(target)\n".utf8))
        exit(2)
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

@_cdecl("PostmortemFuzzer_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzOneInput(data, size)
    }
}
