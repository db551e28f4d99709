import AsyncHTTPClient
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Logging
import NIOCore
import NIOHTTP1

/// Where and how to reach an S3-compatible bucket.
public struct S3Configuration: Sendable {
    public enum Addressing: String, Sendable { case path, virtualHost = "virtual-host" }

    /// `https://s3.eu-central-1.amazonaws.com`, `http://127.0.0.1:5000`, a MinIO URL, …
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var addressing: Addressing
    /// Prepended to every key (e.g. `postmortem/`), so one bucket can hold several installations.
    public var keyPrefix: String
    /// Objects larger than this are sent as multipart uploads of `partSize` parts.
    public var multipartThreshold: Int
    public var partSize: Int
    /// Attempts per request for 5xx, 429, timeouts and connection errors (with backoff).
    public var maxAttempts: Int
    public var timeout: TimeAmount
    /// Reads of objects larger than this fail instead of exhausting memory.
    public var maxObjectSize: Int
    /// Keys per ListObjectsV2 page (S3's maximum is 1000).
    public var listPageSize = 1000

    public init(endpoint: String, region: String = "us-east-1", bucket: String, accessKey: String, secretKey: String,
                sessionToken: String? = nil, addressing: Addressing = .path, keyPrefix: String = "",
                multipartThreshold: Int = 8 << 20, partSize: Int = 8 << 20, maxAttempts: Int = 4,
                timeout: TimeAmount = .seconds(60), maxObjectSize: Int = 1 << 30) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.addressing = addressing
        self.keyPrefix = keyPrefix
        self.multipartThreshold = multipartThreshold
        self.partSize = max(5 << 20, partSize) // S3's minimum part size
        self.maxAttempts = max(1, maxAttempts)
        self.timeout = timeout
        self.maxObjectSize = maxObjectSize
    }
}

/// Blobs in an S3-compatible bucket, over SigV4-signed HTTP (AsyncHTTPClient). A PUT is atomic
/// in S3 (an object appears whole or not at all); large objects go up as multipart uploads,
/// which are aborted when a part fails.
public struct S3BlobStore: BlobStore {
    public let configuration: S3Configuration
    let client: HTTPClient
    let signer: SigV4Signer
    let logger: Logger
    let scheme: String
    let host: String
    let port: Int?
    let basePath: String

    public init(configuration: S3Configuration, client: HTTPClient = .shared,
                logger: Logger = Logger(label: "postmortem.storage.s3")) throws {
        guard let url = URL(string: configuration.endpoint), let scheme = url.scheme, let host = url.host, !host.isEmpty else {
            throw BlobStoreError.transport(operation: "configure", message: "invalid endpoint \"\(configuration.endpoint)\"")
        }
        guard !configuration.bucket.isEmpty, configuration.bucket.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else {
            throw BlobStoreError.transport(operation: "configure", message: "invalid bucket name \"\(configuration.bucket)\"")
        }
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.scheme = scheme
        self.host = host
        self.port = url.port
        self.basePath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        signer = SigV4Signer(accessKey: configuration.accessKey, secretKey: configuration.secretKey,
                             sessionToken: configuration.sessionToken, region: configuration.region)
    }

    public var description: String { "s3 bucket \(configuration.bucket) at \(configuration.endpoint)" }

    /// A URL that lets its holder GET (or PUT) `key` without credentials for `expires` seconds:
    /// the symbol server redirects downloads to it and hands it to v2 uploads.
    /// `responseHeaders` (GET only) are S3's response overrides, e.g. `("content-encoding",
    /// "gzip")` for an object stored compressed.
    public func presignedURL(method: String, key: String, expires: Int, date: Date = Date(),
                             responseHeaders: [(String, String)] = []) throws -> String {
        try BlobKey.validate(key)
        let (hostHeader, path) = target(key)
        let overrides = responseHeaders.map { ("response-" + $0.0.lowercased(), $0.1) }
        let query = signer.presignedQuery(method: method, path: path, host: hostHeader, expires: expires, date: date, extraQuery: overrides)
        let queryText = query.map { "\(SigV4Signer.encode($0.0, slash: true))=\(SigV4Signer.encode($0.1, slash: true))" }.joined(separator: "&")
        return "\(scheme)://\(hostHeader)\(path)?\(queryText)"
    }

    // MARK: - BlobStore

    public func put(_ key: String, _ data: Data) async throws { try await put(key, data, headers: []) }

