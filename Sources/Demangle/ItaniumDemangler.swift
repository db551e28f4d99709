/// The Itanium C++ ABI demangler (`_Z…` names, as gcc and clang mangle them on Linux, Android
/// and macOS), printing names the way `c++filt` and `abi::__cxa_demangle` do — what Breakpad's
/// `dump_syms` writes. A name it cannot read completely is returned as nil (callers keep the
/// mangled name): never a half-demangled one. Work is bounded: input length, nesting depth and
/// output size.
public enum ItaniumDemangler {
    public static let maxInput = 4096
    static let maxDepth = 256
    static let maxOutput = 16384

    /// `returnType` false leaves out a function template's return type (`foo<int>(int)`, as
    /// Mozilla's symbol files and symbolic print names).
    public static func demangle(_ mangled: String, returnType: Bool = true) -> String? {
        let utf8 = Array(mangled.utf8)
        guard utf8.count <= maxInput, utf8.count > 2 else { return nil }
        // `_Z…`, and the `__Z…` of Mach-O.
        var start = 0
        if utf8.starts(with: Array("__Z".utf8)) { start = 1 }
        guard utf8[start] == UInt8(ascii: "_"), utf8[start + 1] == UInt8(ascii: "Z") else { return nil }
        var parser = Parser(Array(utf8[(start + 2)...]))
        guard let encoding = try? parser.encoding(top: true, returnType: returnType) else { return nil }
        var out = encoding.text
        // Clone suffixes (`.isra.0`, `.constprop.1`, `.cold`, `.part.0`), as libiberty reads
        // them: `.` and [a-z0-9_]+, then any number of `.digits`.
        var rest = Array(parser.input[parser.position...])
        func isLower(_ c: UInt8) -> Bool { (97...122).contains(c) || (48...57).contains(c) || c == 95 }
        func isDigit(_ c: UInt8) -> Bool { (48...57).contains(c) }
        while !rest.isEmpty {
            guard rest[0] == UInt8(ascii: "."), rest.count > 1, isLower(rest[1]) else { return nil }
            var i = 2
            while i < rest.count, isLower(rest[i]) { i += 1 }
            while i + 1 < rest.count, rest[i] == UInt8(ascii: "."), isDigit(rest[i + 1]) {
                i += 2
                while i < rest.count, isDigit(rest[i]) { i += 1 }
            }
            out += " [clone " + String(decoding: rest[0..<i], as: UTF8.self) + "]"
            rest = Array(rest[i...])
        }
        guard out.utf8.count <= maxOutput else { return nil }
        return out
    }
}

struct DemangleError: Error {}

/// A printed type, split where declarators go: `left` + name + `right` (function and array
/// types put their parameter list and bounds on the right).
struct TypeText {
    var left: String
    var right: String = ""
    /// A function or array type: pointers to it need parentheses.
    var needsParens = false
    /// Function types: `(params) const`, for cv/ref qualifiers.
    var isFunction = false
    /// A reference (1 `&`, 2 `&&`) to `referent`: references to references collapse.
    var referenceKind = 0
    var referent: [TypeText] = []
    /// A template argument pack (`J…E`): its elements, for `Dp` expansions.
    var pack: [TypeText]?
    var text: String { left + right }
}

struct Encoding {
    var text: String
}

struct Parser {
    let input: [UInt8]
    var position = 0
    var depth = 0
    /// Substitution candidates (S_, S0_, …), as printed types.
    var substitutions: [TypeText] = []
    /// The template arguments of the outermost template name (T_, T0_, …).
    var templateArgs: [TypeText] = []
    /// Whether the name just parsed ended in template arguments (return type follows then).
    var lastNameHadTemplateArgs = false
    var lastNameWasCtorDtor = false
    /// The pack a `Dp` pattern being parsed names, and the element being printed.
    var expandingPack: [TypeText]?
    var packElement: Int?

    init(_ input: [UInt8]) { self.input = input }

    var peek: UInt8? { position < input.count ? input[position] : nil }
    func peek(_ offset: Int) -> UInt8? { position + offset < input.count ? input[position + offset] : nil }
    mutating func consume(_ c: Character) -> Bool {
        if peek == c.asciiValue { position += 1; return true }
        return false
    }
    mutating func consume(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard position + bytes.count <= input.count, Array(input[position..<(position + bytes.count)]) == bytes else { return false }
        position += bytes.count
        return true
    }
    mutating func expect(_ c: Character) throws { guard consume(c) else { throw DemangleError() } }

