extension ProcessState {
    public func humanReport(brief: Bool) -> String { "" }
}
