/// Names as people read them: C++ (Itanium ABI) and Rust (legacy and v0 mangling) symbols
/// demangled the way Breakpad's `dump_syms` prints them; anything else, or anything not fully
/// understood, is returned unchanged.
public enum Demangler {
    /// `returnTypes` false: function templates without their return type (symbol files).
    public static func demangle(_ name: String, returnTypes: Bool = true) -> String {
        if name.hasPrefix("_R") || name.hasPrefix("__R") { return RustV0Demangler.demangle(name) ?? name }
        guard name.hasPrefix("_Z") || name.hasPrefix("__Z") else { return name }
        if let rust = RustLegacyDemangler.demangle(name) { return rust }
        return ItaniumDemangler.demangle(name, returnType: returnTypes) ?? name
    }
}

/// Rust's legacy mangling: an Itanium nested name (`_ZN…E`) whose last component is a hash
/// (`h` and 16 hex digits) and whose components escape punctuation as `$LT$`, `$u20$`, `..` —
/// printed as rustc-demangle's alternate form does (`core::ptr::drop_in_place<T>`, no hash).
enum RustLegacyDemangler {
    static func demangle(_ mangled: String) -> String? {
        var bytes = Array(mangled.utf8)
        if bytes.starts(with: Array("__ZN".utf8)) { bytes.removeFirst() }
        guard bytes.starts(with: Array("_ZN".utf8)), bytes.count <= ItaniumDemangler.maxInput else { return nil }
        var i = 3
        var components: [String] = []
        while i < bytes.count, bytes[i] != UInt8(ascii: "E") {
            var length = 0
            guard (48...57).contains(bytes[i]) else { return nil }
            while i < bytes.count, (48...57).contains(bytes[i]) {
                length = length * 10 + Int(bytes[i] - 48)
                guard length < ItaniumDemangler.maxInput else { return nil }
                i += 1
            }
            guard length > 0, i + length <= bytes.count else { return nil }
            components.append(String(decoding: bytes[i..<(i + length)], as: UTF8.self))
            i += length
        }
        guard i < bytes.count, components.count >= 2, let hash = components.last, hash.utf8.count == 17, hash.hasPrefix("h"),
              hash.dropFirst().allSatisfy(\.isHexDigit) else { return nil }
        // Anything after the E must be a clone suffix or nothing.
        let rest = bytes[(i + 1)...]
        guard rest.isEmpty || rest.first == UInt8(ascii: ".") else { return nil }
        var out: [String] = []
        for component in components.dropLast() {
            guard let unescaped = unescape(component) else { return nil }
            out.append(unescaped)
        }
        return out.joined(separator: "::")
    }

    static let escapes: [String: String] = [
        "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
    ]

    static func unescape(_ component: String) -> String? {
        var s = Substring(component)
        // A leading `_$` escapes a component starting with `$`.
        if s.hasPrefix("_$") { s = s.dropFirst() }
        var out = ""
        while let c = s.first {
            if c == "$" {
                guard let end = s.dropFirst().firstIndex(of: "$") else { return nil }
                let code = String(s[s.index(after: s.startIndex)..<end])
                if let e = escapes[code] {
                    out += e
                } else if code.hasPrefix("u"), let v = UInt32(code.dropFirst(), radix: 16), let scalar = Unicode.Scalar(v) {
                    out.unicodeScalars.append(scalar)
                } else {
                    return nil
                }
                s = s[s.index(after: end)...]
            } else if s.hasPrefix("..") {
                out += "::"
                s = s.dropFirst(2)
            } else {
                out.append(c)
                s = s.dropFirst()
            }
        }
        return out
    }
}
