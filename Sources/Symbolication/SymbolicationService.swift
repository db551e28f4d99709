import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceSupport

/// The symbolication service's HTTP routes on a service router: every method on
/// `/symbolicate/v4` and `/symbolicate/v5` goes through `Symbolicator.respond`, which owns the
/// API's semantics (405s, CORS, validation); bodies over `maxBodySize` get 413.
public enum SymbolicationService {
    public static func mount(_ symbolicator: Symbolicator, on router: ServiceRouter, maxBodySize: Int = 10 << 20) {
        let methods: [HTTPRequest.Method] = [.get, .post, .options, .put, .delete, .patch, .head]
        for path in ["/symbolicate/v4", "/symbolicate/v5"] {
            for method in methods {
                router.on(RouterPath(path), method: method) { request, _ -> Response in
                    let body: ByteBuffer
                    do {
                        body = try await request.body.collect(upTo: maxBodySize)
                    } catch {
                        return HTTPService.json(.contentTooLarge, "{\"title\": \"413 Payload Too Large\"}")
                    }
                    var headers: [(String, String)] = []
                    for field in request.headers { headers.append((field.name.rawName, field.value)) }
                    let adapted = SymbolicationHTTPRequest(method: request.method.rawValue, target: request.uri.path,
                                                           headers: headers, body: Data(body.readableBytesView))
                    guard let answer = await symbolicator.respond(to: adapted) else { throw HTTPError(.notFound) }
                    var fields = HTTPFields()
                    for (name, value) in answer.headers {
                        if let n = HTTPField.Name(name) { fields[n] = value }
                    }
                    return Response(status: .init(code: answer.status), headers: fields,
                                    body: .init(byteBuffer: ByteBuffer(string: answer.body)))
                }
            }
        }
    }
}
