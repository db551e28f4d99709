import Foundation
import Testing
import ZIPFoundation

/// Zips built by the tests from (name, bytes) members; symlinks as (name, target).
enum ZipBuilder {
    static func make(_ members: [(String, Data)], symlinks: [(String, String)] = [], compression: CompressionMethod = .deflate) throws -> Data {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (name, data) in members {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: compression) { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        for (name, target) in symlinks {
            let bytes = Data(target.utf8)
            try archive.addEntry(with: name, type: .symlink, uncompressedSize: Int64(bytes.count)) { position, size in
                bytes.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return try #require(archive.data)
    }
}
