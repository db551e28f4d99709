// swift-tools-version: 6.0
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Postmortem",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "postmortem", targets: ["PostmortemCLI"]),
        .library(name: "BreakpadSymbols", targets: ["BreakpadSymbols"]),
        .library(name: "MinidumpFormat", targets: ["MinidumpFormat"]),
        .library(name: "Stackwalker", targets: ["Stackwalker"]),
        .library(name: "Signatures", targets: ["Signatures"]),
        .library(name: "JSONSupport", targets: ["JSONSupport"]),
        .library(name: "SymbolSources", targets: ["SymbolSources"]),
        .library(name: "Symbolication", targets: ["Symbolication"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // formats
        .target(name: "BreakpadSymbols", dependencies: ["CSystemShims"], swiftSettings: strict),
        .target(name: "CSystemShims"),
        .target(name: "MinidumpFormat", swiftSettings: strict),
        .target(name: "JSONSupport", swiftSettings: strict),
        // domain
        .target(
            name: "SymbolSources",
            dependencies: [
                "BreakpadSymbols",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // services (the HTTP routes come with the service issue; the core lives here now)
        .target(name: "Symbolication", dependencies: ["SymbolSources", "BreakpadSymbols", "JSONSupport"], swiftSettings: strict),
        .target(
            name: "Signatures", dependencies: ["JSONSupport"],
            resources: [.copy("Resources/siglists")], swiftSettings: strict),
        .target(name: "Stackwalker", dependencies: ["MinidumpFormat", "BreakpadSymbols", "SymbolSources", "JSONSupport"], swiftSettings: strict),
        // app
        .executableTarget(
            name: "PostmortemCLI",
            dependencies: [
                "BreakpadSymbols", "SymbolSources", "Symbolication", "MinidumpFormat", "Stackwalker", "Signatures", "JSONSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),

        .testTarget(name: "BreakpadSymbolsTests", dependencies: ["BreakpadSymbols", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "SymbolSourcesTests",
            dependencies: ["SymbolSources", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "SymbolicationTests",
            dependencies: ["Symbolication", "SymbolSources", "JSONSupport", "TestSupport"],
            swiftSettings: strict),
        .testTarget(name: "MinidumpFormatTests", dependencies: ["MinidumpFormat", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "StackwalkerTests",
            dependencies: ["Stackwalker", "MinidumpFormat", "SymbolSources", "JSONSupport", "TestSupport"],
            swiftSettings: strict),
        .testTarget(name: "SignaturesTests", dependencies: ["Signatures", "JSONSupport", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "JSONSupportTests", dependencies: ["JSONSupport"], swiftSettings: strict),
        .testTarget(name: "PostmortemCLITests", dependencies: ["PostmortemCLI", "TestSupport"], swiftSettings: strict),
        // Shared test helpers: locating ../shared/testdata, a loopback HTTP file server.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict),
    ]
)
