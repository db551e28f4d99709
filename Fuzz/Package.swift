// swift-tools-version: 6.0
// libFuzzer over the targets of the main package's FuzzTargets module (docs/fuzzing.md). One
// binary; FUZZ_TARGET picks the target (minidump, sym, submission, supersearch, symbolication, processor, symbolupload):
//   swift build -c debug --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import PackageDescription

let package = Package(
    name: "PostmortemFuzz",
    products: [.executable(name: "postmortem-fuzzer", targets: ["PostmortemFuzzer"])],
    dependencies: [.package(name: "Postmortem", path: "..")],
    targets: [
        .executableTarget(
            name: "PostmortemFuzzer",
            dependencies: [.product(name: "FuzzTargets", package: "Postmortem")],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
