import Foundation
import JSONSupport
import Testing
@testable import Signatures

/// The JSON-lines path reads frames straight from the taped line; whatever the input, it must
/// produce exactly what generation over the decoded document produces.
@Suite struct JSONLinesPathTests {
    static let lines: [String] = [
        #"{"crashing_thread": 0, "threads": [{"frames": [{"function": "a::b(int)", "module": "xul.dll"}, {"function": "c<T>::d", "file": "/src/x.rs"}]}]}"#,
        // Escapes in names and files, and in keys (which force the general path).
        #"{"threads": [{"frames": [{"function": "a\tb\u00e9::c", "file": "c:\\src\\a.cpp", "line": 3}]}], "crashing_thread": 0}"#,
        #"{"threads": [{"fr\u0061mes": [{"function": "x"}], "frames": [{"function": "y"}]}]}"#,
        #"{"thre\u0061ds": [{"frames": [{"function": "x"}]}]}"#,
        #"{"threads": [{"frames": [{"functio\u006e": "x", "function": "y"}]}]}"#,
        // Repeated keys: first position, last value.
        #"{"threads": [{"frames": [{"function": "first"}]}], "threads": [{"frames": [{"function": "second"}]}]}"#,
        #"{"threads": [{"frames": [{"function": "a", "function": "b", "module": "m.dll"}]}]}"#,
        #"{"threads": [{"frames": [{"function": "a"}]}], "threads": "nope"}"#,
        // Odd shapes raise in Python; the notes must say the same.
        #"{"threads": [{"frames": [3]}]}"#, #"{"threads": [null]}"#, #"{"threads": [{"frames": null}]}"#,
        #"{"threads": [{"frames": "abc"}]}"#, #"{"threads": [{"frames": {"a": 1}}]}"#, #"{"threads": [{}]}"#,
        #"{"threads": [{"frames": [{"function": "f", "inlines": "x"}]}]}"#,
        #"{"threads": [{"frames": [{"function": "f", "inlines": 0}, {"function": "g", "inlines": []}]}]}"#,
        #"{"threads": [{"frames": [{"function": "f", "inlines": [{"function": "i1", "file": "/a.rs", "line": 2}, 5]}]}]}"#,
        #"{"threads": [{"frames": [{"function": 12, "line": 3}, {"function": null, "file": "/a/b.c", "line": 7}, {"function": true}]}]}"#,
        #"{"threads": [{"frames": [{"module": "[vdso]"}, {"offset": "0x000012"}, {"unloaded_modules": [{"module": "a.dll"}]}, {}]}]}"#,
        #"{"os": "Windows NT", "threads": [{"frames": [{"module": "NTDLL.DLL"}, {"module": "NTDLL.DLL"}, {"function": "KiUserExceptionDispatcher"}]}]}"#,
        // Rust 1.34 names are rewritten from their file.
        #"{"threads": [{"frames": [{"function": "panic", "file": "src/libcore/panicking.rs"}, {"function": "expect_failed", "file": "src/libcore/option.rs"}]}]}"#,
        // Thread selection: negative, out of range, string, thread 0 for RunWatchdog.
        #"{"crashing_thread": -1, "threads": [{"frames": [{"function": "zero"}]}, {"frames": [{"function": "one"}]}]}"#,
        #"{"crashing_thread": 5, "threads": [{"frames": [{"function": "zero"}]}]}"#,
        #"{"crashing_thread": "1", "threads": [{"frames": [{"function": "zero"}]}, {"frames": [{"function": "one"}]}]}"#,
        #"{"crashing_thread": 1, "threads": [{"frames": [{"function": "main"}]}, {"frames": [{"function": "mozilla::(anonymous namespace)::RunWatchdog(void*)"}]}]}"#,
        // OOM reads the crashing thread's other members.
        #"{"threads": [{"frames": [{"function": "f"}], "last_error_value": "ERROR_NOT_ENOUGH_MEMORY"}]}"#,
        #"{"threads": [{"last_error_value": "ERROR_COMMITMENT_LIMIT", "frames": [{"function": "NS_ABORT_OOM"}]}], "oom_allocation_size": 100}"#,
        // Line numbers from the line-number list.
        #"{"threads": [{"frames": [{"function": "js::jit::MakeMRegExpHoistable", "line": 12}, {"function": "NS_DebugBreak", "line": null}]}]}"#,
        // A processed crash takes the conversion path.
        #"{"signature": "old", "json_dump": {"crash_info": {"crashing_thread": 0, "type": "SIGSEGV"}, "threads": [{"frames": [{"function": "p::q"}]}]}}"#,
        "[1, 2]", "\"text\"", "{}",
        ####"{"threads": [{"frames": []}], "hang": 1, "abort_message": "###!!! ABORT: oops: file a.cpp:1", "reason": "EXCEPTION_STACK_OVERFLOW"}"####,
    ]

    @Test func bulkPathEqualsGenerationOnDecodedDocuments() throws {
        let generator = try SiggenLists.generator()
        var corpus = SyntheticCrashCorpus(seed: 7, listEntries: generator.lists.prefix.entries)
        let generated = (0..<500).map { _ in corpus.document().serialized() }
        let lines = Self.lines + generated
        let text = lines.joined(separator: "\n") + "\n"
        var bulk: [UInt8] = []
        try Data(text.utf8).withUnsafeBytes { raw in
            try generator.jsonLinesMapper(debugLog: true, workers: 2).map(raw) { bulk.append(contentsOf: $0) }
        }
        let outputs = bulk.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        try #require(outputs.count == lines.count)
        for (line, output) in zip(lines, outputs) {
            let document = try #require(JSONValue.parse(Data(line.utf8)))
            var expected = JSONOutput()
            generator.generate(SignatureGenerator.crashData(from: document)).write(into: &expected, debugLog: true)
            #expect(output == expected.string, "input: \(line)")
        }
    }

    @Test func invalidLineIsReportedByNumber() throws {
        let generator = try SiggenLists.generator()
        let text = "{}\n{\"threads\": [1,]}\n{}\n"
        let error = #expect(throws: JSONLinesError.self) {
            try Data(text.utf8).withUnsafeBytes { raw in
                try generator.jsonLinesMapper(debugLog: false, workers: 1).map(raw) { _ in }
            }
        }
        #expect(error?.line == 2)
    }
}
