import Foundation

/// Group commit: items submitted while a commit runs are committed together by the next one,
/// and each submitter resumes once its item is committed. Under load, many concurrent requests
/// cost one transaction instead of one each; alone, an item is committed at once.
public actor GroupCommit<Item: Sendable> {
    private let commit: @Sendable ([Item]) async throws -> Void
    private let maxBatch: Int
    private var pending: [(Item, CheckedContinuation<Void, any Error>)] = []
    private var running = false

    public init(maxBatch: Int = 500, commit: @escaping @Sendable ([Item]) async throws -> Void) {
        self.maxBatch = max(1, maxBatch)
        self.commit = commit
    }

    public func submit(_ item: Item) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            pending.append((item, c))
            if !running {
                running = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            do {
                try await commit(batch.map(\.0))
                for (_, c) in batch { c.resume() }
            } catch {
                for (_, c) in batch { c.resume(throwing: error) }
            }
        }
        running = false
    }
}
