import CrashStats
import ArgumentParser
import Foundation
import ServiceSupport
import Storage

/// The permissions Postmortem checks (`PermissionCatalog`).
let knownPermissions = PermissionCatalog.codenames

func checkPermission(_ p: String) throws {
    guard knownPermissions.contains(p) else { throw ValidationError("unknown permission \(p); known: \(knownPermissions.joined(separator: ", "))") }
}

/// Who runs a command, for the audit log.
var commandActor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown") }

func account(_ storage: StorageContext, _ email: String) async throws -> Account {
    guard let a = try await storage.metadata.account(email: email) else {
        await storage.close()
        throw fail("no account \(email)")
    }
    return a
}

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Accounts and their permissions.",
        subcommands: [Create.self, SetPassword.self, List.self, Grant.self, Revoke.self, Audit.self, Deactivate.self, Reactivate.self,
                      PolicyException.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an account.")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        @Option var name = ""
        @Flag(help: "All permissions, present and future.") var superuser = false
        @Flag(name: .customLong("password-stdin"), help: "Read a password for web sign-in from standard input (first line).") var passwordStdin = false

        func run() async throws {
            guard email.contains("@") else { throw ValidationError("\(email) is not an email address") }
            let hash = passwordStdin ? try await readPasswordHash() : nil
            let context = try await storage.open()
            if try await context.metadata.account(email: email) != nil { await context.close(); throw fail("\(email) already exists") }
            let a = try await context.metadata.createAccount(email: email, name: name, superuser: superuser)
            if let hash { try await context.metadata.setPasswordHash(hash, accountID: a.id, actor: "cli") }
            await context.close()
            FileHandleOutput.stdout("created account \(a.id) \(a.email)\(superuser ? " (superuser)" : "")\(hash != nil ? " with a password" : "")\n")
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-password",
                                                        abstract: "Set an account's web sign-in password, read from standard input (first line); ends its sessions.")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String

        func run() async throws {
            let hash = try await readPasswordHash()
            let context = try await storage.open()
            guard let account = try await context.metadata.account(email: email) else { await context.close(); throw fail("no account \(email)") }
            try await context.metadata.setPasswordHash(hash, accountID: account.id, actor: "cli")
            await context.close()
            FileHandleOutput.stdout("password set for \(account.email)\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List accounts with their permissions.")
        @OptionGroup var storage: StorageOptions

        func run() async throws {
            let context = try await storage.open()
            let all = try await context.metadata.accounts()
            await context.close()
            FileHandleOutput.stdout(all.map { a in
                "\(a.id)\t\(a.email)\t\(a.isSuperuser ? "superuser" : a.permissions.sorted().joined(separator: ","))\(a.isActive ? "" : "\tinactive")\n"
            }.joined())
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "grant", abstract: "Give an account a permission.")
        @OptionGroup var change: PermissionChange
        func run() async throws { try await change.apply(grant: true) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Take a permission away (the account's tokens lose it too).")
        @OptionGroup var change: PermissionChange
        func run() async throws { try await change.apply(grant: false) }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "Remove protected-group memberships the access policy no longer allows (also daily in serve and webapp).",
            discussion: """
            A member of access.protected_groups (default Hackers, Hackers Plus) loses the membership when the account is \
            inactive, when its email domain is not in access.employee_domains (when set) and it has no live policy exception, or \
            when it has not signed in for access.inactive_days (default 365) and holds no unexpired token. Each removal is in \
            the audit log by auditgroups, with its reason.
            """)
        @OptionGroup var storage: StorageOptions
        @Flag(help: "List what would be removed; change nothing.") var dryRun = false

        func run() async throws {
            let configuration = try await storage.loadConfiguration()
            let context = try await storage.open(configuration)
            let audit: AccessAudit
            do { audit = try accessAudit(configuration, metadata: context.metadata) } catch {
                await context.close()
                throw ValidationError("\(error)")
            }
            let removals: [AccessAudit.Removal]
            do { removals = try await audit.run(dryRun: dryRun) } catch {
                await context.close()
                throw fail("audit failed: \(error)")
            }
            await context.close()
            for r in removals { FileHandleOutput.stdout("\(dryRun ? "would remove" : "removed") \(r.email) from \(r.group): \(r.reason)\n") }
            FileHandleOutput.stdout("\(removals.count) membership\(removals.count == 1 ? "" : "s") \(dryRun ? "would be " : "")removed\n")
        }
    }

    struct Deactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "deactivate",
                                                        abstract: "Deactivate an account: its sessions end and its tokens stop working at once.")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        @Option(help: "Why, for the audit log.") var reason = ""
        func run() async throws {
            let context = try await storage.open()
            let a = try await account(context, email)
            try await context.metadata.setActive(accountID: a.id, active: false, actor: commandActor, reason: reason)
            await context.close()
            FileHandleOutput.stdout("deactivated \(a.email)\n")
        }
    }

    struct Reactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reactivate", abstract: "Reactivate an account (its groups are not given back).")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        func run() async throws {
            let context = try await storage.open()
            let a = try await account(context, email)
            try await context.metadata.setActive(accountID: a.id, active: true, actor: commandActor)
            await context.close()
            FileHandleOutput.stdout("reactivated \(a.email)\n")
        }
    }

    struct PolicyException: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exception",
            abstract: "Record a protected-data policy exception for someone outside the employee domains (or remove it).")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        @Option(help: "Why the exception was granted.") var notes = ""
        @Option(help: "Days until it expires (none: no end).") var days: Int?
        @Flag(help: "Remove the account's exception.") var remove = false

        func validate() throws {
            if let days, !(1...36_500).contains(days) { throw ValidationError("--days must be 1 to 36500") }
            guard notes.utf8.count <= 1000 else { throw ValidationError("--notes may have at most 1000 characters") }
        }

        func run() async throws {
            let context = try await storage.open()
            let a = try await account(context, email)
            if remove {
                let removed = try await context.metadata.removePolicyException(accountID: a.id, actor: commandActor)
                await context.close()
                FileHandleOutput.stdout(removed ? "removed the policy exception of \(a.email)\n" : "\(a.email) had no policy exception\n")
                return
            }
            let expires = days.map { context.metadata.now + Int64($0) * 86_400 * 1_000_000 }
            try await context.metadata.setPolicyException(accountID: a.id, grantedBy: commandActor, notes: notes, expiresAt: expires)
            await context.close()
            FileHandleOutput.stdout("policy exception recorded for \(a.email)\(days.map { " for \($0) days" } ?? "")\n")
        }
    }

    /// The arguments of `grant` and `revoke`.
    struct PermissionChange: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        @Argument var permission: String
        func validate() throws { try checkPermission(permission) }

        func apply(grant: Bool) async throws {
            let context = try await storage.open()
            let a = try await account(context, email)
            if grant {
                try await context.metadata.grant(permission, to: a.id, actor: commandActor)
            } else {
                try await context.metadata.revoke(permission, from: a.id, actor: commandActor)
            }
            await context.close()
        }
    }
}

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens", abstract: "API tokens (Auth-Token header): create, list, revoke; and the audit log.",
        subcommands: [Create.self, List.self, Revoke.self, Audit.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a token for an account; it is printed once and stored hashed.")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        @Option(name: .customLong("permission"), help: "A permission the token carries (the owner must hold it). Repeatable.") var permissions: [String] = []
        @Option var notes = ""
        @Option(help: "Days until the token expires.") var days = 365
        func validate() throws {
            for p in permissions { try checkPermission(p) }
            guard (1...3650).contains(days) else { throw ValidationError("--days must be 1…3650") }
        }

        func run() async throws {
            let context = try await storage.open()
            let a = try await account(context, email)
            let lacking = Set(permissions).subtracting(a.permissions)
            if !a.isSuperuser && !lacking.isEmpty {
                await context.close()
                throw fail("\(email) does not have \(lacking.sorted().joined(separator: ", "))")
            }
            let (text, token) = try await context.metadata.createToken(accountID: a.id, permissions: Set(permissions), notes: notes,
                                                                       lifetime: .seconds(Int64(days) * 86_400), actor: commandActor)
            await context.close()
            FileHandleOutput.stderr("token \(token.id) for \(a.email); shown only now:\n")
            FileHandleOutput.stdout(text + "\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (id, owner, prefix, permissions, expiry), never their secret.")
        @OptionGroup var storage: StorageOptions
        @Argument var email: String?

        func run() async throws {
            let context = try await storage.open()
            let owner = try await email.asyncMap { try await account(context, $0) }
            let tokens = try await context.metadata.tokens(accountID: owner?.id)
            await context.close()
            FileHandleOutput.stdout(tokens.map { t in
                let expires = Date(timeIntervalSince1970: Double(t.expiresAt) / 1_000_000)
                return "\(t.id)\taccount:\(t.accountID)\t\(t.prefix)…\t\(t.permissions.sorted().joined(separator: ","))\texpires \(ISO8601DateFormatter().string(from: expires))\t\(t.notes)\n"
            }.joined())
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token by id.")
        @OptionGroup var storage: StorageOptions
        @Argument var id: Int64

        func run() async throws {
            let context = try await storage.open()
            let removed = try await context.metadata.deleteToken(id: id, actor: commandActor)
            await context.close()
            if !removed { throw fail("no token \(id)") }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "audit", abstract: "The newest grant, revoke and token events.")
        @OptionGroup var storage: StorageOptions
        @Option var limit = 50

        func run() async throws {
            let context = try await storage.open()
            let log = try await context.metadata.auditLog(limit: limit)
            await context.close()
            FileHandleOutput.stdout(log.map { e in
                "\(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(e.at) / 1_000_000)))\t\(e.actor)\t\(e.action)\t\(e.target)\t\(e.details)\n"
            }.joined())
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let w): return try await transform(w)
        case .none: return nil
        }
    }
}

