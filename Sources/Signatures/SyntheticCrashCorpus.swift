import Foundation
import JSONSupport

/// A deterministic generator of synthetic crash-data documents (siggen's shape), used by the
/// differential tests against siggen and by the signature benchmark. It covers what signature
/// generation meets:
/// C++/Rust/Windows/Linux/macOS frames named from and around the signature lists, templates,
/// anonymous namespaces, lambdas, operators, file/line-only, module-only, address-only and
/// unloaded-module frames, inlines, Java traces and exceptions, OOM, abort, shutdown timeouts,
/// IPC, stack overflow, hangs, and empty or malformed input.
public struct SyntheticCrashCorpus {
    var state: UInt64
    let listNames: [String]

    /// `listEntries` are signature-list lines; names are drawn from them (regex syntax removed).
    public init(seed: UInt64, listEntries: [String]) {
        state = seed
        // Entries usable as literal names: drop regex syntax so they are realistic frames.
        listNames = listEntries.compactMap { entry in
            var s = entry.replacingOccurrences(of: "\\", with: "")
            for t in [".*", "$", "^", "+", "?", "|", "(", ")", "[", "]"] { s = s.replacingOccurrences(of: t, with: "") }
            return s.isEmpty ? nil : s
        }
    }

    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        var z = state
        z = (z ^ (z >> 33)) &* 0xff51afd7ed558ccd
        return z ^ (z >> 33)
    }
    mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
    mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }

    static let namespaces = ["mozilla", "mozilla::dom", "js::jit", "std", "webrender", "gfx", "nsContentUtils", "base", "app::core"]
    static let types = ["int", "unsigned long", "nsAString const&", "bool", "JSObject*", "void*", "char const*", "RefPtr<nsIContent>"]
    static let modules = ["xul.dll", "XUL", "libxul.so", "ntdll.dll", "KERNELBASE.dll", "libc.so.6", "libsystem_kernel.dylib",
                          "libGLESv2_adreno.so", "firefox.exe", "[vdso]", "nvwgf2umx.dll", "libc++_shared.so"]

    mutating func cppName() -> String {
        var name = pick(Self.namespaces) + "::" + pick(["Foo", "Bar", "Element", "nsTArray_Impl<RefPtr<nsIContent>, nsTArrayInfallibleAllocator>",
                                                          "Maybe<unsigned long>", "`anonymous namespace'", "HashMap<K, V>", "$_12"])
        name += "::" + pick(["SetAttr", "ElementAt", "value", "operator()", "operator==", "operator new", "Run", "~Foo", "get<0>"])
        if chance(70) { name += "(" + (0..<Int(next() % 3)).map { _ in pick(Self.types) }.joined(separator: ", ") + ")" }
        if chance(20) { name += pick([" const", " const&", " const &", " &&", " &", " [clone .cold.123]"]) }
        if chance(30) { name = pick(["static void ", "void ", "int ", "static bool __cdecl ", "struct Foo* "]) + name }
        return name
    }

    mutating func rustName() -> String {
        var name = pick(["core::ptr::drop_in_place<style::stylist::CascadeData>", "<webrender::Renderer<T> as core::ops::drop::Drop>::drop",
                         "alloc::vec::Vec<u8>::push", "std::sys::unix::thread::Thread::new::thread_start",
                         "core::result::unwrap_failed", "core::panicking::panic_fmt", "<env_logger::Logger as log::Log>::log::{{closure}}",
                         "app::render::frame"])
        if chance(50) { name += "::h" + String(next() % 0xffffffffffff, radix: 16) }
        if chance(20) { name += "(void*)" }
        return name
    }

    mutating func frame() -> JSONValue {
        var f: [(String, JSONValue)] = []
        let kind = next() % 14
        switch kind {
        case 0...3: f.append(("function", .string(cppName())))
        case 4: f.append(("function", .string(rustName()))); f.append(("file", .string(pick(["/builds/src/lib.rs", "git:github.com/rust-lang/rust:library/core/src/result.rs:abc", "src/libcore/panicking.rs"]))))
        case 5, 6: if !listNames.isEmpty { f.append(("function", .string(pick(listNames)))) }
        case 7: f.append(("file", .string(pick(["hg:hg.mozilla.org/mozilla-central:gfx/gl/GLContext.cpp:abc123", "c:\\src\\a.cpp", "/usr/src/b.c", "x.cc/"])))); f.append(("line", .int(Int64(next() % 500))))
        case 8: break
        case 9: f.append(("unloaded_modules", .array([.object([("module", .string(pick(["SnagAA64.dll", "foo.dll"]))), ("offsets", .array([.string("0x1")]))])])))
        case 10: f.append(("function", .string(pick(["panic", "begin_panic_fmt", "expect_failed"])))); f.append(("file", .string(pick(["src/libcore/panicking.rs", "src/libstd/panicking.rs", "src/libcore/option.rs"]))))
        case 11: f.append(("function", .string(pick(["<name omitted>", "<unknown in foo.dll>", "js_Interpret", "RunWatchdog", "NtWaitForAlertByThreadId", "NS_ABORT_OOM", "mozalloc_handle_oom"])))); f.append(("line", .int(Int64(next() % 900))))
        case 12: f.append(("function", .string("")))
        default: f.append(("function", .string(pick(["  spaced  name ", "a\tb", "x" + String(repeating: "y", count: Int(next() % 300))]))))
        }
        if chance(60) { f.append(("module", .string(pick(Self.modules)))) }
        if chance(50) { f.append(("offset", .string("0x" + String(repeating: "0", count: Int(next() % 8)) + String(next() % 0x100000, radix: 16)))) }
        if chance(10) {
            f.append(("inlines", .array((0..<Int(1 + next() % 3)).map { _ in
                .object([("function", .string(chance(50) ? cppName() : rustName())), ("file", .string(pick(["/src/a.rs", "/src/b.cpp"]))), ("line", .int(Int64(next() % 99)))])
            })))
        }
        return .object(f)
    }

    mutating func threads() -> JSONValue {
        .array((0..<Int(1 + next() % 3)).map { _ in
            var t: [(String, JSONValue)] = [("frames", .array((0..<Int(next() % 50)).map { _ in frame() }))]
            if chance(10) { t.append(("last_error_value", .string(pick(["ERROR_COMMITMENT_LIMIT", "ERROR_NOT_ENOUGH_MEMORY", "ERROR_SUCCESS"])))) }
            return .object(t)
        })
    }

    public mutating func document() -> JSONValue {
        if chance(3) { return .object([]) }
        if chance(2) { return pick([.object([("threads", .string("nope"))]), .object([("threads", .array([.null]))]),
                                    .object([("threads", .array([.object([("frames", .null)])]))]),
                                    .object([("threads", .array([.object([("frames", .array([.int(3)]))])]))]),
                                    .object([("crashing_thread", .string("x")), ("threads", threads())])]) }
        var d: [(String, JSONValue)] = []
        if chance(6) {
            d.append(("java_stack_trace", .string(pick([
                "java.lang.IllegalStateException: Foo@1a2b3c4d broke\n\tat org.mozilla.Foo.bar(Foo.java:12)\n\tat a.b(C.java:1)",
                "java.lang.NullPointerException\n\tat org.mozilla.gecko.Foo.bar(Foo.java:99)",
                "java.lang.OutOfMemoryError: " + String(repeating: "z", count: 300) + "\n\tat x.y(Z.java:1)",
                "justoneline", "",
            ]))))
        } else if chance(5) {
            d.append(("java_exception", pick([
                .object([("exception", .object([("values", .array([.object([("stacktrace", .object([("module", .string("java.lang")), ("type", .string("IllegalStateException")),
                    ("frames", .array([.object([("module", .string("org.mozilla.fenix.browser.BrowserFragment")), ("function", .string("onViewCreated")), ("filename", .string("BrowserFragment.kt"))])]))]))])]))]))]),
                .object([("exception", .object([("values", .array([]))]))]),
                .string("bad"),
            ])))
        }
        if chance(85) { d.append(("threads", threads())) }
        if chance(80) { d.append(("crashing_thread", pick([.int(0), .int(1), .int(2), .int(7), .int(-1), .null, .string("1"), .double(1.0)]))) }
        if chance(60) { d.append(("os", .string(pick(["Windows NT", "Linux", "Mac OS X", "Android"])))) }
        if chance(15) { d.append(("reason", .string(pick(["EXCEPTION_STACK_OVERFLOW", "STATUS_DEVICE_DATA_ERROR / 0x1", "STATUS_NO_MEMORY", "SIGSEGV", "EXCEPTION_ACCESS_VIOLATION_READ"])))) }
        if chance(8) { d.append(("oom_allocation_size", pick([.int(100), .int(262144), .int(262145), .int(9999999), .string("lots"), .string("1024"), .null, .int(0)]))) }
        if chance(4) { d.append(("js_large_allocation_failure", .string(pick(["Reporting", "Recovered"])))) }
        if chance(8) { d.append(("abort_message", .string(pick(["###!!! ABORT: file foo.cpp:12", "###!!! ABORT: Should never get here!: file a.cpp:3",
                                                                  "unable to find a usable font (Schriftart)", "plain message", String(repeating: "long ", count: 30), "tab\there\u{1}"])))) }
        if chance(6) { d.append(("async_shutdown_timeout", .string(pick([
            "{\"phase\": \"profile-before-change\", \"conditions\": [{\"name\": \"Zeta\"}, {\"name\": \"Alpha\"}]}",
            "{\"phase\": \"x\", \"conditions\": [\"b\", \"a\"]}", "{\"conditions\": []}", "not json", "{\"phase\": 3}",
        ])))) }
        if chance(5) {
            d.append(("ipc_channel_error", .string(pick(["ShutDownKill", String(repeating: "E", count: 150)]))))
            if chance(50) { d.append(("additional_minidumps", .array([.string("upload_file_minidump_browser")]))) }
        }
        if chance(5) { d.append(("ipc_message_name", .string(pick(["PContent::Msg_Foo", "X"])))) }
        if chance(6) { d.append(("hang", pick([.int(1), .int(-1), .string("yes"), .bool(true), .double(2.5), .null]))) }
        if chance(5) { d.append(("mdsw_status_string", .string("ERROR_NO_MINIDUMP_HEADER"))) }
        return .object(d)
    }
}
