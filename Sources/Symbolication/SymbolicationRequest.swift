import JSONSupport
/// A validated symbolication job: the modules and the stacks of `[module_index, module_offset]`.
struct SymbolicationJob: Sendable {
    struct Module: Sendable, Hashable {
        var debugFile: String
        var debugId: String
        var key: String { "\(debugFile)/\(debugId)" }
    }
    struct Frame: Sendable {
        var moduleIndex: Int
        var offset: Int64
    }
    var modules: [Module]
    var stacks: [[Frame]]
}

/// A request the API refuses: HTTP status and the `title` of the JSON error body.
public struct SymbolicationFailure: Error, Equatable, Sendable {
    public var status: Int
    public var title: String

    /// `{"title": "<message>"}`, serialized as Eliot does.
    public var body: String { JSONValue.object([("title", .string(title))]).serialized() }
}

public enum SymbolicationAPIVersion: Sendable {
    case v4, v5
}

/// Validation of `/symbolicate/v4|v5` bodies, with Eliot's checks, order and messages
/// (`symbolication-api.md` §3).
enum SymbolicationRequestParser {
    static let maxJobs = 10
    /// Eliot sets no frame limit; Postmortem bounds the work of one request (issue #16).
    static let maxFrames = 100_000
    /// Longer than any real debug file name or debug id (PDB/ELF/Mach-O ids are 33–41 digits).
    static let maxDebugFilenameLength = 512, maxDebugIdLength = 64

    static func parse(_ body: JSONValue?, version: SymbolicationAPIVersion) throws(SymbolicationFailure) -> [SymbolicationJob] {
        guard let body else { throw bad("Payload is not valid JSON") }
        var jobs: [JSONValue]
        switch version {
        case .v4:
            jobs = [body]
        case .v5:
            if let j = body["jobs"] {
                guard case .array(let list) = j else { throw bad("job 0 is invalid") }
                jobs = list
            } else {
                jobs = [body]
            }
            if jobs.count > maxJobs { throw bad("please limit number of jobs in a single request to <= \(maxJobs)") }
        }
        var result: [SymbolicationJob] = []
        var frames = 0
        for (n, job) in jobs.enumerated() {
            guard case .object = job else { throw bad("job \(n) is invalid") }
            guard let stacks = job["stacks"] else { throw bad("job \(n) is invalid: no stacks specified") }
            guard let memoryMap = job["memoryMap"] else { throw bad("job \(n) is invalid: no memoryMap specified") }
            let modules = try parseModules(memoryMap, job: n)
            let parsed = try parseStacks(stacks, moduleCount: modules.count, job: n)
            frames += parsed.reduce(0) { $0 + $1.count }
            if frames > maxFrames { throw bad("please limit number of frames in a single request to <= \(maxFrames)") }
            result.append(SymbolicationJob(modules: modules, stacks: parsed))
        }
        return result
    }

    private static func parseModules(_ value: JSONValue, job n: Int) throws(SymbolicationFailure) -> [SymbolicationJob.Module] {
        let prefix = "job \(n) has invalid modules: "
        guard case .array(let entries) = value else { throw bad(prefix + "modules must be a list") }
        var modules: [SymbolicationJob.Module] = []
        for (i, entry) in entries.enumerated() {
            guard case .array(let pair) = entry, pair.count == 2 else {
                throw bad(prefix + "module index \(i) does not have a debug_filename and debug_id")
            }
            guard case .string(let file) = pair[0], file.utf8.count <= maxDebugFilenameLength,
                  file.unicodeScalars.allSatisfy(isDebugFilenameCharacter) else {
                throw bad(prefix + "module index \(i) has an invalid debug_filename")
            }
            guard case .string(let id) = pair[1], id.utf8.count <= maxDebugIdLength, id.unicodeScalars.allSatisfy(isHexDigit) else {
                throw bad(prefix + "module index \(i) has an invalid debug_id")
            }
            modules.append(.init(debugFile: file, debugId: id))
        }
        return modules
    }

    private static func parseStacks(_ value: JSONValue, moduleCount: Int, job n: Int) throws(SymbolicationFailure) -> [[SymbolicationJob.Frame]] {
        let prefix = "job \(n) has invalid stacks: "
        guard case .array(let stacks) = value else { throw bad(prefix + "stacks must be a list of lists") }
        guard !stacks.isEmpty else { throw bad(prefix + "no stacks specified") }
        var result: [[SymbolicationJob.Frame]] = []
        result.reserveCapacity(stacks.count)
        for (i, stack) in stacks.enumerated() {
            guard case .array(let frames) = stack else { throw bad(prefix + "stack \(i) is not a list") }
            var out: [SymbolicationJob.Frame] = []
            out.reserveCapacity(frames.count)
            for (j, frame) in frames.enumerated() {
                guard case .array(let pair) = frame, pair.count == 2 else {
                    throw bad(prefix + "stack \(i) frame \(j) is not a list of two items")
                }
                guard case .int(let index) = pair[0] else { throw bad(prefix + "stack \(i) frame \(j) has an invalid module_index") }
                guard index >= -1, index < Int64(moduleCount) else {
                    throw bad(prefix + "stack \(i) frame \(j) has a module_index that isn't in modules")
                }
                guard case .int(let offset) = pair[1], offset >= -1 else {
                    throw bad(prefix + "stack \(i) frame \(j) has an invalid module_offset")
                }
                out.append(.init(moduleIndex: Int(index), offset: offset))
            }
            result.append(out)
        }
        return result
    }

    private static func bad(_ title: String) -> SymbolicationFailure { SymbolicationFailure(status: 400, title: title) }

    /// `^[A-Za-z0-9_.+{}@<> ~-]*$`
    private static func isDebugFilenameCharacter(_ u: Unicode.Scalar) -> Bool {
        switch u {
        case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "+", "{", "}", "@", "<", ">", " ", "~", "-": return true
        default: return false
        }
    }

    private static func isHexDigit(_ u: Unicode.Scalar) -> Bool {
        switch u {
        case "A"..."F", "a"..."f", "0"..."9": return true
        default: return false
        }
    }
}
