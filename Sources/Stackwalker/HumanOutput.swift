import BreakpadSymbols
import Foundation
import JSONSupport
import MinidumpFormat

/// `minidump-stackwalk --human` output (`stackwalk-json.md` §10).
extension ProcessState {
    /// Streams rust-minidump reads; any other known stream is listed as unimplemented.
    static let implementedStreams: Set<UInt32> = [
        3, 4, 5, 6, 7, 9, 12, 14, 15, 16, 24,
        0x4767_0001, 0x4767_0002, 0x4767_0003, 0x4767_0004, 0x4767_0005, 0x4767_0007, 0x4767_0009,
        0x4350_0001, 0x4D7A_0001, 0x4D7A_0002, 0x4D7A_0003, 0x4D7A_0004,
    ]

    public func humanReport(brief: Bool) -> String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        line("Operating system: \(systemInfo.os)")
        if let v = systemInfo.osVersion { line("                  \(v)") }
        line("CPU: \(systemInfo.cpuArch)")
        if let info = systemInfo.cpuInfo { line("     \(info)") }
        line("     \(systemInfo.cpuCount) CPU\(systemInfo.cpuCount == 1 ? "" : "s")")
        if let l = lsbRelease {
            let id = l["DISTRIB_ID"] ?? l["ID"] ?? "", release = l["DISTRIB_RELEASE"] ?? l["VERSION_ID"] ?? ""
            let codename = l["DISTRIB_CODENAME"] ?? l["VERSION_CODENAME"] ?? ""
            let description = l["DISTRIB_DESCRIPTION"] ?? l["PRETTY_NAME"] ?? ""
            line("Linux \(id) \(release) - \(codename) (\(description))")
        }
        line()
        if hasException {
            line("Crash reason:  \(crash.reason ?? "")")
            let a = crash.analysis
            switch a?.adjustedAddress {
            case .nonCanonical(let address)?:
                line("Crash address: \(crash.address.map(hexString) ?? "") **")
                line("    ** Non-canonical address detected: \(hexString(address))")
            case .nullPointer(let offset)?:
                line("Crash address: \(crash.address.map(hexString) ?? "") **")
                line("    ** Null pointer detected with offset: \(hexString(offset))")
            case nil:
                line("Crash address: \(crash.address.map(hexString) ?? "")")
            }
            if let a { analysisLines(a).forEach { line($0) } }
        } else {
            line("No crash")
        }
        if let a = crash.assertion { line("Assertion: \(a)") }
        if let records = macCrashInfo, !records.isEmpty {
            line("Mac Crash Info:")
            for (i, r) in records.enumerated() {
                line("  Record \(i)")
                for (name, value) in [("module", r.module), ("message", r.message), ("signature string", r.signatureString),
                                      ("backtrace", r.backtrace), ("message2", r.message2)] {
                    if let value { line("    \(name): \(value)") }
                }
                if let t = r.thread { line("    thread: \(hexString(t))") }
                if let d = r.dialogMode { line("    dialog mode: \(hexString(d))") }
                if let a = r.abortCause { line("    abort_cause: \(hexString(a))") }
            }
            line()
        }
        if let args = macBootArgs { line("Mac Boot Args: \(args)"); line() }
        line(processUptime.map { "Process uptime: \($0) seconds" } ?? "Process uptime: not available")
        line()
        if let n = linuxMapsLineCount { line("Linux memory map count: \(n)"); line() }

