import Foundation
import JSONSupport
@testable import Processor
import Testing

/// Rules one at a time: a state in, the fields and notes out.
@Suite struct RuleTests {
    func state(raw: [String: JSONValue] = [:], dump: JSONValue? = nil) -> ProcessingState {
        var s = ProcessingState(crashID: "de1bb258-cbbf-4589-a673-34f800160918", raw: raw, dumps: [])
        if let dump { s.processed["json_dump"] = dump }
        return s
    }

    /// Hostile time annotations (issue #16): the rule finishes, keeps what it can and notes the
    /// rest; nothing traps.
    @Test(arguments: [
        (["UptimeTS": "1e300"], nil as Int64?, "UptimeTS '1e300' is not a number of seconds"),
        (["UptimeTS": "nan"], nil, "UptimeTS 'nan' is not a number of seconds"),
        (["UptimeTS": "-inf"], nil, "UptimeTS '-inf' is not a number of seconds"),
        (["UptimeTS": "12.9"], 12, nil),
        (["StartupTime": "-9223372036854775808"], nil, "uptime of CrashTime 9223372036854775807 and StartupTime -9223372036854775808 is out of range"),
    ] as [([String: String], Int64?, String?)])
    func hostileTimeAnnotationsAreNotedNotTrapped(_ raw: [String: String], _ uptime: Int64?, _ note: String?) async throws {
        var s = state(raw: (["submitted_timestamp": "2026-11-29T10:00:00+00:00"].merging(raw) { a, _ in a }).mapValues { .string($0) })
        s.processed["crash_time"] = .int(Int64.max)
        try await DatesAndTimesRule().run(&s)
        #expect(s.processed["uptime"]?.intValue == uptime)
        #expect(s.notes == note.map { ["DatesAndTimes: " + $0] } ?? [])
        #expect(s.processed["client_crash_date"] == .string("9999-12-31T23:59:59.999999+00:00"))
    }

    @Test func installAgeOutOfRangeIsNoted() async throws {
        var s = state(raw: ["submitted_timestamp": .string("2026-11-29T10:00:00+00:00")])
        s.processed["crash_time"] = .int(99_999_999_999_999)
        s.processed["install_time"] = .int(Int64.min)
        try await DatesAndTimesRule().run(&s)
        #expect(s.processed["install_age"] == nil)
        #expect(s.notes == ["DatesAndTimes: install_age of CrashTime 99999999999999 and InstallTime -9223372036854775808 is out of range"])
        #expect(s.processed["client_crash_date"] == .string("9999-12-31T23:59:59.999999+00:00"))
    }

