import Foundation
import JSONSupport
import Testing

/// The tape must accept exactly what the parser accepts, and decode values the same way.
@Suite struct JSONTapeTests {
    static let documents = [
        "{}", "[]", "0", "-0", "1.5e3", "-1E-2", "true", "false", "null", "NaN", "Infinity", "-Infinity",
        #""a\u00e9\ud83d\ude00\n""#, #"{"a": [1, {"b": null}], "c": "d"}"#, " [ 1 , 2 ] ", #"{"k": 1, "k": 2}"#,
        // Invalid:
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "1e", "-", "tru", "nul", "\"\u{1}\"", #""\x""#, #""\u12""#,
        "[1] x", "{\"a\": 1,}", "\"abc", "[", "{\"a\":}", "--1", "+1", "Infinit", "[NaN, -Infinity]",
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ]

    @Test func acceptsWhatTheParserAccepts() {
        var tape = JSONTape()
        for d in Self.documents {
            let parsed = JSONValue.parse(Data(d.utf8))
            // The tape points into the bytes it parsed: decode while they are still those bytes.
            let (taped, decoded) = Data(d.utf8).withUnsafeBytes { raw in
                tape.parse(raw) ? (true, tape.value(tape.root)) : (false, nil)
            }
            #expect(taped == (parsed != nil), "document: \(d.prefix(40))")
            if let decoded, let parsed {
                #expect(decoded.serialized() == parsed.serialized() || d.hasPrefix("NaN") || d.contains("NaN"))
            }
        }
    }

    @Test func navigatesMembersAndItems() {
        let d = Data(#"{"a": [10, "x\ty", {"b": true}], "a": 5, "c\u0041": {}}"#.utf8)
        d.withUnsafeBytes { raw in
            var tape = JSONTape()
            let ok = tape.parse(raw)
            #expect(ok)
            #expect(tape.kind(tape.root) == .object)
            #expect(tape.count(tape.root) == 3)
            #expect(tape.hasEscapedKey(tape.root))
            let a = tape.member(tape.root, "a")
            #expect(a.map { tape.value($0) } == .int(5))
            var firstA: Int?
            tape.forEachMember(tape.root) { k, v in if firstA == nil, tape.key(k, is: "a") { firstA = v } }
            let items = firstA.map { tape.items($0) } ?? []
            #expect(items.count == 3)
            #expect(tape.string(items[1]) == "x\ty")
            #expect(String(decoding: tape.raw(items[1]), as: UTF8.self) == #"x\ty"#)
            #expect(tape.count(items[2]) == 1)
            #expect(tape.value(items[2]) == .object([("b", .bool(true))]))
            #expect(!tape.isNull(items[0]))
        }
    }
}