    mutating func enter() throws {
        depth += 1
        guard depth < ItaniumDemangler.maxDepth else { throw DemangleError() }
    }

    mutating func number() throws -> Int {
        var negative = false
        if consume("n") { negative = true }
        guard let first = peek, first >= 48, first <= 57 else { throw DemangleError() }
        var n = 0
        while let c = peek, c >= 48, c <= 57 {
            n = n * 10 + Int(c - 48)
            guard n < 1 << 30 else { throw DemangleError() }
            position += 1
        }
        return negative ? -n : n
    }

    /// `<seq-id>_` in base 36 (`S_` = 0, `S0_` = 1, …).
    mutating func seqID() throws -> Int {
        if consume("_") { return 0 }
        var n = 0
        while let c = peek, c != UInt8(ascii: "_") {
            let digit: Int
            switch c {
            case 48...57: digit = Int(c - 48)
            case 65...90: digit = Int(c - 55)
            default: throw DemangleError()
            }
            n = n * 36 + digit
            guard n < 1 << 24 else { throw DemangleError() }
            position += 1
        }
        try expect("_")
        return n + 1
    }

    // MARK: - encoding and names

    mutating func encoding(top: Bool, returnType printReturnType: Bool = true) throws -> Encoding {
        try enter(); defer { depth -= 1 }
        // Special names.
        if peek == UInt8(ascii: "T") || peek == UInt8(ascii: "G") {
            return Encoding(text: try specialName())
        }
        let savedTemplateArgs = templateArgs
        let name = try self.name()
        let hadTemplateArgs = lastNameHadTemplateArgs, ctorDtor = lastNameWasCtorDtor
        // A data name: no parameter list.
        if peek == nil || peek == UInt8(ascii: "E") || peek == UInt8(ascii: ".") {
            if !top { templateArgs = savedTemplateArgs }
            return Encoding(text: name.text)
        }
        var returnType: TypeText?
        if hadTemplateArgs && !ctorDtor { returnType = try type() }
        var params: [TypeText] = []
        while let c = peek, c != UInt8(ascii: "E"), c != UInt8(ascii: ".") {
            params.append(try type())
            guard params.count < 1000 else { throw DemangleError() }
        }
        var text = ""
        // `int foo()`, but `void (*foo(int))(int)` for a returned function pointer.
        if let returnType, printReturnType { text += returnType.left + (returnType.right.isEmpty ? " " : "") }
        let list = params.count == 1 && params[0].text == "void" ? "" : params.map(\.text).filter { !$0.isEmpty }.joined(separator: ", ")
        text += name.text + "(" + list + ")" + name.qualifiers
        if let returnType, printReturnType { text += returnType.right }
        if !top { templateArgs = savedTemplateArgs }
        return Encoding(text: text)
    }

    mutating func specialName() throws -> String {
        if consume("TV") { return "vtable for " + (try type()).text }
        if consume("TT") { return "VTT for " + (try type()).text }
        if consume("TI") { return "typeinfo for " + (try type()).text }
        if consume("TS") { return "typeinfo name for " + (try type()).text }
        if consume("Th") { _ = try number(); try expect("_"); return "non-virtual thunk to " + (try encoding(top: false)).text }
        if consume("Tv") { _ = try number(); try expect("_"); _ = try number(); try expect("_"); return "virtual thunk to " + (try encoding(top: false)).text }
        if consume("Tc") {
            for _ in 0..<2 {
                if consume("h") { _ = try number(); try expect("_") } else if consume("v") { _ = try number(); try expect("_"); _ = try number(); try expect("_") } else { throw DemangleError() }
            }
            return "covariant return thunk to " + (try encoding(top: false)).text
        }
        if consume("TH") { return "TLS init function for " + (try name()).text }
        if consume("TW") { return "TLS wrapper function for " + (try name()).text }
        if consume("GV") { return "guard variable for " + (try name()).text }
        if consume("GTt") { return "transaction clone for " + (try encoding(top: false)).text }
        if consume("GTn") { return "non-transaction clone for " + (try encoding(top: false)).text }
        if consume("GR") {
            let n = try name().text
            if !consume("_") { _ = try seqID() }
            return "reference temporary #0 for " + n
        }
        throw DemangleError()
    }

