import Foundation
import JSONSupport
import Testing

@Suite struct JSONLinesTests {
    /// Each line's document becomes `{"n": <value of "n">}`; the worker count and block size are
    /// small so the input is cut into many blocks and chunks.
    func mapper(workers: Int, blockSize: Int) -> JSONLinesMapper {
        JSONLinesMapper(workers: workers, blockSize: blockSize) { doc, out in
            out.write(.object([("n", doc["n"] ?? .null)]))
            out.newline()
        }
    }

    func input(_ count: Int) -> [UInt8] {
        var text = ""
        for n in 0..<count {
            text += "{\"n\": \(n), \"pad\": \"\(String(repeating: "x", count: n % 37))\"}\n"
            if n % 10 == 3 { text += "  \r\n" } // blank lines are skipped but counted
        }
        return Array(text.utf8)
    }

    func expected(_ count: Int) -> String { (0..<count).map { "{\"n\": \($0)}\n" }.joined() }

    @Test(arguments: [(1, 1 << 20), (2, 100), (4, 1000), (3, 70_000)])
    func keepsInputOrderAcrossBlocksAndWorkers(workers: Int, blockSize: Int) throws {
        let bytes = input(3000)
        var out: [UInt8] = []
        try bytes.withUnsafeBytes { raw in try mapper(workers: workers, blockSize: blockSize).map(raw) { out.append(contentsOf: $0) } }
        #expect(String(decoding: out, as: UTF8.self) == expected(3000))
    }

    @Test func readsAFileDescriptorInBlocks() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("jsonl-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        var bytes = input(2000)
        bytes.append(contentsOf: Array("{\"n\": \"last, no newline\"}".utf8))
        try Data(bytes).write(to: url)
        let fd = open(url.path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        var out: [UInt8] = []
        try mapper(workers: 2, blockSize: 4096).map(fileDescriptor: fd) { out.append(contentsOf: $0) }
        #expect(String(decoding: out, as: UTF8.self) == expected(2000) + "{\"n\": \"last, no newline\"}\n")
    }

    @Test func namesTheFirstInvalidLineAfterEmittingTheLinesBeforeIt() throws {
        var bytes = input(500) // 500 documents + 50 blank lines = 550 lines
        bytes.append(contentsOf: Array("{\"n\": 500}\n{\"n\": \n{\"n\": 502}\n".utf8))
        var out: [UInt8] = []
        let error = #expect(throws: JSONLinesError.self) {
            try bytes.withUnsafeBytes { raw in try mapper(workers: 2, blockSize: 512).map(raw) { out.append(contentsOf: $0) } }
        }
        #expect(error?.line == 552)
        #expect(String(decoding: out, as: UTF8.self) == expected(501))
    }
}

@Suite struct JSONOutputTests {
    @Test func escapesLikePythonEnsureASCII() {
        let value = JSONValue.object([("k\"\\", .array([.string("tab\t nl\n \u{1} é 🎉"), .int(-3), .double(1.5), .bool(true), .null]))])
        #expect(value.serialized() == #"{"k\"\\": ["tab\t nl\n \u0001 \u00e9 \ud83c\udf89", -3, 1.5, true, null]}"#)
    }

    @Test func sortedSerializationIsSerdeStyle() {
        let value = JSONValue.object([("b", .array([])), ("a", .object([("y", .int(1)), ("x", .object([]))]))])
        #expect(value.sortedSerialization(pretty: false) == #"{"a":{"x":{},"y":1},"b":[]}"#)
        #expect(value.sortedSerialization(pretty: true) == "{\n  \"a\": {\n    \"x\": {},\n    \"y\": 1\n  },\n  \"b\": []\n}")
    }

    @Test func repeatedKeysKeepTheFirstPositionAndTheLastValue() throws {
        let small = try #require(JSONValue.parse(Data(#"{"a": 1, "b": 2, "a": 3}"#.utf8)))
        #expect(small.serialized() == #"{"a": 3, "b": 2}"#)
        let keys = (0..<40).map { "\"k\($0)\": \($0)" }.joined(separator: ", ")
        let large = try #require(JSONValue.parse(Data("{\(keys), \"k3\": 99, \"k39\": 7}".utf8)))
        guard case .object(let pairs) = large else { Issue.record("not an object"); return }
        #expect(pairs.count == 40)
        #expect(large["k3"] == .int(99) && large["k39"] == .int(7) && pairs[3].0 == "k3")
    }
}
