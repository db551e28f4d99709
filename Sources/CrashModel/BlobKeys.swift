import Foundation

/// The key layout of `../shared/design.md`.
public enum BlobKeys {
    public static func rawCrash(_ crashID: String, date: String) -> String { "v1/raw_crash/\(date)/\(crashID)" }
    public static func dumpNames(_ crashID: String) -> String { "v1/dump_names/\(crashID)" }
    /// `upload_file_minidump` is stored as `dump`; other dumps under their own name.
    public static func dump(_ crashID: String, name: String) -> String {
        "v1/\(name == "upload_file_minidump" ? "dump" : name)/\(crashID)"
    }
    public static func processedCrash(_ crashID: String) -> String { "v1/processed_crash/\(crashID)" }
    /// The folder of one day's raw crashes (`day` as `YYYYMMDD`).
    public static func rawCrashDay(_ day: String) -> String { "v1/raw_crash/\(day)/" }

    /// `YYYYMMDD` of `date` in UTC: the day folder of raw crashes.
    public static func dayStamp(_ date: Date) -> String { CrashID.dayStamp(date) }

    /// The raw crash of `crashID`, in the day folder its id names.
    public static func rawCrash(_ crashID: String) -> String { rawCrash(crashID, date: CrashID.date(of: crashID)) }

    // The public export's store (`export.to`; data-and-access.md §6).
    /// One crash's export document, in the day folder of its id.
    public static func exportedCrash(_ crashID: String) -> String { "v1/crash_report/\(CrashID.date(of: crashID))/\(crashID)" }
    /// One day's export as gzip JSON lines, and its manifest.
    public static func exportDay(_ day: String) -> String { "v1/crash_report_daily/\(day)/crashes.jsonl.gz" }
    public static func exportManifest(_ day: String) -> String { "v1/crash_report_daily/\(day)/manifest.json" }
}
