// swift-tools-version: 6.0
// Benchmarks live in their own package so the main build stays lean.
// Run: swift run -c release --package-path Benchmarks symbol-bench
import PackageDescription

let package = Package(
    name: "PostmortemBenchmarks",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "symbol-bench", targets: ["SymbolBench"]),
        .executable(name: "stackwalk-bench", targets: ["StackwalkBench"]),
        .executable(name: "signature-bench", targets: ["SignatureBench"]),
        .executable(name: "storage-bench", targets: ["StorageBench"]),
        .executable(name: "search-bench", targets: ["SearchBench"]),
    ],
    dependencies: [.package(name: "Postmortem", path: "..")],
    targets: [
        .target(name: "BenchSupport", path: "Sources/BenchSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "SymbolBench",
            dependencies: ["BenchSupport", .product(name: "BreakpadSymbols", package: "Postmortem")],
            path: "Sources/SymbolBench",
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "StackwalkBench",
            dependencies: [
                "BenchSupport",
                .product(name: "MinidumpFormat", package: "Postmortem"),
                .product(name: "Stackwalker", package: "Postmortem"),
                .product(name: "SymbolSources", package: "Postmortem"),
                .product(name: "MinidumpSynth", package: "Postmortem"),
            ],
            path: "Sources/StackwalkBench",
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "SignatureBench",
            dependencies: [
                "BenchSupport",
                .product(name: "Signatures", package: "Postmortem"),
                .product(name: "JSONSupport", package: "Postmortem"),
            ],
            path: "Sources/SignatureBench",
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "StorageBench",
            dependencies: ["BenchSupport", .product(name: "Storage", package: "Postmortem")],
            path: "Sources/StorageBench",
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "SearchBench",
            dependencies: [
                "BenchSupport",
                .product(name: "Storage", package: "Postmortem"),
                .product(name: "CrashStats", package: "Postmortem"),
                .product(name: "Signatures", package: "Postmortem"),
                .product(name: "CrashModel", package: "Postmortem"),
                .product(name: "JSONSupport", package: "Postmortem"),
            ],
            path: "Sources/SearchBench",
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
