import Foundation
import Testing
import TestSupport
@testable import MinidumpFormat

/// Builds small synthetic minidumps: header, directory, then stream bodies.
struct DumpBuilder {
    var streams: [(UInt32, [UInt8])] = []
    var extra: [UInt8] = []   // appended after the streams (strings, CV records)

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    func build() -> [UInt8] {
        var out = [UInt8]()
        let dirRVA = 32
        var rva = dirRVA + streams.count * 12
        out += Self.le(UInt32(0x504D_444D)) + Self.le(UInt32(0xA793)) + Self.le(UInt32(streams.count)) + Self.le(UInt32(dirRVA))
        out += Self.le(UInt32(0)) + Self.le(UInt32(1_000)) + Self.le(UInt64(0))
        for (type, body) in streams {
            out += Self.le(type) + Self.le(UInt32(body.count)) + Self.le(UInt32(rva))
            rva += body.count
        }
        for (_, body) in streams { out += body }
        return out + extra
    }
}

@Suite struct MinidumpReaderTests {
    @Test func debugIdsFollowTheGuidAgeAndBuildIdRules() {
        let guid: [UInt8] = [0xE5, 0x32, 0x98, 0x5A, 0x72, 0x28, 0xC1, 0x41, 0x83, 0x8E, 0xD9, 0x89, 0x14, 0xE9, 0xB7, 0xFF]
        let pdb = MinidumpModule(baseAddress: 0x400000, size: 0x2d000, checksum: 0, timeDateStamp: 0x45D35F6C, name: "c:\\test_app.exe",
                                 versionInfo: FixedFileInfo(signature: 0, fileVersionHigh: 0, fileVersionLow: 0),
                                 codeView: .pdb70(guid: guid, age: 1, file: "c:\\test_app.pdb"))
        #expect(pdb.debugId == "5A9832E5287241C1838ED98914E9B7FF1")
        #expect(pdb.debugFile == "test_app.pdb")
        #expect(pdb.codeId == "45d35f6c2d000")
        #expect(pdb.codeFile == "test_app.exe")
        #expect(DebugIdentifier.fromBuildId(Array(0...23)) == "030201000504070608090A0B0C0D0E0F0")
        #expect(DebugIdentifier.fromBuildId(Array(0...7)) == "030201000504070600000000000000000")
        #expect(DebugIdentifier.fromBuildId([0x10, 0xFA, 0xA6, 0xBB, 0xAA, 0xB8, 0x3D, 0xB3]) == "BBA6FA10B8AAB33D00000000000000000")
        var elf = pdb
        elf.codeView = .elf(buildId: [0, 0, 0, 0])
        #expect(elf.debugId == "")
        elf.codeView = .elf(buildId: [0x10, 0xFA, 0xA6, 0xBB, 0xAA, 0xB8, 0x3D, 0xB3])
        #expect(elf.codeId == "10faa6bbaab83db3")
        #expect(FixedFileInfo(signature: 0xFEEF_04BD, fileVersionHigh: 0x0005_0001, fileVersionLow: 0x0A28_0884).version == "5.1.2600.2180")
    }

    @Test func realDumpsReadTheirModulesThreadsAndStreams() throws {
        let dump = try Minidump.open(path: try TestData.path("minidumps/test.dmp"))
        #expect(dump.modules.count == 13 && dump.threads.count == 2)
        #expect(dump.systemInfo?.csdVersion == "Service Pack 2")
        #expect(dump.exception?.code == 0xC000_0005)
        #expect(dump.breakpadInfo?.dumpThreadId == 4544)
        #expect(dump.streamErrors.isEmpty)
        let linux = try Minidump.open(path: try TestData.path("minidumps/linux-mini.dmp"))
        #expect(linux.linuxMapsLineCount == 35)
        let maps = try #require(linux.linuxMaps)
        #expect(maps.count == 35 && zip(maps, maps.dropFirst()).allSatisfy { $0.start <= $1.start })
        #expect(maps.contains { $0.start <= 0x40_0045 && 0x40_0045 < $0.end && $0.readable && $0.executable })
        #expect(linux.linuxLsbRelease?["DISTRIB_CODENAME"] == "xenial")
        #expect(linux.modules.first?.debugId == "C0BCC3F19827FE653058404B2831D9E60")
        let crashpad = try Minidump.open(path: try TestData.path("minidumps/simple-crashpad.dmp"))
        #expect(crashpad.crashpadAnnotations?["hello"] == "world")
        let names = try Minidump.open(path: try TestData.path("minidumps/thread_name_list.dmp"))
        #expect(!names.threadNames.isEmpty)
    }

