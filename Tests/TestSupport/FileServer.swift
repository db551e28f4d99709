import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 server on 127.0.0.1 for tests: serves configured routes and counts requests,
/// so symbol-server clients are exercised over loopback rather than against mocks.
public final class TestHTTPServer: @unchecked Sendable {
    public enum Response: Sendable {
        /// 200 with the file's bytes; with `gzip`, compressed with `Content-Encoding: gzip`.
        case file(String, gzip: Bool = false)
        case status(Int)
        case redirect(String)
        /// Answers `status` for the first `times` requests, then `then`.
        indirect case failing(Int, times: Int, then: Response)
        /// Waits before answering (for request-coalescing tests).
        indirect case delayed(milliseconds: Int, Response)
    }

    private let lock = NSLock()
    private var routes: [String: Response]
    private var counts: [String: Int] = [:]
    private let group: MultiThreadedEventLoopGroup
    private var channel: Channel?
    public private(set) var port = 0

    public init(routes: [String: Response]) throws {
        self.routes = routes
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [unowned self] channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(server: self))
                }
            }
        let ch = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        channel = ch
        port = ch.localAddress?.port ?? 0
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public func requests(to path: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return counts[path] ?? 0
    }

    public var totalRequests: Int {
        lock.lock(); defer { lock.unlock() }
        return counts.values.reduce(0, +)
    }

    public func shutdown() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    fileprivate func respond(to path: String) -> (Response?, Int) {
        lock.lock(); defer { lock.unlock() }
        counts[path, default: 0] += 1
        return (routes[path], counts[path]!)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: TestHTTPServer
        var path = ""
        init(server: TestHTTPServer) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            case .body: break
            case .end:
                let (route, n) = server.respond(to: path)
                let loop = context.eventLoop
                let ctx = NIOLoopBound(context, eventLoop: loop)
                resolve(route, n) { status, headers, body in
                    loop.execute { self.write(ctx.value, status, headers, body) }
                }
            }
        }

        private func resolve(_ route: Response?, _ n: Int, _ done: @escaping @Sendable (Int, [(String, String)], [UInt8]) -> Void) {
            switch route {
            case nil: done(404, [], Array("Symbol Not Found".utf8))
            case .status(let s): done(s, [], [])
            case .redirect(let location): done(302, [("Location", location)], [])
            case .failing(let s, let times, let then):
                if n <= times { done(s, [], []) } else { resolve(then, n, done) }
            case .delayed(let ms, let inner):
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(ms)) { self.resolve(inner, n, done) }
            case .file(let file, let gzip):
                guard let data = FileManager.default.contents(atPath: file) else { done(500, [], []); return }
                if gzip {
                    done(200, [("Content-Encoding", "gzip"), ("Content-Type", "text/plain")], GzipEncoder.storedGzip(Array(data)))
                } else {
                    done(200, [("Content-Type", "text/plain")], Array(data))
                }
            }
        }

        private func write(_ context: ChannelHandlerContext, _ status: Int, _ extra: [(String, String)], _ body: [UInt8]) {
            var headers = HTTPHeaders(extra)
            headers.add(name: "Content-Length", value: String(body.count))
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

/// A valid gzip stream made of uncompressed ("stored") deflate blocks: enough to exercise a
/// client's `Content-Encoding: gzip` handling without a compressor or a child process (spawning
/// `gzip` from a SwiftNIO event-loop thread crashed Foundation's process monitor at teardown).
public enum GzipEncoder {
    public static func storedGzip(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<offset + n]
            offset += n
        } while offset < data.count
        let crc = crc32(data), size = UInt32(truncatingIfNeeded: data.count)
        for v in [crc, size] { out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
        return out
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var table = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            table[i] = c
        }
        var crc: UInt32 = 0xFFFF_FFFF
        for b in data { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
