import Foundation

enum FileHandleOutput {
    static func stderr(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
    static func stdout(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
    static func stdout(_ d: Data) { FileHandle.standardOutput.write(d) }
    static func stdout(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        FileHandle.standardOutput.write(Data(bytes))
    }
}
