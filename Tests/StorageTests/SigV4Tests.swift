import Foundation
import JSONSupport
@testable import Storage
import Testing
import TestSupport

/// Our SigV4 signatures against botocore's (the AWS SDK for Python) for the requests the S3
/// store makes: object keys with characters that need encoding, list queries, multipart
/// queries, bodies, session tokens, both addressing styles.
@Suite struct SigV4Tests {
    struct Case {
        var method: String
        var host: String
        var path: String
        var query: [(String, String)]
        var body: String
        var token: String?
        var region = "us-east-1"
    }

    @Test func signaturesMatchBotocore() throws {
        let cases = [
            Case(method: "GET", host: "127.0.0.1:9000", path: "/bucket/v1/dump/de1bb258-cbbf-4589-a673-34f800160918", query: [], body: ""),
            Case(method: "PUT", host: "127.0.0.1:9000", path: "/bucket/" + SigV4Signer.encode("v1/sym bols/a+b~c/(1).sym", slash: false),
                 query: [], body: "{\"ProductName\": \"Firefox\"}"),
            Case(method: "GET", host: "s3.eu-central-1.amazonaws.com", path: "/bucket",
                 query: [("list-type", "2"), ("prefix", "v1/raw_crash/2026 11/"), ("max-keys", "1000"), ("continuation-token", "1/abc=+x")],
                 body: "", region: "eu-central-1"),
            Case(method: "POST", host: "bucket.s3.amazonaws.com", path: "/v1/dump/big", query: [("uploads", "")], body: ""),
            Case(method: "PUT", host: "127.0.0.1:9000", path: "/bucket/v1/dump/big", query: [("uploadId", "abc/def+g=="), ("partNumber", "2")],
                 body: "part bytes", token: "FQoGZXIvYXdzEJr//////////session"),
            Case(method: "DELETE", host: "127.0.0.1", path: "/bucket/v1/%C3%A9t%C3%A9", query: [], body: ""),
        ]
        let date = Date(timeIntervalSince1970: 1_795_928_400) // 2026-11-29T05:00:00Z
        var lines = ""
        var ours: [String] = []
        for c in cases {
            let signer = SigV4Signer(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: c.token, region: c.region)
            let headers = signer.sign(method: c.method, path: c.path, query: c.query, headers: [("host", c.host)],
                                      payloadHash: SigV4Signer.sha256Hex(Data(c.body.utf8)), date: date)
            ours.append(headers.first { $0.0 == "Authorization" }!.1)
            let query = c.query.map { "\(SigV4Signer.encode($0.0, slash: true))=\(SigV4Signer.encode($0.1, slash: true))" }.joined(separator: "&")
            let json = JSONValue.object([
                ("method", .string(c.method)), ("url", .string("http://\(c.host)\(c.path)\(query.isEmpty ? "" : "?" + query)")),
                ("body", .string(c.body)), ("access", .string("AKIDEXAMPLE")), ("secret", .string("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")),
                ("token", c.token.map { .string($0) } ?? .null), ("region", .string(c.region)), ("timestamp", .string("20261129T050000Z")),
            ])
            lines += json.serialized() + "\n"
        }
        let (status, out, err) = try runProcess("/usr/bin/env", ["python3", TestData.packageRoot + "/Tests/Oracles/sigv4_botocore.py"], stdin: Data(lines.utf8))
        #expect(status == 0, "botocore oracle failed: \(String(decoding: err, as: UTF8.self))")
        let theirs = String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(theirs.count == cases.count)
        for (n, (a, b)) in zip(ours, theirs).enumerated() { #expect(a == b, "case \(n)") }
    }

    /// The worked example of AWS's S3 SigV4 documentation ("GET Object" with a Range header).
    @Test func awsDocumentationExample() {
        let signer = SigV4Signer(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        let headers = signer.sign(method: "GET", path: "/test.txt", query: [], headers: [("host", "examplebucket.s3.amazonaws.com"), ("range", "bytes=0-9")],
                                  payloadHash: SigV4Signer.sha256Hex(Data()), date: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(headers.last?.1 == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }
}
