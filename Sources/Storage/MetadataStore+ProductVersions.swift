import Crypto
import Foundation
import JSONSupport
import SQLKit

/// Build ids and the version strings of product builds (`postmortem versions`, VersionString).
extension MetadataStore {
    // MARK: - product versions

    /// Records that `buildID` of `product` on `channel` is `version` (idempotent).
    public func addProductVersion(product: String, channel: String, buildID: String, version: String) async throws {
        let now = clock()
        try await database.write { db in
            try await db.raw("""
                INSERT INTO product_versions (product, release_channel, build_id, version_string, created_at)
                VALUES (\(bind: product), \(bind: channel), \(bind: buildID), \(bind: version), \(bind: now))
                ON CONFLICT DO NOTHING
                """).run()
        }
    }

    /// The version strings of a build, as the VersionString API answers: on beta and aurora, if
    /// any candidate is a beta (`b`), release candidates (`rc`) are dropped; otherwise only
    /// release candidates are kept. Sorted, highest first.
    public func versionStrings(product: String, channel: String, buildID: String) async throws -> [String] {
        let rows = try await database.withConnection { db in
            try await db.raw("""
                SELECT version_string FROM product_versions
                WHERE product = \(bind: product) AND release_channel = \(bind: channel) AND build_id = \(bind: buildID)
                """).all()
        }
        var versions = try rows.map { try $0.decode(column: "version_string", as: String.self) }
        if ["beta", "aurora"].contains(channel.lowercased()) {
            if versions.contains(where: { $0.contains("b") }) { versions.removeAll { $0.contains("rc") } }
            else { versions = versions.filter { $0.contains("rc") } }
        }
        return versions.sorted { $0.compare($1, options: .numeric) == .orderedDescending }
    }

    /// All recorded builds, newest first.
    public func productVersions(product: String? = nil, limit: Int = 100) async throws -> [(product: String, channel: String, buildID: String, version: String)] {
        var query: SQLQueryString = "SELECT product, release_channel, build_id, version_string FROM product_versions"
        if let product { query += " WHERE product = \(bind: product)" }
        query += " ORDER BY build_id DESC, version_string DESC LIMIT \(bind: limit)"
        let q = query
        return try await database.withConnection { db in try await db.raw(q).all() }.map { row in
            (try row.decode(column: "product", as: String.self), try row.decode(column: "release_channel", as: String.self),
             try row.decode(column: "build_id", as: String.self), try row.decode(column: "version_string", as: String.self))
        }
    }
}
