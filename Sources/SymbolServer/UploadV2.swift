import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import JSONSupport
import NIOCore
import ServiceSupport
import Storage

/// Upload v2 (`symbols-server.md` §3): the client sends a manifest of keys, sizes and MD5s; the
/// server answers per key — skip (the same content is stored), error, or upload with a URL the
/// client PUTs the bytes to (`.sym` gzip-compressed by the client). On S3 that URL is a presigned
/// PUT of the bucket; on the embedded store it is this server's own signed `PUT
/// /upload/v2/put/<token>`. The server records each file when its bytes arrive (embedded) or when
/// the client calls `POST /upload/v2/<id>/complete` (S3: the server checks what the bucket holds
/// against the manifest), then wakes the crashes waiting for those symbols as v1 does.
extension SymbolServer {
    static let maxManifestFiles = 1024
    static let putLifetime: Int64 = 3600

    func uploadV2(_ request: Request) async throws -> Response {
        let token: APIToken, account: Account
        switch try await authorize(request, anyOf: Self.uploadPermissions) {
        case .refused(let response): return response
        case .allowed(let a, let t): (account, token) = (a, t)
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: 4 << 20) } catch { return Self.error(.contentTooLarge, "manifest larger than 4 MiB") }
        guard let manifest = JSONValue.parse(Data(body.readableBytesView)), case .object = manifest,
              let files = manifest["files"]?.arrayValue else {
            return Self.error(.badRequest, "malformed JSON request body")
        }
        guard files.count <= Self.maxManifestFiles else { return Self.error(.badRequest, "too many files") }
        let query = FormEncoding.parse(request.uri.query ?? "")
        let isTry = manifest["try"] == .bool(true) || query.contains { $0.0 == "try" } || !token.permissions.contains("upload_symbols")

