import Logging
import ServiceLifecycle
import ServiceSupport

/// An `HTTPService` serving on 127.0.0.1 on a free port, for tests over real HTTP. Create it with
/// a service whose `port` is 0; `stop()` shuts it down gracefully.
public final class RunningService: @unchecked Sendable {
    public let port: Int
    public var base: String { "http://127.0.0.1:\(port)" }
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    public init(_ service: HTTPService) async {
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = service.makeApplication { port in continuation.yield(port) }
        let group = ServiceGroup(configuration: .init(services: [app], logger: service.logger))
        self.group = group
        task = Task { try await group.run() }
        var bound = 0
        for await p in stream { bound = p; break }
        port = bound
    }

    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }

    /// A logger that stays quiet (tests check answers, not logs).
    public static var quietLogger: Logger {
        var logger = Logger(label: "test.service")
        logger.logLevel = .critical
        return logger
    }
}
