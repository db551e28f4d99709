import Foundation
import JSONSupport
import Testing
import TestSupport
@testable import Signatures

/// The reference's table-driven cases (`signatures.md` §4) and rule behaviours.
@Suite struct NormalizationTests {
    static func normalizer() throws -> FrameNormalizer { FrameNormalizer(lists: try SiggenLists.generator().lists) }

    @Test(arguments: [
        ("void nsDocumentViewer::DestroyPresShell()", "nsDocumentViewer::DestroyPresShell"),
        ("Alpha<Bravo<Charlie>, Delta>::Echo<Foxtrot>", "Alpha<T>::Echo<T>"),
        ("JS::Heap<JSObject*>::operator JSObject* const &()", "JS::Heap<T>::operator JSObject* const&"),
        ("mozilla::Maybe<unsigned long>::value() const &", "mozilla::Maybe<T>::value"),
        ("static void core::ptr::drop_in_place<style::stylist::CascadeData>(struct style::stylist::CascadeData*)", "core::ptr::drop_in_place<T>"),
        ("static void mozilla::dom::Element::SetAttr(int, nsAtom*, nsAString const&, bool) const", "mozilla::dom::Element::SetAttr"),
        ("`anonymous namespace'::CrashFunction", "(anonymous namespace)::CrashFunction"),
        ("mozilla::dom::Foo::$_12::operator()", "mozilla::dom::Foo::$::operator()"),
        ("<unknown in foo.dll>", "<unknown in foo.dll>"),
        ("<name omitted>", "<name omitted>"),
        ("f() const&", "f"),
        // siggen keeps the space before a removed `[clone .cold.N]`, and collapses the inner
        // template of an `IPC::ParamTraits<…>` (the exception applies to the outer `<` only).
        ("somefunc(int arg1, int arg2) [clone .cold.111]", "somefunc "),
        ("IPC::ParamTraits<nsTSubstring<char> >::Write(IPC::Message *,nsTSubstring<char> const &)", "IPC::ParamTraits<nsTSubstring<T> >::Write"),
        ("a(b,c)", "a"),
        ("foo<a,b>::bar * baz", "baz"),
    ])
    func cppFunctions(_ input: String, _ expected: String) throws {
        #expect(try Self.normalizer().normalizeCpp(input, line: nil) == expected)
    }

    @Test(arguments: [
        ("<webrender::Renderer<T> as core::ops::drop::Drop>::drop", "<webrender::Renderer<T> as core::ops::drop::Drop>::drop"),
        ("core::option::expect_failed::h7f635057bfba806a", "core::option::expect_failed"),
        ("std::sys::unix::thread::Thread::new::thread_start(void*)", "std::sys::unix::thread::Thread::new::thread_start"),
        ("alloc::vec::Vec<u8>::push", "alloc::vec::Vec<T>::push"),
    ])
    func rustFunctions(_ input: String, _ expected: String) throws {
        #expect(try Self.normalizer().normalizeRust(input, line: nil) == expected)
    }

    @Test func framesFallBackToFileModuleUnloadedAndOffset() throws {
        let n = try Self.normalizer()
        #expect(n.normalize(function: nil, module: nil, file: .string("hg:hg.mozilla.org/mozilla-central:gfx/gl/GLContext.cpp:abc123"),
                            line: .int(42), offset: nil, unloadedModules: nil) == "GLContext.cpp:abc123#42")
        #expect(n.normalize(function: nil, module: nil, file: .string("c:\\src\\a.cpp"), line: .int(7), offset: nil, unloadedModules: nil) == "a.cpp#7")
        #expect(n.normalize(function: nil, module: .string("[libfoo.so]"), file: nil, line: nil, offset: .string("0x10"), unloadedModules: nil) == "libfoo.so")
        #expect(n.normalize(function: nil, module: nil, file: nil, line: nil, offset: .string("0x10"),
                            unloadedModules: .array([.object([("module", .string("SnagAA64.dll"))])])) == "(unloaded SnagAA64.dll)")
        #expect(n.normalize(function: nil, module: nil, file: nil, line: nil, offset: .string("0x0000000000000000"), unloadedModules: nil) == "@0x0")
        #expect(n.normalize(function: nil, module: nil, file: nil, line: nil, offset: .string("0x00001234"), unloadedModules: nil) == "@0x1234")
        #expect(n.normalize(function: nil, module: nil, file: nil, line: nil, offset: nil, unloadedModules: nil) == "")
        // A Rust file picks the Rust rules: the hash goes, `<… as …>` stays.
        #expect(n.normalize(function: .string("foo::bar::h0123abcd"), module: nil, file: .string("/src/lib.rs"), line: .int(1),
                            offset: nil, unloadedModules: nil) == "foo::bar")
    }

    @Test func whitespaceAndTruncationRules() throws {
        let g = try SiggenLists.generator()
        let messy = g.generate(.object([("hang", .string(" a\tb\n\n c "))]))
        #expect(messy.signature == "hang: a b c | EMPTY: no frame data available")
        let long = String(repeating: "é", count: 300)
        let truncated = g.generate(.object([("threads", .array([.object([("frames", .array([.object([("function", .string(long))])]))])]))]))
        #expect(truncated.signature.unicodeScalars.count == 255 && truncated.signature.hasSuffix("..."))
        #expect(truncated.notes == ["SigTruncate: SigTrunc: signature truncated due to length"])
    }

    @Test func pythonRegexBracesAreLiteralUnlessQuantifiers() throws {
        let list = try RegexList(entries: ["<env_logger::Logger as log::Log>::log::{{closure}}", "a{2}b", "x{,2}y", "q{}"])
        #expect(list.matches("<env_logger::Logger as log::Log>::log::{{closure}}"))
        #expect(list.matches("aab") && !list.matches("ab"))
        #expect(list.matches("y") && list.matches("xxy"))
        #expect(list.matches("q{}"))
    }

    @Test func invalidListLinesAreRejectedWithFileAndLine() throws {
        let dir = TestData.temporaryDirectory("siglists")
        for name in SignatureLists.fileNames { try "# empty\n".write(toFile: "\(dir)/\(name).txt", atomically: true, encoding: .utf8) }
        try "# comment\nfine\nbro(ken\n".write(toFile: "\(dir)/prefix_signature_re.txt", atomically: true, encoding: .utf8)
        #expect(throws: SignatureListError(file: "\(dir)/prefix_signature_re.txt", line: 3, reason: "invalid regular expression: bro(ken")) {
            try SignatureLists(directory: dir)
        }
    }

    @Test func bundledListsLoadAndGroupCommonRuntimeFrames() throws {
        let g = SignatureGenerator(lists: try SignatureLists.bundled())
        func sig(_ functions: [String], os: String = "Linux") -> String {
            g.generate(.object([("os", .string(os)), ("threads", .array([.object([("frames", .array(functions.map { .object([("function", .string($0)), ("module", .string("app"))]) }))])]))])).signature
        }
        #expect(sig(["__pthread_kill_implementation", "raise", "abort", "MyApp::Save()"]) == "MyApp::Save")
        #expect(sig(["KiUserExceptionDispatcher", "RaiseException", "_CxxThrowException", "Widget::Draw()"], os: "Windows NT") == "Widget::Draw")
        #expect(sig(["std::panicking::begin_panic_handler", "core::panicking::panic_fmt", "core::result::unwrap_failed", "app::main"]) ==
                "core::panicking::panic_fmt | core::result::unwrap_failed | app::main")
        #expect(sig(["memcpy", "freelist_push(int)"]) == "memcpy | freelist_push")
    }
}
