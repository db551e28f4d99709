import CrashModel
import Foundation
import Testing

@Suite struct CrashIDTests {
    @Test func idsCarryTheirDayAndThrottleDigit() throws {
        let day = try #require(ISO8601DateFormatter().date(from: "2026-11-30T23:59:59Z"))
        let id = CrashID.make(throttleDigit: 1, date: day)
        #expect(CrashID.isValid(id, strict: true))
        #expect(id.hasSuffix("1261130"))
        #expect(CrashID.throttleDigit(of: id) == 1)
        #expect(CrashID.date(of: id) == "20261130")
        #expect(CrashID.receivedDay(of: id) == ISO8601DateFormatter().date(from: "2026-11-30T00:00:00Z"))
        #expect(BlobKeys.rawCrash(id) == "v1/raw_crash/20261130/\(id)")
        // Socorro's example: accepted on 2016-09-18.
        #expect(CrashID.receivedDay(of: "de1bb258-cbbf-4589-a673-34f800160918") == ISO8601DateFormatter().date(from: "2016-09-18T00:00:00Z"))
        #expect(CrashID.throttleDigit(of: "de1bb258-cbbf-4589-a673-34f800160918") == 0)
    }

    @Test func malformedIdsHaveNoDay() {
        for bad in ["", "x", "de1bb258-cbbf-4589-a673-34f800161318", "de1bb258-cbbf-4589-a673-34f800160231", "de1bb258-cbbf-4589-a673-34f8001609xx"] {
            #expect(CrashID.receivedDay(of: bad) == nil, "\(bad)")
        }
        #expect(!CrashID.isValid("de1bb258-cbbf-4589-a673-34f802160918", strict: true) && CrashID.isValid("de1bb258-cbbf-4589-a673-34f802160918"))
        #expect(CrashID.normalize(" BP-DE1BB258-cbbf-4589-a673-34f800160918") == "de1bb258-cbbf-4589-a673-34f800160918")
        #expect(CrashID.hex16("de1bb258-cbbf-4589-a673-34f800160918") == "de1bb258cbbf4589")
    }
}
