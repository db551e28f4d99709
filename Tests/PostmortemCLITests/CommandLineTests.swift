import Foundation
import Testing
import TestSupport

/// Runs the built `postmortem` executable as a user would: arguments, stdin, stdout, stderr, exit code.
@Suite struct CommandLineTests {
    static func executable() throws -> String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("postmortem").path
        for candidate in [beside, TestData.packageRoot + "/.build/debug/postmortem"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        struct NotBuilt: Error {}
        throw NotBuilt()
    }

    func run(_ args: [String], stdin: String = "") throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try Self.executable(), args, stdin: Data(stdin.utf8))
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func symbolicatesTheReadmeExample() throws {
        let request = try String(contentsOfFile: TestData.packageRoot + "/examples/symbolicate-v5.json", encoding: .utf8)
        let symbols = try TestData.path("symbolication/symbols")
        let (status, out, err) = try run(["symbolicate", "--symbols-path", symbols, "--symbols-cache", TestData.temporaryDirectory("cli")], stdin: request)
        #expect(status == 0, "\(err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let job = try #require((json["results"] as? [[String: Any]])?.first)
        let frames = try #require((job["stacks"] as? [[[String: Any]]])?.first)
        #expect(frames.map { $0["function"] as? String } == ["testproj::main", "LdrpGetModuleName", "somefunc", nil])
        #expect(frames.map { $0["module"] as? String } == ["testproj", "ntdll.dll", "xul.dll", "<unknown>"])
        #expect(frames[0]["inlines"] != nil)
    }

    @Test func invalidRequestPrintsTheErrorBodyAndExitsWithOne() throws {
        let (status, out, err) = try run(["symbolicate", "--symbols-cache", TestData.temporaryDirectory("cli")], stdin: #"{"jobs": [{"stacks": [[]]}]}"#)
        #expect(status == 1)
        #expect(out.isEmpty)
        #expect(err == "{\"title\": \"job 0 is invalid: no memoryMap specified\"}\n")
        let (s2, _, e2) = try run(["symbolicate", "--v4", "--symbols-cache", TestData.temporaryDirectory("cli")], stdin: "")
        #expect(s2 == 1 && e2 == "{\"title\": \"Payload is not valid JSON\"}\n")
    }

    @Test func v4RequestGivesAV4Response() throws {
        let request = #"{"stacks": [[[0, 21376], [1, 5]]], "memoryMap": [["testproj", "D48F191186D67E69DF025AD71FB91E1F0"], ["libc.so", "12345"]], "version": 4}"#
        let (status, out, err) = try run(["symbolicate", "--v4", "--symbols-path", try TestData.path("symbolication/symbols"),
                                          "--symbols-cache", TestData.temporaryDirectory("cli")], stdin: request)
        #expect(status == 0, "\(err)")
        #expect(out == "{\"symbolicatedStacks\": [[\"testproj::main (in testproj)\", \"0x5 (in libc.so)\"]], \"knownModules\": [true, false]}\n")
    }

    @Test func symbolsInfoPrintsHeaderCountsAndParseTime() throws {
        let path = try TestData.path("symbols/crash-client/509C0610949836F7B70BD88BCF03E5400/crash-client.sym")
        let (status, out, _) = try run(["symbols", "info", path])
        #expect(status == 0)
        #expect(out.hasPrefix("MODULE Mac x86_64 509C0610949836F7B70BD88BCF03E5400 crash-client\n"))
        #expect(out.contains("\nINLINE            40148\n"))
        #expect(out.contains("\nFUNC              1996\n"))
        #expect(out.contains("\nmalformed         0\n"))
        #expect(out.contains("parse time:"))
    }

    @Test func unreadableSymbolFileIsAnOperationalFailure() throws {
        let (status, _, err) = try run(["symbols", "info", "/nonexistent.sym"])
        #expect(status == 1)
        #expect(err == "postmortem: /nonexistent.sym: cannot open /nonexistent.sym: No such file or directory\n")
        let garbage = TestData.temporaryDirectory("cli") + "/garbage.sym"
        try "not a symbol file\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let (s2, _, e2) = try run(["symbols", "info", garbage])
        #expect(s2 == 1 && e2.hasSuffix("not a Breakpad symbol file: the first record is not a valid MODULE line\n"))
    }

    @Test func usageErrorsExitWithTwo() throws {
        let (status, _, _) = try run(["symbols", "info"])
        #expect(status == 2)
    }
}