/// `postmortem versions`: the real version string of product builds (beta builds report their
/// release's version), read by the processor's BetaVersion rule and the VersionString API.
struct VersionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "versions", abstract: "Record and list the version strings of product builds.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Record that a build of a product on a channel is a version.")
        @OptionGroup var storage: StorageOptions
        @Option var product: String
        @Option var channel: String
        @Option(name: .customLong("build-id")) var buildID: String
        @Argument var version: String

        func run() async throws {
            guard buildID.count == 14, buildID.allSatisfy(\.isASCII), buildID.allSatisfy(\.isNumber) else {
                throw ValidationError("a build id is 14 digits (YYYYMMDDhhmmss): \(buildID)")
            }
            guard !product.isEmpty, !channel.isEmpty, !version.isEmpty else { throw ValidationError("product, channel and version must not be empty") }
            let context = try await storage.open()
            do {
                try await context.metadata.addProductVersion(product: product, channel: channel, buildID: buildID, version: version)
            } catch {
                await context.close()
                throw error
            }
            await context.close()
            FileHandleOutput.stdout("\(product) \(channel) \(buildID) = \(version)\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List recorded builds, newest first.")
        @OptionGroup var storage: StorageOptions
        @Option var product: String?
        @Option var limit = 100

        func run() async throws {
            let context = try await storage.open()
            let rows = try await context.metadata.productVersions(product: product, limit: limit)
            await context.close()
            FileHandleOutput.stdout(rows.map { "\($0.product)\t\($0.channel)\t\($0.buildID)\t\($0.version)\n" }.joined())
        }
    }
}

