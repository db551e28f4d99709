import JSONSupport
import Foundation

/// The symbolication API's HTTP semantics without an HTTP server: routes, methods, CORS, status
/// codes and bodies (`symbolication-api.md` §1). The service adapts its server's requests to
/// `SymbolicationHTTPRequest` and writes back the `SymbolicationHTTPResponse` unchanged.
public struct SymbolicationHTTPRequest: Sendable {
    public var method: String
    /// The request target; the query string is ignored, as Eliot ignores it.
    public var target: String
    public var headers: [(String, String)]
    public var body: Data

    public init(method: String, target: String, headers: [(String, String)] = [], body: Data = Data()) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

public struct SymbolicationHTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: String
}

extension Symbolicator {
    static let corsHeaders = [
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Expose-Headers": "accept, accept-encoding, authorization, content-type, dnt, origin, user-agent, x-csrftoken, x-requested-with",
    ]

    /// Answers one request to `/symbolicate/v4` or `/symbolicate/v5`; other paths get nil so the
    /// server can route them elsewhere.
    public func respond(to request: SymbolicationHTTPRequest) async -> SymbolicationHTTPResponse? {
        let path = request.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let version: SymbolicationAPIVersion
        switch path {
        case "/symbolicate/v4", "/symbolicate/v4/": version = .v4
        case "/symbolicate/v5", "/symbolicate/v5/": version = .v5
        default: return nil
        }
        var headers = ["Content-Type": "application/json"]
        switch request.method.uppercased() {
        case "POST":
            let debug = version == .v5 && !(request.header("Debug") ?? "").isEmpty
            switch await symbolicate(body: request.body, version: version, debug: debug) {
            case .success(let json): return SymbolicationHTTPResponse(status: 200, headers: headers, body: json)
            case .failure(let failure): return SymbolicationHTTPResponse(status: failure.status, headers: headers, body: failure.body)
            }
        case "OPTIONS":
            headers.merge(Self.corsHeaders) { $1 }
            return SymbolicationHTTPResponse(status: 200, headers: headers, body: "")
        default:
            headers["Allow"] = "OPTIONS, POST"
            return SymbolicationHTTPResponse(status: 405, headers: headers,
                                             body: JSONValue.object([("title", .string("405 Method Not Allowed"))]).serialized())
        }
    }
}
