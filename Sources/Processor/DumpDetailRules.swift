import Foundation
import JSONSupport

// Rules that lift details of the stackwalk output and a few annotations into processed fields
// (processor.md §3, rules 13, 16–18, 29–32).

/// `json_dump.modules[].symbol_url`: no URLs of this machine, no query strings (tokens).
struct ModuleURLRewriteRule: ProcessorRule {
    let name = "ModuleURLRewrite"
    func run(_ s: inout ProcessingState) async throws {
        guard case .object(var dump)? = s.processed["json_dump"], let at = dump.firstIndex(where: { $0.0 == "modules" }),
              case .array(var modules) = dump[at].1 else { return }
        for i in modules.indices {
            guard case .object(var fields) = modules[i], let u = fields.firstIndex(where: { $0.0 == "symbol_url" }),
                  case .string(let url) = fields[u].1 else { continue }
            let host = URLComponents(string: url)?.host ?? ""
            if ["localhost", "127.0.0.1", "::1"].contains(host) || host.hasSuffix(".localhost") {
                fields[u].1 = .null
            } else if let q = url.firstIndex(of: "?") {
                fields[u].1 = .string(String(url[..<q]))
            }
            modules[i] = .object(fields)
        }
        dump[at].1 = .array(modules)
        s.processed["json_dump"] = .object(dump)
    }
}

/// `possible_bit_flips_max_confidence` (0–100), `crash_inconsistencies`, `has_guard_page_access`.
struct CrashAnalysisRule: ProcessorRule {
    let name = "CrashAnalysis"
    func run(_ s: inout ProcessingState) async throws {
        guard let info = s.processed["json_dump"]?["crash_info"] else { return }
        let confidences = (info["possible_bit_flips"]?.arrayValue ?? []).compactMap { flip -> Double? in
            switch flip["confidence"] { case .double(let d)?: return d; case .int(let i)?: return Double(i); default: return nil }
        }
        if let best = confidences.max() { s.processed["possible_bit_flips_max_confidence"] = .int(Int64((best * 100).rounded())) }
        if let list = info["crash_inconsistencies"], case .array(let items) = list, !items.isEmpty { s.processed["crash_inconsistencies"] = list }
        let accesses = info["memory_accesses"]?.arrayValue ?? []
        if !accesses.isEmpty {
            s.processed["has_guard_page_access"] = .bool(accesses.contains { $0["is_likely_guard_page"] == .bool(true) })
        }
    }
}

/// `mac_boot_args`/`has_mac_boot_args` and `mac_crash_info` (sorted JSON text, when it has records).
struct MacDetailsRule: ProcessorRule {
    let name = "MacDetails"
    func run(_ s: inout ProcessingState) async throws {
        s.processed["mac_crash_info"] = nil
        if let args = s.processed["json_dump"]?["mac_boot_args"]?.stringValue?.trimmingCharacters(in: .whitespaces), !args.isEmpty {
            s.processed["mac_boot_args"] = .string(args)
            s.processed["has_mac_boot_args"] = .bool(true)
        }
        if let info = s.processed["json_dump"]?["mac_crash_info"], (info["num_records"]?.intValue ?? 0) > 0 {
            s.processed["mac_crash_info"] = .string(info.sortedSerialization(pretty: false))
        }
    }
}

/// `moz_crash_reason_raw` (protected) and `moz_crash_reason`, with the dynamic messages that can
/// carry user data replaced.
struct MozCrashReasonRule: ProcessorRule {
    let name = "MozCrashReason"
    static let disallowedPrefixes = ["Failed to load module", "byte index", "do not use eval with system privileges"]
    func run(_ s: inout ProcessingState) async throws {
        guard let reason = s.rawString("MozCrashReason"), !reason.isEmpty else { return }
        s.processed["moz_crash_reason_raw"] = .string(reason)
        s.processed["moz_crash_reason"] = .string(Self.disallowedPrefixes.contains { reason.hasPrefix($0) } ? "sanitized--see moz_crash_reason_raw" : reason)
    }
}

/// Small annotation fields: `utility_actors_name` (list), `submitted_from`/`submitted_from_infobar`,
/// `distribution_id`, `accessibility`.
struct AnnotationDetailsRule: ProcessorRule {
    let name = "AnnotationDetails"
    func run(_ s: inout ProcessingState) async throws {
        if let actors = s.rawString("UtilityActorsName") {
            s.processed["utility_actors_name"] = .array(actors.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })
        }
        if let from = s.rawString("SubmittedFrom") { s.processed["submitted_from"] = .string(from) }
        if let infobar = s.rawString("SubmittedFromInfobar") { s.processed["submitted_from_infobar"] = .bool(infobar == "1" || infobar.lowercased() == "true") }
        if let id = s.rawString("DistributionID") { s.processed["distribution_id"] = .string(id) }
        if let a = s.rawString("Accessibility") { s.processed["accessibility"] = .bool(!a.isEmpty && a != "0" && a.lowercased() != "false") }
    }
}