    struct Name {
        var text: String
        /// Member function cv and ref qualifiers, printed after the parameter list.
        var qualifiers = ""
    }

    mutating func name() throws -> Name {
        try enter(); defer { depth -= 1 }
        lastNameHadTemplateArgs = false
        lastNameWasCtorDtor = false
        if peek == UInt8(ascii: "N") { return try nestedName() }
        if peek == UInt8(ascii: "Z") { return try localName() }
        // <unscoped-template-name> <template-args> | <unscoped-name>
        var text: String
        if consume("St") {
            text = "std::" + (try unqualifiedName(enclosing: nil))
        } else if peek == UInt8(ascii: "S") {
            let sub = try substitution()
            guard peek == UInt8(ascii: "I") else { throw DemangleError() }
            text = sub.text
            let args = try templateArgList(record: true)
            lastNameHadTemplateArgs = true
            return Name(text: text + args)
        } else {
            text = try unqualifiedName(enclosing: nil)
        }
        if peek == UInt8(ascii: "I") {
            substitutions.append(TypeText(left: text))
            let args = try templateArgList(record: true)
            text += (text.hasSuffix("<") ? " " : "") + args
            lastNameHadTemplateArgs = true
            lastNameWasCtorDtor = false
        }
        return Name(text: text)
    }

    mutating func nestedName() throws -> Name {
        try expect("N")
        var qualifiers = ""
        // CV and ref qualifiers of a member function.
        var cv = ""
        if consume("r") { cv += " restrict" }
        if consume("V") { cv = " volatile" + cv }
        if consume("K") { cv = " const" + cv }
        qualifiers = cv
        if consume("R") { qualifiers += " &" } else if consume("O") { qualifiers += " &&" }
        var prefix: String?
        var lastComponent = ""
        var endsWithTemplateArgs = false
        var components = 0
        while !consume("E") {
            components += 1
            guard components < 256, peek != nil else { throw DemangleError() }
            endsWithTemplateArgs = false
            // Template arguments after a constructor keep it a constructor.
            if peek != UInt8(ascii: "I") { lastNameWasCtorDtor = false }
            if peek == UInt8(ascii: "I") {
                guard let p = prefix else { throw DemangleError() }
                // Types inside the arguments parse names of their own: keep this name's flags.
                let ctorDtor = lastNameWasCtorDtor
                let args = try templateArgList(record: true)
                lastNameWasCtorDtor = ctorDtor
                prefix = p + (p.hasSuffix("<") ? " " : "") + args
                endsWithTemplateArgs = true
            } else if peek == UInt8(ascii: "S"), peek(1) != UInt8(ascii: "t") || prefix != nil {
                guard prefix == nil else { throw DemangleError() }
                var sub = try substitution()
                // A constructor or destructor of `std::string` and the stream typedefs names the
                // full class.
                if let next = peek, next == UInt8(ascii: "C") || next == UInt8(ascii: "D"), let full = Self.fullStandard[sub.text] {
                    sub = TypeText(left: full)
                }
                prefix = sub.text
                lastComponent = sub.text
                continue
            } else if consume("St") {
                prefix = "std"
                continue
            } else if peek == UInt8(ascii: "T") {
                let param = try templateParam()
                prefix = (prefix.map { $0 + "::" } ?? "") + param.text
            } else if consume("DT") || consume("Dt") {
                let e = try expression()
                try expect("E")
                prefix = (prefix.map { $0 + "::" } ?? "") + "decltype (" + e + ")"
            } else if peek == UInt8(ascii: "M") {
                // A data-member-prefix (lambda in an initializer): `<name> M`.
                position += 1
                continue
            } else {
                let component = try unqualifiedName(enclosing: lastComponent)
                lastComponent = component.hasPrefix("~") ? String(component.dropFirst()) : component
                prefix = (prefix.map { $0 + "::" } ?? "") + component
            }
            if peek != UInt8(ascii: "E") { substitutions.append(TypeText(left: prefix!)) }
        }
        guard let text = prefix else { throw DemangleError() }
        lastNameHadTemplateArgs = endsWithTemplateArgs
        return Name(text: text, qualifiers: qualifiers)
    }

