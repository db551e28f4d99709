import CSystemShims
import Foundation

/// One part of a multipart body: its headers and where its content lies in the body.
public struct MultipartPart {
    public var name: String?
    public var filename: String?
    /// The part's Content-Type, lowercased, without parameters; nil when the part has none.
    public var contentType: String?
    public var range: Range<Int>
}

public enum MultipartError: Error, Equatable {
    /// The body does not follow the multipart grammar (no opening or closing delimiter,
    /// bad headers, a truncated body).
    case structure(String)
    case partTooLarge(Int)
    case tooManyParts(Int)
}

/// A multipart/form-data (or multipart/mixed) body parser over bytes already in memory: one
/// pass, delimiters found with memmem, part contents returned as ranges so no byte of a dump is
/// copied. Truncated bodies (no closing delimiter) are errors, so a client that died mid-upload
/// never produces a partial dump.
public struct MultipartParser {
    public let boundary: [UInt8]
    public var maxPartSize: Int
    public var maxParts: Int
    public var maxHeaderBytes = 16 << 10

    public init(boundary: String, maxPartSize: Int, maxParts: Int = 1000) {
        self.boundary = Array(boundary.utf8)
        self.maxPartSize = maxPartSize
        self.maxParts = maxParts
    }

    public func parse(_ body: UnsafeRawBufferPointer) throws(MultipartError) -> [MultipartPart] {
        let dashBoundary = [UInt8(ascii: "-"), UInt8(ascii: "-")] + boundary
        let delimiter = [UInt8(ascii: "\r"), UInt8(ascii: "\n")] + dashBoundary
        // The first delimiter may open the body without a preceding CRLF.
        var position: Int
        if Self.hasPrefix(body, at: 0, dashBoundary) {
            position = dashBoundary.count
        } else if let at = Self.find(delimiter, in: body, from: 0) {
            position = at + delimiter.count
        } else {
            throw .structure("no opening boundary")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: `--` closes the body; otherwise optional whitespace and CRLF.
            if Self.hasPrefix(body, at: position, [UInt8(ascii: "-"), UInt8(ascii: "-")]) { return parts }
            while position < body.count, body[position] == 0x20 || body[position] == 0x09 { position += 1 }
            guard Self.hasPrefix(body, at: position, [0x0D, 0x0A]) else { throw .structure("bad delimiter line") }
            position += 2
            guard parts.count < maxParts else { throw .tooManyParts(maxParts) }
            // Headers end at an empty line.
            let headerEnd: Int
            if Self.hasPrefix(body, at: position, [0x0D, 0x0A]) {
                headerEnd = position
            } else {
                guard let end = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: position, limit: maxHeaderBytes) else {
                    throw .structure("part headers not terminated")
                }
                headerEnd = end + 2
            }
            var part = try Self.parseHeaders(UnsafeRawBufferPointer(rebasing: body[position..<headerEnd]))
            let contentStart = headerEnd + 2
            guard let contentEnd = Self.find(delimiter, in: body, from: contentStart) else {
                throw .structure("body ends inside a part (no closing boundary)")
            }
            guard contentEnd - contentStart <= maxPartSize else { throw .partTooLarge(maxPartSize) }
            part.range = contentStart..<contentEnd
            parts.append(part)
            position = contentEnd + delimiter.count
        }
    }

    static func parseHeaders(_ bytes: UnsafeRawBufferPointer) throws(MultipartError) -> MultipartPart {
        var part = MultipartPart(range: 0..<0)
        guard let text = String(validating: bytes, as: UTF8.self) ?? Optional(String(decoding: bytes, as: Unicode.ASCII.self)) else {
            throw .structure("unreadable part headers")
        }
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { throw .structure("header line without a colon") }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-disposition":
                let (_, parameters) = HeaderValue.parse(value)
                part.name = parameters["name"]
                part.filename = parameters["filename"]
            case "content-type":
                part.contentType = HeaderValue.parse(value).value.lowercased()
            default:
                break
            }
        }
        return part
    }

    static func hasPrefix(_ body: UnsafeRawBufferPointer, at offset: Int, _ bytes: [UInt8]) -> Bool {
        guard offset >= 0, body.count - offset >= bytes.count else { return false }
        for (k, b) in bytes.enumerated() where body[offset + k] != b { return false }
        return true
    }

    static func find(_ needle: [UInt8], in body: UnsafeRawBufferPointer, from: Int, limit: Int = .max) -> Int? {
        guard from <= body.count, let base = body.baseAddress else { return nil }
        let length = min(body.count - from, limit)
        return needle.withUnsafeBytes { n -> Int? in
            guard let hit = pm_memmem(base + from, length, n.baseAddress, n.count) else { return nil }
            return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        }
    }
}

/// `type/subtype; key=value; key="quoted \"value\""` → the value and its parameters (keys
/// lowercased). Used for Content-Type and Content-Disposition.
public enum HeaderValue {
    public static func parse(_ text: String) -> (value: String, parameters: [String: String]) {
        var scalars = Substring(text)
        func skipSpace() { while let c = scalars.first, c == " " || c == "\t" { scalars.removeFirst() } }
        var value = ""
        while let c = scalars.first, c != ";" { value.append(c); scalars.removeFirst() }
        var parameters: [String: String] = [:]
        while scalars.first == ";" {
            scalars.removeFirst()
            skipSpace()
            var key = ""
            while let c = scalars.first, c != "=", c != ";" { key.append(c); scalars.removeFirst() }
            key = key.trimmingCharacters(in: .whitespaces).lowercased()
            var parameter = ""
            if scalars.first == "=" {
                scalars.removeFirst()
                skipSpace()
                if scalars.first == "\"" {
                    scalars.removeFirst()
                    while let c = scalars.first {
                        scalars.removeFirst()
                        if c == "\\", let next = scalars.first { parameter.append(next); scalars.removeFirst(); continue }
                        if c == "\"" { break }
                        parameter.append(c)
                    }
                    while let c = scalars.first, c != ";" { scalars.removeFirst() }
                } else {
                    while let c = scalars.first, c != ";" { parameter.append(c); scalars.removeFirst() }
                    parameter = parameter.trimmingCharacters(in: .whitespaces)
                }
            }
            if !key.isEmpty, parameters[key] == nil { parameters[key] = parameter }
        }
        return (value.trimmingCharacters(in: .whitespaces), parameters)
    }
}

/// `application/x-www-form-urlencoded` (also query strings): `+` is a space, `%XX` a byte; keys
/// may repeat.
public enum FormEncoding {
    public static func parse(_ text: String) -> [(String, String)] {
        text.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                let spaced = $0.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (kv[0], kv.count > 1 ? kv[1] : "")
        }
    }
}
