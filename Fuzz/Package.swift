// swift-tools-version: 6.0
// libFuzzer harness for the minidump reader, the stackwalker and the x86 decoder (see docs/fuzzing.md):
//   swift build -c debug --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import PackageDescription

let package = Package(
    name: "PostmortemFuzz",
    products: [.executable(name: "minidump-fuzzer", targets: ["MinidumpFuzzer"])],
    dependencies: [.package(name: "Postmortem", path: "..")],
    targets: [
        .executableTarget(
            name: "MinidumpFuzzer",
            dependencies: [
                .product(name: "MinidumpFormat", package: "Postmortem"),
                .product(name: "Stackwalker", package: "Postmortem"),
                .product(name: "X86Decoder", package: "Postmortem"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
