import Foundation
import MinidumpFormat
import Testing
import TestSupport
@testable import Stackwalker

/// Every dump of the test corpus walks, or fails with a typed error; crash reasons are asserted.
@Suite struct DumpCorpusTests {
    @Test(arguments: [
        ("ascii_read_av.dmp", "EXCEPTION_ACCESS_VIOLATION_READ"),
        ("invalid-parameter.dmp", "STATUS_INVALID_PARAMETER"),
        ("null_write_av.dmp", "EXCEPTION_ACCESS_VIOLATION_WRITE"),
        ("test.dmp", "EXCEPTION_ACCESS_VIOLATION_WRITE"),
        ("thread_name_list.dmp", "EXCEPTION_ACCESS_VIOLATION_READ"),
        ("tiny-exe-fastfail.dmp", "EXCEPTION_STACK_BUFFER_OVERRUN / FAST_FAIL_FATAL_APP_EXIT"),
        ("write_av_non_canonical.dmp", "EXCEPTION_ACCESS_VIOLATION_READ"),
        ("linux-mini.dmp", "SIGSEGV"),
        ("linux_divide_by_zero.dmp", "SIGFPE"),
        ("linux_inline.dmp", "SIGILL / ILL_ILLOPN"),
        ("linux_raise_sigabrt.dmp", "SIGABRT"),
        ("pipeline-inlines-macos-segv.dmp", "EXC_BAD_ACCESS / KERN_INVALID_ADDRESS"),
    ])
    func crashReason(_ dump: String, _ reason: String) async throws {
        let state = try await GoldenOutputTests.walk(dump)
        #expect(state.crash.reason == reason)
        let crashing = try #require(state.requestingThread.map { state.threads[$0] })
        #expect(!crashing.frames.isEmpty)
        #expect(JSONValueStatus.status(state) == "OK")
    }

    @Test func dumpsWithoutAnExceptionWalkEveryThread() async throws {
        for dump in ["simple-crashpad.dmp", "tiny-exe-with-cet-xsave.dmp"] {
            let state = try await GoldenOutputTests.walk(dump)
            #expect(state.threads.contains { !$0.frames.isEmpty }, "\(dump)")
        }
    }

    @Test func xstateExtendedContextsAreAccepted() async throws {
        let dump = try Minidump.open(path: try TestData.path("minidumps/tiny-exe-with-cet-xsave.dmp"))
        let t = try #require(dump.threads.first)
        let bytes = try #require(t.contextBytes)
        #expect(bytes.count > 1232)
        let context = try CPUContext.decode(bytes, architecture: dump.systemInfo!.processorArchitecture)
        #expect(context.cpu == .amd64 && context.instructionPointer != 0)
    }

    @Test func linuxInlineDumpResolvesInlinedFrames() async throws {
        let state = try await GoldenOutputTests.walk("linux_inline.dmp", symbols: [try TestData.path("symbols")])
        let crashing = try #require(state.requestingThread)
        let frame0 = try #require(state.threads[crashing].frames.first)
        #expect(frame0.function == "main")
        #expect(!frame0.inlines.isEmpty)
        #expect(state.modules[frame0.moduleIndex!].symbolStatus == .loaded)
    }

    @Test(arguments: ["invalid-range.dmp", "invalid-record-count.dmp"])
    func corruptDumpsFailWithATypedError(_ dump: String) async throws {
        let minidump = try Minidump.open(path: try TestData.path("minidumps/" + dump))
        await #expect(throws: MinidumpError.badStream(stream: "SystemInfo", reason: "not present (the CPU and OS of the dump are unknown)")) {
            _ = try await Stackwalker(supplier: nil).process(minidump)
        }
    }
}

enum JSONValueStatus {
    static func status(_ s: ProcessState) -> String? {
        guard let doc = try? JSONSerialization.jsonObject(with: Data(s.json(pretty: false).utf8)) as? [String: Any] else { return nil }
        return doc["status"] as? String
    }
}

@Suite struct LastErrorTests {
    @Test func windowsThreadsReportGetLastErrorFromTheTEB() async throws {
        let state = try await GoldenOutputTests.walk("tiny-exe-fastfail.dmp")
        #expect(state.threads.map(\.lastErrorValue) == ["ERROR_ALREADY_EXISTS", "ERROR_SUCCESS", "ERROR_SUCCESS", "ERROR_SUCCESS"])
        // Without the TEB in the dump (test.dmp), the value is unknown.
        let plain = try await GoldenOutputTests.walk("test.dmp")
        #expect(plain.threads.allSatisfy { $0.lastErrorValue == nil })
    }
}