/// `postmortem groups`: permissions given through groups (Hackers and Hackers Plus exist from the
/// start, as in Socorro). Every change goes to the audit log.
struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups", abstract: "Permission groups and their members.",
        subcommands: [List.self, Set.self, Add.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List groups with their permissions and members.")
        @OptionGroup var storage: StorageOptions

        func run() async throws {
            let context = try await storage.open()
            let groups = try await context.metadata.groups()
            await context.close()
            FileHandleOutput.stdout(groups.map { "\($0.name)\t\($0.permissions.sorted().joined(separator: ","))\t\($0.members.joined(separator: ","))\n" }.joined())
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Create a group, or replace its permissions.")
        @OptionGroup var storage: StorageOptions
        @Argument var name: String
        @Option(name: .customLong("permission"), help: "A permission of the group. Repeatable.") var permissions: [String] = []

        func validate() throws {
            guard !name.isEmpty, name.count <= 100 else { throw ValidationError("a group name is 1 to 100 characters") }
            for p in permissions { try checkPermission(p) }
        }

        func run() async throws {
            let context = try await storage.open()
            do { try await context.metadata.setGroup(name, permissions: Swift.Set(permissions), actor: commandActor) } catch {
                await context.close()
                throw error
            }
            await context.close()
            FileHandleOutput.stdout("\(name): \(permissions.sorted().joined(separator: ","))\n")
        }
    }

    struct Membership: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Argument var email: String
        @Argument var group: String

        func apply(member: Bool) async throws {
            let context = try await storage.open()
            let a = try await account(context, email)
            let found = try await context.metadata.setMembership(accountID: a.id, group: group, member: member, actor: commandActor)
            await context.close()
            guard found else { throw fail("there is no group \(group)") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an account to a group.")
        @OptionGroup var membership: Membership
        func run() async throws { try await membership.apply(member: true) }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove an account from a group (its tokens lose the group's permissions).")
        @OptionGroup var membership: Membership
        func run() async throws { try await membership.apply(member: false) }
    }
}

/// The first line of standard input as a password, checked and hashed (bcrypt).
func readPasswordHash() async throws -> String {
    let line = readLine(strippingNewline: true) ?? ""
    do {
        return try await Passwords.hash(line)
    } catch let e as Passwords.Invalid {
        throw ValidationError(e.description)
    }
}
