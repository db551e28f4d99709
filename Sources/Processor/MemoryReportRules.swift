import CompressNIO
import Foundation
import JSONSupport
import NIOCore

// Firefox sends the about:memory report of an out-of-memory crash as a gzipped JSON attachment
// named `memory_report` (processor.md §3, rules 25 and 46).

/// `memory_report`: the decoded attachment, or `memory_report_error` (and a note) when it is not
/// gzipped JSON or inflates past 20 MB.
struct OutOfMemoryBinaryRule: ProcessorRule {
    let name = "OutOfMemoryBinary"
    static let maximumUncompressedSize = 20 * 1024 * 1024

    func run(_ s: inout ProcessingState) async throws {
        guard let dump = s.dumps.first(where: { $0.name == "memory_report" }) else { return }
        switch Self.decode(dump.data) {
        case .success(let report):
            s.processed["memory_report"] = report
        case .failure(let error):
            s.notes.append(error.message)
            s.processed["memory_report_error"] = .string(error.message)
        }
    }

    struct DecodeError: Error { let message: String }

    static func decode(_ data: Data, limit: Int = maximumUncompressedSize) -> Result<JSONValue, DecodeError> {
        var input = ByteBuffer(data: data)
        var output = ByteBuffer()
        let decompressor = CompressionAlgorithm.gzip().decompressor
        decompressor.window = ByteBufferAllocator().buffer(capacity: 64 << 10)
        var tooLarge = false
        do {
            try decompressor.startStream()
            defer { try? decompressor.finishStream() }
            try input.decompressStream(with: decompressor) { window in
                if output.readableBytes + window.readableBytes > limit { tooLarge = true; return }
                var w = window
                output.writeBuffer(&w)
            }
        } catch {
            return .failure(DecodeError(message: "error in gzip for memory_report: \(error)"))
        }
        if tooLarge { return .failure(DecodeError(message: "Uncompressed memory info too large (max: \(limit))")) }
        if output.readableBytes == 0 { return .failure(DecodeError(message: "error in gzip for memory_report: no data")) }
        guard let report = output.withUnsafeReadableBytes({ JSONValue.parse($0) }) else {
            return .failure(DecodeError(message: "error in json for memory_report: not valid JSON"))
        }
        return .success(report)
    }
}

/// `memory_measures`: the about:memory totals of the crashing process (the reports whose process
/// names `(pid N)` for the dump's pid): measured values by path, and explicit, heap overhead,
/// heap unclassified, images, JS main runtime and detached windows derived from them.
struct MemoryReportExtractionRule: ProcessorRule {
    let name = "MemoryReportExtraction"

    /// Reports measured directly, by path (dashes become underscores in the field names).
    static let measured = ["gfx-textures", "ghost-windows", "heap-allocated", "host-object-urls", "private", "resident",
                           "resident-unique", "system-heap-allocated", "vsize-max-contiguous", "vsize"]
    static let kindNonHeap: Int64 = 0, kindHeap: Int64 = 1, unitsBytes: Int64 = 0

    func run(_ s: inout ProcessingState) async throws {
        guard let pid = s.processed["json_dump"]?["pid"]?.intValue, let report = s.processed["memory_report"],
              report["version"] != nil, report["hasMozMallocUsableSize"] != nil, case .array(let reports)? = report["reports"]
        else { return }
        switch Self.measures(reports, pid: pid) {
        case .success(let measures): s.processed["memory_measures"] = measures
        case .failure(let error): s.notes.append("MemoryReportExtraction: \(error.message)")
        }
    }

    struct ExtractionError: Error { let message: String }

    static func measures(_ reports: [JSONValue], pid: Int64) -> Result<JSONValue, ExtractionError> {
        var values: [String: Int64] = [:]
        for key in measured { values[key.replacingOccurrences(of: "-", with: "_")] = 0 }
        for key in ["explicit", "heap_overhead", "heap_unclassified", "images", "js_main_runtime", "top_non_detached"] { values[key] = 0 }
        var explicitHeap: Int64 = 0, explicitNonHeap: Int64 = 0
        var found = false
        let marker = "(pid \(pid))"
        for report in reports {
            guard let process = report["process"]?.stringValue else { return .failure(ExtractionError(message: "a report has no process")) }
            guard process.contains(marker) else { continue }
            found = true
            guard let path = report["path"]?.stringValue, let kind = report["kind"]?.intValue, let units = report["units"]?.intValue,
                  let amount = report["amount"]?.intValue else {
                return .failure(ExtractionError(message: "a report of \(process) lacks path, kind, units or amount"))
            }
            if path.hasPrefix("explicit/") {
                guard units == unitsBytes else { return .failure(ExtractionError(message: "bad units for an explicit/ report: \(path), \(units)")) }
                switch kind {
                case kindNonHeap: explicitNonHeap &+= amount
                case kindHeap: explicitHeap &+= amount
                default: return .failure(ExtractionError(message: "bad kind for an explicit/ report: \(path), \(kind)"))
                }
                if path.hasPrefix("explicit/images/") { values["images", default: 0] &+= amount }
                else if path.contains("top(none)/detached") { values["top_non_detached", default: 0] &+= amount }
                else if path.hasPrefix("explicit/heap-overhead/") { values["heap_overhead", default: 0] &+= amount }
            } else if path.hasPrefix("js-main-runtime/") {
                values["js_main_runtime", default: 0] &+= amount
            } else if measured.contains(path) {
                values[path.replacingOccurrences(of: "-", with: "_"), default: 0] &+= amount
            }
        }
        guard found else { return .failure(ExtractionError(message: "no measurements found for pid \(pid)")) }
        // heap-unclassified can come out negative from bogus measurements; it is shown as is.
        values["heap_unclassified"] = values["heap_allocated", default: 0] &- explicitHeap
        values["explicit"] = values["heap_allocated", default: 0] &+ explicitNonHeap
        return .success(.object(values.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))
    }
}
