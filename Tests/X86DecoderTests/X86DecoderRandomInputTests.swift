import Testing
@testable import X86Decoder

/// Random and adversarial byte sequences never trap; whatever decodes is self-consistent.
@Suite struct X86DecoderRandomInputTests {
    /// xorshift64*: a fixed seed keeps failures reproducible.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
    }

    @Test(arguments: [X86Mode.bits32, .bits64])
    func randomBytesDecodeOrFailCleanly(_ mode: X86Mode) {
        var random = Random(state: mode == .bits64 ? 0x9E37_79B9_7F4A_7C15 : 0xD1B5_4A32_D192_ED03)
        let decoder = X86Decoder(mode: mode)
        var decoded = 0
        // Bias towards prefixes and escape bytes, where decoders go wrong.
        let interesting: [UInt8] = [0x0F, 0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x40, 0x48, 0x4F, 0xC4, 0xC5, 0x64, 0x65, 0x2E]
        for _ in 0..<100_000 {
            let length = Int(random.next() % 17)
            let bytes: [UInt8] = (0..<length).map { _ in
                let r = random.next()
                return r % 4 == 0 ? interesting[Int((r >> 8) % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: r >> 16)
            }
            guard let i = try? decoder.decode(bytes, address: random.next()) else { continue }
            decoded += 1
            #expect(i.length >= 1 && i.length <= min(15, bytes.count))
            #expect(!i.text.isEmpty)
            for m in i.memoryOperands { #expect(m.size.map { $0 > 0 && $0 <= 32 } ?? true) }
        }
        #expect(decoded > 30_000) // most random bytes are some instruction
    }

    @Test func everyPrefixOfAValidInstructionIsTruncated() throws {
        let full: [UInt8] = [0xF0, 0x48, 0x81, 0x84, 0xC8, 0x78, 0x56, 0x34, 0x12, 0x01, 0x00, 0x00, 0x00] // lock add qword [rax + rcx * 8 + 0x12345678], 0x1
        let decoder = X86Decoder(mode: .bits64)
        #expect(try decoder.decode(full).text == "lock add qword [rax + rcx * 8 + 0x12345678], 0x1")
        for n in 0..<full.count {
            #expect(throws: X86DecodeError.truncated) { try decoder.decode(Array(full.prefix(n))) }
        }
    }
}
