import CSystemShims
import Foundation

/// A dSYM bundle as Tecken stores it: `<name>/<id>/<name>.dSYM.tar.bz2`, a tar of
/// `Name.dSYM/Contents/Resources/DWARF/Name` (and its Info.plist). The DWARF files are what the
/// dumper needs. bzip2 is decoded by the system's libbz2 (`pm_bunzip2`); the tar is read here
/// (ustar names with their prefix, GNU long names, pax `path` records).
enum DSYMTarball {
    enum Failure: Error, CustomStringConvertible {
        case noBzip2, damaged(String), tooLarge
        var description: String {
            switch self {
            case .noBzip2: "the system's libbz2 (libbz2.so.1.0) is not installed"
            case .damaged(let why): "not a readable .dSYM.tar.bz2: \(why)"
            case .tooLarge: "the .dSYM.tar.bz2 unpacks past \(NativeSymbols.maxInflated) bytes"
            }
        }
    }

    /// The DWARF files inside (path in the tar, contents).
    static func dwarfFiles(_ compressed: UnsafeRawBufferPointer, limit: Int = NativeSymbols.maxInflated) throws -> [(path: String, data: [UInt8])] {
        let reader = TarReader(limit: limit)
        let box = Unmanaged.passRetained(reader)
        defer { box.release() }
        let status = pm_bunzip2(compressed.baseAddress, compressed.count, { context, block, count in
            guard let context, let block else { return 1 }
            let reader = Unmanaged<TarReader>.fromOpaque(context).takeUnretainedValue()
            return reader.feed(UnsafeRawBufferPointer(start: block, count: count)) ? 0 : 1
        }, box.toOpaque())
        if let failure = reader.failure { throw failure }
        switch status {
        case 0: break
        case -3 where reader.ended: break // the tar ended before the bzip2 stream
        case -1: throw Failure.noBzip2
        case -4: throw Failure.damaged("the bzip2 stream ends early")
        default: throw Failure.damaged("bzip2 data does not decompress")
        }
        return reader.files
    }

    /// Reads tar entries as the decompressed bytes arrive, keeping only DWARF files' contents.
    final class TarReader {
        let limit: Int
        var total = 0
        var buffer: [UInt8] = []
        var files: [(path: String, data: [UInt8])] = []
        var failure: Failure?
        var ended = false
        /// The entry being read: its path, bytes left, padding after it, and whether it is kept.
        var current: (path: String, remaining: Int, padding: Int, keep: Bool, data: [UInt8])?
        var longName: String?

        init(limit: Int) { self.limit = limit }

        /// False to stop (an error, or the end of the archive).
        func feed(_ block: UnsafeRawBufferPointer) -> Bool {
            total += block.count
            guard total <= limit else { failure = .tooLarge; return false }
            buffer += block
            var consumed = 0
            defer { buffer.removeSubrange(0..<consumed) }
            while !ended {
                if var entry = current {
                    let take = min(entry.remaining, buffer.count - consumed)
                    if entry.keep { entry.data += buffer[consumed..<(consumed + take)] }
                    consumed += take
                    entry.remaining -= take
                    if entry.remaining > 0 { current = entry; return true }
                    let pad = min(entry.padding, buffer.count - consumed)
                    consumed += pad
                    entry.padding -= pad
                    if entry.padding > 0 { current = entry; return true }
                    finish(entry)
                    current = nil
                    continue
                }
                guard buffer.count - consumed >= 512 else { return true }
                let header = Array(buffer[consumed..<(consumed + 512)])
                consumed += 512
                if header.allSatisfy({ $0 == 0 }) { ended = true; break }
                guard let size = Self.octal(header[124..<136]) else { failure = .damaged("an entry size is not a number"); return false }
                guard size <= limit else { failure = .tooLarge; return false }
                let type = header[156]
                var path = Self.string(header[0..<100])
                if header[257..<262].elementsEqual(Array("ustar".utf8)) {
                    let prefix = Self.string(header[345..<500])
                    if !prefix.isEmpty { path = prefix + "/" + path }
                }
                if let long = longName { path = long; longName = nil }
                // GNU long names ('L') and pax headers ('x') are read whole, to name the next entry.
                let isMeta = type == UInt8(ascii: "L") || type == UInt8(ascii: "x")
                let keep = isMeta || ((type == UInt8(ascii: "0") || type == 0) && Self.isDWARF(path))
                guard !isMeta || size <= 1 << 20 else { failure = .damaged("a tar name record of \(size) bytes"); return false }
                current = (path, size, (512 - size % 512) % 512, keep, [])
                if type == UInt8(ascii: "L") { current?.path = "\u{1}L" } else if type == UInt8(ascii: "x") { current?.path = "\u{1}x" }
            }
            return false
        }

        func finish(_ entry: (path: String, remaining: Int, padding: Int, keep: Bool, data: [UInt8])) {
            switch entry.path {
            case "\u{1}L":
                longName = String(decoding: entry.data.prefix { $0 != 0 }, as: UTF8.self)
            case "\u{1}x":
                // Records "<length> <key>=<value>\n"; `path` names the next entry.
                for record in entry.data.split(separator: UInt8(ascii: "\n")) {
                    guard let space = record.firstIndex(of: 0x20), let equals = record[space...].firstIndex(of: UInt8(ascii: "=")) else { continue }
                    if String(decoding: record[(space + 1)..<equals], as: UTF8.self) == "path" {
                        longName = String(decoding: record[(equals + 1)...], as: UTF8.self)
                    }
                }
            default:
                if entry.keep { files.append((entry.path, entry.data)) }
            }
        }

        /// `X.dSYM/Contents/Resources/DWARF/<file>` (macOS tar's `._` AppleDouble files aside).
        static func isDWARF(_ path: String) -> Bool {
            let parts = path.split(separator: "/")
            guard parts.count >= 5, let last = parts.last, !last.hasPrefix("._") else { return false }
            let tail = parts.suffix(5)
            return tail.first?.hasSuffix(".dSYM") == true && Array(tail.dropFirst().dropLast()) == ["Contents", "Resources", "DWARF"]
        }

        static func string(_ field: ArraySlice<UInt8>) -> String { String(decoding: field.prefix { $0 != 0 }, as: UTF8.self) }

        /// An octal number field (spaces and NULs around it), or GNU's base-256 form.
        static func octal(_ field: ArraySlice<UInt8>) -> Int? {
            if let first = field.first, first & 0x80 != 0 {
                var v = 0
                for (i, b) in field.enumerated() {
                    let byte = i == 0 ? b & 0x7F : b
                    guard v < Int.max >> 8 else { return nil }
                    v = v << 8 | Int(byte)
                }
                return v
            }
            let digits = field.drop { $0 == 0x20 || $0 == 0 }.prefix { $0 >= 0x30 && $0 <= 0x37 }
            guard !digits.isEmpty else { return field.allSatisfy { $0 == 0 || $0 == 0x20 } ? 0 : nil }
            var v = 0
            for d in digits {
                guard v < Int.max >> 3 else { return nil }
                v = v << 3 | Int(d - 0x30)
            }
            return v
        }
    }
}