    mutating func localName() throws -> Name {
        try expect("Z")
        // The enclosing function is printed without its return type.
        let function = try encoding(top: false, returnType: false).text
        try expect("E")
        if consume("s") {
            _ = try? discriminator()
            return Name(text: function + "::string literal")
        }
        if consume("d") {
            _ = try? number()
            try expect("_")
        }
        let entity = try name()
        _ = try? discriminator()
        return Name(text: function + "::" + entity.text, qualifiers: entity.qualifiers)
    }

    mutating func discriminator() throws {
        guard consume("_") else { throw DemangleError() }
        if consume("_") { _ = try number(); try expect("_") } else { _ = try number() }
    }

    /// Source names, operators, constructors/destructors, unnamed types and lambdas, ABI tags.
    mutating func unqualifiedName(enclosing: String?) throws -> String {
        var text: String
        if let c = peek, c >= 48, c <= 57 {
            text = try sourceName()
        } else if peek == UInt8(ascii: "C"), let k = peek(1), [UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "5"), UInt8(ascii: "I")].contains(k) {
            position += 2
            if k == UInt8(ascii: "I") { position += 1; _ = try type() } // inheriting constructor
            guard let enclosing, !enclosing.isEmpty else { throw DemangleError() }
            text = Self.baseName(enclosing)
            lastNameWasCtorDtor = true
        } else if peek == UInt8(ascii: "D"), let k = peek(1), [UInt8(ascii: "0"), UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "4"), UInt8(ascii: "5")].contains(k) {
            position += 2
            guard let enclosing, !enclosing.isEmpty else { throw DemangleError() }
            text = "~" + Self.baseName(enclosing)
            lastNameWasCtorDtor = true
        } else if consume("Ut") {
            let n = peek == UInt8(ascii: "_") ? 1 : try number() + 2
            try expect("_")
            text = "{unnamed type#\(n)}"
        } else if consume("Ul") {
            var params: [TypeText] = []
            while peek != UInt8(ascii: "E") {
                params.append(try type())
                guard params.count < 256 else { throw DemangleError() }
            }
            try expect("E")
            let n = peek == UInt8(ascii: "_") ? 1 : try number() + 2
            try expect("_")
            let list = params.count == 1 && params[0].text == "void" ? "" : params.map(\.text).joined(separator: ", ")
            text = "{lambda(\(list))#\(n)}"
        } else if consume("L") {
            text = try sourceName() // internal linkage (`L` prefix), then an optional discriminator
            if peek == UInt8(ascii: "_") { try? discriminator() }
        } else if consume("DC") {
            var names: [String] = []
            while !consume("E") { names.append(try sourceName()); guard names.count < 64 else { throw DemangleError() } }
            text = "[" + names.joined(separator: ", ") + "]"
        } else {
            text = try operatorName()
        }
        // ABI tags.
        while consume("B") { text += "[abi:" + (try sourceName()) + "]" }
        return text
    }

    static let fullStandard = [
        "std::string": "std::basic_string<char, std::char_traits<char>, std::allocator<char> >",
        "std::istream": "std::basic_istream<char, std::char_traits<char> >",
        "std::ostream": "std::basic_ostream<char, std::char_traits<char> >",
        "std::iostream": "std::basic_iostream<char, std::char_traits<char> >",
    ]

    static func baseName(_ qualified: String) -> String {
        // The last component without template arguments.
        var depth = 0
        var lastSeparator = qualified.startIndex
        var i = qualified.startIndex
        while i < qualified.endIndex {
            let c = qualified[i]
            if c == "<" || c == "(" { depth += 1 } else if c == ">" || c == ")" { depth -= 1 } else if c == ":", depth == 0, qualified[qualified.index(after: i)...].hasPrefix(":") {
                lastSeparator = qualified.index(i, offsetBy: 2)
            }
            i = qualified.index(after: i)
        }
        var last = String(qualified[lastSeparator...])
        if let angle = last.firstIndex(of: "<"), !last.hasPrefix("operator") { last = String(last[..<angle]) }
        if let bracket = last.firstIndex(of: "["), bracket != last.startIndex { last = String(last[..<bracket]) }
        return last
    }

    mutating func sourceName() throws -> String {
        let length = try number()
        guard length > 0, position + length <= input.count else { throw DemangleError() }
        let name = String(decoding: input[position..<(position + length)], as: UTF8.self)
        position += length
        if name.hasPrefix("_GLOBAL__N") { return "(anonymous namespace)" }
        return name
    }

    static let operators: [String: (String, Int)] = [
        "nw": ("new", 1), "na": ("new[]", 1), "dl": ("delete", 1), "da": ("delete[]", 1), "ps": ("+", 1), "ng": ("-", 1),
        "ad": ("&", 1), "de": ("*", 1), "co": ("~", 1), "pl": ("+", 2), "mi": ("-", 2), "ml": ("*", 2), "dv": ("/", 2),
        "rm": ("%", 2), "an": ("&", 2), "or": ("|", 2), "eo": ("^", 2), "aS": ("=", 2), "pL": ("+=", 2), "mI": ("-=", 2),
        "mL": ("*=", 2), "dV": ("/=", 2), "rM": ("%=", 2), "aN": ("&=", 2), "oR": ("|=", 2), "eO": ("^=", 2), "ls": ("<<", 2),
        "rs": (">>", 2), "lS": ("<<=", 2), "rS": (">>=", 2), "eq": ("==", 2), "ne": ("!=", 2), "lt": ("<", 2), "gt": (">", 2),
        "le": ("<=", 2), "ge": (">=", 2), "ss": ("<=>", 2), "nt": ("!", 1), "aa": ("&&", 2), "oo": ("||", 2), "pp": ("++", 1),
        "mm": ("--", 1), "cm": (",", 2), "pm": ("->*", 2), "pt": ("->", 2), "cl": ("()", 2), "ix": ("[]", 2), "qu": ("?", 3),
    ]

    mutating func operatorName() throws -> String {
        guard position + 2 <= input.count else { throw DemangleError() }
        let code = String(decoding: input[position..<(position + 2)], as: UTF8.self)
        if code == "cv" {
            position += 2
            return "operator " + (try type()).text
        }
        if code == "li" {
            position += 2
            return "operator\"\" " + (try sourceName())
        }
        if code.first == "v", let d = code.last, d.isNumber {
            position += 2
            return "operator " + (try sourceName())
        }
        guard let (symbol, _) = Self.operators[code] else { throw DemangleError() }
        position += 2
        return "operator" + (symbol.first!.isLetter ? " " : "") + symbol
    }

    // MARK: - substitutions and template parameters

    mutating func substitution() throws -> TypeText {
        try expect("S")
        let standard: [Character: String] = [
            "t": "std", "a": "std::allocator", "b": "std::basic_string",
            "s": "std::string", "i": "std::istream", "o": "std::ostream", "d": "std::iostream",
        ]
        if let c = peek, let s = standard[Character(Unicode.Scalar(c))] {
            position += 1
            // `Ss` is printed in full when it is a constructor's or destructor's class.
            return TypeText(left: s)
        }
        let index = try seqID()
        guard index < substitutions.count else { throw DemangleError() }
        return substitutions[index]
    }

    mutating func templateParam() throws -> TypeText {
        try expect("T")
        let index = try seqID()
        guard index < templateArgs.count else { throw DemangleError() }
        let arg = templateArgs[index]
        if let pack = arg.pack {
            // Inside a `Dp` pattern: the element being expanded; else the whole pack.
            if let i = packElement { return i < pack.count ? pack[i] : TypeText(left: "") }
            if expandingPack == nil { expandingPack = pack }
        }
        return arg
    }

    mutating func templateArgList(record: Bool) throws -> String {
        try expect("I")
        var args: [TypeText] = []
        while !consume("E") {
            guard peek != nil, args.count < 512 else { throw DemangleError() }
            args.append(try templateArg())
        }
        if record { templateArgs = args }
        let joined = args.map(\.text).filter { !$0.isEmpty }.joined(separator: ", ")
        // `> >`, as libiberty prints it — unless the last argument is an empty pack.
        return "<" + joined + ((args.last?.text ?? "").hasSuffix(">") ? " >" : ">")
    }

    mutating func templateArg() throws -> TypeText {
        try enter(); defer { depth -= 1 }
        if peek == UInt8(ascii: "L") { return TypeText(left: try exprPrimary()) }
        if consume("X") {
            let e = try expression()
            try expect("E")
            return TypeText(left: e)
        }
        if consume("J") {
            var pack: [TypeText] = []
            while !consume("E") {
                guard peek != nil, pack.count < 512 else { throw DemangleError() }
                pack.append(try templateArg())
            }
            var t = TypeText(left: pack.map(\.text).filter { !$0.isEmpty }.joined(separator: ", "))
            t.pack = pack
            return t
        }
        return try type()
    }

    // MARK: - types

    static let builtins: [UInt8: String] = [
        UInt8(ascii: "v"): "void", UInt8(ascii: "w"): "wchar_t", UInt8(ascii: "b"): "bool", UInt8(ascii: "c"): "char",
        UInt8(ascii: "a"): "signed char", UInt8(ascii: "h"): "unsigned char", UInt8(ascii: "s"): "short", UInt8(ascii: "t"): "unsigned short",
        UInt8(ascii: "i"): "int", UInt8(ascii: "j"): "unsigned int", UInt8(ascii: "l"): "long", UInt8(ascii: "m"): "unsigned long",
        UInt8(ascii: "x"): "long long", UInt8(ascii: "y"): "unsigned long long", UInt8(ascii: "n"): "__int128",
        UInt8(ascii: "o"): "unsigned __int128", UInt8(ascii: "f"): "float", UInt8(ascii: "d"): "double", UInt8(ascii: "e"): "long double",
        UInt8(ascii: "g"): "__float128", UInt8(ascii: "z"): "...",
    ]

    static let dBuiltins: [UInt8: String] = [
        UInt8(ascii: "n"): "decltype(nullptr)", UInt8(ascii: "i"): "char32_t", UInt8(ascii: "s"): "char16_t", UInt8(ascii: "u"): "char8_t",
        UInt8(ascii: "a"): "auto", UInt8(ascii: "c"): "decltype(auto)", UInt8(ascii: "d"): "decimal64", UInt8(ascii: "e"): "decimal128",
        UInt8(ascii: "f"): "decimal32", UInt8(ascii: "h"): "half",
    ]

    mutating func type() throws -> TypeText {
        try enter(); defer { depth -= 1 }
        guard let c = peek else { throw DemangleError() }
        if let b = Self.builtins[c] { position += 1; return TypeText(left: b) }
        switch c {
        case UInt8(ascii: "U") where peek(1) != UInt8(ascii: "t") && peek(1) != UInt8(ascii: "l"):
            // A vendor qualifier (`U17pass_object_size1i`): printed after the type it qualifies.
            position += 1
            let qualifier = try sourceName()
            let args = peek == UInt8(ascii: "I") ? try templateArgList(record: false) : ""
            var inner = try type()
            inner.left += " " + qualifier + args
            substitutions.append(inner)
            return inner
        case UInt8(ascii: "u"):
            position += 1
            let t = TypeText(left: try sourceName())
            substitutions.append(t)
            return t
        case UInt8(ascii: "D"):
            if let k = peek(1), let b = Self.dBuiltins[k] { position += 2; return TypeText(left: b) }
            if peek(1) == UInt8(ascii: "p") { // pack expansion: the pattern once per element of the pack it names
                position += 2
                let start = position
                let savedExpansion = expandingPack
                expandingPack = nil
                packElement = nil
                var t = try type()
                let end = position
                if let pack = expandingPack {
                    let savedSubstitutions = substitutions
                    var parts: [String] = []
                    for i in pack.indices {
                        position = start
                        packElement = i
                        parts.append(try type().text)
                        substitutions = savedSubstitutions
                    }
                    packElement = nil
                    position = end
                    t = TypeText(left: parts.filter { !$0.isEmpty }.joined(separator: ", "))
                }
                expandingPack = savedExpansion
                substitutions.append(t)
                return t
            }
            if peek(1) == UInt8(ascii: "t") || peek(1) == UInt8(ascii: "T") {
                position += 2
                let e = try expression()
                try expect("E")
                let t = TypeText(left: "decltype (" + e + ")")
                substitutions.append(t)
                return t
            }
            if peek(1) == UInt8(ascii: "F") { // _FloatN
                position += 2
                let n = try number()
                try expect("_")
                return TypeText(left: "_Float\(n)")
            }
            if peek(1) == UInt8(ascii: "x") || peek(1) == UInt8(ascii: "o") || peek(1) == UInt8(ascii: "O") || peek(1) == UInt8(ascii: "w") {
                // Exception specifications before a function type.
                position += 2
                if input[position - 1] == UInt8(ascii: "O") { _ = try expression(); try expect("E") }
                if input[position - 1] == UInt8(ascii: "w") { while !consume("E") { _ = try type() } }
                return try type()
            }
            throw DemangleError()
        case UInt8(ascii: "K"), UInt8(ascii: "V"), UInt8(ascii: "r"):
            let restrict = consume("r"), volatile = consume("V"), const = consume("K")
            var inner = try type()
            // A qualifier the type has already (a `T_` that is `X const`) is not repeated.
            let have = inner.isFunction ? inner.right : inner.left
            func present(_ q: String) -> Bool { have.hasSuffix(q) || have.contains(q + " ") }
            var quals = ""
            if const, !present(" const") { quals += " const" }
            if volatile, !present(" volatile") { quals += " volatile" }
            if restrict, !present(" restrict") { quals += " restrict" }
            if inner.isFunction {
                inner.right += quals
            } else {
                inner.left += quals
            }
            substitutions.append(inner)
            return inner
        case UInt8(ascii: "P"), UInt8(ascii: "R"), UInt8(ascii: "O"):
            position += 1
            var inner = try type()
            var kind = c == UInt8(ascii: "R") ? 1 : c == UInt8(ascii: "O") ? 2 : 0
            // A reference to a reference collapses: & wins over &&.
            if kind != 0, inner.referenceKind != 0, let referent = inner.referent.first {
                kind = min(kind, inner.referenceKind)
                inner = referent
            }
            let symbol = kind == 0 ? "*" : kind == 1 ? "&" : "&&"
            var t: TypeText
            if inner.needsParens {
                t = TypeText(left: inner.left + (inner.left.hasSuffix(" ") ? "" : " ") + "(" + symbol, right: ")" + inner.right)
            } else {
                t = TypeText(left: inner.left + symbol, right: inner.right)
            }
            t.needsParens = false
            if kind != 0 { t.referenceKind = kind; t.referent = [inner] }
            substitutions.append(t)
            return t
        case UInt8(ascii: "C"), UInt8(ascii: "G"):
            position += 1
            let inner = try type()
            let t = TypeText(left: inner.left + (c == UInt8(ascii: "C") ? " _Complex" : " _Imaginary"), right: inner.right)
            substitutions.append(t)
            return t
        case UInt8(ascii: "F"):
            let t = try functionType()
            substitutions.append(t)
            return t
        case UInt8(ascii: "A"):
            position += 1
            var dimension = ""
            if let d = peek, d >= 48, d <= 57 {
                dimension = String(try number())
            } else if peek != UInt8(ascii: "_") {
                dimension = try expression()
            }
            try expect("_")
            let element = try type()
            let t = TypeText(left: element.left, right: " [" + dimension + "]" + element.right, needsParens: true)
            substitutions.append(t)
            return t
        case UInt8(ascii: "M"):
            position += 1
            let klass = try type()
            let member = try type()
            let t: TypeText
            if member.isFunction {
                t = TypeText(left: member.left + "(" + klass.text + "::*", right: ")" + member.right)
            } else {
                t = TypeText(left: member.left + " " + klass.text + "::*", right: member.right)
            }
            substitutions.append(t)
            return t
        case UInt8(ascii: "T"):
            let t = try templateParam()
            substitutions.append(t)
            return try applyingTemplateArgs(to: t)
        case UInt8(ascii: "S"):
            if peek(1) == UInt8(ascii: "t") { return try namedType() }
            return try applyingTemplateArgs(to: try substitution())
        case UInt8(ascii: "N"), UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try namedType()
        default:
            throw DemangleError()
        }
    }

    /// A class or enum type spelled as a <name>; the name's own template arguments must not
    /// replace those the enclosing function's T_ parameters refer to.
    mutating func namedType() throws -> TypeText {
        let saved = templateArgs
        let n = try name()
        templateArgs = saved
        let t = TypeText(left: n.text)
        substitutions.append(t)
        return t
    }

    /// `base` followed by template arguments is a type of its own and a substitution candidate.
    mutating func applyingTemplateArgs(to base: TypeText) throws -> TypeText {
        guard peek == UInt8(ascii: "I") else { return base }
        let args = try templateArgList(record: false)
        let t = TypeText(left: base.text + args)
        substitutions.append(t)
        return t
    }

    mutating func functionType() throws -> TypeText {
        try expect("F")
        _ = consume("Y") // extern "C"
        let result = try type()
        var params: [TypeText] = []
        var refQualifier = ""
        while true {
            if consume("E") { break }
            if peek == UInt8(ascii: "R"), peek(1) == UInt8(ascii: "E") { position += 2; refQualifier = " &"; break }
            if peek == UInt8(ascii: "O"), peek(1) == UInt8(ascii: "E") { position += 2; refQualifier = " &&"; break }
            guard peek != nil, params.count < 512 else { throw DemangleError() }
            params.append(try type())
        }
        let list = params.count == 1 && params[0].text == "void" ? "" : params.map(\.text).filter { !$0.isEmpty }.joined(separator: ", ")
        return TypeText(left: result.left + " ", right: "(" + list + ")" + refQualifier + result.right, needsParens: true, isFunction: true)
    }

    // MARK: - expressions (template arguments, decltype, array bounds)

    mutating func exprPrimary() throws -> String {
        try expect("L")
        if consume("_Z") {
            let e = try encoding(top: false).text
            try expect("E")
            return e
        }
        let t = try type()
        var value = ""
        while let c = peek, c != UInt8(ascii: "E") {
            value.append(Character(Unicode.Scalar(c)))
            position += 1
            guard value.count < 256 else { throw DemangleError() }
        }
        try expect("E")
        let negative = value.hasPrefix("n")
        let digits = negative ? "-" + value.dropFirst() : value
        switch t.text {
        case "bool": return value == "0" ? "false" : value == "1" ? "true" : "(bool)" + digits
        case "int": return digits
        case "unsigned int": return digits + "u"
        case "long": return digits + "l"
        case "unsigned long": return digits + "ul"
        case "long long": return digits + "ll"
        case "unsigned long long": return digits + "ull"
        case "decltype(nullptr)": return "nullptr"
        default: return "(" + t.text + ")" + digits
        }
    }

    mutating func expression() throws -> String {
        try enter(); defer { depth -= 1 }
        guard let c = peek else { throw DemangleError() }
        if c == UInt8(ascii: "L") { return try exprPrimary() }
        if c == UInt8(ascii: "T") { return try templateParam().text }
        if consume("fp") {
            _ = consume("K"); _ = consume("V"); _ = consume("r")
            if consume("_") { return "{parm#1}" }
            let n = try number()
            try expect("_")
            return "{parm#\(n + 2)}"
        }
        if consume("sr") {
            let t = try type()
            let n = try unqualifiedName(enclosing: nil)
            var text = t.text + "::" + n
            if peek == UInt8(ascii: "I") { text += try templateArgList(record: false) }
            return text
        }
        if consume("st") { return "sizeof (" + (try type()).text + ")" }
        if consume("sz") { return "sizeof (" + (try expression()) + ")" }
        if consume("at") { return "alignof (" + (try type()).text + ")" }
        if consume("sZ") { return "sizeof...(" + (try templateParam()).text + ")" }
        guard position + 2 <= input.count else { throw DemangleError() }
        let code = String(decoding: input[position..<(position + 2)], as: UTF8.self)
        if let (symbol, arity) = Self.operators[code] {
            position += 2
            switch arity {
            case 1: return symbol + "(" + (try expression()) + ")"
            case 2:
                let a = try expression(), b = try expression()
                return "(" + a + ")" + symbol + "(" + b + ")"
            default:
                let a = try expression(), b = try expression(), d = try expression()
                return "(" + a + ")?(" + b + "):(" + d + ")"
            }
        }
        throw DemangleError()
    }
}
