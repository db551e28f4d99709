import CompressNIO
import Foundation
import JSONSupport
import NIOCore
@testable import Processor
import Storage
import Testing

/// The memory report, plugin, beta version, theme and soft-error rules.
@Suite struct ProductRuleTests {
    func gzip(_ text: String) throws -> Data {
        var buffer = ByteBuffer(string: text)
        let compressed = try buffer.compress(with: .gzip())
        return Data(compressed.readableBytesView)
    }

    static let report = #"""
    {"version": 1, "hasMozMallocUsableSize": true, "reports": [
      {"process": "Main Process (pid 1304)", "path": "explicit/heap-overhead/bin-unused", "kind": 1, "units": 0, "amount": 100},
      {"process": "Main Process (pid 1304)", "path": "explicit/images/content", "kind": 0, "units": 0, "amount": 40},
      {"process": "Main Process (pid 1304)", "path": "explicit/window-objects/top(none)/detached/x", "kind": 1, "units": 0, "amount": 7},
      {"process": "Main Process (pid 1304)", "path": "js-main-runtime/gc-heap", "kind": 2, "units": 0, "amount": 30},
      {"process": "Main Process (pid 1304)", "path": "heap-allocated", "kind": 2, "units": 0, "amount": 1000},
      {"process": "Main Process (pid 1304)", "path": "resident-unique", "kind": 2, "units": 0, "amount": 5000},
      {"process": "Main Process (pid 1304)", "path": "vsize", "kind": 2, "units": 0, "amount": 9000},
      {"process": "Web Content (pid 77)", "path": "heap-allocated", "kind": 2, "units": 0, "amount": 123456}
    ]}
    """#

    @Test func memoryReportIsDecodedAndMeasuredForTheDumpsProcess() async throws {
        var s = ProcessingState(crashID: "x", raw: [:], dumps: [("memory_report", try gzip(Self.report))])
        s.processed["json_dump"] = .object([("pid", .int(1304))])
        try await OutOfMemoryBinaryRule().run(&s)
        #expect(s.processed["memory_report"]?["version"] == .int(1))
        try await MemoryReportExtractionRule().run(&s)
        let m = try #require(s.processed["memory_measures"])
        #expect(m["heap_allocated"] == .int(1000) && m["resident_unique"] == .int(5000) && m["vsize"] == .int(9000))
        #expect(m["heap_overhead"] == .int(100) && m["images"] == .int(40) && m["top_non_detached"] == .int(7) && m["js_main_runtime"] == .int(30))
        #expect(m["heap_unclassified"] == .int(1000 - 107)) // heap-allocated minus explicit heap
        #expect(m["explicit"] == .int(1000 + 40))           // heap-allocated plus explicit non-heap
        #expect(m["gfx_textures"] == .int(0) && m["private"] == .int(0))
        #expect(s.notes.isEmpty)

        // No report for the dump's pid: a note, no measures.
        s.processed["json_dump"] = .object([("pid", .int(5))])
        s.processed["memory_measures"] = nil
        try await MemoryReportExtractionRule().run(&s)
        #expect(s.processed["memory_measures"] == nil && s.notes == ["MemoryReportExtraction: no measurements found for pid 5"])
    }

    @Test func badMemoryReportsBecomeAnErrorField() async throws {
        func run(_ data: Data, limit: Int = OutOfMemoryBinaryRule.maximumUncompressedSize) -> String? {
            if case .failure(let e) = OutOfMemoryBinaryRule.decode(data, limit: limit) { return e.message }
            return nil
        }
        #expect(run(Data("not gzip at all".utf8))?.hasPrefix("error in gzip for memory_report") == true)
        #expect(run(try gzip("{not json"))?.hasPrefix("error in json for memory_report") == true)
        #expect(run(try gzip(String(repeating: "x", count: 5000)), limit: 4096)?.hasPrefix("Uncompressed memory info too large") == true)
        #expect(run(try gzip("{}")) == nil)

        var s = ProcessingState(crashID: "x", raw: [:], dumps: [("memory_report", Data([0x1f, 0x8b, 0, 1, 2]))])
        try await OutOfMemoryBinaryRule().run(&s)
        #expect(s.processed["memory_report"] == nil)
        let error = try #require(s.processed["memory_report_error"]?.stringValue)
        #expect(s.notes == [error])
    }

    @Test func pluginThemeAndSoftErrors() async throws {
        var s = ProcessingState(crashID: "x", raw: ["ProcessType": .string("plugin"), "PluginName": .string("Flash")], dumps: [])
        try await PluginRule().run(&s)
        #expect(s.processed["plugin_name"] == .string("Flash") && s.processed["plugin_filename"] == .string("") && s.processed["plugin_version"] == .string(""))
        var content = ProcessingState(crashID: "x", raw: ["ProcessType": .string("content"), "PluginName": .string("Flash")], dumps: [])
        try await PluginRule().run(&content)
        #expect(content.processed["plugin_name"] == nil)

        s.processed["addons"] = .array([.string("{972ce4c6-7e08-4474-a285-3208198ce6fd}:65.0"), .string("a@b:1"), .string("{972ce4c6-7e08-4474-a285-3208198ce6fd}")])
        try await ThemePrettyNameRule().run(&s)
        #expect(s.processed["addons"] == .array([.string("{972ce4c6-7e08-4474-a285-3208198ce6fd} (default theme):65.0"), .string("a@b:1"),
                                                 .string("{972ce4c6-7e08-4474-a285-3208198ce6fd} (default theme)")]))

        s.processed["json_dump"] = .object([("soft_errors", .array([.string("a stream was truncated")]))])
        try await SoftErrorsRule().run(&s)
        #expect(s.processed["soft_errors"] == .array([.string("a stream was truncated")]))
        s.processed["json_dump"] = .object([("soft_errors", .null)])
        s.processed["soft_errors"] = nil
        try await SoftErrorsRule().run(&s)
        #expect(s.processed["soft_errors"] == nil)
    }

    @Test func betaVersionsAreLookedUpOrGetB0() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pm-beta-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let database = try await Database.open(url: "sqlite://\(dir)/m.sqlite", poolSize: 1)
        let store = try await MetadataStore.open(database)
        try await store.addProductVersion(product: "Firefox", channel: "beta", buildID: "20190101000000", version: "65.0b3")
        let rule = BetaVersionRule(products: ["firefox"], lookup: store)

        func run(_ fields: [String: JSONValue]) async throws -> ProcessingState {
            var s = ProcessingState(crashID: "x", raw: [:], dumps: [])
            s.processed = fields
            try await rule.run(&s)
            return s
        }
        let found = try await run(["product": .string("Firefox"), "release_channel": .string("beta"), "build": .string("20190101000000"), "version": .string("65.0")])
        #expect(found.processed["version"] == .string("65.0b3") && found.notes.isEmpty)
        let unknown = try await run(["product": .string("Firefox"), "release_channel": .string("beta"), "build": .string("20200101000000"), "version": .string("70.0")])
        #expect(unknown.processed["version"] == .string("70.0b0"))
        #expect(unknown.notes == ["release channel is beta but no version data was found - added 'b0' suffix to version number"])
        let release = try await run(["product": .string("Firefox"), "release_channel": .string("release"), "build": .string("20190101000000"), "version": .string("65.0")])
        #expect(release.processed["version"] == .string("65.0"))
        let other = try await run(["product": .string("Thunderbird"), "release_channel": .string("beta"), "build": .string("20190101000000"), "version": .string("65.0")])
        #expect(other.processed["version"] == .string("65.0"))
        await database.shutdown()
    }
}
