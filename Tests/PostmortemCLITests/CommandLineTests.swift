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

    /// The parser holds one 12 MiB read buffer; nothing grows with the file: a 1 GB line of
    /// NULs costs no more than a small file (peak memory of the child process).
    @Test func aGigabyteLineParsesInBoundedMemory() throws {
        let dir = TestData.temporaryDirectory("sparse-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let header = "MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 huge\n", trailer = "\nFUNC 1000 10 0 after_the_hole\n"
        let huge = dir + "/huge.sym", small = dir + "/small.sym"
        try (header + trailer).write(toFile: small, atomically: true, encoding: .utf8)
        let fd = open(huge, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        #expect(fd >= 0)
        _ = Array(header.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let holeEnd = off_t(header.utf8.count) + (1 << 30)
        #expect(lseek(fd, holeEnd, SEEK_SET) == holeEnd)
        _ = Array(trailer.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let base = try runProcessMeasured(try Self.executable(), ["symbols", "lookup", small, "0x1004"])
        let big = try runProcessMeasured(try Self.executable(), ["symbols", "lookup", huge, "0x1004"])
        #expect(big.status == 0 && String(decoding: big.stdout, as: UTF8.self).contains("after_the_hole"))
        #expect(base.maxResidentBytes > 0)
        #expect(big.maxResidentBytes - base.maxResidentBytes < 64 << 20,
                "peak memory \(big.maxResidentBytes >> 20) MiB for the 1 GB line, \(base.maxResidentBytes >> 20) MiB for a small file")
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

@Suite struct StackwalkCommandTests {
    func run(_ args: [String]) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), args)
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func printsJSONAndHumanReportsAndWritesOutputFiles() throws {
        let dump = try TestData.path("minidumps/test.dmp")
        let (s1, json, _) = try run(["stackwalk", "--json", dump])
        #expect(s1 == 0)
        let golden = try String(contentsOfFile: try TestData.path("expected/test.dmp.nosyms.compact.json"), encoding: .utf8)
        #expect(json.trimmingCharacters(in: .whitespacesAndNewlines) == golden.trimmingCharacters(in: .whitespacesAndNewlines))
        let (s2, human, _) = try run(["stackwalk", dump])
        #expect(s2 == 0 && human.hasPrefix("Operating system: Windows NT\n"))
        let out = TestData.temporaryDirectory("cli") + "/report.json"
        let (s3, stdout, _) = try run(["stackwalk", "--json", "--pretty", "--output-file", out, dump])
        #expect(s3 == 0 && stdout.isEmpty)
        #expect(try String(contentsOfFile: out, encoding: .utf8).hasPrefix("{\n  \"crash_info\": {"))
    }

    @Test func positionalSymbolDirectoriesAndEvilJSONAreUsed() throws {
        let dump = try TestData.path("minidumps/test.dmp")
        let (status, json, err) = try run(["stackwalk", "--json", "--evil-json", try TestData.path("minidumps/evil.json"),
                                           "--symbols-cache", TestData.temporaryDirectory("cli"), dump, try TestData.path("symbols")])
        #expect(status == 0, "\(err)")
        #expect(json.contains("\"cert_subject\":\"rust-minidump\""))
        #expect(json.contains("\"modules_contains_cert_info\":true"))
        #expect(json.contains("\"function\":\"BaseProcessStart\""))
    }

    /// The flags Socorro and other pipelines pass to rust-minidump's minidump-stackwalk.
    @Test func acceptsMinidumpStackwalkFlags() throws {
        let dump = try TestData.path("minidumps/test.dmp")
        let dir = TestData.temporaryDirectory("cli")
        let (status, human, err) = try run([
            "stackwalk", "--cyborg=\(dir)/report.json", "--verbose=debug", "--log-file", "\(dir)/walk.log", "--no-color",
            "--features=stable-all", "--symbols-tmp", "\(dir)/tmp", "--symbols-cache", "\(dir)/cache", "--raw-json",
            try TestData.path("minidumps/evil.json"), dump, try TestData.path("symbols"),
        ])
        #expect(status == 0, "\(err)")
        #expect(err.isEmpty)
        #expect(human.hasPrefix("Operating system: Windows NT\n"))
        #expect(human.contains("kernel32.dll!BaseProcessStart"))
        let json = try String(contentsOfFile: dir + "/report.json", encoding: .utf8)
        #expect(json.contains("\"function\":\"BaseProcessStart\"") && json.contains("\"cert_subject\":\"rust-minidump\""))
        let log = try String(contentsOfFile: dir + "/walk.log", encoding: .utf8)
        #expect(log.contains("[INFO] \(dump): 2 threads, 4 frames, symbols for 2 of 13 modules"))
        #expect(log.contains("[DEBUG] thread 0 (tid 3060): 4 frames (cfi 3, context 1)"))
        #expect(!log.contains("[TRACE]"))
        // The default level is error: nothing is logged for a good dump.
        let (_, _, quiet) = try run(["stackwalk", "--json", dump])
        #expect(quiet.isEmpty)
        let (bad, _, usage) = try run(["stackwalk", "--features=experimental", dump])
        #expect(bad == 2 && usage.contains("stable-basic"))
        let (both, _, _) = try run(["stackwalk", "--cyborg=\(dir)/x.json", "--json", dump])
        #expect(both == 2)
    }

    @Test func badDumpsFailWithOneLineAndExitOne() throws {
        let (s1, _, e1) = try run(["stackwalk", try TestData.path("minidumps/invalid-range.dmp")])
        #expect(s1 == 1)
        #expect(e1.hasSuffix("invalid-range.dmp: SystemInfo stream: not present (the CPU and OS of the dump are unknown)\n"))
        #expect(e1.split(separator: "\n").count == 1)
        let (s2, _, e2) = try run(["stackwalk", try TestData.path("minidumps/evil.json")])
        #expect(s2 == 1 && e2.hasSuffix("evil.json: not a minidump (no MDMP signature)\n"))
        let (s3, _, e3) = try run(["stackwalk", "/nonexistent.dmp"])
        #expect(s3 == 1 && e3 == "postmortem: /nonexistent.dmp: cannot open /nonexistent.dmp: No such file or directory\n")
    }
}

@Suite struct SignatureCommandTests {
    func run(_ args: [String], stdin: String) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), args, stdin: Data(stdin.utf8))
        return (status, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    @Test func signsCrashDataAndProcessedCrashesWithTheBundledLists() throws {
        let crash = #"{"os": "Linux", "threads": [{"frames": [{"function": "raise"}, {"function": "abort"}, {"function": "void App::Save(int)"}]}]}"#
        let (status, out, err) = try run(["signature"], stdin: crash)
        #expect(status == 0, "\(err)")
        #expect(out.hasPrefix(#"{"signature": "App::Save", "proto_signature": "raise | abort | App::Save", "notes": [], "rules_version": "#))
        let processed = #"{"json_dump": {"crash_info": {"crashing_thread": 0, "type": "EXCEPTION_STACK_OVERFLOW"}, "threads": [{"frames": [{"function": "f()"}]}]}}"#
        let (_, out2, _) = try run(["signature", "-v"], stdin: processed)
        #expect(out2.contains(#""signature": "stackoverflow | f""#))
        #expect(out2.contains(#""debug_log": ["#))
    }

    @Test func jsonlWritesOneResultPerLineAndRejectsBadLines() throws {
        let (status, out, _) = try run(["signature", "--jsonl"], stdin: "{}\n\n{\"hang\": 1}\n")
        #expect(status == 0)
        let lines = out.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[1].contains(#""signature": "hang: 1 | EMPTY: no frame data available""#))
        let (s2, _, e2) = try run(["signature", "--jsonl"], stdin: "{}\nnot json\n")
        #expect(s2 == 1 && e2 == "postmortem: line 2: not valid JSON\n")
    }

    /// `signatures.lists_dir` replaces the bundled lists (here: `App::Save` becomes a prefix
    /// frame); `--siglists` still wins over it.
    @Test func theConfiguredListsDirectoryIsUsed() throws {
        let dir = TestData.temporaryDirectory("siglists")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bundled = TestData.packageRoot + "/Sources/Signatures/Resources/siglists"
        for name in try FileManager.default.contentsOfDirectory(atPath: bundled) where name.hasSuffix(".txt") {
            try FileManager.default.copyItem(atPath: bundled + "/" + name, toPath: dir + "/" + name)
        }
        let prefix = try String(contentsOfFile: dir + "/prefix_signature_re.txt", encoding: .utf8)
        try (prefix + "\nApp::Save\n").write(toFile: dir + "/prefix_signature_re.txt", atomically: true, encoding: .utf8)
        let crash = #"{"os": "Linux", "threads": [{"frames": [{"function": "raise"}, {"function": "abort"}, {"function": "void App::Save(int)"}, {"function": "main"}]}]}"#
        let (status, out, err) = try runProcess(try CommandLineTests.executable(), ["signature"], stdin: Data(crash.utf8),
                                                environment: ["POSTMORTEM_SIGNATURES_LISTS_DIR": dir])
        #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
        #expect(String(decoding: out, as: UTF8.self).hasPrefix(#"{"signature": "App::Save | main""#), "\(String(decoding: out, as: UTF8.self))")
        let bundledAnswer = try runProcess(try CommandLineTests.executable(), ["signature", "--siglists", bundled], stdin: Data(crash.utf8),
                                           environment: ["POSTMORTEM_SIGNATURES_LISTS_DIR": dir])
        #expect(String(decoding: bundledAnswer.1, as: UTF8.self).hasPrefix(#"{"signature": "App::Save""#))
        #expect(!String(decoding: bundledAnswer.1, as: UTF8.self).hasPrefix(#"{"signature": "App::Save | main""#))
    }

    @Test func aListDirectoryWithABadRegexIsRefused() throws {
        let dir = TestData.temporaryDirectory("lists")
        for name in ["irrelevant_signature_re", "prefix_signature_re", "signature_sentinels", "signatures_with_line_numbers_re"] {
            try "ok\n".write(toFile: "\(dir)/\(name).txt", atomically: true, encoding: .utf8)
        }
        try "a\n(b\n".write(toFile: "\(dir)/irrelevant_signature_re.txt", atomically: true, encoding: .utf8)
        let (status, _, err) = try run(["signature", "--siglists", dir], stdin: "{}")
        #expect(status == 1)
        #expect(err == "postmortem: \(dir)/irrelevant_signature_re.txt:2: invalid regular expression: (b\n")
    }
}