    @Test func linuxMapLinesParseAndBadOnesAreSkipped() {
        let line = LinuxMapping(line: "7f5140efc000-7f5140efd000 rw-p 00000000 00:00 0                          [stack]")
        #expect(line == LinuxMapping(start: 0x7f51_40ef_c000, end: 0x7f51_40ef_d000, readable: true, writable: true, executable: false))
        #expect(LinuxMapping(line: "00400000-00401000 r-xp 00000000 08:01 123 /usr/bin/crash")?.executable == true)
        #expect(LinuxMapping(line: "7f5140efd000-7f5140efe000 ---p 00000000 00:00 0") == LinuxMapping(
            start: 0x7f51_40ef_d000, end: 0x7f51_40ef_e000, readable: false, writable: false, executable: false))
        for bad in ["", "garbage", "1000-0800 r-xp", "zz-1000 r-xp", "1000-2000 r", "1000 r-xp", "1000-2000"] {
            #expect(LinuxMapping(line: Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func listPaddingAfterTheCountIsSkipped() throws {
        // A MemoryList with one range, written with and without the 4 padding bytes.
        let memoryBytes: [UInt8] = Array(repeating: 0xAB, count: 16)
        for padded in [false, true] {
            var b = DumpBuilder()
            var list = DumpBuilder.le(UInt32(1)) + (padded ? [0, 0, 0, 0] : [])
            let rva = 32 + 12 + list.count + 16
            list += DumpBuilder.le(UInt64(0x1000)) + DumpBuilder.le(UInt32(16)) + DumpBuilder.le(UInt32(rva))
            b.streams = [(StreamType.memoryList, list)]
            b.extra = memoryBytes
            let dump = try Minidump.parse(b.build())
            #expect(dump.memory.count == 1, "padded: \(padded)")
            #expect(dump.memoryRegion(containing: 0x1008)?.word(at: 0x1008, size: 8) == 0xABAB_ABAB_ABAB_ABAB)
            #expect(dump.memoryRegion(containing: 0x1010) == nil)
        }
    }

    @Test func utf16StringsDecodeLossilyAndStopAtTheBuffer() throws {
        var b = DumpBuilder()
        b.streams = [(StreamType.unused, [])]
        let units: [UInt16] = [0x0068, 0x0069, 0xD800, 0x0021]   // "hi", a lone surrogate, "!"
        b.extra = DumpBuilder.le(UInt32(units.count * 2)) + units.flatMap { DumpBuilder.le($0) }
        let bytes = b.build()
        let dump = try Minidump.parse(bytes)
        let s = try dump.utf16String(at: UInt64(bytes.count - 12), "test string")
        #expect(s == "hi\u{FFFD}!")
        #expect(throws: MinidumpError.self) { try dump.utf16String(at: UInt64(bytes.count - 2), "test string") }
    }

    @Test func corruptInputGivesTypedErrors() throws {
        #expect(throws: MinidumpError.notAMinidump) { try Minidump.parse([]) }
        #expect(throws: MinidumpError.notAMinidump) { try Minidump.parse(Array("PK\u{3}\u{4} a zip file, not a minidump at all".utf8)) }
        var b = DumpBuilder()
        b.streams = [(StreamType.threadList, DumpBuilder.le(UInt32(1_000_000)))]
        let dump = try Minidump.parse(b.build())
        #expect(dump.threads.isEmpty)
        #expect(dump.streamErrors == [.badStream(stream: "ThreadList", reason: "1000000 entries of 48 bytes do not fit in 4 bytes")])
        var header = b.build()
        header[8] = 0xFF   // stream count far beyond the file
        #expect(throws: MinidumpError.truncated(what: "stream directory", offset: 32, size: 255 * 12)) { try Minidump.parse(header) }
    }

    @Test func randomMutationsOfRealDumpsNeverTrap() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try TestData.path("minidumps/test.dmp"))))
        var rng: UInt64 = 0x1234
        func next() -> UInt64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<40 { bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next()) }
            if let dump = try? Minidump.parse(bytes) {
                for t in dump.threads {
                    if let c = t.contextBytes { _ = try? CPUContext.decode(c, architecture: dump.systemInfo?.processorArchitecture ?? 0) }
                }
                _ = dump.modules.map { ($0.debugId, $0.codeId, $0.debugFile) }
            }
        }
    }
}