    public func put(_ key: String, _ data: Data, headers: [(String, String)]) async throws {
        try BlobKey.validate(key)
        if data.count > configuration.multipartThreshold {
            try await multipartPut(key, data, headers: headers)
            return
        }
        _ = try await send("PUT", key: key, body: data, headers: headers, operation: "put \(key)")
    }

    public func get(_ key: String) async throws -> Data? {
        try BlobKey.validate(key)
        let r = try await send("GET", key: key, operation: "get \(key)", allow404: true)
        return r.status == 404 ? nil : r.body
    }

    public func size(_ key: String) async throws -> Int? {
        try BlobKey.validate(key)
        let r = try await send("HEAD", key: key, operation: "head \(key)", allow404: true)
        if r.status == 404 { return nil }
        return r.headers.first(name: "content-length").flatMap(Int.init) ?? 0
    }

    public func delete(_ key: String) async throws {
        try BlobKey.validate(key)
        _ = try await send("DELETE", key: key, operation: "delete \(key)", allow404: true)
    }

    public func list(prefix: String) async throws -> [String] {
        try BlobKey.validatePrefix(prefix)
        var keys: [String] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", configuration.keyPrefix + prefix), ("max-keys", String(configuration.listPageSize))]
            if let token { query.append(("continuation-token", token)) }
            let r = try await send("GET", key: nil, query: query, operation: "list \(prefix)")
            let page = ListBucketResultParser.parse(r.body)
            keys += page.keys.compactMap { k in
                k.hasPrefix(configuration.keyPrefix) ? String(k.dropFirst(configuration.keyPrefix.count)) : nil
            }
            token = page.truncated ? page.nextToken : nil
        } while token != nil
        return keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    public func check() async throws {
        _ = try await send("HEAD", key: nil, operation: "head bucket")
    }

