import Foundation
import SymbolServer
import Testing
import TestSupport
import ZIPFoundation

/// Tecken's archive rules on its own test archives (`symbols-server.md` §9), and the hostile
/// archives Tecken lets through, generated here.
@Suite struct UploadArchiveTests {
    func archive(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: try TestData.path("tecken/\(name)")))
    }

    func rejection(_ data: Data, limits: UploadArchive.Limits = .init()) -> UploadArchive.Rejection? {
        do { _ = try UploadArchive(data: data, limits: limits); return nil } catch { return error }
    }

    @Test func tecksTestArchivesGiveTheReferenceAnswers() throws {
        let sample = try UploadArchive(data: try archive("sample.zip"))
        #expect(sample.members.count == 2)
        #expect(sample.ignored == ["build-symbols.txt"])
        let xpcshell = try #require(sample.members.first { $0.name.hasPrefix("xpcshell.dbg/") || $0.name.hasPrefix("xpcshell") })
        let text = String(decoding: try sample.contents(of: xpcshell), as: UTF8.self)
        #expect(text.hasPrefix("MODULE "))
        #expect(UInt64(text.utf8.count) == xpcshell.size)

        let ignorable = try UploadArchive(data: try archive("sample-with-ignorable-files.zip"))
        #expect(ignorable.ignored.filter { $0.hasSuffix(".DS_Store") }.count == 2)

        #expect(rejection(try archive("invalid.zip"))?.message.hasSuffix("(First unrecognized pattern was 'xpcshell.sym')") == true)
        #expect(rejection(try archive("invalid-characters.zip"))
            == .unrecognizedPattern("xpcfoo.dbg/A7D6F1BB18CD4CB48/p%eter.sym"))
        #expect(rejection(try archive("duplicated-same-size.zip")) == nil)
        let different = rejection(try archive("duplicated-different-size.zip"))
        #expect(different?.message.hasSuffix("(24 != 39)") == true, "\(String(describing: different))")
        #expect(rejection(try archive("notazipdespiteitsname.zip")) == .notAZip)
        #expect(UploadArchive.Rejection.notAZip.message == "File is not a zip file")
    }

    func zip(_ members: [(String, Data)], symlinks: [(String, String)] = []) throws -> Data {
        try ZipBuilder.make(members, symlinks: symlinks)
    }

    @Test func hostileArchivesAreRefusedBeforeAnythingIsExtracted() throws {
        let sym = Data("MODULE Linux x86_64 ABCDEF0123456789ABCDEF01234567890 a.so\n".utf8)
        #expect(rejection(try zip([("../ABCDEF/a.sym", sym)])) == .unsafePath("../ABCDEF/a.sym"))
        #expect(rejection(try zip([("a.so/ABCDEF/..", sym)])) == .unsafePath("a.so/ABCDEF/.."))
        #expect(rejection(try zip([("/etc/ABCDEF/passwd", sym)])) == .unrecognizedPattern("/etc/ABCDEF/passwd"))
        #expect(rejection(try zip([("a.so/ABCDEF/a.sym", sym)], symlinks: [("b.so/ABCDEF/b.sym", "/etc/passwd")])) == .symlink("b.so/ABCDEF/b.sym"))
        #expect(rejection(try zip([("vendor/qcom/proprietary/x", sym)])) == .disallowedSnippet("qcom/proprietary"))
        var few = UploadArchive.Limits()
        few.maxMembers = 100
        let many = try zip((0..<101).map { ("m\($0).so/ABCDEF/m.sym", sym) })
        #expect(rejection(many, limits: few) == .tooManyMembers(limit: 100))
        // A bomb: 64 MiB of zeros that deflate to ~64 KB, refused on its declared size.
        var small = UploadArchive.Limits()
        small.maxUncompressedBytes = 32 << 20
        let bomb = try zip([("z.so/ABCDEF/z.sym", Data(count: 64 << 20))])
        #expect(bomb.count < 1 << 20)
        #expect(rejection(bomb, limits: small) == .tooLarge(limit: 32 << 20))
        // What is fine stays fine.
        let fine = try UploadArchive(data: try zip([("a.so/ABCDEF/a.sym", sym), ("x-symbols.txt", Data("a".utf8)), ("a.so/ABCDEF/.DS_Store", Data())]))
        #expect(fine.members.map(\.name) == ["a.so/ABCDEF/a.sym"])
        #expect(fine.ignored == ["x-symbols.txt", "a.so/ABCDEF/.DS_Store"])
        #expect(try fine.contents(of: fine.members[0]) == sym)
    }

    @Test func keysFollowTeckensPattern() {
        for good in ["xpcshell.dbg/A7D6F1BB18CD4CB48/xpcshell.sym", "a b/0/c", "libc.so.6/abcdef0123/libc.so.6.sym"] {
            #expect(rejection(try! zip([(good, Data("x".utf8))])) == nil, "\(good)")
        }
        for bad in ["a/xyz/b", "a//b", "a/0/b/c", "a/0/", "é/0/b", "a/0/b{", "a/0/b\u{7}", "a", "a-symbols.txt/0/x-symbols.txt/y"] {
            #expect(rejection(try! zip([(bad, Data("x".utf8))])) == .unrecognizedPattern(bad), "\(bad)")
        }
    }
}
