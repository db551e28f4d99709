import Foundation
import JSONSupport

/// One supported product, from its `<Product>.json` file (`data-and-access.md` §5).
public struct ProductDetails: Sendable, Equatable {
    public struct Link: Sendable, Equatable {
        public let text: String
        public let url: String
    }

    public let name: String
    public let description: String
    public let homePageSort: Int
    /// `auto`, a literal version, a beta family (`68.0b`) or `<key>.<json path>` into a
    /// `version_json_urls` document.
    public let featuredVersions: [String]
    public let versionJSONURLs: [String: String]
    public let inBuildhub: Bool
    /// "Create a bug" links: link text and a URL template with `%(name)s` placeholders.
    public let bugLinks: [Link]
    public let productHomeLinks: [Link]

    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(name: String, description: String = "", homePageSort: Int = 100, featuredVersions: [String] = [], versionJSONURLs: [String: String] = [:],
                inBuildhub: Bool = false, bugLinks: [Link] = [], productHomeLinks: [Link] = []) {
        self.name = name
        self.description = description
        self.homePageSort = homePageSort
        self.featuredVersions = featuredVersions
        self.versionJSONURLs = versionJSONURLs
        self.inBuildhub = inBuildhub
        self.bugLinks = bugLinks
        self.productHomeLinks = productHomeLinks
    }

    /// Reads a product file; `file` names it in errors.
    public init(json data: Data, file: String) throws {
        func fail(_ why: String) -> FormatError { FormatError(description: "\(file): \(why)") }
        guard let doc = JSONValue.parse(data), case .object = doc else { throw fail("not a JSON object") }
        guard let name = doc["name"]?.stringValue, !name.isEmpty, name.count <= 100 else { throw fail("name must be a non-empty string") }
        func strings(_ key: String) throws -> [String] {
            guard let v = doc[key] else { return [] }
            guard let items = v.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else { throw fail("\(key) must be a list of strings") }
            return items.compactMap(\.stringValue)
        }
        func links(_ key: String) throws -> [Link] {
            guard let v = doc[key] else { return [] }
            guard let items = v.arrayValue else { throw fail("\(key) must be a list of [text, url] pairs") }
            return try items.map { item in
                guard let pair = item.arrayValue, pair.count == 2, let text = pair[0].stringValue, let url = pair[1].stringValue else {
                    throw fail("\(key) must be a list of [text, url] pairs")
                }
                return Link(text: text, url: url)
            }
        }
        var urls: [String: String] = [:]
        if let v = doc["version_json_urls"] {
            guard case .object(let pairs) = v else { throw fail("version_json_urls must be an object of URLs") }
            for (k, u) in pairs {
                guard let s = u.stringValue, let url = URL(string: s), ["http", "https"].contains(url.scheme ?? "") else { throw fail("version_json_urls.\(k) is not an http(s) URL") }
                urls[k] = s
            }
        }
        let sort = doc["home_page_sort"].map { $0.intValue.flatMap { Int(exactly: $0) } } ?? 100
        guard let sort else { throw fail("home_page_sort must be an integer") }
        self.init(name: name, description: doc["description"]?.stringValue ?? "", homePageSort: sort, featuredVersions: try strings("featured_versions"),
                  versionJSONURLs: urls, inBuildhub: doc["in_buildhub"] == .bool(true), bugLinks: try links("bug_links"),
                  productHomeLinks: try links("product_home_links"))
        // Every featured-version lookup must name a document.
        for entry in featuredVersions where entry != "auto" && !Self.isVersionLike(entry) {
            guard let key = Self.lookupKey(entry), versionJSONURLs[key] != nil else {
                throw fail("featured version \(entry) is not auto, a version or <key>.<path> of a version_json_urls document")
            }
        }
    }

    /// For `<key>.<path>` entries, the key.
    public static func lookupKey(_ entry: String) -> String? {
        guard let dot = entry.firstIndex(of: "."), !isVersionLike(entry) else { return nil }
        return String(entry[..<dot])
    }

    /// `120.0`, `68.0b`, `115.3.0esr`: starts with a digit.
    public static func isVersionLike(_ s: String) -> Bool { s.first?.isNumber ?? false }
}

/// The products of a deployment: the `*.json` files of `products.dir`, in home-page order. With
/// no directory the catalog is open: any product is accepted, as a collector without product
/// files always did.
public struct ProductCatalog: Sendable {
    public let products: [ProductDetails]

    public init(products: [ProductDetails]) {
        self.products = products.sorted { ($0.homePageSort, $0.name) < ($1.homePageSort, $1.name) }
    }

    /// Reads every `*.json` file of `directory` (at most 1,000 files of 1 MiB each).
    public static func load(directory: String?) throws -> ProductCatalog {
        guard let directory, !directory.isEmpty else { return ProductCatalog(products: []) }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        guard names.count <= 1_000 else { throw ProductDetails.FormatError(description: "\(directory): more than 1,000 product files") }
        var products: [ProductDetails] = []
        var seen = Set<String>()
        for name in names {
            let path = directory + "/" + name
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            guard ((attributes[.size] as? NSNumber)?.intValue ?? 0) <= 1 << 20 else { throw ProductDetails.FormatError(description: "\(path): larger than 1 MiB") }
            let product = try ProductDetails(json: try Data(contentsOf: URL(fileURLWithPath: path)), file: path)
            guard product.name + ".json" == name else { throw ProductDetails.FormatError(description: "\(path): the file must be named after the product (\(product.name).json)") }
            guard seen.insert(product.name).inserted else { throw ProductDetails.FormatError(description: "\(path): \(product.name) is defined twice") }
            products.append(product)
        }
        return ProductCatalog(products: products)
    }

    /// Whether product names are restricted (there are product files).
    public var isRestricted: Bool { !products.isEmpty }

    public func product(named name: String) -> ProductDetails? { products.first { $0.name == name } }

    /// Whether `name` may be submitted and searched.
    public func accepts(_ name: String) -> Bool { !isRestricted || product(named: name) != nil }

    public var names: [String] { products.map(\.name) }
}
