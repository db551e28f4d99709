import Synchronization

/// Bounds what submissions in progress may hold at once: how many are being read, how many of
/// those are gzip-decompressed, and how many body bytes they buffer together. A submission that
/// does not fit is refused with 503 and `Retry-After` (clients retry), so a flood of slow or
/// large uploads costs bounded memory and CPU and never takes the process down.
final class SubmissionGate: Sendable {
    struct Limits: Sendable {
        var maxSubmissions: Int
        var maxDecompressions: Int
        var maxBufferedBytes: Int
    }

    private struct State {
        var submissions = 0
        var decompressions = 0
        var bufferedBytes = 0
    }

    let limits: Limits
    private let state = Mutex(State())

    init(_ limits: Limits) { self.limits = limits }

    /// A place for one submission, or nil when the collector is full.
    func enter(gzip: Bool) -> Ticket? {
        let admitted = state.withLock { s -> Bool in
            guard s.submissions < limits.maxSubmissions, !gzip || s.decompressions < limits.maxDecompressions else { return false }
            s.submissions += 1
            if gzip { s.decompressions += 1 }
            return true
        }
        return admitted ? Ticket(gate: self, gzip: gzip) : nil
    }

    /// Counts `bytes` more buffered; false (nothing counted) when that would pass the limit.
    fileprivate func reserve(_ bytes: Int) -> Bool {
        state.withLock { s in
            guard bytes <= limits.maxBufferedBytes - s.bufferedBytes else { return false }
            s.bufferedBytes += bytes
            return true
        }
    }

    fileprivate func leave(gzip: Bool, bytes: Int) {
        state.withLock { s in
            s.submissions -= 1
            if gzip { s.decompressions -= 1 }
            s.bufferedBytes -= bytes
        }
    }

    var bufferedBytes: Int { state.withLock { $0.bufferedBytes } }

    /// One admitted submission's share; `close()` gives it back.
    final class Ticket: @unchecked Sendable {
        private let gate: SubmissionGate
        private let gzip: Bool
        private var reserved = 0
        private var closed = false

        fileprivate init(gate: SubmissionGate, gzip: Bool) {
            self.gate = gate
            self.gzip = gzip
        }

        /// Grows this submission's buffered bytes to `total`; false when the collector is full.
        func hold(_ total: Int) -> Bool {
            guard total > reserved else { return true }
            guard gate.reserve(total - reserved) else { return false }
            reserved = total
            return true
        }

        func close() {
            guard !closed else { return }
            closed = true
            gate.leave(gzip: gzip, bytes: reserved)
        }

        deinit { close() }
    }
}
