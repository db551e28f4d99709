import Foundation
import ServiceSupport
import Testing
import TestSupport

/// The HTTP server every service shares, over real TCP.
@Suite struct HTTPServiceTests {
    /// An HTTP/1.0 request without keep-alive gets its answer and the connection closed; one
    /// that asks for keep-alive, and HTTP/1.1, keep their connection.
    @Test func http10ConnectionsCloseUnlessTheyAskForKeepAlive() async throws {
        let server = await RunningService(HTTPService(name: "http-test", host: "127.0.0.1", port: 0, logger: RunningService.quietLogger))
        defer { Task { await server.stop() } }
        let port = server.port

        let closing = try await offPool { () throws -> (Int?, Bool) in
            let c = try RawHTTPConnection(port: port)
            c.send("GET /__lbheartbeat__ HTTP/1.0\r\nHost: x\r\n\r\n")
            let answer = c.receive(timeout: .seconds(10))
            return (RawHTTPConnection.status(of: answer), c.isClosedByServer(timeout: .seconds(5)))
        }
        #expect(closing.0 == 200 && closing.1, "HTTP/1.0 without keep-alive: \(closing)")

        for (request, label) in [("GET /__lbheartbeat__ HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.0 keep-alive"),
                                 ("GET /__lbheartbeat__ HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1")] {
            let kept = try await offPool { () throws -> (Int?, Bool, Int?) in
                let c = try RawHTTPConnection(port: port)
                c.send(request)
                let first = RawHTTPConnection.status(of: c.receive(timeout: .seconds(10)))
                let closed = c.isClosedByServer(timeout: .milliseconds(500))
                c.send(request)
                return (first, closed, RawHTTPConnection.status(of: c.receive(timeout: .seconds(10))))
            }
            #expect(kept.0 == 200 && !kept.1 && kept.2 == 200, "\(label): \(kept)")
        }
    }
}
