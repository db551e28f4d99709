import ObjectFiles

extension DWARFInfoReader {
    /// `a/./b/../c` → `a/c`, lexically (as symbolic and debuggers show paths); a `..` that would
    /// climb above the start of a relative path is kept.
    static func normalize(_ path: String) -> String {
        // Most paths are clean: one pass over the bytes says so.
        var previous: UInt8 = 0, clean = true
        for b in path.utf8 {
            if (previous == 0x2F && (b == 0x2E || b == 0x2F)) || (previous == 0 && b == 0x2E) { clean = false; break }
            previous = b
        }
        if clean { return path }
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            if part == "..", absolute, parts.isEmpty { continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// Runs the line program at `offset` of `.debug_line` (DWARF 2–5): hands every row's
    /// [start, end), file number and line to `row`, and returns the full paths of the files,
    /// indexed as the program and `DW_AT_call_file` number them.
    func lineTable(at offset: UInt64, unit: CompilationUnit, compDir: String, unitName: String,
                   row: (_ start: UInt64, _ end: UInt64, _ file: UInt64, _ line: UInt64) -> Void) throws(ObjectFileError) -> [String] {
        var c = DWARFCursor(sections.line, at: offset)
        let (length, dwarf64) = try c.initialLength()
        let (end, overflow) = c.offset.addingReportingOverflow(length)
        guard !overflow, end <= UInt64(sections.line.count) else { throw .malformed("line program at \(offset) runs past .debug_line") }
        let version = try c.u16()
        guard (2...5).contains(version) else { throw .notSupported("line table version \(version)") }
        var addressSize = unit.addressSize
        if version >= 5 {
            addressSize = Int(try c.u8())
            _ = try c.u8() // segment selector size
        }
        let headerLength = try c.sectionOffset(dwarf64: dwarf64)
        let (programStart, headerOverflow) = c.offset.addingReportingOverflow(headerLength)
        guard !headerOverflow, programStart <= end else { throw .malformed("line program header at \(offset) runs past its program") }
        let minInstructionLength = UInt64(try c.u8())
        if version >= 4 { _ = try c.u8() } // maximum operations per instruction (VLIW only)
        let defaultIsStmt = try c.u8() != 0
        let lineBase = Int64(Int8(bitPattern: try c.u8()))
        let lineRange = UInt64(try c.u8())
        let opcodeBase = try c.u8()
        guard lineRange != 0 else { throw .malformed("line table with line_range 0") }
        var standardLengths: [UInt8] = [0]
        if opcodeBase > 1 { for _ in 1..<opcodeBase { standardLengths.append(try c.u8()) } }

        var files: [String] = []
        func join(_ dir: String, _ name: String) -> String {
            if name.hasPrefix("/") || dir.isEmpty { return Self.normalize(name) }
            return Self.normalize(dir.hasSuffix("/") ? dir + name : dir + "/" + name)
        }
        if version >= 5 {
            func entryFormat() throws(ObjectFileError) -> [(UInt64, UInt64)] {
                let n = try c.u8()
                var f: [(UInt64, UInt64)] = []
                for _ in 0..<n { f.append((try c.uleb(), try c.uleb())) }
                return f
            }
            func entries(_ format: [(UInt64, UInt64)]) throws(ObjectFileError) -> [(path: String, dir: UInt64)] {
                let count = try c.uleb()
                guard count < 1 << 20 else { throw .malformed("\(count) line table entries") }
                var out: [(String, UInt64)] = []
                for _ in 0..<count {
                    var path = "", dir: UInt64 = 0
                    for (kind, form) in format {
                        let v = try value(&c, form: form, implicitConst: 0, unit: unit)
                        if kind == 1 { path = string(v, unit: unit, inline: sections.line) ?? "" } // DW_LNCT_path
                        if kind == 2, case .unsigned(let d) = v { dir = d } // DW_LNCT_directory_index
                    }
                    out.append((path, dir))
                }
                return out.map { (path: $0.0, dir: $0.1) }
            }
            let directories = try entries(try entryFormat()).map(\.path)
            let dirs = directories.map { $0.hasPrefix("/") ? $0 : join(compDir, $0) }
            let fileEntries = try entries(try entryFormat())
            files = fileEntries.map { f in join(Int(exactly: f.dir).flatMap { $0 < dirs.count ? dirs[$0] : nil } ?? compDir, f.path) }
        } else {
            var dirs = [compDir]
            while true {
                let d = try c.cString()
                if d.isEmpty { break }
                dirs.append(d.hasPrefix("/") ? d : join(compDir, d))
                if dirs.count > 1 << 20 { throw .malformed("too many include directories") }
            }
            // File 0 is the unit itself in DWARF 2–4 numbering (files count from 1).
            files = [join(compDir, unitName)]
            while true {
                let name = try c.cString()
                if name.isEmpty { break }
                let dir = try c.uleb()
                _ = try c.uleb(); _ = try c.uleb()
                files.append(join(Int(exactly: dir).flatMap { $0 < dirs.count ? dirs[$0] : nil } ?? compDir, name))
                if files.count > 1 << 20 { throw .malformed("too many files in a line table") }
            }
        }

        // The state machine.
        c.offset = programStart
        var address: UInt64 = 0, file: UInt64 = 1, line: UInt64 = 1, isStmt = defaultIsStmt
        var pending: (UInt64, UInt64, UInt64)?
        _ = isStmt
        func emit(_ at: UInt64) {
            if let p = pending, at > p.0 { row(p.0, at, p.1, p.2) }
            pending = (at, file, line)
        }
        func advance(_ operations: UInt64) { address = address &+ operations &* minInstructionLength }
        var steps = 0
        while c.offset < end {
            steps += 1
            if steps > 200_000_000 { throw .malformed("line program too long") }
            let op = try c.u8()
            if op >= opcodeBase {
                let adjusted = UInt64(op - opcodeBase)
                advance(adjusted / lineRange)
                line = UInt64(bitPattern: Int64(bitPattern: line) &+ lineBase &+ Int64(adjusted % lineRange))
                emit(address)
                continue
            }
            switch op {
            case 0: // extended
                let len = try c.uleb()
                let (next, extendedOverflow) = c.offset.addingReportingOverflow(len)
                guard !extendedOverflow, next <= end else { throw .malformed("an extended line opcode runs past its program") }
                guard len > 0 else { continue }
                let sub = try c.u8()
                switch sub {
                case 1: // end_sequence
                    if let p = pending, address > p.0 { row(p.0, address, p.1, p.2) }
                    pending = nil
                    address = 0; file = 1; line = 1; isStmt = defaultIsStmt
                case 2: // set_address
                    address = try c.unsigned(size: len == 5 ? 4 : len == 9 ? 8 : addressSize)
                    // A new address without a row: the row in progress ends here.
                    if let p = pending, address > p.0 {
                        row(p.0, address, p.1, p.2)
                        pending = nil
                    } else if let p = pending, address <= p.0 {
                        pending = nil
                    }
                default: break // define_file, set_discriminator, vendor ops
                }
                c.offset = next
            case 1: emit(address) // copy
            case 2: advance(try c.uleb()) // advance_pc
            case 3: line = UInt64(bitPattern: Int64(bitPattern: line) &+ (try c.sleb())) // advance_line
            case 4: file = try c.uleb() // set_file
            case 5: _ = try c.uleb() // set_column
            case 6: isStmt.toggle()
            case 7: break // basic_block
            case 8: advance((255 - UInt64(opcodeBase)) / lineRange) // const_add_pc
            case 9: address = address &+ UInt64(try c.u16()) // fixed_advance_pc
            case 10, 11: break // prologue_end, epilogue_begin
            case 12: _ = try c.uleb() // set_isa
            default:
                // An unknown standard opcode: skip its arguments.
                let n = Int(op) < standardLengths.count ? standardLengths[Int(op)] : 0
                for _ in 0..<n { _ = try c.uleb() }
            }
        }
        sections.line.dropResidentPages(offset..<end)
        return files
    }
}
