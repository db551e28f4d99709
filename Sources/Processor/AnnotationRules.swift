import Foundation
import JSONSupport

// Rules over annotations that need more than a copy (processor.md §3, rules 5, 7, 8, 23, 26).

/// `ModuleSignatureInfo` sent as an object is kept as JSON text, as clients send it as a string.
struct ConvertModuleSignatureInfoRule: ProcessorRule {
    let name = "ConvertModuleSignatureInfo"
    func run(_ s: inout ProcessingState) async throws {
        if case .object? = s.raw["ModuleSignatureInfo"] { s.raw["ModuleSignatureInfo"] = .string(s.raw["ModuleSignatureInfo"]!.serialized()) }
    }
}

/// Fenix nightlies report `Nightly YYMMDD HH:MM` as their version: that is `0.0a1`.
/// On the `esr` channel, the version gets its `esr` suffix.
struct VersionRewriteRule: ProcessorRule {
    let name = "VersionRewrite"
    func run(_ s: inout ProcessingState) async throws {
        guard let version = s.processed["version"]?.stringValue else {
            if s.processed["release_channel"] == .string("esr") { s.notes.append("ESRVersionRewrite: no version to rewrite") }
            return
        }
        if s.processed["product"] == .string("Fenix"), version.range(of: #"^Nightly \d{6} \d{2}:\d{2}"#, options: .regularExpression) != nil {
            s.processed["version"] = .string("0.0a1")
        } else if s.processed["release_channel"] == .string("esr"), !version.hasSuffix("esr") {
            s.processed["version"] = .string(version + "esr")
        }
    }
}

/// `addons`: `id:version` for each entry of the `Add-ons` annotation (URL-encoded, comma-separated;
/// a missing version gives `id:NO_VERSION`); `addons_checked` from `EMCheckCompatibility`.
struct AddonsRule: ProcessorRule {
    let name = "Addons"
    func run(_ s: inout ProcessingState) async throws {
        if let checked = s.rawString("EMCheckCompatibility") { s.processed["addons_checked"] = .bool(checked.lowercased() == "true") }
        guard let text = s.rawString("Add-ons"), !text.isEmpty else { return }
        var addons: [JSONValue] = []
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map { Self.unquotePlus(String($0)) }
            guard let id = parts.first, !id.isEmpty else { continue }
            let version = parts.count > 1 && !parts[1].isEmpty ? parts[1] : "NO_VERSION"
            addons.append(.string("\(id):\(version)"))
        }
        s.processed["addons"] = .array(addons)
    }

    /// Python's `unquote_plus`: `+` is a space, `%XX` a byte (invalid escapes are kept).
    static func unquotePlus(_ s: String) -> String {
        let spaced = s.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}

/// PHC (probabilistic heap checker) fields (protected).
struct PHCRule: ProcessorRule {
    let name = "PHC"
    func run(_ s: inout ProcessingState) async throws {
        guard let kind = s.rawString("PHCKind") else { return }
        s.processed["phc_kind"] = .string(kind)
        if let base = s.rawString("PHCBaseAddress") { s.processed["phc_base_address"] = .string(base) }
        if let size = s.rawString("PHCUsableSize") {
            if let n = Int64(size) { s.processed["phc_usable_size"] = .int(n) } else { s.notes.append("PHC: PHCUsableSize is not an integer") }
        }
        if let alloc = s.rawString("PHCAllocStack") { s.processed["phc_alloc_stack"] = .string(alloc) }
        if let free = s.rawString("PHCFreeStack") { s.processed["phc_free_stack"] = .string(free) }
    }
}