        struct Entry { var key: String; var size: Int64?; var md5: String?; var error: String? }
        var entries: [Entry] = []
        for file in files {
            let key = file["key"]?.stringValue ?? ""
            var entry = Entry(key: key, size: file["size"]?.intValue, md5: file["md5_hash"]?.stringValue)
            if !UploadArchive.matchesKeyPattern(key) || key.split(separator: "/").contains(where: { $0 == "." || $0 == ".." || $0.hasPrefix(".") })
                || (try? BlobKey.validate(SymbolStore.key(key, isTry: isTry))) == nil {
                entry.error = "invalid key"
            } else if let md5 = entry.md5, md5.utf8.count != 32 || !md5.utf8.allSatisfy({ UploadArchive.isHexDigit($0) && !(0x41...0x46).contains($0) }) {
                entry.error = "invalid MD5 hex digest"
            } else if entry.md5 == nil {
                entry.error = "invalid MD5 hex digest"
            } else if entry.size == nil || entry.size! < 0 || entry.size! > settings.maxUploadSize {
                entry.error = "invalid size"
            }
            entries.append(entry)
        }
        let listing = entries.map { "\($0.key):\($0.size ?? 0)" }.sorted().joined(separator: "\n")
        let total = entries.reduce(Int64(0)) { $0 &+ max(0, $1.size ?? 0) }
        let uploadID = try await metadata.createSymbolUpload(accountID: account.id, filename: "upload-v2", size: total,
                                                             contentHash: String(SymbolStore.md5Hex(Data(listing.utf8)).prefix(30)),
                                                             isTry: isTry, bucket: settings.bucketName)
        let expires = metadata.now + Self.putLifetime * 1_000_000
        let s3 = store.blobs as? S3BlobStore
        let host = request.head.authority ?? "127.0.0.1"
        var actions: [JSONValue] = [], pending: [PendingSymbolFile] = [], skipped: [String] = []
        for entry in entries {
            var action: [(String, JSONValue)]
            if let error = entry.error {
                action = [("type", .string("error")), ("msg", .string(error))]
            } else if try await store.holds(name: entry.key, isTry: isTry, originalSize: entry.size!, md5: entry.md5!) {
                action = [("type", .string("skip"))]
                skipped.append(entry.key)
            } else {
                let blobKey = SymbolStore.key(entry.key, isTry: isTry)
                let compressed = store.isCompressed(entry.key)
                pending.append(PendingSymbolFile(uploadID: uploadID, key: blobKey, size: entry.size!, md5: entry.md5!, compressed: compressed,
                                                 expiresAt: expires))
                let url = try s3?.presignedURL(method: "PUT", key: blobKey, expires: Int(Self.putLifetime))
                    ?? "http://\(host)/upload/v2/put/\(settings.putSigner.token(uploadID: uploadID, key: blobKey, expiresAt: expires))"
                action = [("type", .string("upload")), ("url", .string(url))]
                if compressed { action.append(("content_encoding", .string("gzip"))) }
            }
            actions.append(.object([("key", .string(entry.key)), ("action", .object(action))]))
        }
        try await metadata.addPendingSymbolFiles(pending)
        try await metadata.completeSymbolUpload(id: uploadID, stored: [], skipped: skipped, ignored: [])
        return Self.json(.created, .object([
            ("id", .int(uploadID)), ("created_at", .int(metadata.now / 1_000_000)), ("user", .string(account.email)),
            ("try_symbols", .bool(isTry)), ("upload_protocol", .string(s3 == nil ? "postmortem-put" : "s3-presigned-put")),
            ("complete_url", .string("/upload/v2/\(uploadID)/complete")), ("files", .array(actions)),
        ]))
    }

    /// The embedded store's direct upload: the signed URL names the upload and the key.
    func putV2(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard let token = context.parameters.get("token"), let (uploadID, key) = settings.putSigner.verify(token, now: metadata.now) else {
            return Self.error(.forbidden, "invalid or expired upload URL")
        }
        guard let file = try await metadata.pendingSymbolFiles(uploadID: uploadID).first(where: { $0.key == key }) else {
            return Self.error(.notFound, "no upload is waiting for \(SymbolStore.bucketKey(key))")
        }
        // A compressed body may be a little larger than the original (headers, stored blocks).
        let limit = Int(clamping: file.size) + (file.compressed ? 64 << 10 : 0)
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: max(1, limit)) } catch {
            return Self.error(.contentTooLarge, "larger than the manifest's size \(file.size)")
        }
        let outcome = try await receive(Data(body.readableBytesView), for: file)
        if let problem = outcome.problem { return Self.error(.badRequest, problem) }
        try await finishIfComplete(uploadID)
        return Self.json(.created, .object([("key", .string(SymbolStore.bucketKey(key))), ("stored", .bool(true))]))
    }

    /// Checks bytes against the manifest entry and stores them (embedded PUT), or records an
    /// object the client already put in the bucket (S3).
    func receive(_ bytes: Data, for file: PendingSymbolFile, alreadyStored: Bool = false) async throws -> (record: SymbolFileRecord?, problem: String?) {
        var original = bytes
        // Stored uncompressed after all (a client or gateway that decoded `Content-Encoding`):
        // accepted when it matches the manifest, and stored again compressed.
        var rewrite = false
        if file.compressed {
            if bytes.starts(with: [0x1F, 0x8B]) {
                do { original = try SymbolStore.gunzip(bytes, limit: Int(clamping: file.size) + 1) } catch {
                    return (nil, "\(SymbolStore.bucketKey(file.key)) is not gzip data of at most \(file.size) bytes")
                }
            } else {
                rewrite = alreadyStored
            }
        }
        guard Int64(original.count) == file.size, SymbolStore.md5Hex(original) == file.md5 else {
            return (nil, "\(SymbolStore.bucketKey(file.key)): size or MD5 differs from the manifest")
        }
        let record: SymbolFileRecord
        if alreadyStored && !rewrite {
            record = try await store.record(key: file.key, storedSize: Int64(bytes.count), original: original, md5: file.md5,
                                            compressed: file.compressed, uploadID: file.uploadID)
        } else {
            let isTry = file.key.hasPrefix(SymbolStore.tryPrefix)
            let name = String(file.key.dropFirst(isTry ? SymbolStore.tryPrefix.count : SymbolStore.regularPrefix.count))
            switch try await store.store(name: name, data: original, uploadID: file.uploadID, isTry: isTry) {
            case .stored(let r): record = r
            case .skipped:
                try await metadata.removePendingSymbolFile(uploadID: file.uploadID, key: file.key)
                return (nil, nil)
            }
        }
        try await metadata.removePendingSymbolFile(uploadID: file.uploadID, key: file.key)
        store.invalidateLookups()
        if record.debugFilename != nil, record.debugId != nil { await uploader.onStored([record]) }
        return (record, nil)
    }

    /// `POST /upload/v2/<id>/complete`: records what the client put in the bucket.
    func completeV2(_ request: Request, context: ServiceRequestContext) async throws -> Response {
        guard case .authenticated(let account, _) = try await authenticate(request) else {
            return await refuse(request, "This requires an Auth-Token to authenticate the request")
        }
        guard let id = context.parameters.get("id").flatMap(Int64.init), let upload = try await metadata.symbolUpload(id: id),
              upload.accountID == account.id else {
            return Self.error(.notFound, "Not Found")
        }
        var problems: [JSONValue] = []
        for file in try await metadata.pendingSymbolFiles(uploadID: id) {
            guard let bytes = try await store.blobs.get(file.key) else {
                problems.append(.object([("key", .string(SymbolStore.bucketKey(file.key))), ("error", .string("not uploaded"))]))
                continue
            }
            if let problem = try await receive(bytes, for: file, alreadyStored: true).problem {
                // Bytes that do not match the manifest are not served.
                try await store.blobs.delete(file.key)
                try await metadata.removePendingSymbolFile(uploadID: id, key: file.key)
                problems.append(.object([("key", .string(SymbolStore.bucketKey(file.key))), ("error", .string(problem))]))
            }
        }
        try await finishIfComplete(id)
        guard let done = try await metadata.symbolUpload(id: id) else { return Self.error(.notFound, "Not Found") }
        return Self.json(.ok, .object([("upload", Self.uploadJSON(done)), ("errors", .array(problems))]))
    }

    /// Once no file is pending, the upload's stored keys are its file records.
    func finishIfComplete(_ uploadID: Int64) async throws {
        guard try await metadata.pendingSymbolFiles(uploadID: uploadID).isEmpty,
              let upload = try await metadata.symbolUpload(id: uploadID) else { return }
        let stored = try await metadata.symbolFiles(uploadID: uploadID).map(\.key)
        try await metadata.completeSymbolUpload(id: uploadID, stored: stored, skipped: upload.skippedKeys, ignored: upload.ignoredKeys)
    }
}