@Suite struct MozillaStreamTests {
    @Test func macCrashInfoRecordsAreDecodedByVersion() throws {
        // Header (3 × u32 + 20 location descriptors), then one version-5 record.
        let recordStart: UInt32 = 40
        var record = DumpBuilder.le(UInt64(0x4D7A_0001)) + DumpBuilder.le(UInt64(5)) + DumpBuilder.le(UInt64(0x1234))
        record += DumpBuilder.le(UInt64(0)) + DumpBuilder.le(UInt64(0x5))
        record += Array("/usr/lib/libsystem_c.dylib\u{0}abort() called\u{0}\u{0}\u{0}second\u{0}".utf8)
        let headerSize = 12 + 20 * 8
        let recordRVA = 32 + 12 + headerSize
        var header = DumpBuilder.le(UInt32(0x4D7A_0001)) + DumpBuilder.le(UInt32(1)) + DumpBuilder.le(recordStart)
        header += DumpBuilder.le(UInt32(record.count)) + DumpBuilder.le(UInt32(recordRVA))
        header += [UInt8](repeating: 0, count: 19 * 8)
        var b = DumpBuilder()
        b.streams = [(StreamType.mozMacosCrashInfo, header)]
        b.extra = record
        let dump = try Minidump.parse(b.build())
        #expect(dump.streamErrors.isEmpty, "\(dump.streamErrors)")
        let r = try #require(dump.macCrashInfo?.first)
        #expect(r.version == 5 && r.thread == 0x1234 && r.dialogMode == 0 && r.abortCause == 5)
        #expect(r.module == "/usr/lib/libsystem_c.dylib" && r.message == "abort() called")
        #expect(r.signatureString == nil && r.backtrace == nil && r.message2 == "second")
    }

    @Test func linuxLimitsAreSplitIntoColumns() throws {
        let text = """
        Limit                     Soft Limit           Hard Limit           Units     
        Max cpu time              unlimited            unlimited            seconds   
        Max open files            1024                 1048576              files     

        """
        var b = DumpBuilder()
        b.streams = [(StreamType.mozLinuxLimits, Array(text.utf8))]
        let dump = try Minidump.parse(b.build())
        #expect(dump.linuxLimits == [
            ProcessLimit(name: "Max cpu time", soft: "unlimited", hard: "unlimited", unit: "seconds"),
            ProcessLimit(name: "Max open files", soft: "1024", hard: "1048576", unit: "files"),
        ])
    }
}

@Suite struct OptionalStreamTests {
    @Test func linuxProcessStreamsAreDecoded() throws {
        let dump = try Minidump.open(path: try TestData.path("minidumps/linux-mini.dmp"))
        #expect(dump.linuxCommandLine?.isEmpty == false)
        #expect(dump.linuxEnvironment?.isEmpty == false)
        let auxv = try #require(dump.linuxAuxv)
        #expect(!auxv.isEmpty)
        #expect(auxv.contains { $0.type == 6 && $0.value == 4096 })   // AT_PAGESZ
        #expect(dump.linuxProcStatusPid == 1304)
    }

    @Test func miscInfoFieldsFollowTheFlags() throws {
        let dump = try Minidump.open(path: try TestData.path("minidumps/test.dmp"))
        let misc = try #require(dump.miscInfo)
        #expect(misc.processId == 3932)
        #expect(misc.processCreateTime == dump.timeDateStamp)
        let modern = try Minidump.open(path: try TestData.path("minidumps/invalid-parameter.dmp"))
        let m = try #require(modern.miscInfo)
        #expect(m.sizeOfInfo >= 832)
        #expect(m.buildString?.isEmpty == false)
    }
}
