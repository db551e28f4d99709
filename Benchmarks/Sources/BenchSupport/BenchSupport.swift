// Helpers the benchmark executables share: timing, per-process memory, locating the test data.
import Foundation

public let benchClock = ContinuousClock()

public func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// A field of /proc/self/status in kB (VmRSS: current, VmHWM: peak of this process image; unlike
/// getrusage's ru_maxrss it is not inherited from the parent across fork and exec).
public func procStatusKB(_ field: String) -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let l = s.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
          let kb = Int(l.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb
}

/// The main package's root (the folder above `Benchmarks/`).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

/// The absolute path of the running benchmark executable, to start child measurements.
public var currentExecutable: String {
    let a = CommandLine.arguments[0]
    return a.hasPrefix("/") ? a : FileManager.default.currentDirectoryPath + "/" + a
}