    /// Creates the bucket unless it exists (setup and tests).
    public func createBucketIfNeeded() async throws {
        let r = try await send("HEAD", key: nil, operation: "head bucket", allow404: true)
        guard r.status == 404 else { return }
        var body = Data()
        if configuration.region != "us-east-1" {
            body = Data("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        _ = try await send("PUT", key: nil, body: body, operation: "create bucket")
    }

    // MARK: - multipart

    func multipartPut(_ key: String, _ data: Data, headers: [(String, String)] = []) async throws {
        let created = try await send("POST", key: key, query: [("uploads", "")], headers: headers, operation: "create multipart upload \(key)")
        guard let uploadID = XMLFieldParser.first("UploadId", in: created.body) else {
            throw BlobStoreError.s3(operation: "create multipart upload \(key)", status: created.status, code: "", message: "no UploadId in the response")
        }
        do {
            var parts: [(Int, String)] = []
            var offset = 0
            var number = 1
            while offset < data.count {
                let end = min(data.count, offset + configuration.partSize)
                let r = try await send("PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                       body: data.subdata(in: offset..<end), operation: "upload part \(number) of \(key)")
                guard let etag = r.headers.first(name: "etag") else {
                    throw BlobStoreError.s3(operation: "upload part \(number) of \(key)", status: r.status, code: "", message: "no ETag")
                }
                parts.append((number, etag))
                offset = end
                number += 1
            }
            var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            for (n, etag) in parts { xml += "<Part><PartNumber>\(n)</PartNumber><ETag>\(Self.xmlEscape(etag))</ETag></Part>" }
            xml += "</CompleteMultipartUpload>"
            let done = try await send("POST", key: key, query: [("uploadId", uploadID)], body: Data(xml.utf8),
                                      operation: "complete multipart upload \(key)")
            // S3 may answer 200 with an error document when completion fails late.
            if done.body.range(of: Data("<Error>".utf8)) != nil {
                throw BlobStoreError.s3(operation: "complete multipart upload \(key)", status: done.status,
                                        code: XMLFieldParser.first("Code", in: done.body) ?? "",
                                        message: XMLFieldParser.first("Message", in: done.body) ?? "")
            }
        } catch {
            _ = try? await send("DELETE", key: key, query: [("uploadId", uploadID)], operation: "abort multipart upload \(key)", allow404: true)
            throw error
        }
    }

    // MARK: - requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    /// The wire path and host of a key (or of the bucket when `key` is nil).
    func target(_ key: String?) -> (host: String, path: String) {
        let objectPath = key.map { "/" + SigV4Signer.encode(configuration.keyPrefix + $0, slash: false) } ?? ""
        let hostWithPort = port.map { "\(host):\($0)" } ?? host
        switch configuration.addressing {
        case .path:
            return (hostWithPort, basePath + "/" + SigV4Signer.encode(configuration.bucket, slash: true) + objectPath)
        case .virtualHost:
            let path = basePath + (objectPath.isEmpty ? "/" : objectPath)
            return ("\(configuration.bucket).\(hostWithPort)", path)
        }
    }

    /// `headers`: object headers sent (and signed) with the request.
    func send(_ method: String, key: String?, query: [(String, String)] = [], body: Data = Data(), headers extraHeaders: [(String, String)] = [],
              operation: String, allow404: Bool = false) async throws -> Response {
        let (hostHeader, path) = target(key)
        let queryText = query.map { "\(SigV4Signer.encode($0.0, slash: true))=\(SigV4Signer.encode($0.1, slash: true))" }
            .joined(separator: "&")
        let url = "\(scheme)://\(hostHeader)\(path)\(queryText.isEmpty ? "" : "?" + queryText)"
        let payloadHash = SigV4Signer.sha256Hex(body)
        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: url)
            request.method = HTTPMethod(rawValue: method)
            request.headers.add(name: "Host", value: hostHeader)
            for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }
            for (name, value) in signer.sign(method: method, path: path, query: query, headers: [("host", hostHeader)] + extraHeaders,
                                             payloadHash: payloadHash, date: Date()) {
                request.headers.add(name: name, value: value)
            }
            if !body.isEmpty || method == "PUT" || method == "POST" {
                request.headers.add(name: "Content-Length", value: String(body.count))
                request.body = .bytes(ByteBuffer(data: body))
            }
            let retryable: Bool
            let failure: any Error
            do {
                let response = try await client.execute(request, timeout: configuration.timeout)
                let status = Int(response.status.code)
                let limit = method == "HEAD" ? 0 : configuration.maxObjectSize
                var collected = Data()
                if method != "HEAD" {
                    let buffer = try await response.body.collect(upTo: limit)
                    collected = Data(buffer.readableBytesView)
                }
                if (200..<300).contains(status) || (allow404 && status == 404) {
                    return Response(status: status, headers: response.headers, body: collected)
                }
                let code = XMLFieldParser.first("Code", in: collected) ?? ""
                failure = BlobStoreError.s3(operation: operation, status: status, code: code,
                                            message: XMLFieldParser.first("Message", in: collected) ?? "")
                retryable = status >= 500 || status == 429 || code == "SlowDown" || code == "RequestTimeout"
            } catch let error as BlobStoreError {
                throw error
            } catch {
                if let e = error as? NIOTooManyBytesError {
                    throw BlobStoreError.tooLarge(key: key ?? "", size: e.maxBytes ?? configuration.maxObjectSize, limit: configuration.maxObjectSize)
                }
                failure = BlobStoreError.transport(operation: operation, message: "\(error)")
                retryable = true
            }
            guard retryable, attempt < configuration.maxAttempts else { throw failure }
            let delay = 50 * (1 << (attempt - 1)) + Int.random(in: 0..<50)
            logger.warning("retrying S3 request", metadata: ["operation": "\(operation)", "attempt": "\(attempt)", "error": "\(failure)"])
            try await Task.sleep(for: .milliseconds(delay))
        }
    }

    static func xmlEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The parts of a ListObjectsV2 response the store needs.
final class ListBucketResultParser: NSObject, XMLParserDelegate {
    var keys: [String] = []
    var truncated = false
    var nextToken: String?
    private var text = ""
    private var inContents = false

    static func parse(_ data: Data) -> (keys: [String], truncated: Bool, nextToken: String?) {
        let delegate = ListBucketResultParser()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        _ = parser.parse()
        return (delegate.keys, delegate.truncated, delegate.nextToken)
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        text = ""
        if name == "Contents" { inContents = true }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "Key" where inContents: keys.append(text)
        case "Contents": inContents = false
        case "IsTruncated": truncated = text == "true"
        case "NextContinuationToken": nextToken = text
        default: break
        }
        text = ""
    }
}

/// The text of the first element with a given name (error codes, upload ids).
final class XMLFieldParser: NSObject, XMLParserDelegate {
    let wanted: String
    var found: String?
    private var text = ""
    private var inside = false

    init(wanted: String) { self.wanted = wanted }

    static func first(_ name: String, in data: Data) -> String? {
        guard !data.isEmpty else { return nil }
        let delegate = XMLFieldParser(wanted: name)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        _ = parser.parse()
        return delegate.found
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if name == wanted, found == nil { inside = true; text = "" }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { if inside { text += string } }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if inside, name == wanted { found = text; inside = false; parser.abortParsing() }
    }
}
