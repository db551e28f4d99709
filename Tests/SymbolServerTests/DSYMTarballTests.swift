import Foundation
@testable import SymbolServer
import Testing
import TestSupport

/// The `.dSYM.tar.bz2` reader: the DWARF files of tarballs GNU tar writes in its three formats
/// (ustar with a prefix, GNU long names, pax path records), through the system's libbz2; and
/// damaged input — bad bzip2, a truncated stream, mutated tar headers — is an error or an empty
/// result, never a trap.
@Suite struct DSYMTarballTests {
    /// A bundle whose DWARF file's path is longer than 100 bytes (its directory too, where the
    /// format can say so: ustar splits a path into prefix and name only at a `/`).
    static func bundle(in dir: String, longest: Bool = true) throws -> String {
        let deep = "Very" + String(repeating: "Long", count: longest ? 30 : 18) + "Name.dSYM"
        let dwarf = "\(dir)/\(deep)/Contents/Resources/DWARF"
        try FileManager.default.createDirectory(atPath: dwarf, withIntermediateDirectories: true)
        try Data("DWARF-BYTES".utf8).write(to: URL(fileURLWithPath: dwarf + "/Module"))
        try Data("<plist/>".utf8).write(to: URL(fileURLWithPath: "\(dir)/\(deep)/Contents/Info.plist"))
        try Data("appledouble".utf8).write(to: URL(fileURLWithPath: dwarf + "/._Module"))
        return deep
    }

    @Test(arguments: ["ustar", "gnu", "pax"])
    func everyTarFormatGivesTheDWARFFile(_ format: String) throws {
        let dir = TestData.temporaryDirectory("dsym-tar")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deep = try Self.bundle(in: dir, longest: format != "ustar")
        let archive = dir + "/bundle.tar.bz2"
        let (status, _, err) = try runProcess("/usr/bin/env", ["tar", "--format=\(format)", "-C", dir, "-cjf", archive, deep])
        #expect(status == 0, "tar with bzip2 is required: \(String(decoding: err, as: UTF8.self))")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        let files = try bytes.withUnsafeBytes { try DSYMTarball.dwarfFiles($0) }
        #expect(files.map(\.path) == ["\(deep)/Contents/Resources/DWARF/Module"], "\(files.map(\.path))")
        #expect(files.first.map { String(decoding: $0.data, as: UTF8.self) } == "DWARF-BYTES")
        // A limit below the unpacked size is refused; cut short, or not bzip2 at all: each its error.
        func failure(_ data: Data, limit: Int = NativeSymbols.maxInflated) -> String {
            do {
                _ = try data.withUnsafeBytes { try DSYMTarball.dwarfFiles($0, limit: limit) }
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(failure(bytes, limit: 4096) == "the .dSYM.tar.bz2 unpacks past \(NativeSymbols.maxInflated) bytes")
        #expect(failure(bytes.prefix(bytes.count / 2)) == "not a readable .dSYM.tar.bz2: the bzip2 stream ends early")
        #expect(failure(Data("not bzip2 at all".utf8)) == "not a readable .dSYM.tar.bz2: bzip2 data does not decompress")
    }

    @Test func mutatedTarHeadersNeverTrap() throws {
        let dir = TestData.temporaryDirectory("dsym-tar-fuzz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deep = try Self.bundle(in: dir)
        let (status, _, _) = try runProcess("/usr/bin/env", ["tar", "--format=pax", "-C", dir, "-cf", dir + "/bundle.tar", deep])
        #expect(status == 0)
        let tar = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/bundle.tar")))
        var generator = SystemRandomNumberGenerator()
        var found = 0
        for round in 0..<3000 {
            var bytes = tar
            for _ in 0..<Int.random(in: 1...12, using: &generator) {
                let i = Int.random(in: 0..<min(bytes.count, 4096), using: &generator)
                bytes[i] = round % 3 == 0 ? UInt8(ascii: "7") : UInt8.random(in: 0...255, using: &generator)
            }
            let reader = DSYMTarball.TarReader(limit: 1 << 20)
            // Fed in uneven blocks, as the decompressor hands them over.
            var offset = 0
            while offset < bytes.count {
                let n = min(bytes.count - offset, Int.random(in: 1...700, using: &generator))
                let more = bytes[offset..<(offset + n)].withUnsafeBytes { reader.feed($0) }
                offset += n
                if !more { break }
            }
            found += reader.files.count
        }
        #expect(found > 0, "some mutations leave the DWARF entry readable")
    }
}