/// Signs the embedded store's upload URLs: `<upload>.<expiry>.<base64url key>.<HMAC-SHA256>`.
/// The key is random per process unless configured, so URLs die with the process that made them
/// (they live an hour at most anyway).
public struct PutURLSigner: Sendable {
    /// The secret's bytes (SymmetricKey is not Sendable; one is made per signature).
    let secret: [UInt8]

    public init(secret: Data? = nil) {
        if let secret {
            self.secret = Array(secret)
        } else {
            var generator = SystemRandomNumberGenerator()
            self.secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
    }

    func token(uploadID: Int64, key blobKey: String, expiresAt: Int64) -> String {
        let encodedKey = Data(blobKey.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let payload = "\(uploadID).\(expiresAt).\(encodedKey)"
        return payload + "." + signature(payload)
    }

    func signature(_ payload: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: SymmetricKey(data: secret)).map { String(format: "%02x", $0) }.joined()
    }

    /// The upload and blob key of a valid, unexpired token.
    func verify(_ token: String, now: Int64) -> (Int64, String)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, let uploadID = Int64(parts[0]), let expires = Int64(parts[1]), expires >= now else { return nil }
        let payload = parts[0...2].joined(separator: ".")
        guard constantTimeEqual(Array(signature(payload).utf8), Array(parts[3].utf8)) else { return nil }
        var base64 = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let key = String(data: data, encoding: .utf8) else { return nil }
        return (uploadID, key)
    }

    func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
