import Foundation

/// Locates `../shared/testdata` relative to the package root. Tests that need it call
/// `TestData.root()`, which throws when the folder is missing, so they fail loudly instead of
/// passing without having run.
public enum TestData {
    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "shared test data not found at \(path); it must be checked out beside the package" }
    }

    /// The package root (the folder holding Package.swift).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }()

    public static func root() throws -> String {
        let path = URL(fileURLWithPath: packageRoot).appendingPathComponent("../shared/testdata").standardized.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { throw Missing(path: path) }
        return path
    }

    public static func path(_ relative: String) throws -> String {
        let p = try root() + "/" + relative
        guard FileManager.default.fileExists(atPath: p) else { throw Missing(path: p) }
        return p
    }

    /// Every file under `relative` whose name ends with `suffix`, sorted.
    public static func files(under relative: String, suffix: String) throws -> [String] {
        let base = try path(relative)
        let e = FileManager.default.enumerator(atPath: base)
        var out: [String] = []
        while let rel = e?.nextObject() as? String {
            if rel.hasSuffix(suffix) { out.append(base + "/" + rel) }
        }
        return out.sorted()
    }

    /// A fresh temporary directory.
    public static func temporaryDirectory(_ label: String = "test") -> String {
        let path = NSTemporaryDirectory() + "postmortem-\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Runs a program and returns its exit status, standard output and standard error.
public func runProcess(_ executable: String, _ arguments: [String], stdin: Data = Data()) throws -> (status: Int32, stdout: Data, stderr: Data) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let inPipe = Pipe(), outPipe = Pipe()
    let errPath = NSTemporaryDirectory() + "pm-stderr-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = errHandle
    try p.run()
    let input = inPipe.fileHandleForWriting
    let writer = Thread {
        input.write(stdin)
        try? input.close()
    }
    writer.start()
    let out = outPipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    try? errHandle.close()
    let errData = FileManager.default.contents(atPath: errPath) ?? Data()
    return (p.terminationStatus, out, errData)
}

/// The first of `names` found on PATH (or the absolute path itself).
public func findExecutable(_ names: String...) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for name in names {
        if name.hasPrefix("/") { if FileManager.default.isExecutableFile(atPath: name) { return name } ; continue }
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
    }
    return nil
}

/// A program running in the background (a server under test): standard output is read line by
/// line, standard error goes to a file.
public final class BackgroundProcess: @unchecked Sendable {
    public let process = Process()
    private let output = Pipe()
    public let stderrPath = NSTemporaryDirectory() + "pm-bg-stderr-\(UUID().uuidString)"
    private var buffered = Data()

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Blocks until a line of standard output contains `text` (nil at end of output).
    public func waitForLine(containing text: String) -> String? {
        while true {
            if let range = buffered.firstRange(of: Data("\n".utf8)) {
                let line = String(decoding: buffered[..<range.lowerBound], as: UTF8.self)
                buffered.removeSubrange(..<range.upperBound)
                if line.contains(text) { return line }
                continue
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffered.append(chunk)
        }
    }

    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits up to `timeout` for the process to exit; its status, or nil if it is still running.
    public func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            usleep(10_000)
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}
