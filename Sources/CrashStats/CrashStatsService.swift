import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceSupport

/// Mounts the API at `/api/<Model>/`.
public enum CrashStatsService {
    public static func mount(_ api: CrashStatsAPI, on router: ServiceRouter) {
        let handler: @Sendable (Request, ServiceRequestContext) async throws -> Response = { request, context in
            let endpoint = context.parameters.get("model") ?? ""
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.rawName.lowercased()] = field.value }
            // Query strings are form-encoded (`+` is a space), which the URI parser leaves as is.
            let query = FormEncoding.parse(request.uri.query ?? "")
            var body = Data()
            var form: [(String, String)] = []
            if request.method == .post {
                let buffer = try await request.body.collect(upTo: 16 << 20)
                body = Data(buffer.readableBytesView)
                if (headers["content-type"] ?? "").hasPrefix("application/x-www-form-urlencoded") {
                    form = FormEncoding.parse(String(decoding: body, as: UTF8.self))
                }
            }
            // Anonymous clients are told apart by their address (X-Forwarded-For only from a
            // trusted proxy: `ClientAddress`).
            let client = context.clientAddress
            let answer = await api.handle(APIRequest(method: request.method.rawValue, endpoint: endpoint, query: query, form: form,
                                                     headers: headers, body: body, client: client))
            var fields = HTTPFields()
            fields[.contentType] = answer.contentType
            for (name, value) in answer.headers { if let n = HTTPField.Name(name) { fields[n] = value } }
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        }
        // One route serves `/api/<Model>` and `/api/<Model>/` (the router ignores a trailing slash).
        for method in [HTTPRequest.Method.get, .post, .put, .delete] { router.on("/api/:model", method: method, use: handler) }
    }
}
