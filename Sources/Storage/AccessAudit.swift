import Foundation

/// The protected-data audit (`data-and-access.md` §4, Socorro's `auditgroups`): members of the
/// protected groups lose that membership when their account is inactive, when their email
/// domain is not an employee domain and they hold no live policy exception, or when they have
/// not signed in for `inactiveDays` and hold no unexpired token; with an identity provider that
/// reports disabled users (`issuerDisabled`), such members are also deactivated. Each removal is an audit-log
/// entry by `auditgroups` with its reason; tokens lose the permissions at once (a token's
/// permissions are intersected with its owner's at each use).
public struct AccessAudit: Sendable {
    public struct Settings: Sendable {
        public var protectedGroups: [String]
        /// Lower-case domains (`example.com`); empty: the domain rule is off.
        public var employeeDomains: [String]
        public var inactiveDays: Int

        public init(protectedGroups: [String] = ["Hackers", "Hackers Plus"], employeeDomains: [String] = [], inactiveDays: Int = 365) {
            self.protectedGroups = protectedGroups
            self.employeeDomains = employeeDomains.map { $0.lowercased().trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            self.inactiveDays = inactiveDays
        }
    }

    public struct Removal: Sendable, Equatable {
        public let email: String
        public let group: String
        public let reason: String
    }

    public static let actor = "auditgroups"

    let metadata: MetadataStore
    public let settings: Settings
    /// Asks the identity provider whether an OpenID Connect subject is disabled: true, false, or
    /// nil when it does not say (nothing happens then).
    let issuerDisabled: (@Sendable (String) async throws -> Bool?)?

    public init(metadata: MetadataStore, settings: Settings, issuerDisabled: (@Sendable (String) async throws -> Bool?)? = nil) {
        self.metadata = metadata
        self.settings = settings
        self.issuerDisabled = issuerDisabled
    }

    static let disabledReason = "the identity provider reports the account disabled"

    /// Finds (and unless `dryRun`, makes) the removals, at the store's clock.
    public func run(dryRun: Bool) async throws -> [Removal] {
        let now = metadata.now
        let inactiveCutoff = now - Int64(settings.inactiveDays) * 86_400 * 1_000_000
        let protected = Set(settings.protectedGroups)
        let exceptions = try await metadata.policyExceptions()
        let overviews = try await metadata.memberOverviews(of: settings.protectedGroups)
        var removals: [Removal] = []
        for overview in overviews {
            let groups = overview.groups.filter(protected.contains)
            guard !groups.isEmpty else { continue }
            let account = overview.account
            let domain = account.email.split(separator: "@").last.map { String($0).lowercased() } ?? ""
            let liveException = exceptions[account.id].map { $0.isLive(at: now) } ?? false
            let reason: String?
            if account.isActive, let subject = overview.openIDSubject, let issuerDisabled,
               (try? await issuerDisabled(subject)) == true {
                // Deactivated, not only removed from the groups: the issuer no longer vouches for them.
                reason = Self.disabledReason
                if !dryRun { try await metadata.setActive(accountID: account.id, active: false, actor: Self.actor, reason: Self.disabledReason) }
            } else if !account.isActive {
                reason = "the account is inactive"
            } else if !settings.employeeDomains.isEmpty, !settings.employeeDomains.contains(domain), !liveException {
                reason = exceptions[account.id] == nil
                    ? "\(domain) is not an employee domain and there is no policy exception"
                    : "\(domain) is not an employee domain and the policy exception has expired"
            } else if (overview.lastLogin ?? overview.createdAt) < inactiveCutoff, overview.liveTokens == 0 {
                reason = overview.lastLogin == nil
                    ? "never signed in in \(settings.inactiveDays) days and no unexpired API token"
                    : "last sign-in more than \(settings.inactiveDays) days ago and no unexpired API token"
            } else {
                reason = nil
            }
            guard let reason else { continue }
            for group in groups {
                removals.append(Removal(email: account.email, group: group, reason: reason))
                if !dryRun { try await metadata.setMembership(accountID: account.id, group: group, member: false, actor: Self.actor, reason: reason) }
            }
        }
        return removals
    }
}
