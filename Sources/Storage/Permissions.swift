/// Every permission Postmortem checks, once: its code name (what grants and tokens store), a
/// stable numeric id (Tecken's token API names permissions by id) and the name people read.
/// Crash Stats and the symbol server share accounts, tokens and this list.
public enum PermissionCatalog {
    public struct Permission: Sendable, Equatable {
        public let id: Int
        public let codename: String
        public let name: String
    }

    public static let all: [Permission] = [
        Permission(id: 1, codename: "view_pii", name: "View Personal Identifiable Information"),
        Permission(id: 2, codename: "view_rawdump", name: "View Raw Dumps"),
        Permission(id: 3, codename: "reprocess_crashes", name: "Reprocess Crashes"),
        Permission(id: 4, codename: "run_custom_queries", name: "Run Custom Queries in Super Search"),
        Permission(id: 5, codename: "run_long_queries", name: "Run Long Queries"),
        Permission(id: 6, codename: "upload_symbols", name: "Upload Symbols Files"),
        Permission(id: 7, codename: "upload_try_symbols", name: "Upload Try Symbols Files"),
        Permission(id: 8, codename: "view_all_uploads", name: "View All Symbols Uploads"),
        Permission(id: 9, codename: "manage_tokens", name: "Manage Your API Tokens"),
    ]

    public static let codenames = all.map(\.codename)

    public static func named(_ codename: String) -> Permission? { all.first { $0.codename == codename } }
    public static func withID(_ id: Int) -> Permission? { all.first { $0.id == id } }
}
