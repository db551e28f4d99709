// signature-bench: signatures per second on the synthetic corpus of the differential test,
// beside PyPI siggen's rate on the same documents, measured in the same run.
//
//   swift run -c release --package-path Benchmarks signature-bench
//
// Both sides use siggen's bundled lists (from the installed package) so they do the same work.
// "generation" times only signature generation over parsed documents (what the siggen side
// measures); "--jsonl path" adds parsing each line and rendering each result, as
// `postmortem signature --jsonl` does.
import BenchSupport
import Foundation
import JSONSupport
import Signatures

func shell(_ args: [String], stdin: Data = Data()) throws -> (Data, Data) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let i = Pipe(), o = Pipe(), e = Pipe()
    p.standardInput = i; p.standardOutput = o; p.standardError = e
    try p.run()
    let writer = Thread { i.fileHandleForWriting.write(stdin); try? i.fileHandleForWriting.close() }
    writer.start()
    let out = o.fileHandleForReading.readDataToEndOfFile()
    let err = e.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (out, err)
}

let (dirOut, _) = try shell(["python3", "-c", "import siggen, os; print(os.path.join(os.path.dirname(siggen.__file__), 'siglists'))"])
let listDir = String(decoding: dirOut, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
let lists = try SignatureLists(directory: listDir, includedLists: true)
let generator = SignatureGenerator(lists: lists)

let count = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 20_000
var corpus = SyntheticCrashCorpus(seed: 20_241_029, listEntries: lists.irrelevant.entries + lists.prefix.entries + lists.sentinels)
let documents = (0..<count).map { _ in corpus.document() }
let lines = documents.map { $0.serialized() }
let jsonl = Data((lines.joined(separator: "\n") + "\n").utf8)

// Ours: generation only, best of 3.
var generation = Double.infinity
for _ in 0..<(CommandLine.arguments.dropFirst(2).first == "profile" ? 0 : 3) {
    let start = benchClock.now
    var n = 0
    for d in documents { n += generator.generate(d).signature.count }
    generation = min(generation, seconds(benchClock.now - start))
    precondition(n > 0)
}
// Ours: the --jsonl path (parse each line, generate, render), one worker and all cores, best of 3.
/// Best of `runs` passes over the corpus with one mapper, and the first pass alone (its memos
/// start empty; later passes meet names they have seen, as a long bulk run mostly does).
/// Each measurement uses a new generator, so nothing is learned from earlier measurements.
func jsonlTimes(workers: Int, runs: Int = 3) -> (best: Double, first: Double) {
    let mapper = SignatureGenerator(lists: try! SignatureLists(directory: listDir, includedLists: true))
        .jsonLinesMapper(debugLog: false, workers: workers)
    var best = Double.infinity, first = 0.0
    for run in 0..<runs {
        let start = benchClock.now
        var bytes = 0
        try! jsonl.withUnsafeBytes { try mapper.map($0) { bytes += $0.count } }
        let elapsed = seconds(benchClock.now - start)
        if run == 0 { first = elapsed }
        best = min(best, elapsed)
        precondition(bytes > 0)
    }
    return (best, first)
}
let cores = ProcessInfo.processInfo.activeProcessorCount
// `signature-bench N profile [WORKERS [RUNS]]`: only the --jsonl path, best of RUNS (default 10)
// with one generator, five times (for perf).
if CommandLine.arguments.dropFirst(2).first == "profile" {
    let workers = Int(CommandLine.arguments.dropFirst(3).first ?? "") ?? 1
    let runs = Int(CommandLine.arguments.dropFirst(4).first ?? "") ?? 10
    for _ in 0..<5 { print(String(format: "--jsonl %d workers: %.0f/s", workers, Double(count) / jsonlTimes(workers: workers, runs: runs).best)) }
    exit(0)
}
let oneWorker = jsonlTimes(workers: 1).best
let (allCores, allCoresFirst) = jsonlTimes(workers: cores)
// siggen, same documents.
let (_, err) = try shell(["python3", packageRoot + "/Tests/Oracles/siggen_signatures.py"], stdin: jsonl)
let siggenSeconds = Double(String(decoding: err, as: UTF8.self).split(separator: "=").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "") ?? .nan

func rate(_ s: Double) -> String { String(format: "%.0f", Double(count) / s) }
func ratio(_ s: Double) -> String { String(format: "%.1f×", siggenSeconds / s) }
print("| documents | siggen /s | generation /s (1 core) | --jsonl /s (1 core) | --jsonl /s (\(cores) cores) | --jsonl first pass /s (\(cores) cores) | speed-up: generation, --jsonl 1 core, --jsonl \(cores) cores, first pass |")
print("|---|---|---|---|---|---|---|")
print("| \(count) | \(rate(siggenSeconds)) | \(rate(generation)) | \(rate(oneWorker)) | \(rate(allCores)) | \(rate(allCoresFirst)) | \(ratio(generation)), \(ratio(oneWorker)), **\(ratio(allCores))**, \(ratio(allCoresFirst)) |")