        if let r = requestingThread, r < threads.count {
            let t = threads[r]
            line("Thread \(r) \(t.name ?? "") (\(hasException ? "crashed" : "requested dump, did not crash")) - tid: \(t.threadId)")
            out += frames(t)
            line()
        }
        if !brief {
            for (i, t) in threads.enumerated() where i != requestingThread && t.threadId != dumpThreadId {
                line("Thread \(i) \(t.name ?? "") - tid: \(t.threadId)")
                out += frames(t)
            }
            line()
            line("Loaded modules:")
            for (i, m) in modules.enumerated().sorted(by: { $0.element.module.baseAddress < $1.element.module.baseAddress }) {
                var s = "\(hex8(m.module.baseAddress)) - \(hex8(m.module.endAddress &- 1))  \(m.module.codeFile)  \(m.module.versionInfo.version ?? "???")"
                if i == 0 { s += "  (main)" }
                if let cert = m.certSubject { s += " (\(cert))" }
                line(s)
            }
            line()
            line("Unloaded modules:")
            for u in unloadedModules.sorted(by: { $0.baseAddress < $1.baseAddress }) {
                line("\(hex8(u.baseAddress)) - \(hex8(u.endAddress &- 1))  \(MinidumpFormat.baseName(u.name))")
            }
            // Each stream type is listed once (Breakpad pads its directory with several UnusedStreams).
            var seen = Set<UInt32>()
            let distinct = streams.filter { seen.insert($0.type).inserted }
            let unimplemented = distinct.filter { StreamType.describe($0.type) != nil && !Self.implementedStreams.contains($0.type) }
            if !unimplemented.isEmpty {
                line()
                line("Unimplemented streams encountered:")
                for s in unimplemented {
                    let d = StreamType.describe(s.type)!
                    line(String(format: "Stream 0x%08x %@ (%@) @ 0x%08x", s.type, d.name, d.vendor, s.rva))
                }
            }
            let unknown = distinct.filter { StreamType.describe($0.type) == nil }
            if !unknown.isEmpty {
                line()
                line("Unknown streams encountered:")
                for s in unknown { line(String(format: "Stream 0x%08x (%@) @ 0x%08x", s.type, Self.vendor(s.type), s.rva)) }
            }
            if let text = softErrorsJSON, let errors = JSONValue.parse(Data(text.utf8)), case .array(let list) = errors, !list.isEmpty {
                line()
                line("Soft errors were encountered when minidump was written:")
                line(errors.sortedSerialization(pretty: true))
            }
        }
        return out
    }

    static func vendor(_ type: UInt32) -> String {
        switch type >> 16 {
        case 0x4767: return "Google Extension"
        case 0x4350: return "Crashpad Extension"
        case 0x4D7A: return "Mozilla Extension"
        case 0: return "Official"
        default: return "Unknown"
        }
    }

    /// The crashing-instruction block under the crash address.
    private func analysisLines(_ a: CrashAnalysis) -> [String] {
        var out: [String] = []
        if let i = a.instruction { out.append("Crashing instruction: `\(i)`") }
        if let accesses = a.memoryAccesses {
            if accesses.isEmpty {
                out.append("No memory accessed by instruction")
            } else {
                out.append("Memory accessed by instruction:")
                for (n, m) in accesses.enumerated() {
                    out.append("  \(n). Address: \(hexString(m.address))")
                    out.append(m.size.map { "     Size: \($0)" } ?? "     Size: Unknown")
                    if m.isLikelyGuardPage { out.append("     This address falls in a likely guard page.") }
                    if let access = m.access {
                        out.append("     Access type: " + ["read": "Read", "write": "Write", "readwrite": "ReadWrite"][access.rawValue, default: access.rawValue])
                    }
                }
            }
        }
        if a.analysedInstruction {
            if let u = a.instructionPointerUpdate {
                out.append("Instruction pointer update done by instruction:")
                out.append("  Address: \(hexString(u.address))")
                if u.isLikelyGuardPage { out.append("  This address falls in a likely guard page.") }
            } else {
                out.append("No instruction pointer update by instruction")
            }
        }
        if !a.possibleBitFlips.isEmpty {
            out.append("Crashing address may be the result of a flipped bit:")
            let sorted = a.possibleBitFlips.sorted { ($0.confidence, $1.address) > ($1.confidence, $0.address) }
            for (n, f) in sorted.enumerated() {
                let register = f.sourceRegister.map { "\($0)=" } ?? ""
                out.append("  \(n). Valid address: \(register)\(hexString(f.address)) (\(String(format: "%.3f", Double(f.confidence))))")
            }
        }
        if !a.inconsistencies.isEmpty {
            out.append("Crash is inconsistent:")
            for i in a.inconsistencies { out.append("  \(i.rawValue)") }
        }
        return out
    }

    private func hex8(_ v: UInt64) -> String { String(format: "0x%08llx", v) }

    /// The frames of a thread, inlines as pseudo-frames before their physical frame.
    private func frames(_ t: ThreadState) -> String {
        guard !t.frames.isEmpty else { return "<no frames>\n" }
        var out = ""
        var n = 0
        for f in t.frames {
            let module = f.moduleIndex.map { modules[$0].module }
            let prefix = module.map { "\($0.codeFile)!" } ?? ""
            // Inlined calls: the innermost first, each at the location of the next outer level.
            for inline in f.inlines {
                var s = number(n) + prefix + inline.function
                if let file = inline.file { s += " [\(MinidumpFormat.baseName(file)) : \(inline.line)]" }
                out += s + "\n    Found by: inlining\n"
                n += 1
            }
            var s = number(n)
            if let module {
                if let function = f.function {
                    s += "\(module.codeFile)!\(function)"
                    if let file = f.file, let line = f.line {
                        s += " [\(MinidumpFormat.baseName(file)) : \(line)"
                        if let base = f.lineBase { s += " + 0x\(String(f.instruction &- base, radix: 16))" }
                        s += "]"
                    } else if let base = f.functionBase {
                        s += " + 0x\(String(f.instruction &- base, radix: 16))"
                    }
                } else {
                    s += "\(module.codeFile) + 0x\(String(f.instruction &- module.baseAddress, radix: 16))"
                }
            } else {
                s += "0x\(String(f.instruction, radix: 16))"
                for u in f.unloadedModules {
                    s += " (unloaded \(u.name)@" + u.offsets.map { "0x\(String($0, radix: 16))" }.joined(separator: "|") + ")"
                }
            }
            out += s + "\n"
            out += registers(f)
            out += "    Found by: \(f.trust.humanDescription)\n"
            n += 1
        }
        return out
    }

    private func number(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: " ", count: max(0, 2 - s.count)) + s + "  "
    }

    /// ` <name right-aligned to 6> = <hex>` entries, wrapped at 80 characters.
    private func registers(_ f: StackFrame) -> String {
        var out = "", current = ""
        for (name, value) in f.reportedRegisters {
            let entry = " " + String(repeating: " ", count: max(0, 6 - name.count)) + name + " = " + hexString(value)
            if current.count + entry.count > 80 {
                out += " " + current + "\n"
                current = ""
            }
            current += entry
        }
        if !current.isEmpty { out += " " + current + "\n" }
        return out
    }
}
