/// Rust's v0 mangling (`_R…`, RFC 2603): paths, generic arguments, types, constants, closures,
/// trait impls, `dyn` bounds with associated types, `for<'a>` binders, back-references and
/// Punycode identifiers — printed as rustc-demangle's alternate form (`{:#}`) does, which is
/// what symbolic and Mozilla's dump_syms write: no crate disambiguators, no constant type
/// suffixes. A name that does not parse completely stays mangled.
enum RustV0Demangler {
    /// rustc-demangle's recursion limit: deeper names are not demangled.
    static let maxDepth = 500
    /// Back-references can double the output per level: it is bounded.
    static let maxOutput = 1 << 16

    struct Invalid: Error {}

    static func demangle(_ mangled: String) -> String? {
        var bytes = Array(mangled.utf8)
        guard bytes.count <= ItaniumDemangler.maxInput else { return nil }
        // ThinLTO's `.llvm.<hex>` suffix is not part of the name.
        if let dot = find(Array(".llvm.".utf8), in: bytes),
           bytes[(dot + 6)...].allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: "@") }) {
            bytes.removeSubrange(dot...)
        }
        let prefix: Int
        if bytes.starts(with: Array("_R".utf8)) { prefix = 2 } else if bytes.starts(with: Array("__R".utf8)) { prefix = 3 } else { return nil }
        let inner = Array(bytes[prefix...])
        guard let first = inner.first, (0x41...0x5A).contains(first), inner.allSatisfy({ $0 < 0x80 }) else { return nil }
        var printer = Printer(symbol: inner)
        do {
            try printer.path(inValue: true)
            // The instantiating crate, which is not printed.
            if printer.position < inner.count, (0x41...0x5A).contains(inner[printer.position]) {
                printer.muted += 1
                try printer.path(inValue: false)
                printer.muted -= 1
            }
        } catch {
            return nil
        }
        // What remains may be a suffix such as `.0` or `.cold`, printed as it is.
        let rest = inner[printer.position...]
        if !rest.isEmpty {
            guard rest.first == UInt8(ascii: "."), rest.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
            printer.out += rest
        }
        return String(decoding: printer.out, as: UTF8.self)
    }

    static func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        for i in 0...(bytes.count - needle.count) where bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    static func isHexDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x61...0x66).contains(b) || (0x41...0x46).contains(b) }

    static func basicType(_ tag: UInt8) -> String? {
        switch tag {
        case UInt8(ascii: "b"): "bool"
        case UInt8(ascii: "c"): "char"
        case UInt8(ascii: "e"): "str"
        case UInt8(ascii: "u"): "()"
        case UInt8(ascii: "a"): "i8"
        case UInt8(ascii: "s"): "i16"
        case UInt8(ascii: "l"): "i32"
        case UInt8(ascii: "x"): "i64"
        case UInt8(ascii: "n"): "i128"
        case UInt8(ascii: "i"): "isize"
        case UInt8(ascii: "h"): "u8"
        case UInt8(ascii: "t"): "u16"
        case UInt8(ascii: "m"): "u32"
        case UInt8(ascii: "y"): "u64"
        case UInt8(ascii: "o"): "u128"
        case UInt8(ascii: "j"): "usize"
        case UInt8(ascii: "f"): "f32"
        case UInt8(ascii: "d"): "f64"
        case UInt8(ascii: "z"): "!"
        case UInt8(ascii: "p"): "_"
        case UInt8(ascii: "v"): "..."
        default: nil
        }
    }

    /// An identifier: its ASCII part and, for a Punycode one, the encoded rest.
    struct Identifier {
        var ascii: ArraySlice<UInt8>
        var punycode: ArraySlice<UInt8>
        var isEmpty: Bool { ascii.isEmpty && punycode.isEmpty }

        /// The text: Punycode decoded (RFC 3492), or `punycode{…}` when it does not decode.
        func text() -> [UInt8] {
            guard !punycode.isEmpty else { return Array(ascii) }
            if let decoded = decode() {
                var s = ""
                s.unicodeScalars.append(contentsOf: decoded)
                return Array(s.utf8)
            }
            return Array("punycode{".utf8) + (ascii.isEmpty ? [] : Array(ascii) + [UInt8(ascii: "-")]) + Array(punycode) + [UInt8(ascii: "}")]
        }

        func decode() -> [Unicode.Scalar]? {
            var output: [Unicode.Scalar] = ascii.map { Unicode.Scalar($0) }
            let base = 36, tMin = 1, tMax = 26, skew = 38
            var damp = 700, bias = 72, i = 0, n = 0x80
            var input = punycode.makeIterator()
            var next = input.next()
            while next != nil {
                var delta = 0, w = 1, k = 0
                while true {
                    k += base
                    let t = min(max(k - bias, tMin), tMax)
                    guard let c = next else { return nil }
                    next = input.next()
                    let d: Int
                    switch c {
                    case 0x61...0x7A: d = Int(c - 0x61)
                    case 0x30...0x39: d = 26 + Int(c - 0x30)
                    default: return nil
                    }
                    let (product, o1) = d.multipliedReportingOverflow(by: w)
                    let (sum, o2) = delta.addingReportingOverflow(product)
                    guard !o1, !o2 else { return nil }
                    delta = sum
                    if d < t { break }
                    let (nw, o3) = w.multipliedReportingOverflow(by: base - t)
                    guard !o3 else { return nil }
                    w = nw
                }
                let length = output.count + 1
                let (ni, o4) = i.addingReportingOverflow(delta)
                guard !o4 else { return nil }
                i = ni
                let (nn, o5) = n.addingReportingOverflow(i / length)
                guard !o5, let scalar = UInt32(exactly: nn).flatMap(Unicode.Scalar.init) else { return nil }
                n = nn
                i %= length
                guard output.count < 4096 else { return nil }
                output.insert(scalar, at: i)
                i += 1
                guard next != nil else { break }
                // Bias adaptation.
                delta /= damp
                damp = 2
                delta += delta / length
                var kk = 0
                while delta > ((base - tMin) * tMax) / 2 {
                    delta /= base - tMin
                    kk += base
                }
                bias = kk + ((base - tMin + 1) * delta) / (delta + skew)
            }
            return output
        }
    }

    /// Parses and prints in one pass (as the grammar allows); `muted` parses without printing
    /// (an impl's own path, the instantiating crate).
    struct Printer {
        let symbol: [UInt8]
        var position = 0
        var depth = 0
        var boundLifetimes = 0
        var muted = 0
        var out: [UInt8] = []

        init(symbol: [UInt8]) { self.symbol = symbol }

        mutating func print(_ s: String) throws(Invalid) { if muted == 0 { out += s.utf8; try checkSize() } }
        mutating func print(_ bytes: [UInt8]) throws(Invalid) { if muted == 0 { out += bytes; try checkSize() } }
        func checkSize() throws(Invalid) { if out.count > RustV0Demangler.maxOutput { throw Invalid() } }

        func peek() -> UInt8? { position < symbol.count ? symbol[position] : nil }
        mutating func eat(_ b: UInt8) -> Bool {
            guard peek() == b else { return false }
            position += 1
            return true
        }
        mutating func eat(_ c: Character) -> Bool { eat(c.asciiValue!) }
        mutating func next() throws(Invalid) -> UInt8 {
            guard let b = peek() else { throw Invalid() }
            position += 1
            return b
        }

        mutating func push() throws(Invalid) {
            depth += 1
            if depth > RustV0Demangler.maxDepth { throw Invalid() }
        }
        mutating func pop() { depth -= 1 }

        /// `<base-62-number>`: `_` is 0, `0_` is 1, …
        mutating func base62() throws(Invalid) -> UInt64 {
            if eat("_") { return 0 }
            var x: UInt64 = 0
            while !eat("_") {
                let b = try next()
                let d: UInt64
                switch b {
                case 0x30...0x39: d = UInt64(b - 0x30)
                case 0x61...0x7A: d = 10 + UInt64(b - 0x61)
                case 0x41...0x5A: d = 36 + UInt64(b - 0x41)
                default: throw Invalid()
                }
                let (m, o1) = x.multipliedReportingOverflow(by: 62)
                let (s, o2) = m.addingReportingOverflow(d)
                guard !o1, !o2 else { throw Invalid() }
                x = s
            }
            guard x < .max else { throw Invalid() }
            return x + 1
        }

        mutating func optionalBase62(_ tag: Character) throws(Invalid) -> UInt64 {
            guard eat(tag) else { return 0 }
            let v = try base62()
            guard v < .max else { throw Invalid() }
            return v + 1
        }

        mutating func disambiguator() throws(Invalid) -> UInt64 { try optionalBase62("s") }

        mutating func identifier() throws(Invalid) -> Identifier {
            let punycode = eat("u")
            guard let first = peek(), (0x30...0x39).contains(first) else { throw Invalid() }
            var length = 0
            position += 1
            length = Int(first - 0x30)
            if length != 0 {
                while let d = peek(), (0x30...0x39).contains(d) {
                    position += 1
                    let (m, o1) = length.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(Int(d - 0x30))
                    guard !o1, !o2 else { throw Invalid() }
                    length = s
                }
            }
            _ = eat("_")
            guard length <= symbol.count - position else { throw Invalid() }
            let text = symbol[position..<(position + length)]
            position += length
            guard punycode else { return Identifier(ascii: text, punycode: []) }
            if let underscore = text.lastIndex(of: UInt8(ascii: "_")) {
                let id = Identifier(ascii: text[text.startIndex..<underscore], punycode: text[(underscore + 1)...])
                guard !id.punycode.isEmpty else { throw Invalid() }
                return id
            }
            guard !text.isEmpty else { throw Invalid() }
            return Identifier(ascii: [], punycode: text)
        }

        /// Runs `body` at a back-reference's target, then comes back.
        mutating func backref(_ body: (inout Printer) throws(Invalid) -> Void) throws(Invalid) {
            let start = position - 1 // the `B`
            let target = try base62()
            guard target < UInt64(start) else { throw Invalid() }
            let resume = position
            position = Int(target)
            try push()
            try body(&self)
            pop()
            position = resume
        }

        mutating func path(inValue: Bool) throws(Invalid) {
            try push()
            defer { pop() }
            let tag = try next()
            switch tag {
            case UInt8(ascii: "C"):
                _ = try disambiguator()
                try print(try identifier().text())
            case UInt8(ascii: "N"):
                let namespace = try next()
                guard (0x41...0x5A).contains(namespace) || (0x61...0x7A).contains(namespace) else { throw Invalid() }
                try path(inValue: inValue)
                let dis = try disambiguator()
                let name = try identifier()
                if (0x41...0x5A).contains(namespace) {
                    try print("::{")
                    switch namespace {
                    case UInt8(ascii: "C"): try print("closure")
                    case UInt8(ascii: "S"): try print("shim")
                    default: try print([namespace])
                    }
                    if !name.isEmpty { try print(":"); try print(name.text()) }
                    try print("#\(dis)}")
                } else if !name.isEmpty {
                    try print("::")
                    try print(name.text())
                }
            case UInt8(ascii: "M"), UInt8(ascii: "X"), UInt8(ascii: "Y"):
                if tag != UInt8(ascii: "Y") {
                    // The impl's own path is not printed.
                    _ = try disambiguator()
                    muted += 1
                    try path(inValue: false)
                    muted -= 1
                }
                try print("<")
                try type()
                if tag != UInt8(ascii: "M") {
                    try print(" as ")
                    try path(inValue: false)
                }
                try print(">")
            case UInt8(ascii: "I"):
                try path(inValue: inValue)
                if inValue { try print("::") }
                try print("<")
                try list(", ") { (p: inout Printer) throws(Invalid) in try p.genericArgument() }
                try print(">")
            case UInt8(ascii: "B"):
                try backref { (p: inout Printer) throws(Invalid) in try p.path(inValue: inValue) }
            default:
                throw Invalid()
            }
        }

        /// Elements up to `E`, separated; returns how many.
        @discardableResult
        mutating func list(_ separator: String, _ element: (inout Printer) throws(Invalid) -> Void) throws(Invalid) -> Int {
            var count = 0
            while !eat("E") {
                guard peek() != nil else { throw Invalid() }
                if count > 0 { try print(separator) }
                try element(&self)
                count += 1
            }
            return count
        }

        mutating func genericArgument() throws(Invalid) {
            if eat("L") {
                try lifetime(try base62())
            } else if eat("K") {
                try constant(inValue: false)
            } else {
                try type()
            }
        }

        mutating func lifetime(_ index: UInt64) throws(Invalid) {
            try print("'")
            if index == 0 { try print("_"); return }
            guard index <= UInt64(boundLifetimes) else { throw Invalid() }
            let depth = UInt64(boundLifetimes) - index
            if depth < 26 { try print([UInt8(ascii: "a") + UInt8(depth)]) } else { try print("_\(depth)") }
        }

        /// A `G` binder's lifetimes (`for<'a, 'b> `) around `body`.
        mutating func binder(_ body: (inout Printer) throws(Invalid) -> Void) throws(Invalid) {
            let count = try optionalBase62("G")
            guard count < 1 << 16 else { throw Invalid() }
            if count > 0 {
                try print("for<")
                for i in 0..<count {
                    if i > 0 { try print(", ") }
                    boundLifetimes += 1
                    try lifetime(1)
                }
                try print("> ")
            }
            try body(&self)
            boundLifetimes -= Int(count)
        }

        mutating func type() throws(Invalid) {
            let tag = try next()
            if let basic = RustV0Demangler.basicType(tag) { try print(basic); return }
            try push()
            defer { pop() }
            switch tag {
            case UInt8(ascii: "R"), UInt8(ascii: "Q"):
                try print("&")
                if eat("L") {
                    let lt = try base62()
                    if lt != 0 { try lifetime(lt); try print(" ") }
                }
                if tag == UInt8(ascii: "Q") { try print("mut ") }
                try type()
            case UInt8(ascii: "P"), UInt8(ascii: "O"):
                try print(tag == UInt8(ascii: "P") ? "*const " : "*mut ")
                try type()
            case UInt8(ascii: "A"), UInt8(ascii: "S"):
                try print("[")
                try type()
                if tag == UInt8(ascii: "A") {
                    try print("; ")
                    try constant(inValue: true)
                }
                try print("]")
            case UInt8(ascii: "T"):
                try print("(")
                let count = try list(", ") { (p: inout Printer) throws(Invalid) in try p.type() }
                if count == 1 { try print(",") }
                try print(")")
            case UInt8(ascii: "F"):
                try binder { (p: inout Printer) throws(Invalid) in
                    let isUnsafe = p.eat("U")
                    var abi: [UInt8]?
                    if p.eat("K") {
                        if p.eat("C") {
                            abi = Array("C".utf8)
                        } else {
                            let id = try p.identifier()
                            guard !id.ascii.isEmpty, id.punycode.isEmpty else { throw Invalid() }
                            // `-` in an ABI name is mangled as `_`.
                            abi = id.ascii.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }
                        }
                    }
                    if isUnsafe { try p.print("unsafe ") }
                    if let abi { try p.print("extern \""); try p.print(abi); try p.print("\" ") }
                    try p.print("fn(")
                    try p.list(", ") { (q: inout Printer) throws(Invalid) in try q.type() }
                    try p.print(")")
                    if !p.eat("u") {
                        try p.print(" -> ")
                        try p.type()
                    }
                }
            case UInt8(ascii: "D"):
                try print("dyn ")
                try binder { (p: inout Printer) throws(Invalid) in
                    try p.list(" + ") { (q: inout Printer) throws(Invalid) in try q.dynTrait() }
                }
                guard eat("L") else { throw Invalid() }
                let lt = try base62()
                if lt != 0 { try print(" + "); try lifetime(lt) }
            case UInt8(ascii: "B"):
                try backref { (p: inout Printer) throws(Invalid) in try p.type() }
            default:
                position -= 1
                try path(inValue: false)
            }
        }

        /// A trait of a `dyn` type with its associated type bindings inside its `<…>`.
        mutating func dynTrait() throws(Invalid) {
            var open = try pathOpeningGenerics()
            while eat("p") {
                try print(open ? ", " : "<")
                open = true
                try print(try identifier().text())
                try print(" = ")
                try type()
            }
            if open { try print(">") }
        }

        /// A path whose generic arguments are left open (no `>`): true when they are.
        mutating func pathOpeningGenerics() throws(Invalid) -> Bool {
            if eat("B") {
                var open = false
                try backref { (p: inout Printer) throws(Invalid) in open = try p.pathOpeningGenerics() }
                return open
            }
            if eat("I") {
                try path(inValue: false)
                try print("<")
                try list(", ") { (p: inout Printer) throws(Invalid) in try p.genericArgument() }
                return true
            }
            try path(inValue: false)
            return false
        }

        /// A constant; outside an expression, anything but a literal is braced (`{&5}`).
        mutating func constant(inValue: Bool) throws(Invalid) {
            let tag = try next()
            try push()
            defer { pop() }
            var braced = false
            func openBrace(_ p: inout Printer) throws(Invalid) {
                guard !inValue else { return }
                braced = true
                try p.print("{")
            }
            switch tag {
            case UInt8(ascii: "p"): try print("_")
            case UInt8(ascii: "h"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "y"), UInt8(ascii: "o"), UInt8(ascii: "j"):
                try unsignedConstant()
            case UInt8(ascii: "a"), UInt8(ascii: "s"), UInt8(ascii: "l"), UInt8(ascii: "x"), UInt8(ascii: "n"), UInt8(ascii: "i"):
                if eat("n") { try print("-") }
                try unsignedConstant()
            case UInt8(ascii: "b"):
                switch try hexValue(try hexNibbles()) {
                case 0?: try print("false")
                case 1?: try print("true")
                default: throw Invalid()
                }
            case UInt8(ascii: "c"):
                guard let v = try hexValue(try hexNibbles()), let c = UInt32(exactly: v).flatMap(Unicode.Scalar.init) else { throw Invalid() }
                try print(RustV0Demangler.quoted([c], quote: "'"))
            case UInt8(ascii: "e"):
                try openBrace(&self)
                try print("*")
                try stringLiteral()
            case UInt8(ascii: "R"), UInt8(ascii: "Q"):
                if tag == UInt8(ascii: "R"), eat("e") {
                    try stringLiteral()
                } else {
                    try openBrace(&self)
                    try print(tag == UInt8(ascii: "R") ? "&" : "&mut ")
                    try constant(inValue: true)
                }
            case UInt8(ascii: "A"):
                try openBrace(&self)
                try print("[")
                try list(", ") { (p: inout Printer) throws(Invalid) in try p.constant(inValue: true) }
                try print("]")
            case UInt8(ascii: "T"):
                try openBrace(&self)
                try print("(")
                let count = try list(", ") { (p: inout Printer) throws(Invalid) in try p.constant(inValue: true) }
                if count == 1 { try print(",") }
                try print(")")
            case UInt8(ascii: "V"):
                try openBrace(&self)
                try path(inValue: true)
                switch try next() {
                case UInt8(ascii: "U"): break
                case UInt8(ascii: "T"):
                    try print("(")
                    try list(", ") { (p: inout Printer) throws(Invalid) in try p.constant(inValue: true) }
                    try print(")")
                case UInt8(ascii: "S"):
                    try print(" { ")
                    try list(", ") { (p: inout Printer) throws(Invalid) in
                        _ = try p.disambiguator()
                        try p.print(try p.identifier().text())
                        try p.print(": ")
                        try p.constant(inValue: true)
                    }
                    try print(" }")
                default: throw Invalid()
                }
            case UInt8(ascii: "B"):
                try backref { (p: inout Printer) throws(Invalid) in try p.constant(inValue: inValue) }
            default:
                throw Invalid()
            }
            if braced { try print("}") }
        }

        /// Lower-case hex digits up to `_`.
        mutating func hexNibbles() throws(Invalid) -> ArraySlice<UInt8> {
            let start = position
            while true {
                let b = try next()
                if b == UInt8(ascii: "_") { break }
                guard (0x30...0x39).contains(b) || (0x61...0x66).contains(b) else { throw Invalid() }
            }
            return symbol[start..<(position - 1)]
        }

        /// The value of hex digits when it fits 64 bits (leading zeros aside).
        func hexValue(_ digits: ArraySlice<UInt8>) throws(Invalid) -> UInt64? {
            let significant = digits.drop { $0 == UInt8(ascii: "0") }
            guard significant.count <= 16 else { return nil }
            var v: UInt64 = 0
            for d in significant { v = v << 4 | UInt64(d <= 0x39 ? d - 0x30 : d - 0x61 + 10) }
            return v
        }

        mutating func unsignedConstant() throws(Invalid) {
            let digits = try hexNibbles()
            if let v = try hexValue(digits) { try print("\(v)") } else { try print("0x"); try print(Array(digits)) }
        }

        /// A `str` constant: its UTF-8 bytes as hex pairs.
        mutating func stringLiteral() throws(Invalid) {
            let digits = try hexNibbles()
            guard digits.count % 2 == 0 else { throw Invalid() }
            var bytes: [UInt8] = []
            var i = digits.startIndex
            while i < digits.endIndex {
                func nibble(_ d: UInt8) -> UInt8 { d <= 0x39 ? d - 0x30 : d - 0x61 + 10 }
                bytes.append(nibble(digits[i]) << 4 | nibble(digits[i + 1]))
                i += 2
            }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw Invalid() }
            try print(RustV0Demangler.quoted(Array(text.unicodeScalars), quote: "\""))
        }
    }

    /// Characters quoted and escaped the way Rust's `escape_debug` writes them.
    static func quoted(_ scalars: [Unicode.Scalar], quote: Character) -> String {
        var s = String(quote)
        for c in scalars {
            switch c {
            case "\t": s += "\\t"
            case "\r": s += "\\r"
            case "\n": s += "\\n"
            case "\\": s += "\\\\"
            case "\0": s += "\\0"
            case "'" where quote == "'": s += "\\'"
            case "\"" where quote == "\"": s += "\\\""
            default:
                if c.value < 0x20 || c.value == 0x7F || (0x80..<0xA0).contains(c.value) {
                    s += "\\u{\(String(c.value, radix: 16))}"
                } else {
                    s.unicodeScalars.append(c)
                }
            }
        }
        s.append(quote)
        return s
    }
}
