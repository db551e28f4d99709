import Foundation
import JSONSupport
import Storage

// Rules about the product build and its extras (processor.md §3, rules 20, 40, 45, 47).

/// Legacy NPAPI plugin crashes: `plugin_filename`, `plugin_name`, `plugin_version` for crashes of
/// a `plugin` process.
struct PluginRule: ProcessorRule {
    let name = "Plugin"
    func run(_ s: inout ProcessingState) async throws {
        guard s.rawString("ProcessType") == "plugin" else { return }
        s.processed["plugin_filename"] = .string(s.rawString("PluginFilename") ?? "")
        s.processed["plugin_name"] = .string(s.rawString("PluginName") ?? "")
        s.processed["plugin_version"] = .string(s.rawString("PluginVersion") ?? "")
    }
}

/// Where the real version string of a build comes from.
protocol VersionStringLookup: Sendable {
    func versionStrings(product: String, channel: String, buildID: String) async throws -> [String]
}

extension MetadataStore: VersionStringLookup {}

/// Beta and aurora builds of some products report their release's version (`65.0` for
/// `65.0b3`): for the configured products, the real version is looked up by build id among the
/// recorded product versions; without one, the version gets a `b0` suffix and a note says so.
/// Lookups are cached for the life of the process (a miss for 30 minutes, since the version may
/// be recorded later).
struct BetaVersionRule: ProcessorRule {
    let name = "BetaVersion"
    let products: Set<String>
    let lookup: any VersionStringLookup
    let cache = VersionCache()

    func run(_ s: inout ProcessingState) async throws {
        guard let product = s.processed["product"]?.stringValue?.trimmingCharacters(in: .whitespaces).lowercased(),
              products.contains(product),
              let channel = s.processed["release_channel"]?.stringValue?.trimmingCharacters(in: .whitespaces),
              ["beta", "aurora"].contains(channel.lowercased()) else { return }
        guard let buildID = s.processed["build"]?.stringValue?.trimmingCharacters(in: .whitespaces), !buildID.isEmpty else {
            s.notes.append("BetaVersion: no build id to look up the \(channel) version")
            return
        }
        let key = "\(product)\u{0}\(channel)\u{0}\(buildID)"
        let real: String?
        if let cached = cache.get(key) {
            real = cached
        } else {
            real = try await lookup.versionStrings(product: s.processed["product"]?.stringValue ?? product, channel: channel, buildID: buildID).first
            cache.set(key, real, ttl: real == nil ? 1800 : 86_400)
        }
        if let real {
            s.processed["version"] = .string(real)
        } else {
            let version = s.processed["version"]?.stringValue ?? ""
            s.processed["version"] = .string(version + "b0")
            s.notes.append("release channel is \(channel) but no version data was found - added 'b0' suffix to version number")
        }
    }

    /// A small expiring cache (keys and values are short strings).
    final class VersionCache: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String: (value: String?, expires: Date)] = [:]
        static let capacity = 5_000

        func get(_ key: String) -> String?? {
            lock.lock(); defer { lock.unlock() }
            guard let e = entries[key], e.expires > Date() else { return nil }
            return .some(e.value)
        }

        func set(_ key: String, _ value: String?, ttl: TimeInterval) {
            lock.lock(); defer { lock.unlock() }
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (value, Date().addingTimeInterval(ttl))
        }
    }
}

/// Firefox's default theme appears in `addons` under its internal id: it gets a readable name.
struct ThemePrettyNameRule: ProcessorRule {
    let name = "ThemePrettyName"
    static let conversions = ["{972ce4c6-7e08-4474-a285-3208198ce6fd}": "{972ce4c6-7e08-4474-a285-3208198ce6fd} (default theme)"]

    func run(_ s: inout ProcessingState) async throws {
        guard case .array(let addons)? = s.processed["addons"] else { return }
        var changed = false
        let renamed: [JSONValue] = addons.map { addon in
            guard case .string(let text) = addon else { return addon }
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let id = parts.first.map(String.init), let pretty = Self.conversions[id] else { return addon }
            changed = true
            return .string(parts.count > 1 ? "\(pretty):\(parts[1])" : pretty)
        }
        if changed { s.processed["addons"] = .array(renamed) }
    }
}

/// `soft_errors` (protected): the problems the dump reported about itself, from the stackwalker.
struct SoftErrorsRule: ProcessorRule {
    let name = "SoftErrors"
    func run(_ s: inout ProcessingState) async throws {
        guard let errors = s.processed["json_dump"]?["soft_errors"], errors != .null else { return }
        s.processed["soft_errors"] = errors
    }
}
