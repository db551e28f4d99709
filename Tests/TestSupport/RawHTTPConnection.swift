import Foundation

/// A plain TCP connection to a server under test, for requests no HTTP client library sends:
/// half bodies, lying lengths, bytes that are not HTTP. Every read has a time limit.
public final class RawHTTPConnection: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    private let fd: Int32

    /// Connects to `127.0.0.1:port`.
    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Failure(description: "connect to port \(port): errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// Sends all of `bytes`; false when the server closed the connection.
    @discardableResult
    public func send(_ bytes: Data) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    public func send(_ text: String) -> Bool { send(Data(text.utf8)) }

    /// Reads until the server closes the connection, `timeout` passes, or (with
    /// `untilComplete`) one whole HTTP response with a Content-Length has arrived.
    public func receive(timeout: Duration = .seconds(30), untilComplete: Bool = true) -> Data {
        var received = Data()
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            if untilComplete, Self.isComplete(received) { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received.append(contentsOf: buffer[..<n])
        }
        return received
    }

    /// Whether the server has closed the connection (within `timeout`).
    public func isClosedByServer(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var byte: UInt8 = 0
        while ContinuousClock.now < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = recv(fd, &byte, 1, 0)
            if n <= 0 { return true }
        }
        return false
    }

    /// The status code of a raw response (`HTTP/1.1 503 …`), nil if it is none.
    public static func status(of response: Data) -> Int? {
        guard let line = String(decoding: response.prefix(64), as: UTF8.self).split(separator: "\r\n").first else { return nil }
        let parts = line.split(separator: " ")
        return parts.count >= 2 && parts[0].hasPrefix("HTTP/") ? Int(parts[1]) : nil
    }

    /// The body of a raw response (after the blank line).
    public static func body(of response: Data) -> String {
        guard let end = response.firstRange(of: Data("\r\n\r\n".utf8)) else { return "" }
        return String(decoding: response[end.upperBound...], as: UTF8.self)
    }

    static func isComplete(_ response: Data) -> Bool {
        guard let end = response.firstRange(of: Data("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: response[..<end.lowerBound], as: UTF8.self).lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return false }
        return response.count - end.upperBound >= length
    }
}

/// Runs blocking work (socket reads, waits on child processes) on a thread of its own, so an
/// async test never holds one of the few threads of Swift's cooperative pool while it waits —
/// with two cores, a few blocked tests would stall every other suite's tasks (and their HTTP
/// clients' deadlines) in the same process.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

extension RawHTTPConnection {
    /// Connects, sends `request` and reads the response, off the cooperative pool.
    public static func exchange(port: Int, _ request: Data, timeout: Duration = .seconds(60)) async throws -> Data {
        try await offPool {
            let c = try RawHTTPConnection(port: port)
            c.send(request)
            return c.receive(timeout: timeout)
        }
    }
}
