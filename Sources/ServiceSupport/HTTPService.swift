import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import JSONSupport
import Logging
import NIOCore
import ServiceLifecycle

public typealias ServiceRouter = Router<ServiceRequestContext>

/// The request context of every Postmortem service: Hummingbird's basics plus the peer address
/// and the client address derived from it (per-client rate limits need it).
public struct ServiceRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The peer, or the client a trusted proxy names in `X-Forwarded-For` (`ClientAddress`).
    public var clientAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        clientAddress = remoteAddress?.ipAddress ?? "unknown"
    }
}

/// Limits of the HTTP server itself (`http.*` keys; docs/configuration.md).
public struct HTTPLimits: Sendable {
    /// A connection that sends nothing for this long is closed, mid-request too (slow clients).
    public var idleTimeout: Duration = .seconds(30)
    /// Connections served at once; beyond it new ones wait in the listen backlog.
    public var maxConnections = 1024
    /// Peers whose `X-Forwarded-For` is believed.
    public var trustedProxies: [IPAddressRange] = []
    /// When not empty, `/metrics` answers only clients in these networks (others get 403).
    public var metricsAllowedFrom: [IPAddressRange] = []

    public init() {}
}

public enum PostmortemVersion {
    public static let current = "0.5.0"
    public static let source = "https://github.com/postmortem-crash/postmortem"
}

/// What every Postmortem HTTP service shares: the operations endpoints (`/__lbheartbeat__`,
/// `/__heartbeat__` over the service's dependencies, `/__version__`, Prometheus `/metrics`),
/// request logging and metrics, JSON error bodies, and graceful shutdown on SIGTERM/SIGINT
/// (stop accepting, finish in-flight requests, stop the background services).
public struct HTTPService: Sendable {
    public var name: String
    public var host: String
    public var port: Int
    public var healthChecks: [HealthCheck]
    /// Registers the service's own routes.
    public var mount: @Sendable (ServiceRouter) -> Void
    /// Background work run beside the server and shut down with it (queue consumers, pools).
    public var services: [any Service]
    public var logger: Logger
    public var limits: HTTPLimits

    public init(name: String, host: String, port: Int, healthChecks: [HealthCheck] = [], services: [any Service] = [],
                limits: HTTPLimits = HTTPLimits(), logger: Logger, mount: @escaping @Sendable (ServiceRouter) -> Void = { _ in }) {
        self.limits = limits
        self.name = name
        self.host = host
        self.port = port
        self.healthChecks = healthChecks
        self.services = services
        self.logger = logger
        self.mount = mount
    }

    public func makeRouter() -> ServiceRouter {
        Observability.bootstrapMetrics()
        let router = ServiceRouter(context: ServiceRequestContext.self)
        router.add(middleware: ClientAddressMiddleware(trustedProxies: limits.trustedProxies))
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: MetricsMiddleware())
        let checks = healthChecks
        router.get("/__lbheartbeat__") { _, _ in Self.json(.ok, "{}") }
        router.head("/__lbheartbeat__") { _, _ in Response(status: .ok) }
        let logger = self.logger
        router.get("/__heartbeat__") { _, _ in
            let (ok, body, failures) = await HealthCheck.report(checks)
            for f in failures { logger.error("heartbeat check failed", metadata: ["check": "\(f.name)", "error": "\(f.message)"]) }
            return Self.json(ok ? .ok : .internalServerError, body.serialized())
        }
        let name = self.name
        router.get("/__version__") { _, _ in Self.json(.ok, Self.versionDocument(service: name)) }
        let metricsAllowed = limits.metricsAllowedFrom
        router.get("/metrics") { _, context in
            if !metricsAllowed.isEmpty, !metricsAllowed.contains(where: { $0.contains(context.clientAddress) }) {
                return Self.json(.forbidden, #"{"error": "metrics are not served to this address"}"#)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: Observability.prometheusText())))
        }
        mount(router)
        return router
    }

    /// Builds the application; `onServerRunning` receives the bound port (useful with port 0).
    public func makeApplication(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            server: HTTPServerBuilder { [idleTimeout = limits.idleTimeout] responder in
                HTTP1ServerChannel(responder: responder, idleTimeout: idleTimeout)
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "postmortem-\(name)",
                                 availableConnectionsDelegate: .maximum(limits.maxConnections, logger: logger)),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    public static func json(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Dockerflow's version document: `version.json` from `POSTMORTEM_VERSION_FILE` or the
    /// working directory when a build wrote one, else what the binary knows.
    /// `/__version__`: the deployment's version.json, else the built-in version.
    public static func versionDocument(service: String) -> String {
        let path = ProcessInfo.processInfo.environment["POSTMORTEM_VERSION_FILE"] ?? "version.json"
        if let data = FileManager.default.contents(atPath: path), case .object? = JSONValue.parse(data) {
            return String(decoding: data, as: UTF8.self)
        }
        return JSONValue.object([
            ("source", .string(PostmortemVersion.source)), ("version", .string(PostmortemVersion.current)),
            ("commit", .string("")), ("build", .string("")), ("service", .string(service)),
        ]).serialized()
    }
}

/// Sets `clientAddress` from the peer and, behind a trusted proxy, `X-Forwarded-For`.
struct ClientAddressMiddleware: RouterMiddleware {
    let trustedProxies: [IPAddressRange]
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func handle(_ request: Request, context: ServiceRequestContext,
                next: (Request, ServiceRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        if !trustedProxies.isEmpty {
            context.clientAddress = ClientAddress.resolve(peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[Self.forwardedFor],
                                                          trustedProxies: trustedProxies)
        }
        return try await next(request, context)
    }
}

/// Turns errors thrown by handlers into `{"error": "…"}` bodies with their status.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let message = error.body ?? error.status.reasonPhrase
            return HTTPService.json(error.status, JSONValue.object([("error", .string(message))]).serialized())
        } catch let error as any HTTPResponseError {
            return HTTPService.json(error.status, JSONValue.object([("error", .string("\(error)"))]).serialized())
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return HTTPService.json(.internalServerError, JSONValue.object([("error", .string("internal server error"))]).serialized())
        }
    }
}
