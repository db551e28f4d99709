import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceSupport
import Storage

/// Downloads (`symbols-server.md` §4): `GET|HEAD /<debug_file>/<debug_id>/<file>` and
/// `/try/…`. They are answered by a middleware when no other route matched, because their
/// three free path components would otherwise shadow every three-component route of the
/// services `serve` mounts beside them.
struct SymbolDownloadMiddleware: RouterMiddleware {
    typealias Context = ServiceRequestContext
    let server: SymbolServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && error.body == nil {
            guard request.method == .get || request.method == .head,
                  let path = SymbolPath(request.uri.path) else { throw error }
            return try await server.download(path, request: request, context: context)
        }
    }
}

/// A download path, checked like Tecken's route: a hex debug id, no `%`, `#`, control
/// characters or non-ASCII bytes anywhere (such paths are no symbol path at all).
public struct SymbolPath: Equatable, Sendable {
    public var isTry: Bool
    public var debugFile: String
    public var debugId: String
    public var file: String

    public init?(_ path: String) {
        guard path.utf8.count <= 1024,
              path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "\\") })
        else { return nil }
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        isTry = parts.count == 4 && parts[0] == "try"
        if isTry { parts.removeFirst() }
        guard parts.count == 3, !parts[1].isEmpty, parts[1].utf8.allSatisfy(UploadArchive.isHexDigit),
              !parts.contains(where: { $0 == "." || $0 == ".." || $0.hasPrefix(".") }) else { return nil }
        (debugFile, debugId, file) = (parts[0], parts[1].uppercased(), parts[2])
    }
}

extension SymbolServer {
    static let downloadSuffixes = [".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"]
    static let cors: HTTPFields = [.accessControlAllowOrigin: "*", .accessControlAllowMethods: "GET"]

    static func text(_ status: HTTPResponse.Status, _ body: String, _ extra: HTTPFields = [:]) -> Response {
        var headers = cors
        headers[.contentType] = "text/plain; charset=utf-8"
        for field in extra { headers[field.name] = field.value }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func download(_ path: SymbolPath, request: Request, context: ServiceRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let query = FormEncoding.parse(request.uri.query ?? "")
        let debug = request.headers[HTTPField.Name("Debug")!].map { ["true", "1", "yes"].contains($0.lowercased()) } ?? false
        func debugTime() -> HTTPFields {
            debug ? [HTTPField.Name("Debug-Time")!: String(format: "%.6f", (ContinuousClock.now - started).inSecondsDouble)] : [:]
        }
        // 1. The ignore list: answered without a lookup.
        if path.file == "file.ptr" || path.debugId == String(repeating: "0", count: 33)
            || !Self.downloadSuffixes.contains(where: { path.file.hasSuffix($0) }) {
            return Self.text(.notFound, "Symbol Not Found (and ignored)", [HTTPField.Name("Debug-Time")!: "0"])
        }
        let includeTry = path.isTry || query.contains { $0.0 == "try" }
        // 2–3. Regular storage, then try storage.
        if let located = try await store.locate(debugFile: path.debugFile, debugId: path.debugId, file: path.file, includeTry: includeTry) {
            var headers = Self.cors
            for field in debugTime() { headers[field.name] = field.value }
            if request.method == .head { return Response(status: .ok, headers: headers) }
            return try await serve(located, headers: headers, context: context)
        }
        // 4. A code file and code id in place of the debug file and id.
        if path.file.hasSuffix(".sym"), path.debugId.count < 33 {
            let refresh = query.contains { $0.0 == "_refresh" }
            if let record = try await store.lookup(file: path.debugFile, id: path.debugId, includeTry: includeTry, refresh: refresh),
               let debugFile = record.debugFilename, let debugId = record.debugId,
               debugFile != path.debugFile || debugId != path.debugId {
                var location = "\(path.isTry ? "/try" : "")/\(debugFile)/\(debugId)/\(path.file)"
                if let q = request.uri.query, !q.isEmpty { location += "?" + q }
                var headers = Self.cors
                headers[.location] = location
                for field in debugTime() { headers[field.name] = field.value }
                return Response(status: .found, headers: headers)
            }
        }
        // 5. Not found: a miss that names the code file and id feeds the missing-symbols report.
        if let codeFile = query.first(where: { $0.0 == "code_file" })?.1, let codeId = query.first(where: { $0.0 == "code_id" })?.1,
           !codeFile.isEmpty, !codeId.isEmpty, codeFile.utf8.count <= 256, codeId.utf8.count <= 64, path.debugFile.utf8.count <= 256 {
            do {
                try await metadata.recordDownloadMiss(debugFile: path.debugFile, debugId: path.debugId, codeFile: codeFile, codeId: codeId)
            } catch {
                context.logger.warning("cannot record a missing symbol", metadata: ["error": "\(error)"])
            }
        }
        return Self.text(.notFound, "Symbol Not Found", debugTime())
    }

    /// The object itself from the filesystem store (streamed, `.sym` as stored: gzip); a
    /// redirect to the bucket (presigned, or through `publicBaseURL`) from S3.
    func serve(_ located: SymbolStore.Located, headers: HTTPFields, context: ServiceRequestContext) async throws -> Response {
        var headers = headers
        if let base = settings.publicBaseURL {
            headers[.location] = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/" + located.key
            return Response(status: .found, headers: headers)
        }
        let contentType = located.key.hasSuffix(".sym") ? "text/plain" : "application/octet-stream"
        if let s3 = store.blobs as? S3BlobStore {
            // The bucket answers with the headers Tecken stores on its objects.
            var overrides = [("content-type", contentType)]
            if located.compressed { overrides.append(("content-encoding", "gzip")) }
            headers[.location] = try s3.presignedURL(method: "GET", key: located.key, expires: settings.redirectExpiry, responseHeaders: overrides)
            return Response(status: .found, headers: headers)
        }
        headers[.contentType] = contentType
        if located.compressed { headers[.contentEncoding] = "gzip" }
        headers[.contentLength] = String(located.size)
        headers[.cacheControl] = "no-transform"
        if let files = store.blobs as? FileBlobStore {
            let body = try await FileIO().loadFile(path: try files.filePath(for: located.key), context: context)
            return Response(status: .ok, headers: headers, body: body)
        }
        guard let data = try await store.blobs.get(located.key) else { return Self.text(.notFound, "Symbol Not Found") }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}

extension Duration {
    var inSecondsDouble: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
