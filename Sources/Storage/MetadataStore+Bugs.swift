import Foundation
import SQLKit

/// Bug associations: which bugs were filed for which signatures.
extension MetadataStore {
    public struct BugAssociation: Sendable, Equatable {
        public let bugID: Int64
        public let signature: String
    }

    /// Associates a bug with a signature; true when the association is new.
    @discardableResult
    public func associateBug(_ bugID: Int64, signature: String) async throws -> Bool {
        try await database.write { db in
            try await db.raw("""
                INSERT INTO bug_associations (bug_id, signature, created_at) VALUES (\(bind: bugID), \(bind: signature), \(bind: now))
                ON CONFLICT (bug_id, signature) DO NOTHING RETURNING bug_id
                """).all().count == 1
        }
    }

    /// Removes an association; true when there was one.
    @discardableResult
    public func removeBugAssociation(_ bugID: Int64, signature: String) async throws -> Bool {
        try await database.write { db in
            try await db.raw("DELETE FROM bug_associations WHERE bug_id = \(bind: bugID) AND signature = \(bind: signature) RETURNING bug_id")
                .all().count == 1
        }
    }

    /// Associations of these signatures, plus every association of the bugs they name (Crash
    /// Stats' Bugs model lists the related signatures too), by bug then signature.
    public func bugs(forSignatures signatures: [String]) async throws -> [BugAssociation] {
        guard !signatures.isEmpty else { return [] }
        return try await database.withConnection { db in
            var list: SQLQueryString = ""
            for (i, s) in signatures.enumerated() { list += i == 0 ? "\(bind: s)" : ", \(bind: s)" }
            return try await db.raw("""
                SELECT bug_id, signature FROM bug_associations WHERE bug_id IN
                    (SELECT bug_id FROM bug_associations WHERE signature IN (\(list)))
                ORDER BY bug_id, signature LIMIT 10000
                """).all().map { BugAssociation(bugID: try $0.decode(column: "bug_id", as: Int64.self), signature: try $0.decode(column: "signature", as: String.self)) }
        }
    }

    /// Associations of these bugs, by bug then signature.
    public func signatures(forBugs bugIDs: [Int64]) async throws -> [BugAssociation] {
        guard !bugIDs.isEmpty else { return [] }
        return try await database.withConnection { db in
            var list: SQLQueryString = ""
            for (i, b) in bugIDs.enumerated() { list += i == 0 ? "\(bind: b)" : ", \(bind: b)" }
            return try await db.raw("""
                SELECT bug_id, signature FROM bug_associations WHERE bug_id IN (\(list)) ORDER BY bug_id, signature LIMIT 10000
                """).all().map { BugAssociation(bugID: try $0.decode(column: "bug_id", as: Int64.self), signature: try $0.decode(column: "signature", as: String.self)) }
        }
    }
}
