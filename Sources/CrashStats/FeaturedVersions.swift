import AsyncHTTPClient
import CrashModel
import Foundation
import JSONSupport
import Logging
import NIOCore
import Storage
import Synchronization

/// A product's featured versions (`data-and-access.md` §5), resolved from its file: `auto` from
/// the last week of crash data (the newest nightly, beta family, release and ESR seen), literal
/// versions and beta families as written, and `<key>.<path>` values looked up in the
/// `version_json_urls` documents (fetched with a time limit, cached for an hour; a failure is
/// logged and the entry skipped, so a slow product-details server never breaks a page).
public final class FeaturedVersions: Sendable {
    let metadata: MetadataStore
    let fetch: @Sendable (String) async throws -> Data
    let cacheTTL: Duration
    let logger: Logger
    private let cache = Mutex<[String: (fetched: ContinuousClock.Instant, document: JSONValue?)]>([:])

    /// `fetch` loads a URL (tests and the default HTTP client).
    public init(metadata: MetadataStore, cacheTTL: Duration = .seconds(3600), logger: Logger = Logger(label: "postmortem.products"),
                fetch: (@Sendable (String) async throws -> Data)? = nil) {
        self.metadata = metadata
        self.cacheTTL = cacheTTL
        self.logger = logger
        self.fetch = fetch ?? FeaturedVersions.httpGet
    }

    /// GET with a 5 s limit and a 1 MiB cap.
    static func httpGet(_ url: String) async throws -> Data {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        guard response.status == .ok else { throw FetchError(description: "\(url) answered \(response.status.code)") }
        return Data(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    struct FetchError: Error, CustomStringConvertible { let description: String }

    public func versions(for product: ProductDetails, now: Date = Date()) async -> [String] {
        var out: [String] = []
        for entry in product.featuredVersions {
            if entry == "auto" {
                let since = Int64((now.timeIntervalSince1970 - 7 * 86_400) * 1_000_000)
                do {
                    out += Self.newestPerChannel(try await metadata.recentVersions(product: product.name, since: since).map(\.version))
                } catch {
                    logger.warning("featured versions: crash data unavailable", metadata: ["product": "\(product.name)", "error": "\(error)"])
                }
            } else if ProductDetails.isVersionLike(entry) {
                out.append(entry)
            } else if let key = ProductDetails.lookupKey(entry), let url = product.versionJSONURLs[key] {
                let path = entry.dropFirst(key.count + 1).split(separator: ".").map(String.init)
                guard let document = await document(url) else { continue }
                var value: JSONValue? = document
                for p in path { value = value?[p] }
                if let v = value?.stringValue, !v.isEmpty { out.append(v) } else {
                    logger.warning("featured versions: no value", metadata: ["product": "\(product.name)", "entry": "\(entry)"])
                }
            }
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    func document(_ url: String) async -> JSONValue? {
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[url] }), now - hit.fetched < cacheTTL { return hit.document }
        var document: JSONValue?
        do {
            document = JSONValue.parse(try await fetch(url))
            if document == nil { logger.warning("featured versions: not JSON", metadata: ["url": "\(url)"]) }
        } catch {
            logger.warning("featured versions: fetch failed", metadata: ["url": "\(url)", "error": "\(error)"])
        }
        // Failures are cached too (for a minute), so a dead server costs one timeout a minute.
        let stamp = document == nil ? now - cacheTTL + .seconds(60) : now
        cache.withLock { $0[url] = (stamp, document) }
        return document
    }

    /// The newest version of each channel among `versions`: nightly (`a`), beta (as its family,
    /// `121.0b`), release and ESR; newest first.
    static func newestPerChannel(_ versions: [String]) -> [String] {
        var newest: [Channel: ParsedVersion] = [:]
        for text in versions {
            guard let v = ParsedVersion(text) else { continue }
            if let current = newest[v.channel], !(current < v) { continue }
            newest[v.channel] = v
        }
        return newest.values.sorted { $1 < $0 }.map { $0.channel == .beta ? $0.family : $0.text }
    }

    enum Channel: Int { case nightly = 0, beta = 1, release = 2, esr = 3 }

    /// `121.0`, `121.0b3`, `122.0a1`, `115.5.0esr`: numbers, then a channel marker.
    struct ParsedVersion: Comparable {
        let text: String
        let numbers: [Int]
        let channel: Channel
        /// `121.0b` for betas (every beta of 121.0).
        let family: String
        let build: Int

        init?(_ text: String) {
            guard text.utf8.count <= 64, let first = text.first, first.isNumber else { return nil }
            var numbers: [Int] = []
            var rest = Substring(text)
            while let digits = rest.prefix(while: \.isNumber).nonEmptyInt {
                numbers.append(digits)
                rest = rest.drop(while: \.isNumber)
                if rest.first == ".", rest.dropFirst().first?.isNumber == true { rest = rest.dropFirst() } else { break }
            }
            self.text = text
            self.numbers = numbers
            let head = text.prefix(text.count - rest.count)
            if rest.hasPrefix("esr") {
                channel = .esr; family = text; build = 0
            } else if rest.hasPrefix("b") {
                channel = .beta; family = head + "b"; build = Int(rest.dropFirst()) ?? 0
            } else if rest.hasPrefix("a") {
                channel = .nightly; family = text; build = Int(rest.dropFirst()) ?? 0
            } else if rest.hasPrefix("rc") {
                channel = .beta; family = head + "b"; build = 1_000 + (Int(rest.dropFirst(2)) ?? 0)
            } else if rest.isEmpty {
                channel = .release; family = text; build = 0
            } else {
                return nil
            }
        }

        static func < (a: ParsedVersion, b: ParsedVersion) -> Bool {
            for i in 0..<max(a.numbers.count, b.numbers.count) {
                let x = i < a.numbers.count ? a.numbers[i] : 0, y = i < b.numbers.count ? b.numbers[i] : 0
                if x != y { return x < y }
            }
            if a.channel != b.channel { return a.channel.rawValue < b.channel.rawValue }
            return a.build < b.build
        }
    }
}

extension Substring {
    var nonEmptyInt: Int? { isEmpty || count > 9 ? nil : Int(self) }
}
