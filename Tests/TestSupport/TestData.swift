import Foundation
import Synchronization

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

/// A program that ran past its time limit (it and its process group were killed).
public struct ProcessTimedOut: Error, CustomStringConvertible {
    public let command: String
    public let limit: Duration
    public let stderr: String
    public var description: String { "\(command) did not finish within \(limit); killed. stderr: \(stderr.suffix(2000))" }
}

/// Runs a program and returns its exit status, standard output and standard error. Standard
/// input, output and error are files, so no pipe can stay open behind a daemon the program
/// started; past `timeout` the program's process group is killed and `ProcessTimedOut` thrown.
public func runProcess(_ executable: String, _ arguments: [String], stdin: Data = Data(), environment: [String: String] = [:],
                       timeout: Duration = .seconds(600)) throws -> (status: Int32, stdout: Data, stderr: Data) {
    let r = try runProcessMeasured(executable, arguments, stdin: stdin, environment: environment, timeout: timeout)
    return (r.status, r.stdout, r.stderr)
}

/// `runProcess`, also reporting the child's peak resident memory (`wait4`'s `ru_maxrss`): a
/// memory bound measured in a process of its own, whatever other tests allocate meanwhile.
public func runProcessMeasured(_ executable: String, _ arguments: [String], stdin: Data = Data(), environment: [String: String] = [:],
                               timeout: Duration = .seconds(600)) throws -> (status: Int32, stdout: Data, stderr: Data, maxResidentBytes: Int) {
    let base = NSTemporaryDirectory() + "pm-run-\(UUID().uuidString)"
    defer { for s in [".in", ".out", ".err"] { try? FileManager.default.removeItem(atPath: base + s) } }
    try stdin.write(to: URL(fileURLWithPath: base + ".in"))
    let fds = [open(base + ".in", O_RDONLY | O_CLOEXEC),
               open(base + ".out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600),
               open(base + ".err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)]
    defer { for fd in fds where fd >= 0 { close(fd) } }
    guard fds.allSatisfy({ $0 >= 0 }) else { throw ChildProcess.SpawnError(description: "cannot open files for \(executable): errno \(errno)") }
    let child = try ChildProcess(executable, arguments, environment: environment, stdin: fds[0], stdout: fds[1], stderr: fds[2])
    let status = child.wait(timeout: timeout)
    let out = FileManager.default.contents(atPath: base + ".out") ?? Data()
    let err = FileManager.default.contents(atPath: base + ".err") ?? Data()
    guard let status else {
        child.killGroup()
        throw ProcessTimedOut(command: ([executable] + arguments).joined(separator: " "), limit: timeout, stderr: String(decoding: err, as: UTF8.self))
    }
    return (status, out, err, child.maxResidentBytes)
}

/// A child process started with `posix_spawn` and reaped with `waitpid`. Not Foundation's
/// `Process`: it learns of a child's exit on a Dispatch worker, and with two cores every worker
/// can be a test blocked on that very exit — the first `swift test` on a fresh machine waited
/// forever that way. The child leads its own process group, so a time-out kills what it started.
public final class ChildProcess: @unchecked Sendable {
    public struct SpawnError: Error, CustomStringConvertible { public let description: String }

    public let pid: pid_t
    private let reaped = Mutex<Int32?>(nil)
    private let peakMemory = Mutex<Int>(0)

    /// The child's peak resident memory in bytes, once it has been reaped.
    public var maxResidentBytes: Int { peakMemory.withLock { $0 } }

    /// Starts `executable` (an absolute path) with `environment` added to this process's own.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                stdin: Int32, stdout: Int32, stderr: Int32) throws {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// The exit status (128 + signal for a killed child) once it has exited; nil while it runs.
    public var exitStatus: Int32? {
        reaped.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            var usage = rusage()
            guard wait4(pid, &raw, WNOHANG, &usage) == pid else { return nil }
            peakMemory.withLock { $0 = usage.ru_maxrss * 1024 }
            status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return status
        }
    }

    public var isRunning: Bool { exitStatus == nil }

    /// Waits up to `timeout` for the exit; the status, or nil if the child still runs.
    public func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = exitStatus { return status }
            if ContinuousClock.now > deadline { return nil }
            usleep(2_000)
        }
    }

    public func signal(_ sig: Int32) { if isRunning { kill(pid, sig) } }

    /// SIGKILL to the child's whole process group, then reaps it.
    public func killGroup() {
        guard isRunning else { return }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        _ = wait(timeout: .seconds(10))
    }
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
/// line, standard error goes to a file. Killed (with its process group) when released.
public final class BackgroundProcess: @unchecked Sendable {
    public let child: ChildProcess
    private let outputFD: Int32
    public let stderrPath = NSTemporaryDirectory() + "pm-bg-stderr-\(UUID().uuidString)"
    private var buffered = Data()

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw ChildProcess.SpawnError(description: "pipe: errno \(errno)") }
        // Close-on-exec, so no other child inherits this server's output pipe.
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let errFD = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(pipeFDs[1]); close(errFD); close(nullFD) }
        do {
            child = try ChildProcess(executable, arguments, environment: environment, stdin: nullFD, stdout: pipeFDs[1], stderr: errFD)
        } catch {
            close(pipeFDs[0])
            throw error
        }
        outputFD = pipeFDs[0]
    }

    /// Blocks until a line of standard output contains `text`; nil at the end of the output or
    /// when `timeout` passes first.
    public func waitForLine(containing text: String, timeout: Duration = .seconds(120)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let range = buffered.firstRange(of: Data("\n".utf8)) {
                let line = String(decoding: buffered[..<range.lowerBound], as: UTF8.self)
                buffered.removeSubrange(..<range.upperBound)
                if line.contains(text) { return line }
                continue
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            var descriptor = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 60_000))
            let ready = poll(&descriptor, 1, ms)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(outputFD, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            buffered.append(contentsOf: chunk[..<n])
        }
    }

    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    public var isRunning: Bool { child.isRunning }

    public func signal(_ sig: Int32) { child.signal(sig) }

    /// Waits up to `timeout` for the process to exit; its status, or nil if it is still running.
    public func waitForExit(timeout: Duration) -> Int32? { child.wait(timeout: timeout) }

    deinit {
        child.killGroup()
        close(outputFD)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}
