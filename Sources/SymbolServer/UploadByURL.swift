import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Upload by download (`symbols-server.md` §2, form 2): the server fetches the archive a CI job
/// names. Unlike Tecken, which checks only the first host, the allow-list is checked for the
/// URL **and every redirect target**, so an allowed host cannot bounce the server to an
/// internal one. HEAD first (the size, the redirect trail), then a streamed GET of the final URL.
struct UploadByURL: Sendable {
    let allowedHosts: [String]
    let allowInsecure: Bool
    let maxSize: Int64
    var maxRedirects = 5
    var timeout: TimeAmount = .seconds(300)

    /// One client that never follows redirects by itself: each hop is checked here.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    struct Failure: Error {
        let status: HTTPResponse.Status
        let message: String
    }

    struct Fetched {
        let size: Int64
        let redirects: [String]
        let filename: String
    }

    func check(_ url: String) -> Failure? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host?.lowercased() else {
            return Failure(status: .badRequest, message: "Enter a valid URL.")
        }
        if scheme == "http" && !allowInsecure { return Failure(status: .badRequest, message: "Insecure URL") }
        guard scheme == "https" || scheme == "http" else { return Failure(status: .badRequest, message: "Enter a valid URL.") }
        guard allowedHosts.contains(where: { $0.lowercased() == host }) else {
            return Failure(status: .badRequest, message: "Not an allowed domain ('\(host)') to download from.")
        }
        return nil
    }

    func download(_ url: String, to file: TemporaryFile) async -> Result<Fetched, Failure> {
        if let failure = check(url) { return .failure(failure) }
        var current = url
        var redirects: [String] = []
        var declaredSize: Int64?
        // HEAD, following redirects by hand.
        while true {
            var request = HTTPClientRequest(url: current)
            request.method = .HEAD
            let response: HTTPClientResponse
            do {
                response = try await Self.client.execute(request, timeout: timeout)
            } catch {
                return .failure(Failure(status: .internalServerError, message: "ConnectionError trying to open \(url)"))
            }
            let status = Int(response.status.code)
            if (300..<400).contains(status), let location = response.headers.first(name: "Location") {
                guard redirects.count < maxRedirects else {
                    return .failure(Failure(status: .badRequest, message: "Too many redirects trying to open \(url)"))
                }
                guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteString else {
                    return .failure(Failure(status: .badRequest, message: "\(url) can't be found (\(status))"))
                }
                if let failure = check(next) { return .failure(failure) }
                redirects.append(next)
                current = next
                continue
            }
            if status >= 500 { return .failure(Failure(status: .internalServerError, message: "ConnectionError trying to open \(url)")) }
            if status >= 400 { return .failure(Failure(status: .badRequest, message: "\(url) can't be found (\(status))")) }
            declaredSize = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
            break
        }
        if let declaredSize, declaredSize > maxSize {
            return .failure(Failure(status: .contentTooLarge, message: "\(url) is \(declaredSize) bytes; the limit is \(maxSize)"))
        }
        // The GET of the URL the HEAD settled on.
        let size: Int64
        do {
            let response = try await Self.client.execute(HTTPClientRequest(url: current), timeout: timeout)
            guard response.status.code == 200 else {
                return .failure(Failure(status: .badRequest, message: "non-200 status code when retrieving \(url)"))
            }
            size = try await file.write(response.body, limit: maxSize)
        } catch is TemporaryFile.TooLarge {
            return .failure(Failure(status: .contentTooLarge, message: "\(url) is larger than the limit of \(maxSize) bytes"))
        } catch {
            return .failure(Failure(status: .internalServerError, message: "ConnectionError trying to open \(url)"))
        }
        let name = URL(string: current)?.lastPathComponent ?? "download.zip"
        return .success(Fetched(size: size, redirects: redirects, filename: name.isEmpty ? "download.zip" : name))
    }
}
