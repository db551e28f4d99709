import Foundation
import MinidumpFormat
import Testing
import TestSupport
@testable import Stackwalker

/// Breakpad's `minidump2.stackwalk.out` (both test_app and kernel32 symbols): every frame agrees on
/// module, function, source file and line, and trust. Breakpad prints source-line offsets from the
/// return address where rust-minidump (and we) use the return address − 1, so offsets are not compared.
@Suite struct BreakpadAgreementTests {
    struct Frame: Equatable, CustomStringConvertible {
        var module: String
        var function: String?
        var file: String?
        var line: Int?
        var trust: String
        var description: String { "\(module)!\(function ?? "-") [\(file ?? "-"):\(line ?? 0)] \(trust)" }
    }

    static func parseBreakpadFrames(_ text: String) -> [Frame] {
        var frames: [Frame] = []
        var inThread0 = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("Thread 0") { inThread0 = true; continue }
            if inThread0 && line.isEmpty { break }
            guard inThread0 else { continue }
            if line.hasPrefix("    Found by: "), !frames.isEmpty {
                frames[frames.count - 1].trust = String(line.dropFirst("    Found by: ".count))
                continue
            }
            guard line.count > 4, line.first == " ", line.dropFirst().first?.isNumber == true else { continue }
            var body = String(line.drop(while: { $0 == " " }).drop(while: { $0.isNumber }).drop(while: { $0 == " " }))
            var file: String?, lineNumber: Int?
            if let open = body.range(of: " ["), body.hasSuffix("]") {
                let inside = body[open.upperBound..<body.index(before: body.endIndex)]
                let parts = inside.components(separatedBy: " : ")
                file = parts.first
                lineNumber = parts.count > 1 ? Int(parts[1].split(separator: " ").first ?? "") : nil
                body = String(body[..<open.lowerBound])
            } else if let plus = body.range(of: " + 0x") {
                body = String(body[..<plus.lowerBound])
            }
            let split = body.split(separator: "!", maxSplits: 1).map(String.init)
            frames.append(Frame(module: split[0], function: split.count > 1 ? split[1] : nil, file: file, line: lineNumber, trust: ""))
        }
        return frames
    }

    @Test func framesAgreeWithBreakpad() async throws {
        let state = try await GoldenOutputTests.walk("test.dmp", symbols: [try TestData.path("symbols")])
        let breakpad = Self.parseBreakpadFrames(try GoldenOutputTests.expected("minidump2.stackwalk.out"))
        #expect(breakpad.count == 4)
        let crashing = try #require(state.requestingThread.map { state.threads[$0] })
        let ours = crashing.frames.map { f in
            Frame(module: f.moduleIndex.map { state.modules[$0].module.codeFile } ?? "", function: f.function,
                  file: f.file.map { MinidumpFormat.baseName($0) }, line: f.line.map(Int.init), trust: f.trust.humanDescription)
        }
        #expect(ours == breakpad)
        #expect(ours.last?.function == "BaseProcessStart")
    }
}
