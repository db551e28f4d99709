/// Source paths as Eliot reports them. Eliot's answers come from symbolic, whose symbol cache
/// splits a FILE path into directory and name, joins them again and removes `.` and `..`
/// segments; `/symbolicate/v5` reports paths the same way (`/src/./a/b.h` → `/src/a/b.h`). The
/// rules, symbolic's own (including its quirks, so answers match byte for byte):
/// - a path is Windows-style when it starts with a drive letter (`C:`, `C:\`) or `\\`/`//`, or
///   contains a backslash; segments are then joined with `\`, else with `/`;
/// - `.` segments go; `..` removes the segment before it — and at the top it stays, after which
///   every further `..` stays too;
/// - the separators before the file name collapse to one; doubled separators elsewhere stay;
/// - a path that cleans to nothing has no file.
/// Checked against symbolic on thousands of generated paths (`SourcePathTests`).
public enum SourcePath {
    public static func clean(_ path: String) -> String? {
        let bytes = Array(path.utf8)
        let (directory, name) = split(bytes[...])
        let joined = directory.map { join($0, name) } ?? Array(name)
        let cleaned = cleanSegments(joined)
        return cleaned.isEmpty ? nil : String(decoding: cleaned, as: UTF8.self)
    }

    static let slash = UInt8(ascii: "/"), backslash = UInt8(ascii: "\\")

    @inline(__always) static func isSeparator(_ b: UInt8) -> Bool { b == slash || b == backslash }

    static func isUNC(_ p: ArraySlice<UInt8>) -> Bool {
        p.count >= 2 && ((p[p.startIndex] == backslash && p[p.startIndex + 1] == backslash)
                         || (p[p.startIndex] == slash && p[p.startIndex + 1] == slash))
    }

    static func isDriveLetter(_ p: ArraySlice<UInt8>) -> Bool {
        guard p.count >= 2 else { return false }
        let letter = p[p.startIndex] | 0x20
        guard letter >= UInt8(ascii: "a"), letter <= UInt8(ascii: "z"), p[p.startIndex + 1] == UInt8(ascii: ":") else { return false }
        return p.count == 2 || isSeparator(p[p.startIndex + 2])
    }

    static func isAbsoluteWindows(_ p: ArraySlice<UInt8>) -> Bool { isUNC(p) || isDriveLetter(p) }

    static func isWindows(_ p: ArraySlice<UInt8>) -> Bool { isAbsoluteWindows(p) || p.contains(backslash) }

    /// The directory (nil when there is none) and the last component, separators at the end
    /// trimmed first.
    static func split(_ path: ArraySlice<UInt8>) -> (ArraySlice<UInt8>?, ArraySlice<UInt8>) {
        var end = path.endIndex
        while end > path.startIndex, isSeparator(path[end - 1]) { end -= 1 }
        let trimmed = end == path.startIndex ? path : path[..<end]
        guard let cut = trimmed.lastIndex(where: isSeparator) else { return (nil, trimmed) }
        if cut == trimmed.startIndex { return (trimmed[...cut], trimmed[(cut + 1)...]) }
        return (trimmed[..<cut], trimmed[(cut + 1)...])
    }

    static func join(_ base: ArraySlice<UInt8>, _ other: ArraySlice<UInt8>) -> [UInt8] {
        if other.first == UInt8(ascii: "<"), other.last == UInt8(ascii: ">") { return Array(other) }
        if base.isEmpty || isAbsoluteWindows(other) || other.first == slash { return Array(other) }
        if other.isEmpty { return Array(base) }
        if let first = other.first, isSeparator(first) {
            return isAbsoluteWindows(base) ? Array(base.prefix(2)) + other : Array(other)
        }
        var b = base
        while let last = b.last, isSeparator(last) { b = b.dropLast() }
        var o = other
        while let first = o.first, isSeparator(first) { o = o.dropFirst() }
        return Array(b) + [isWindows(base) || isWindows(other) ? backslash : slash] + o
    }

    static func cleanSegments(_ path: [UInt8]) -> [UInt8] {
        let separator = isWindows(path[...]) ? backslash : slash
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        var needsSeparator = false, pastRoot = false
        var segments = path.split(omittingEmptySubsequences: false, whereSeparator: isSeparator)
        if segments.last?.isEmpty == true { segments.removeLast() }
        let dot = UInt8(ascii: ".")
        for segment in segments {
            if segment.count == 1, segment.first == dot { continue }
            if segment.count == 2, segment.first == dot, segment.last == dot {
                if !pastRoot, pop(&out) {
                    if out.isEmpty { needsSeparator = false }
                    continue
                }
                if !pastRoot { needsSeparator = false; pastRoot = true }
                if needsSeparator { out.append(separator) }
                out += [dot, dot]
                needsSeparator = true
                continue
            }
            if needsSeparator { out.append(separator) } else { needsSeparator = true }
            out += segment
        }
        return out
    }

    /// Removes the last segment (and its separator); false when there is nothing to remove.
    static func pop(_ path: inout [UInt8]) -> Bool {
        if let cut = path.lastIndex(where: isSeparator) {
            path.removeSubrange(cut...)
            return true
        }
        if !path.isEmpty { path.removeAll(); return true }
        return false
    }
}
