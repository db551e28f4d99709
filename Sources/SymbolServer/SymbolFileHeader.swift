import BreakpadSymbols
import Foundation

/// What an uploaded `.sym` file says about itself in its leading MODULE and INFO lines
/// (`symbols-server.md` §2, "Storing"), as the symbol engine's `ModuleInfo`: read up to the first
/// other line, so a 1 GB file costs a few bytes (`SymbolFileParser` reads the whole file). Ids are
/// upper-cased; the record's identity comes from here, not from the path.
public enum SymbolFileHeader {
    /// Lines longer than this end the header (no real MODULE or INFO line comes close).
    static let maxLine = 4096

    /// Nil when the data does not start with a `MODULE <os> <arch> <id> <file>` line.
    public static func read(_ data: Data) -> ModuleInfo? {
        var lines: [Substring] = []
        var start = data.startIndex
        while start < data.endIndex, lines.count < 64 {
            let end: Data.Index
            if let newline = data[start...].prefix(Self.maxLine).firstIndex(of: UInt8(ascii: "\n")) {
                end = newline
            } else if data.endIndex - start <= Self.maxLine {
                end = data.endIndex  // the last line, without a newline
            } else {
                break  // a line longer than any header line: not a header
            }
            guard let text = String(bytes: data[start..<end], encoding: .utf8) else { break }
            let line = Substring(text.hasSuffix("\r") ? String(text.dropLast()) : text)
            guard line.hasPrefix("MODULE ") || line.hasPrefix("INFO ") else { break }
            lines.append(line)
            start = end < data.endIndex ? end + 1 : end
        }
        guard let module = lines.first, module.hasPrefix("MODULE ") else { return nil }
        // The file name may contain spaces: it is everything after the id.
        let fields = module.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
        guard fields.count == 5 else { return nil }
        var info = ModuleInfo(os: String(fields[1]), arch: String(fields[2]), debugId: fields[3].uppercased(), debugFile: String(fields[4]))
        for line in lines.dropFirst() {
            if line.hasPrefix("INFO CODE_ID ") {
                let parts = line.dropFirst("INFO CODE_ID ".count).split(separator: " ", maxSplits: 1)
                info.codeId = parts.first.map { $0.uppercased() }
                info.codeFile = parts.count > 1 ? String(parts[1]) : nil
            } else if line.hasPrefix("INFO GENERATOR ") {
                info.generator = String(line.dropFirst("INFO GENERATOR ".count))
            }
        }
        return info
    }
}
