import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceSupport

/// The collector's routes: `POST /submit` (plain-text answers, as clients expect) and, like
/// Antenna, `GET /__broken__` for error-reporting checks.
public enum CollectorService {
    public static func mount(_ collector: Collector, on router: ServiceRouter) {
        router.post("/submit") { request, _ -> Response in
            var headers: [(String, String)] = []
            for field in request.headers { headers.append((field.name.rawName, field.value)) }
            let query = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            let answer = await collector.handle(Submission(headers: headers, query: query, body: request.body))
            var fields: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
            if let retryAfter = answer.retryAfter { fields[.retryAfter] = String(retryAfter) }
            return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        router.get("/__broken__") { _, _ -> Response in
            throw HTTPError(.internalServerError, message: "broken on purpose")
        }
    }
}
