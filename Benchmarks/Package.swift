// swift-tools-version: 6.0
// Benchmarks live in their own package so the main build stays lean.
// Run: swift run -c release --package-path Benchmarks symbol-bench
import PackageDescription

let package = Package(
    name: "PostmortemBenchmarks",
    platforms: [.macOS(.v14)],
    products: [.executable(name: "symbol-bench", targets: ["SymbolBench"])],
    dependencies: [.package(name: "Postmortem", path: "..")],
    targets: [
        .executableTarget(
            name: "SymbolBench",
            dependencies: [.product(name: "BreakpadSymbols", package: "Postmortem")],
            path: "Sources/SymbolBench",
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
