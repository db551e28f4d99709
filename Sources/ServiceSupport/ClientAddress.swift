import Foundation

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `::1/128`, or one address).
/// IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) match IPv4 networks.
public struct IPAddressRange: Sendable, Equatable, CustomStringConvertible {
    let network: [UInt8]
    let prefixLength: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let address = Self.bytes(String(first)) else { return nil }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...bits).contains(n) else { return nil }
            length = n
        }
        network = Self.masked(address, length)
        prefixLength = length
        description = text
    }

    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(address), bytes.count == network.count else { return false }
        return Self.masked(bytes, prefixLength) == network
    }

    /// The address's bytes (4 for IPv4 and IPv4-mapped IPv6, 16 for IPv6); nil if it is none.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return Array(b[12...]) }
        return b
    }

    static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { i, byte in
            let keep = min(8, max(0, length - i * 8))
            return keep == 8 ? byte : byte & ~(UInt8(0xff) >> keep)
        }
    }

    /// Parses a list; the first entry that is not a network is the error.
    public static func list(_ texts: [String], key: String) throws -> [IPAddressRange] {
        try texts.map { text in
            guard let range = IPAddressRange(text) else {
                throw PostmortemConfiguration.Invalid(description: "\(key): \"\(text)\" is not an address or CIDR network")
            }
            return range
        }
    }
}

/// Which address a request comes from. `X-Forwarded-For` is believed only when the peer is a
/// trusted proxy, and then walked from the right: the first entry that is not itself a trusted
/// proxy is the client (entries to its left were written by the client and prove nothing).
public enum ClientAddress {
    public static func resolve(peer: String?, forwardedFor: String?, trustedProxies: [IPAddressRange]) -> String {
        guard let peer else { return "unknown" }
        guard let forwardedFor, trustedProxies.contains(where: { $0.contains(peer) }) else { return peer }
        for entry in forwardedFor.split(separator: ",").reversed() {
            let address = entry.trimmingCharacters(in: .whitespaces)
            guard IPAddressRange.bytes(address) != nil else { return peer }
            if !trustedProxies.contains(where: { $0.contains(address) }) { return address }
        }
        return peer
    }
}
