import ArgumentParser
import Foundation
import Stackwalker

/// The `stackwalk` log, in minidump-stackwalk's levels: what was processed, which modules lacked
/// symbols, and (at debug and trace) how each thread and frame was unwound. Lines go to standard
/// error or `--log-file`.
struct StackwalkLog {
    enum Level: String, ExpressibleByArgument, CaseIterable, Comparable {
        case off, error, warn, info, debug, trace

        static func < (a: Level, b: Level) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    let level: Level
    let sink: FileHandle
    let toFile: Bool

    init(level: Level, path: String?) throws {
        self.level = level
        toFile = path != nil && level != .off
        guard let path, level != .off else { sink = .standardError; return }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw ValidationError("cannot write the log file \(path)")
        }
        sink = handle
    }

    func enabled(_ l: Level) -> Bool { l != .off && l <= level }

    /// A failure also goes to the log file; on standard error the command's own one-line
    /// message already says it.
    func failure(_ message: String) {
        if toFile { write(.error, message) }
    }

    func write(_ l: Level, _ message: @autoclosure () -> String) {
        guard enabled(l) else { return }
        sink.write(Data("[\(l.rawValue.uppercased())] \(message())\n".utf8))
    }

    func summarize(_ state: ProcessState, dump: String) {
        guard enabled(.warn) else { return }
        let frames = state.threads.reduce(0) { $0 + $1.frames.count }
        let loaded = state.modules.filter { $0.symbolStatus == .loaded }.count
        write(.info, "\(dump): \(state.threads.count) threads, \(frames) frames, symbols for \(loaded) of \(state.modules.count) modules")
        for m in state.modules {
            switch m.symbolStatus {
            case .corrupt: write(.warn, "corrupt symbols for \(m.debugFile) \(m.debugId)")
            case .missing: write(.info, "no symbols for \(m.debugFile) \(m.debugId)")
            default: break
            }
        }
        guard enabled(.debug) else { return }
        for (i, t) in state.threads.enumerated() {
            let byTrust = Dictionary(grouping: t.frames, by: \.trust.rawValue).map { "\($0.key) \($0.value.count)" }.sorted()
            write(.debug, "thread \(i) (tid \(t.threadId)): \(t.frames.count) frames (\(byTrust.joined(separator: ", ")))")
            guard enabled(.trace) else { continue }
            for (j, f) in t.frames.enumerated() {
                let module = f.moduleIndex.map { state.modules[$0].module.codeFile } ?? "?"
                write(.trace, "thread \(i) frame \(j): 0x\(String(f.instruction, radix: 16)) in \(module) \(f.function ?? "") by \(f.trust.humanDescription)")
            }
        }
    }
}
