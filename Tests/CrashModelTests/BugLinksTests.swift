import CrashModel
import Foundation
import JSONSupport
import Testing

/// Create-a-bug URLs for three kinds of crash, against strings derived by hand from the
/// reference's rules (`data-and-access.md` §5); the encoded URLs were produced by Python's
/// `urllib.parse.quote_plus`, the encoding the rules name.
@Suite struct BugLinksTests {
    static let site = "https://crash-stats.example.com/report/index/"
    static let firefox = "https://bugzilla.mozilla.org/enter_bug.cgi?bug_type=%(bug_type)s&keywords=crash&product=Firefox&op_sys=%(op_sys)s&rep_platform=%(rep_platform)s&cf_crash_signature=%(signature)s&short_desc=%(title)s&comment=%(description)s&format=__default__"
    static let github = "https://github.com/mozilla/application-services/issues/new?title=%(title)s&body=%(description)s"

    func json(_ text: String) throws -> JSONValue { try #require(JSONValue.parse(Data(text.utf8))) }

    @Test func nativeFramesWithInlinesBecomeTheTopFrames() throws {
        let long = "mozilla::dom::SomeVeryLongClassName::AndAnEvenLongerMethodNameThatGoesOnAndOn<WithTemplateArgs>::Run"
        let crash = try json("""
            {"signature": "mozilla::dom::Foo::Bar", "os_pretty_version": "Windows 10", "os_name": "Windows NT", "cpu_arch": "amd64",
             "reason": "EXCEPTION_ACCESS_VIOLATION_READ", "crashing_thread": 0,
             "json_dump": {"threads": [{"frames": [
                {"frame": 0, "module": "xul.dll", "function": "mozilla::dom::Foo::Bar(int)", "file": "dom/Foo.cpp", "line": 12,
                 "inlines": [{"function": "mozilla::Inner()", "file": "Inner.h", "line": 3}]},
                {"frame": 1, "module": "xul.dll", "function": "\(long)", "file": null, "line": null},
                {"frame": 2, "module": null, "function": null}]}]}}
            """)
        let id = "a1b2c3d4-0000-4000-8000-000000241130"
        #expect(BugLinks.description(crash, reportURL: Self.site + id) == """
            Crash report: https://crash-stats.example.com/report/index/a1b2c3d4-0000-4000-8000-000000241130

            Reason: ```EXCEPTION_ACCESS_VIOLATION_READ```

            Top 4 frames:
            ```
            0  xul.dll  mozilla::Inner()  Inner.h:3
            0  xul.dll  mozilla::dom::Foo::Bar(int)  dom/Foo.cpp:12
            1  xul.dll  mozilla::dom::SomeVeryLongClassName::AndAnEvenLongerMethodNameThatGoesOnAndOn...
            2  ?
            ```
            """)
        #expect(BugLinks.createBugURL(template: Self.firefox, processed: crash, reportURL: Self.site + id)
                == "https://bugzilla.mozilla.org/enter_bug.cgi?bug_type=defect&keywords=crash&product=Firefox&op_sys=Windows+10&rep_platform=amd64&cf_crash_signature=%5B%40+mozilla%3A%3Adom%3A%3AFoo%3A%3ABar%5D&short_desc=Crash+in+%5B%40+mozilla%3A%3Adom%3A%3AFoo%3A%3ABar%5D&comment=Crash+report%3A+https%3A%2F%2Fcrash-stats.example.com%2Freport%2Findex%2Fa1b2c3d4-0000-4000-8000-000000241130%0A%0AReason%3A+%60%60%60EXCEPTION_ACCESS_VIOLATION_READ%60%60%60%0A%0ATop+4+frames%3A%0A%60%60%60%0A0++xul.dll++mozilla%3A%3AInner%28%29++Inner.h%3A3%0A0++xul.dll++mozilla%3A%3Adom%3A%3AFoo%3A%3ABar%28int%29++dom%2FFoo.cpp%3A12%0A1++xul.dll++mozilla%3A%3Adom%3A%3ASomeVeryLongClassName%3A%3AAndAnEvenLongerMethodNameThatGoesOnAndOn...%0A2++%3F%0A%60%60%60&format=__default__")
    }

    @Test func aJavaExceptionGivesItsFramesWhenThereIsNoMinidump() throws {
        let crash = try json("""
            {"signature": "java.lang.IllegalStateException: at org.mozilla.fenix.HomeActivity.onCreate(HomeActivity.kt)", "os_name": "Android",
             "cpu_arch": "arm64", "java_exception": {"exception": {"values": [{"stacktrace": {"type": "IllegalStateException", "module": "java.lang",
               "frames": [{"module": "org.mozilla.fenix.HomeActivity", "function": "onCreate", "filename": "HomeActivity.kt", "lineno": 12},
                          {"function": "run", "lineno": 0}]}}]}}}
            """)
        let id = "b1b2c3d4-0000-4000-8000-000000241130"
        #expect(BugLinks.description(crash, reportURL: Self.site + id) == """
            Crash report: https://crash-stats.example.com/report/index/b1b2c3d4-0000-4000-8000-000000241130

            Top 2 frames:
            ```
            0  org.mozilla.fenix.HomeActivity  onCreate  HomeActivity.kt:12
            1  ?  run  <nofile>
            ```
            """)
        #expect(BugLinks.createBugURL(template: Self.github, processed: crash, reportURL: Self.site + id)
                == "https://github.com/mozilla/application-services/issues/new?title=Crash+in+%5B%40+java.lang.IllegalStateException%3A+at+org.mozilla.fenix.HomeActivity.onCreate%28HomeActivity.kt%29%5D&body=Crash+report%3A+https%3A%2F%2Fcrash-stats.example.com%2Freport%2Findex%2Fb1b2c3d4-0000-4000-8000-000000241130%0A%0ATop+2+frames%3A%0A%60%60%60%0A0++org.mozilla.fenix.HomeActivity++onCreate++HomeActivity.kt%3A12%0A1++%3F++run++%3Cnofile%3E%0A%60%60%60")
    }

    @Test func noStackNoCrashingThreadAndALongTitle() throws {
        let signature = "OOM | " + String(repeating: "x", count: 300)
        let crash = try json("""
            {"signature": "\(signature)", "os_pretty_version": "OS X 10.15", "cpu_arch": "arm64", "reason": "SIGSEGV",
             "moz_crash_reason": "MOZ_RELEASE_ASSERT(aLength <= kMax) (ünicode & more)", "json_dump": {"threads": [{"frames": []}]}}
            """)
        let id = "c1b2c3d4-0000-4000-8000-000000241130"
        #expect(BugLinks.description(crash, reportURL: Self.site + id) == """
            Crash report: https://crash-stats.example.com/report/index/c1b2c3d4-0000-4000-8000-000000241130

            MOZ_CRASH Reason: ```MOZ_RELEASE_ASSERT(aLength <= kMax) (ünicode & more)```

            No crashing thread identified; using thread 0.

            No stack.
            """)
        let xs = { (n: Int) in String(repeating: "x", count: n) }
        #expect(BugLinks.createBugURL(template: Self.firefox, processed: crash, reportURL: Self.site + id)
                == "https://bugzilla.mozilla.org/enter_bug.cgi?bug_type=defect&keywords=crash&product=Firefox&op_sys=macOS&rep_platform=arm64&cf_crash_signature=%5B%40+OOM+%7C+\(xs(300))%5D&short_desc=Crash+in+%5B%40+OOM+%7C+\(xs(252 - 18))...&comment=Crash+report%3A+https%3A%2F%2Fcrash-stats.example.com%2Freport%2Findex%2Fc1b2c3d4-0000-4000-8000-000000241130%0A%0AMOZ_CRASH+Reason%3A+%60%60%60MOZ_RELEASE_ASSERT%28aLength+%3C%3D+kMax%29+%28%C3%BCnicode+%26+more%29%60%60%60%0A%0ANo+crashing+thread+identified%3B+using+thread+0.%0A%0ANo+stack.&format=__default__")
    }

    @Test func aJavaStackTraceIsUsedWhenThereAreNoFrames() throws {
        let crash = try json(#"{"signature": "s", "java_stack_trace": "java.lang.Error\n\tat a.b.C.d(C.java:1)\n\tat e.F.g(F.java:2)"}"#)
        #expect(BugLinks.description(crash, reportURL: "u") == "Crash report: u\n\nJava stack trace:\n```\njava.lang.Error\n    at a.b.C.d(C.java:1)\n    at e.F.g(F.java:2)\n```")
    }

    @Test func operatingSystemsMapToTheTrackersNames() throws {
        for (pretty, expected) in [("OS X 10.15", "macOS"), ("Windows 8.1", "Windows 8"), ("Windows Unknown", "Windows"), ("Windows 2000", "Windows"),
                                   ("Windows 11", "Windows 11"), ("Ubuntu 22.04", "Ubuntu 22.04")] {
            #expect(BugLinks.opSys(.object([("os_pretty_version", .string(pretty))])) == expected)
        }
        #expect(BugLinks.opSys(.object([("os_name", .string("Linux"))])) == "Linux")
        // Unknown placeholders and lone percent signs are kept as written.
        let url = BugLinks.createBugURL(template: "x?a=%(nope)s&b=100%&c=%(bug_type)s&d=%%", processed: .object([]), reportURL: "u")
        #expect(url == "x?a=%(nope)s&b=100%&c=defect&d=%")
    }
}
