// swift-tools-version: 6.0
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Postmortem",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "postmortem", targets: ["PostmortemCLI"]),
        .library(name: "BreakpadSymbols", targets: ["BreakpadSymbols"]),
        .library(name: "MinidumpFormat", targets: ["MinidumpFormat"]),
        .library(name: "Stackwalker", targets: ["Stackwalker"]),
        // Synthetic minidumps for tests, benchmarks and the fuzzer's seed corpus.
        .library(name: "MinidumpSynth", targets: ["MinidumpSynth"]),
        .library(name: "X86Decoder", targets: ["X86Decoder"]),
        .library(name: "Signatures", targets: ["Signatures"]),
        .library(name: "JSONSupport", targets: ["JSONSupport"]),
        .library(name: "CrashModel", targets: ["CrashModel"]),
        .library(name: "SymbolSources", targets: ["SymbolSources"]),
        .library(name: "Symbolication", targets: ["Symbolication"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "CrashStats", targets: ["CrashStats"]),
        // The fuzz targets, for the libFuzzer package in Fuzz/.
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.4.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
    ],
    targets: [
        // formats
        .target(name: "BreakpadSymbols", dependencies: ["CSystemShims"], swiftSettings: strict),
        .target(name: "CSystemShims", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "X86Decoder", swiftSettings: strict),
        .target(name: "MinidumpFormat", swiftSettings: strict),
        // Native debug files: ELF (and later Mach-O) containers, DWARF debug information, and
        // the .sym writer that turns them into Breakpad symbol files.
        .target(
            name: "ObjectFiles",
            dependencies: [.product(name: "CompressNIO", package: "compress-nio"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict),
        .target(name: "DWARF", dependencies: ["ObjectFiles"], swiftSettings: strict),
        // C++ (Itanium) and Rust (legacy) symbol names as people read them.
        .target(name: "Demangle", swiftSettings: strict),
        .target(name: "SymbolDump", dependencies: ["ObjectFiles", "DWARF", "Demangle", "CSystemShims"], swiftSettings: strict),
        .target(name: "JSONSupport", dependencies: ["CSystemShims"], swiftSettings: strict),
        // The crash data model every service shares: crash ids, blob key layout, the crash
        // schemas (YAML, hence Yams), products and bug links.
        .target(
            name: "CrashModel", dependencies: ["JSONSupport", .product(name: "Yams", package: "Yams")],
            resources: [.copy("Resources/schemas")], swiftSettings: strict),
        // domain
        .target(
            name: "SymbolSources",
            dependencies: [
                "BreakpadSymbols", "CSystemShims", "ObjectFiles", "SymbolDump",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // services (the HTTP routes come with the service issue; the core lives here now)
        .target(
            name: "Symbolication",
            dependencies: [
                "SymbolSources", "BreakpadSymbols", "JSONSupport", "ServiceSupport",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict),
        .target(
            name: "Signatures", dependencies: ["JSONSupport"],
            resources: [.copy("Resources/siglists")], swiftSettings: strict),
        .target(
            name: "Storage",
            dependencies: [
                "JSONSupport", "CSystemShims",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
            ],
            swiftSettings: strict),
        .target(
            name: "ServiceSupport",
            dependencies: [
                "Storage", "JSONSupport", "CSystemShims",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .target(
            name: "Collector",
            dependencies: [
                "CrashModel", "Storage", "ServiceSupport", "JSONSupport", "CSystemShims",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: strict),
        .target(
            name: "Processor",
            dependencies: [
                "CrashModel", "Storage", "Stackwalker", "MinidumpFormat", "Signatures", "SymbolSources", "JSONSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(name: "Stackwalker", dependencies: ["MinidumpFormat", "BreakpadSymbols", "SymbolSources", "JSONSupport", "X86Decoder"], swiftSettings: strict),
        .target(
            name: "CrashStats",
            dependencies: [
                "CrashModel", "Storage", "ServiceSupport", "JSONSupport", "Signatures",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                // OpenID Connect sign-in: the issuer's ID token is a JWT checked against its JWKS.
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            // The web pages' templates, stylesheet, script and icon (served from memory).
            resources: [.copy("Resources/templates"), .copy("Resources/static")],
            swiftSettings: strict),
        // app
        .executableTarget(
            name: "PostmortemCLI",
            dependencies: [
                "BreakpadSymbols", "SymbolSources", "Symbolication", "MinidumpFormat", "Stackwalker", "Signatures", "JSONSupport",
                "CrashModel", "Storage", "ServiceSupport", "Collector", "Processor", "CrashStats", "SymbolServer", "ObjectFiles", "SymbolDump",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strict),

        .testTarget(name: "BreakpadSymbolsTests", dependencies: ["BreakpadSymbols", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "DemangleTests", dependencies: ["Demangle", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SymbolDumpTests", dependencies: ["SymbolDump", "ObjectFiles", "DWARF", "BreakpadSymbols", "JSONSupport", "Demangle", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(
            name: "SymbolSourcesTests",
            dependencies: ["SymbolSources", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "SymbolicationTests",
            dependencies: ["Symbolication", "SymbolSources", "JSONSupport", "TestSupport", "MinidumpSynth"],
            swiftSettings: strict),
        .testTarget(name: "MinidumpFormatTests", dependencies: ["MinidumpFormat", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "X86DecoderTests", dependencies: ["X86Decoder"], swiftSettings: strict),
        .testTarget(
            name: "StackwalkerTests",
            dependencies: ["Stackwalker", "MinidumpFormat", "SymbolSources", "JSONSupport", "TestSupport", "X86Decoder", "MinidumpSynth",
                           "BreakpadSymbols"],
            swiftSettings: strict),
        .testTarget(name: "SignaturesTests", dependencies: ["Signatures", "JSONSupport", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "CrashStatsTests",
            dependencies: ["CrashStats", "CrashModel", "Storage", "Signatures", "JSONSupport", "TestSupport",
                           .product(name: "JWTKit", package: "jwt-kit")],
            swiftSettings: strict),
        .testTarget(
            name: "StorageTests",
            dependencies: ["Storage", "CrashModel", "TestSupport", "JSONSupport", .product(name: "SQLKit", package: "sql-kit")],
            swiftSettings: strict),
        .testTarget(
            name: "ServiceSupportTests",
            dependencies: ["ServiceSupport", "Storage", "TestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(
            name: "CollectorTests",
            dependencies: ["Collector", "CrashModel", "Storage", "ServiceSupport", "JSONSupport", "TestSupport",
                           .product(name: "CompressNIO", package: "compress-nio"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Hummingbird", package: "hummingbird"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict),
        .testTarget(name: "ProcessorTests", dependencies: ["Processor", "CrashModel", "JSONSupport", "Storage", "TestSupport", "Signatures", "Stackwalker",
                                                          .product(name: "CompressNIO", package: "compress-nio"), .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "JSONSupportTests", dependencies: ["JSONSupport"], swiftSettings: strict),
        .testTarget(name: "CrashModelTests", dependencies: ["CrashModel", "JSONSupport", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "PostmortemCLITests",
            dependencies: ["PostmortemCLI", "TestSupport", "Storage", "CrashModel", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict),
        // Writes minidumps (contexts for four CPUs, stacks in any of the places writers put them).
        // The symbol server: Tecken's upload, download, code-id lookup and listings.
        .target(
            name: "SymbolServer",
            dependencies: [
                "BreakpadSymbols", "Storage", "CSystemShims", "ServiceSupport", "SymbolSources", "JSONSupport", "ObjectFiles", "SymbolDump",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(name: "SymbolServerTests",
                    dependencies: ["SymbolServer", "BreakpadSymbols", "TestSupport", "Storage", "ServiceSupport", "SymbolSources", "JSONSupport",
                                   .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                                   .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Hummingbird", package: "hummingbird"),
                                   .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                   .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                                   .product(name: "CompressNIO", package: "compress-nio"), .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: strict),
        .target(name: "MinidumpSynth", path: "Tests/MinidumpSynth", swiftSettings: strict),
        // Where untrusted bytes enter, one function per entry: driven by libFuzzer (Fuzz/) and
        // by the test suite's mutation run (FuzzTargetsTests).
        .target(
            name: "FuzzTargets",
            dependencies: ["MinidumpFormat", "Stackwalker", "X86Decoder", "BreakpadSymbols", "Collector", "CrashStats", "Symbolication", "SymbolServer", "CrashModel", "ServiceSupport",
                           "Processor", "Storage", "Signatures", "SymbolSources", "JSONSupport", "ObjectFiles", "DWARF", "SymbolDump",
                           .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/Targets", swiftSettings: strict),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "TestSupport", "MinidumpSynth"], swiftSettings: strict),
        // Shared test helpers: locating ../shared/testdata, a loopback HTTP file server.
        .target(
            name: "TestSupport",
            dependencies: [
                "Storage", "ServiceSupport", .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict),
    ]
)
