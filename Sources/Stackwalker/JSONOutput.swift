import BreakpadSymbols
import Foundation
import JSONSupport
import MinidumpFormat

/// `minidump-stackwalk --json` output (`stackwalk-json.md`): sorted keys, absent values as null,
/// addresses as hex padded to the pointer width.
extension ProcessState {
    public func json(pretty: Bool) -> String {
        document().sortedSerialization(pretty: pretty)
    }

    /// `0x` + lowercase hex padded to the pointer width of the dump's CPU.
    func hexString(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, pointerSize * 2 - digits.count)) + digits
    }

    func hex(_ v: UInt64) -> JSONValue { .string(hexString(v)) }

    /// The stackwalk JSON as a tree (the processor embeds it as `json_dump`).
    public func document() -> JSONValue {
        var top: [(String, JSONValue)] = [
            ("crash_info", crashInfoJSON()),
            ("handles", handles.map { list in .array(list.map { h in
                .object([("handle", .int(Int64(bitPattern: h.handle))), ("type_name", h.typeName.map { .string($0) } ?? .null),
                         ("object_name", h.objectName.map { .string($0) } ?? .null)]) }) } ?? .null),
            ("linux_memory_map_count", linuxMapsLineCount.map { .int(Int64($0)) } ?? .null),
            ("lsb_release", lsbReleaseJSON()),
            ("mac_boot_args", macBootArgs.map { .string($0) } ?? .null),
            ("mac_crash_info", macCrashInfo.map { records in .object([
                ("num_records", .int(Int64(records.count))),
                ("records", .array(records.map { r in .object([
                    ("thread", r.thread.map(hex) ?? .null), ("dialog_mode", r.dialogMode.map(hex) ?? .null),
                    ("abort_cause", r.abortCause.map(hex) ?? .null), ("module", r.module.map { .string($0) } ?? .null),
                    ("message", r.message.map { .string($0) } ?? .null),
                    ("signature_string", r.signatureString.map { .string($0) } ?? .null),
                    ("backtrace", r.backtrace.map { .string($0) } ?? .null), ("message2", r.message2.map { .string($0) } ?? .null),
                ]) })),
            ]) } ?? .null),
            ("main_module", .int(0)),
            ("modules", .array(modules.map(moduleJSON))),
            ("modules_contains_cert_info", .bool(modulesContainCertInfo)),
            ("pid", pid.map { .int(Int64($0)) } ?? .null),
            ("proc_limits", processLimits.map { limits in .object([("limits", .array(limits.map { l in .object([
                ("name", .string(l.name)), ("soft", .string(l.soft)), ("hard", .string(l.hard)), ("unit", .string(l.unit)),
            ]) }))]) } ?? .null),
            ("process_uptime", processUptime.map { .int(Int64($0)) } ?? .null),
            ("soft_errors", softErrorsJSON.flatMap { JSONValue.parse(Data($0.utf8)) } ?? .null),
            ("status", .string("OK")),
            ("system_info", .object([
                ("os", .string(systemInfo.os)), ("os_ver", systemInfo.osVersion.map { .string($0) } ?? .null),
                ("cpu_arch", .string(systemInfo.cpuArch)), ("cpu_info", systemInfo.cpuInfo.map { .string($0) } ?? .null),
                ("cpu_count", .int(Int64(systemInfo.cpuCount))), ("cpu_microcode_version", .null),
            ])),
            ("thread_count", .int(Int64(threads.count))),
            ("threads", .array(threads.map { threadJSON($0, index: nil) })),
            ("unloaded_modules", .array(unloadedModules.map { u in .object([
                ("base_addr", hex(u.baseAddress)), ("cert_subject", .null), ("code_id", .string(u.codeId)),
                ("end_addr", hex(u.endAddress)), ("filename", .string(MinidumpFormat.baseName(u.name))),
            ]) })),
        ]
        if let i = requestingThread, i < threads.count, !threads[i].frames.isEmpty {
            top.append(("crashing_thread", threadJSON(threads[i], index: i)))
        }
        return .object(top)
    }

    private func crashInfoJSON() -> JSONValue {
        let a = crash.analysis
        let adjusted: JSONValue = a?.adjustedAddress.map(adjustedJSON) ?? .null
        let accesses: JSONValue = a?.memoryAccesses.map { .array($0.map(accessJSON)) } ?? .null
        var ipUpdate: JSONValue = .null
        if let u = a?.instructionPointerUpdate {
            var fields: [(String, JSONValue)] = [("address", hex(u.address))]
            if u.isLikelyGuardPage { fields.append(("is_likely_guard_page", .bool(true))) }
            ipUpdate = .object(fields)
        }
        let flips: JSONValue = (a?.possibleBitFlips).flatMap { $0.isEmpty ? nil : JSONValue.array($0.map(bitFlipJSON)) } ?? .null
        let inconsistencies: JSONValue = hasException ? .array((a?.inconsistencies ?? []).map { .string($0.rawValue) }) : .null
        return .object([
            ("type", crash.reason.map { .string($0) } ?? .null),
            ("address", crash.address.map(hex) ?? .null),
            ("adjusted_address", adjusted),
            ("instruction", a?.instruction.map { .string($0) } ?? .null),
            ("memory_accesses", accesses),
            ("instruction_pointer_update", ipUpdate),
            ("possible_bit_flips", flips),
            ("crash_inconsistencies", inconsistencies),
            ("crashing_thread", crash.crashingThread.map { .int(Int64($0)) } ?? .null),
            ("assertion", crash.assertion.map { .string($0) } ?? .null),
        ])
    }

    private func adjustedJSON(_ adjusted: CrashAnalysis.AdjustedAddress) -> JSONValue {
        switch adjusted {
        case .nonCanonical(let address): return .object([("kind", .string("non-canonical")), ("address", hex(address))])
        case .nullPointer(let offset): return .object([("kind", .string("null-pointer")), ("offset", hex(offset))])
        }
    }

    private func accessJSON(_ m: CrashAnalysis.MemoryAccess) -> JSONValue {
        var fields: [(String, JSONValue)] = []
        if let access = m.access { fields.append(("access_type", .string(access.rawValue))) }
        fields.append(("address", hex(m.address)))
        if m.isLikelyGuardPage { fields.append(("is_likely_guard_page", .bool(true))) }
        fields.append(("size", m.size.map { .int(Int64($0)) } ?? .null))
        return .object(fields)
    }

    private func bitFlipJSON(_ f: CrashAnalysis.BitFlip) -> JSONValue {
        let details: JSONValue = .object([
            ("is_null", .bool(f.isNull)), ("nearby_registers", .int(Int64(f.nearbyRegisters))),
            ("poison_registers", .bool(f.poisonRegisters)), ("was_low", .bool(f.wasLow)),
            ("was_non_canonical", .bool(f.wasNonCanonical)),
        ])
        // Single precision printed at its shortest, as the reference does (0.55, not 0.550000011920929).
        let confidence = Double(f.confidence.description) ?? Double(f.confidence)
        return .object([("address", hex(f.address)), ("confidence", .double(confidence)), ("details", details),
                        ("source_register", f.sourceRegister.map { .string($0) } ?? .null)])
    }

    private func lsbReleaseJSON() -> JSONValue {
        guard let l = lsbRelease else { return .null }
        func pick(_ a: String, _ b: String) -> JSONValue { (l[a] ?? l[b]).map { .string($0) } ?? .null }
        return .object([("id", pick("DISTRIB_ID", "ID")), ("release", pick("DISTRIB_RELEASE", "VERSION_ID")),
                        ("codename", pick("DISTRIB_CODENAME", "VERSION_CODENAME")),
                        ("description", pick("DISTRIB_DESCRIPTION", "PRETTY_NAME"))])
    }

    private func moduleJSON(_ m: ModuleState) -> JSONValue {
        .object([
            ("base_addr", hex(m.module.baseAddress)), ("end_addr", hex(m.module.endAddress)),
            ("filename", .string(m.module.codeFile)), ("code_id", .string(m.module.codeId)),
            ("debug_file", .string(m.debugFile)), ("debug_id", .string(m.debugId)),
            ("version", m.module.versionInfo.version.map { .string($0) } ?? .null),
            ("cert_subject", m.certSubject.map { .string($0) } ?? .null),
            ("loaded_symbols", .bool(m.symbolStatus == .loaded)), ("missing_symbols", .bool(m.symbolStatus == .missing)),
            ("corrupt_symbols", .bool(m.symbolStatus == .corrupt)), ("symbol_url", m.symbolURL.map { .string($0) } ?? .null),
        ])
    }

    private func threadJSON(_ t: ThreadState, index: Int?) -> JSONValue {
        var o: [(String, JSONValue)] = [
            ("frame_count", .int(Int64(t.frames.count))),
            ("frames", .array(t.frames.enumerated().map { i, f in frameJSON(f, index: i, withRegisters: index != nil && i == 0) })),
            ("last_error_value", t.lastErrorValue.map { .string($0) } ?? .null),
            ("thread_id", .int(Int64(t.threadId))),
            ("thread_name", t.name.map { .string($0) } ?? .null),
        ]
        if let index { o.append(("threads_index", .int(Int64(index)))) }
        return .object(o)
    }

    private func frameJSON(_ f: StackFrame, index: Int, withRegisters: Bool) -> JSONValue {
        let module = f.moduleIndex.map { modules[$0].module }
        var o: [(String, JSONValue)] = [
            ("frame", .int(Int64(index))),
            ("offset", hex(f.instruction)),
            ("module", module.map { .string($0.codeFile) } ?? .null),
            ("module_offset", module.map { hex(f.instruction - $0.baseAddress) } ?? .null),
            ("function", f.function.map { .string($0) } ?? .null),
            ("function_offset", f.functionBase.map { hex(f.instruction - $0) } ?? .null),
            ("file", f.file.map { .string($0) } ?? .null),
            ("line", f.line.map { .int(Int64($0)) } ?? .null),
            ("inlines", f.inlines.isEmpty ? .null : .array(f.inlines.map { i in .object([
                ("function", .string(i.function)), ("file", i.file.map { .string($0) } ?? .null),
                ("line", i.line == 0 ? .null : .int(Int64(i.line))),
            ]) })),
            ("missing_symbols", .bool(f.function == nil)),
            ("trust", .string(f.trust.jsonName)),
            ("unloaded_modules", module != nil || f.unloadedModules.isEmpty ? .null : .array(f.unloadedModules.map { u in
                .object([("module", .string(u.name)), ("offsets", .array(u.offsets.map(hex)))]) })),
        ]
        if withRegisters {
            o.append(("registers", .object(f.reportedRegisters.map { ($0.0, hex($0.1)) })))
        }
        return .object(o)
    }
}