    @Test func truncatesThreadsOver500FramesWithAMarker() async throws {
        let frames = JSONValue.array((0..<1234).map { .object([("frame", .int(Int64($0)))]) })
        var s = state(dump: .object([("crashing_thread", .object([("frames", frames)])), ("threads", .array([.object([("frames", frames)]), .object([("frames", .array([]))])]))]))
        try await TruncateStacksRule().run(&s)
        let kept = try #require(s.processed["json_dump"]?["crashing_thread"]?["frames"]?.arrayValue)
        #expect(kept.count == 500)
        #expect(kept[249]["frame"] == .int(249) && kept[251]["frame"] == .int(985) && kept[499]["frame"] == .int(1233))
        #expect(kept[250] == .object([("truncated", .object([("msg", .string("735 frames truncated"))]))]))
        #expect(s.processed["json_dump"]?["threads"]?.arrayValue?[0]["truncated"] == .bool(true))
        #expect(s.processed["json_dump"]?["threads"]?.arrayValue?[1]["truncated"] == nil)
        #expect(s.notes == ["TruncateStacksRule: truncated json_dump.crashing_thread.frames: 1234 -> 500",
                            "TruncateStacksRule: truncated json_dump.threads[0].frames: 1234 > 500"])
    }

    @Test func crashingThreadInfoAdjustsNullAndNonCanonicalAddresses() async throws {
        func run(_ adjusted: JSONValue, _ address: String) async throws -> JSONValue? {
            var s = state(dump: .object([("crash_info", .object([("crashing_thread", .int(0)), ("type", .string("SIGSEGV")),
                                                                  ("address", .string(address)), ("adjusted_address", adjusted)])),
                                         ("threads", .array([.object([("thread_name", .string("main"))])]))]))
            try await CrashingThreadInfoRule().run(&s)
            #expect(s.processed["crashing_thread_name"] == .string("main") && s.processed["reason"] == .string("SIGSEGV"))
            return s.processed["address"]
        }
        #expect(try await run(.null, "0x0000000000000045") == .string("0x0000000000000045"))
        #expect(try await run(.object([("kind", .string("null-pointer")), ("offset", .string("0x10"))]), "0x0000000000000010") == .string("0x0000000000000000"))
        #expect(try await run(.object([("kind", .string("null-pointer"))]), "0x00000010") == .string("0x00000000"))
        #expect(try await run(.object([("kind", .string("non-canonical")), ("address", .string("0x0000800000000000"))]), "0xffff800000000000")
                == .string("0x0000800000000000"))
    }

    @Test func missingSymbolsAndModulesInStackUseTheSocorroFormats() async throws {
        let modules = JSONValue.array([
            .object([("filename", .string("xul.dll")), ("debug_id", .string("0185139C8F04FFC94C4C44205044422E1")), ("version", .string("1/2")),
                     ("code_id", .string("5A0B3A2D1234")), ("missing_symbols", .bool(true))]),
            .object([("filename", .string("ntdll.dll")), ("debug_id", .string("D74F79EB1F8D4A45ABCD2F476CCABACC2")), ("missing_symbols", .bool(false))]),
            .object([("filename", .string("weird name!.so")), ("debug_id", .null), ("missing_symbols", .bool(true))]),
        ])
        let frames = JSONValue.array([.object([("module", .string("ntdll.dll"))]), .object([("module", .string("xul.dll")), ("file", .string("a.cpp"))]),
                                      .object([("module", .string("xul.dll"))])])
        var s = state(dump: .object([("modules", modules), ("crashing_thread", .object([("frames", frames)]))]))
        try await StackSummaryRule().run(&s)
        #expect(s.processed["modules_in_stack"] == .string("ntdll.dll/D74F79EB1F8D4A45ABCD2F476CCABACC2;xul.dll/0185139C8F04FFC94C4C44205044422E1"))
        #expect(s.processed["missing_symbols"] == .string("weirdname.so/None/000000000000000000000000000000000;xul.dll/1\\/2/0185139C8F04FFC94C4C44205044422E1/5A0B3A2D1234"))
        #expect(s.processed["topmost_filenames"] == .string("a.cpp"))
    }

    @Test func breadcrumbsAreValidated() async throws {
        var ok = state(raw: ["Breadcrumbs": .string(#"{"values": [{"timestamp": "2026-11-29T00:00:00", "message": "hi", "data": {"k": "v"}}]}"#)])
        try await BreadcrumbsRule().run(&ok)
        #expect(ok.processed["breadcrumbs"]?.arrayValue?.count == 1 && ok.notes.isEmpty)
        var bad = state(raw: ["Breadcrumbs": .string("[{")])
        try await BreadcrumbsRule().run(&bad)
        #expect(bad.notes == ["Breadcrumbs: malformed: not valid json"] && bad.processed["breadcrumbs"] == nil)
        var wrong = state(raw: ["Breadcrumbs": .string(#"[{"data": {"k": 1}}]"#)])
        try await BreadcrumbsRule().run(&wrong)
        #expect(wrong.notes.first?.hasPrefix("Breadcrumbs: malformed: ") == true)
    }

    @Test func dumpDetailsAndAnnotationDetails() async throws {
        var s = state(raw: ["MozCrashReason": .string("byte index 5 is out of range of `secret`"), "UtilityActorsName": .string("audio-decoder, js-oracle"),
                            "SubmittedFromInfobar": .string("1"), "Accessibility": .string("Active")],
                      dump: .object([
                          ("crash_info", .object([("possible_bit_flips", .array([.object([("confidence", .double(0.25))]), .object([("confidence", .double(0.5))])])),
                                                  ("memory_accesses", .array([.object([("is_likely_guard_page", .bool(true))])]))])),
                          ("mac_boot_args", .string(" -v ")), ("mac_crash_info", .object([("num_records", .int(1)), ("records", .array([]))])),
                          ("modules", .array([.object([("symbol_url", .string("https://symbols.example.com/a.sym?token=s3cret"))]),
                                              .object([("symbol_url", .string("http://localhost:8000/b.sym"))])])),
                      ]))
        for rule: any ProcessorRule in [ModuleURLRewriteRule(), CrashAnalysisRule(), MacDetailsRule(), MozCrashReasonRule(), AnnotationDetailsRule()] {
            try await rule.run(&s)
        }
        #expect(s.processed["moz_crash_reason"] == .string("sanitized--see moz_crash_reason_raw"))
        #expect(s.processed["moz_crash_reason_raw"] == .string("byte index 5 is out of range of `secret`"))
        #expect(s.processed["possible_bit_flips_max_confidence"] == .int(50) && s.processed["has_guard_page_access"] == .bool(true))
        #expect(s.processed["mac_boot_args"] == .string("-v") && s.processed["has_mac_boot_args"] == .bool(true))
        #expect(s.processed["mac_crash_info"] == .string(#"{"num_records":1,"records":[]}"#))
        let urls = s.processed["json_dump"]?["modules"]?.arrayValue?.map { $0["symbol_url"] }
        #expect(urls == [.string("https://symbols.example.com/a.sym"), .null])
        #expect(s.processed["utility_actors_name"] == .array([.string("audio-decoder"), .string("js-oracle")]))
        #expect(s.processed["submitted_from_infobar"] == .bool(true) && s.processed["accessibility"] == .bool(true))
    }

    @Test func platformFallsBackToAnnotationsAndPrettyVersions() async throws {
        var s = state(raw: ["CPUArchitecture": .string("amd64"), "OS": .string("Windows NT"), "OSVersion": .string("10.0.22631")])
        try await PlatformInfoRule().run(&s)
        #expect(s.processed["cpu_arch"] == .string("amd64") && s.processed["os_pretty_version"] == .string("Windows 11"))
        #expect(PlatformInfoRule.prettyVersion(os: "Windows NT", version: "6.1.7601 Service Pack 1", lsb: nil) == "Windows 7")
        #expect(PlatformInfoRule.prettyVersion(os: "Mac OS X", version: "11.6.7 20G630", lsb: nil) == "macOS 11.6.7")
        #expect(PlatformInfoRule.prettyVersion(os: "Linux", version: "4.9.60", lsb: "Ubuntu 22.04.3 LTS") == "Ubuntu 22.04.3 LTS")
    }

    @Test func versionRewritesAddonsAndPHC() async throws {
        var fenix = state()
        fenix.processed["product"] = .string("Fenix")
        fenix.processed["version"] = .string("Nightly 201229 06:01")
        try await VersionRewriteRule().run(&fenix)
        #expect(fenix.processed["version"] == .string("0.0a1"))
        var esr = state()
        esr.processed["version"] = .string("115.5.0")
        esr.processed["release_channel"] = .string("esr")
        try await VersionRewriteRule().run(&esr)
        try await VersionRewriteRule().run(&esr)
        #expect(esr.processed["version"] == .string("115.5.0esr"))

        var addons = state(raw: ["Add-ons": .string("formautofill%40mozilla.org:1.0.1,uBlock0%40raymondhill.net:1.54.0,nover,spaced+id:"),
                                 "EMCheckCompatibility": .string("true")])
        try await AddonsRule().run(&addons)
        #expect(addons.processed["addons"] == .array([.string("formautofill@mozilla.org:1.0.1"), .string("uBlock0@raymondhill.net:1.54.0"),
                                                      .string("nover:NO_VERSION"), .string("spaced id:NO_VERSION")]))
        #expect(addons.processed["addons_checked"] == .bool(true))

        var phc = state(raw: ["PHCKind": .string("FreedPage"), "PHCBaseAddress": .string("0x7f00"), "PHCUsableSize": .string("32"),
                              "PHCAllocStack": .string("1,2"), "PHCFreeStack": .string("3")])
        try await PHCRule().run(&phc)
        #expect(phc.processed["phc_kind"] == .string("FreedPage") && phc.processed["phc_usable_size"] == .int(32) && phc.processed["phc_free_stack"] == .string("3"))

        var info = state(raw: ["ModuleSignatureInfo": .object([("Microsoft", .array([.string("ntdll.dll")]))])])
        try await ConvertModuleSignatureInfoRule().run(&info)
        #expect(info.raw["ModuleSignatureInfo"] == .string(#"{"Microsoft": ["ntdll.dll"]}"#))
    }
}
