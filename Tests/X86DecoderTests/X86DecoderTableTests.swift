import Foundation
import Testing
@testable import X86Decoder

/// The decoder table: one row per encoding — mode | bytes | text | memory operands | length.
///
/// Rows were written per opcode form from the Intel SDM's opcode maps (one- and two-byte maps,
/// ModRM/SIB tables, VEX) and checked once against GNU objdump 2.40 (`objdump -D -b binary -M
/// intel`): every row that decodes agrees with it on mnemonic, operands, values and length, apart
/// from notation (`[rdx + rcx]` for `[rdx+rcx*1]`, `-0x1` for a sign-extended `0xffff`, string
/// instructions without their implicit operands). Memory operands are `<access><size> <address>`
/// (`r` read, `w` write, `rw` both), implicit ones (stack, `[rsi]`/`[rdi]`) after the explicit ones.
/// `unknown` rows are invalid or undecoded encodings, `truncated` rows end inside an instruction.
@Suite struct X86DecoderTableTests {
    static let table = """
64 | 01 c8 | add eax, ecx | - | 2
64 | 48 01 08 | add qword [rax], rcx | rw8 [rax] | 3
64 | 03 44 24 10 | add eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 00 5d f8 | add byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 05 78 56 34 12 | add eax, 0x12345678 | - | 5
64 | 04 7f | add al, 0x7f | - | 2
64 | 09 c8 | or eax, ecx | - | 2
64 | 48 09 08 | or qword [rax], rcx | rw8 [rax] | 3
64 | 0b 44 24 10 | or eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 08 5d f8 | or byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 0d 78 56 34 12 | or eax, 0x12345678 | - | 5
64 | 0c 7f | or al, 0x7f | - | 2
64 | 11 c8 | adc eax, ecx | - | 2
64 | 48 11 08 | adc qword [rax], rcx | rw8 [rax] | 3
64 | 13 44 24 10 | adc eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 10 5d f8 | adc byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 15 78 56 34 12 | adc eax, 0x12345678 | - | 5
64 | 14 7f | adc al, 0x7f | - | 2
64 | 19 c8 | sbb eax, ecx | - | 2
64 | 48 19 08 | sbb qword [rax], rcx | rw8 [rax] | 3
64 | 1b 44 24 10 | sbb eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 18 5d f8 | sbb byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 1d 78 56 34 12 | sbb eax, 0x12345678 | - | 5
64 | 1c 7f | sbb al, 0x7f | - | 2
64 | 21 c8 | and eax, ecx | - | 2
64 | 48 21 08 | and qword [rax], rcx | rw8 [rax] | 3
64 | 23 44 24 10 | and eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 20 5d f8 | and byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 25 78 56 34 12 | and eax, 0x12345678 | - | 5
64 | 24 7f | and al, 0x7f | - | 2
64 | 29 c8 | sub eax, ecx | - | 2
64 | 48 29 08 | sub qword [rax], rcx | rw8 [rax] | 3
64 | 2b 44 24 10 | sub eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 28 5d f8 | sub byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 2d 78 56 34 12 | sub eax, 0x12345678 | - | 5
64 | 2c 7f | sub al, 0x7f | - | 2
64 | 31 c8 | xor eax, ecx | - | 2
64 | 48 31 08 | xor qword [rax], rcx | rw8 [rax] | 3
64 | 33 44 24 10 | xor eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 30 5d f8 | xor byte [rbp - 0x8], bl | rw1 [rbp - 0x8] | 3
64 | 35 78 56 34 12 | xor eax, 0x12345678 | - | 5
64 | 34 7f | xor al, 0x7f | - | 2
64 | 39 c8 | cmp eax, ecx | - | 2
64 | 48 39 08 | cmp qword [rax], rcx | r8 [rax] | 3
64 | 3b 44 24 10 | cmp eax, dword [rsp + 0x10] | r4 [rsp + 0x10] | 4
64 | 38 5d f8 | cmp byte [rbp - 0x8], bl | r1 [rbp - 0x8] | 3
64 | 3d 78 56 34 12 | cmp eax, 0x12345678 | - | 5
64 | 3c 7f | cmp al, 0x7f | - | 2
64 | 83 c0 08 | add eax, 0x8 | - | 3
64 | 48 81 80 00 01 00 00 ff ff 00 00 | add qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 04 24 01 | add byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 40 02 ff | add word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 c8 08 | or eax, 0x8 | - | 3
64 | 48 81 88 00 01 00 00 ff ff 00 00 | or qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 0c 24 01 | or byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 48 02 ff | or word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 d0 08 | adc eax, 0x8 | - | 3
64 | 48 81 90 00 01 00 00 ff ff 00 00 | adc qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 14 24 01 | adc byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 50 02 ff | adc word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 d8 08 | sbb eax, 0x8 | - | 3
64 | 48 81 98 00 01 00 00 ff ff 00 00 | sbb qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 1c 24 01 | sbb byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 58 02 ff | sbb word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 e0 08 | and eax, 0x8 | - | 3
64 | 48 81 a0 00 01 00 00 ff ff 00 00 | and qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 24 24 01 | and byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 60 02 ff | and word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 e8 08 | sub eax, 0x8 | - | 3
64 | 48 81 a8 00 01 00 00 ff ff 00 00 | sub qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 2c 24 01 | sub byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 68 02 ff | sub word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 f0 08 | xor eax, 0x8 | - | 3
64 | 48 81 b0 00 01 00 00 ff ff 00 00 | xor qword [rax + 0x100], 0xffff | rw8 [rax + 0x100] | 11
64 | 80 34 24 01 | xor byte [rsp], 0x1 | rw1 [rsp] | 4
64 | 66 83 70 02 ff | xor word [rax + 0x2], -0x1 | rw2 [rax + 0x2] | 5
64 | 83 f8 08 | cmp eax, 0x8 | - | 3
64 | 48 81 b8 00 01 00 00 ff ff 00 00 | cmp qword [rax + 0x100], 0xffff | r8 [rax + 0x100] | 11
64 | 80 3c 24 01 | cmp byte [rsp], 0x1 | r1 [rsp] | 4
64 | 66 83 78 02 ff | cmp word [rax + 0x2], -0x1 | r2 [rax + 0x2] | 5
64 | 89 c8 | mov eax, ecx | - | 2
64 | 48 89 c8 | mov rax, rcx | - | 3
64 | 88 c8 | mov al, cl | - | 2
64 | 40 88 c6 | mov sil, al | - | 3
64 | 44 88 c0 | mov al, r8b | - | 3
64 | 41 88 f8 | mov r8b, dil | - | 3
64 | 8b 07 | mov eax, dword [rdi] | r4 [rdi] | 2
64 | 48 8b 47 08 | mov rax, qword [rdi + 0x8] | r8 [rdi + 0x8] | 4
64 | 4c 8b 44 24 18 | mov r8, qword [rsp + 0x18] | r8 [rsp + 0x18] | 5
64 | 8a 04 0a | mov al, byte [rdx + rcx] | r1 [rdx + rcx] | 3
64 | 66 8b 06 | mov ax, word [rsi] | r2 [rsi] | 3
64 | 48 8b 04 cd 00 10 00 00 | mov rax, qword [rcx * 8 + 0x1000] | r8 [rcx * 8 + 0x1000] | 8
64 | 8b 05 10 00 00 00 | mov eax, dword [rip + 0x10] | r4 [rip + 0x10] | 6
64 | 48 8b 05 f0 ff ff ff | mov rax, qword [rip - 0x10] | r8 [rip - 0x10] | 7
64 | c7 04 25 45 00 00 00 05 00 00 00 | mov dword [0x45], 0x5 | w4 [0x45] | 11
64 | c6 04 25 42 00 00 80 01 | mov byte [0x80000042], 0x1 | w1 [0x80000042] | 8
64 | 48 c7 00 ff ff ff ff | mov qword [rax], -0x1 | w8 [rax] | 7
64 | c7 40 04 01 00 00 00 | mov dword [rax + 0x4], 0x1 | w4 [rax + 0x4] | 7
64 | 66 c7 00 34 12 | mov word [rax], 0x1234 | w2 [rax] | 5
64 | c6 00 ff | mov byte [rax], 0xff | w1 [rax] | 3
64 | b0 01 | mov al, 0x1 | - | 2
64 | b4 ff | mov ah, 0xff | - | 2
64 | 41 b7 02 | mov r15b, 0x2 | - | 3
64 | b8 01 00 00 00 | mov eax, 0x1 | - | 5
64 | 41 b9 00 00 00 80 | mov r9d, 0x80000000 | - | 6
64 | 48 b8 88 77 66 55 44 33 22 11 | mov rax, 0x1122334455667788 | - | 10
64 | 66 b8 34 12 | mov ax, 0x1234 | - | 4
64 | a1 88 77 66 55 44 33 22 11 | mov eax, dword [0x1122334455667788] | r4 [0x1122334455667788] | 9
64 | a3 00 10 00 00 00 00 00 00 | mov dword [0x1000], eax | w4 [0x1000] | 9
64 | a0 00 00 00 00 00 00 00 00 | mov al, byte [0x0] | r1 [0x0] | 9
64 | 48 a1 08 00 00 00 00 00 00 00 | mov rax, qword [0x8] | r8 [0x8] | 10
64 | 8c d8 | mov eax, ds | - | 2
64 | 8e d8 | mov ds, ax | - | 2
64 | 8c 18 | mov word [rax], ds | w2 [rax] | 2
64 | 64 48 8b 04 25 28 00 00 00 | mov rax, qword fs:[0x28] | r8 fs:[0x28] | 9
64 | 65 48 8b 04 25 30 00 00 00 | mov rax, qword gs:[0x30] | r8 gs:[0x30] | 9
64 | 64 8b 00 | mov eax, dword fs:[rax] | r4 fs:[rax] | 3
64 | 48 89 5c 24 08 | mov qword [rsp + 0x8], rbx | w8 [rsp + 0x8] | 5
64 | 48 89 6c 24 f0 | mov qword [rsp - 0x10], rbp | w8 [rsp - 0x10] | 5
64 | 4c 89 7d 00 | mov qword [rbp], r15 | w8 [rbp] | 4
64 | 49 89 04 24 | mov qword [r12], rax | w8 [r12] | 4
64 | 4a 89 04 e0 | mov qword [rax + r12 * 8], rax | w8 [rax + r12 * 8] | 4
64 | 42 8b 04 8d 00 00 00 00 | mov eax, dword [r9 * 4] | r4 [r9 * 4] | 8
64 | 8b 04 85 40 00 00 00 | mov eax, dword [rax * 4 + 0x40] | r4 [rax * 4 + 0x40] | 7
64 | 48 8b 84 c8 78 56 34 12 | mov rax, qword [rax + rcx * 8 + 0x12345678] | r8 [rax + rcx * 8 + 0x12345678] | 8
64 | 8b 84 24 00 01 00 00 | mov eax, dword [rsp + 0x100] | r4 [rsp + 0x100] | 7
64 | 67 8b 00 | mov eax, dword [eax] | r4 [eax] | 3
64 | 67 48 8b 44 81 04 | mov rax, qword [ecx + eax * 4 + 0x4] | r8 [ecx + eax * 4 + 0x4] | 6
64 | 0f b6 c0 | movzx eax, al | - | 3
64 | 0f b6 07 | movzx eax, byte [rdi] | r1 [rdi] | 3
64 | 48 0f b6 47 01 | movzx rax, byte [rdi + 0x1] | r1 [rdi + 0x1] | 5
64 | 0f b7 c8 | movzx ecx, ax | - | 3
64 | 0f b7 06 | movzx eax, word [rsi] | r2 [rsi] | 3
64 | 0f be c0 | movsx eax, al | - | 3
64 | 48 0f be 07 | movsx rax, byte [rdi] | r1 [rdi] | 4
64 | 0f bf 06 | movsx eax, word [rsi] | r2 [rsi] | 3
64 | 48 0f bf c1 | movsx rax, cx | - | 4
64 | 48 63 c7 | movsxd rax, edi | - | 3
64 | 48 63 47 04 | movsxd rax, dword [rdi + 0x4] | r4 [rdi + 0x4] | 4
64 | 8d 04 0a | lea eax, [rdx + rcx] | - | 3
64 | 48 8d 44 24 08 | lea rax, [rsp + 0x8] | - | 5
64 | 48 8d 05 00 01 00 00 | lea rax, [rip + 0x100] | - | 7
64 | 4c 8d 0c 49 | lea r9, [rcx + rcx * 2] | - | 4
64 | 8d 04 85 00 00 00 00 | lea eax, [rax * 4] | - | 7
64 | 67 8d 04 08 | lea eax, [eax + ecx] | - | 4
64 | 48 8d 64 24 f8 | lea rsp, [rsp - 0x8] | - | 5
64 | 50 | push rax | w8 [rsp - 0x8] | 1
64 | 53 | push rbx | w8 [rsp - 0x8] | 1
64 | 41 57 | push r15 | w8 [rsp - 0x8] | 2
64 | 58 | pop rax | r8 [rsp] | 1
64 | 5d | pop rbp | r8 [rsp] | 1
64 | 41 5c | pop r12 | r8 [rsp] | 2
64 | 66 50 | push ax | w2 [rsp - 0x2] | 2
64 | ff 30 | push qword [rax] | r8 [rax]; w8 [rsp - 0x8] | 2
64 | ff 74 24 08 | push qword [rsp + 0x8] | r8 [rsp + 0x8]; w8 [rsp - 0x8] | 4
64 | 8f 00 | pop qword [rax] | w8 [rax]; r8 [rsp] | 2
64 | 8f 40 08 | pop qword [rax + 0x8] | w8 [rax + 0x8]; r8 [rsp] | 3
64 | 6a 00 | push 0x0 | w8 [rsp - 0x8] | 2
64 | 6a ff | push -0x1 | w8 [rsp - 0x8] | 2
64 | 68 00 10 00 00 | push 0x1000 | w8 [rsp - 0x8] | 5
64 | 9c | pushfq | w8 [rsp - 0x8] | 1
64 | 9d | popfq | r8 [rsp] | 1
64 | c9 | leave | r8 [rbp] | 1
64 | c8 10 00 00 | enter 0x10, 0x0 | - | 4
64 | c3 | ret | r8 [rsp] | 1
64 | c2 08 00 | ret 0x8 | r8 [rsp] | 3
64 | cb | retf | r8 [rsp] | 1
64 | 48 cf | iretq | r8 [rsp] | 2
64 | cc | int3 | - | 1
64 | cd 80 | int 0x80 | - | 2
64 | e8 00 00 00 00 | call 0x1005 | w8 [rsp - 0x8] | 5
64 | e8 fb ff ff ff | call 0x1000 | w8 [rsp - 0x8] | 5
64 | e9 10 00 00 00 | jmp 0x1015 | - | 5
64 | eb fe | jmp 0x1000 | - | 2
64 | eb 10 | jmp 0x1012 | - | 2
64 | 74 05 | je 0x1007 | - | 2
64 | 75 fe | jne 0x1000 | - | 2
64 | 7c 00 | jl 0x1002 | - | 2
64 | 0f 84 00 01 00 00 | je 0x1106 | - | 6
64 | 0f 85 fa ff ff ff | jne 0x1000 | - | 6
64 | 0f 8f 00 00 00 00 | jg 0x1006 | - | 6
64 | ff d0 | call rax | w8 [rsp - 0x8] | 2
64 | 41 ff d3 | call r11 | w8 [rsp - 0x8] | 3
64 | ff 10 | call qword [rax] | r8 [rax]; w8 [rsp - 0x8] | 2
64 | ff 50 08 | call qword [rax + 0x8] | r8 [rax + 0x8]; w8 [rsp - 0x8] | 3
64 | ff 15 00 10 00 00 | call qword [rip + 0x1000] | r8 [rip + 0x1000]; w8 [rsp - 0x8] | 6
64 | ff 14 c5 00 00 00 00 | call qword [rax * 8] | r8 [rax * 8]; w8 [rsp - 0x8] | 7
64 | ff e0 | jmp rax | - | 2
64 | ff 20 | jmp qword [rax] | r8 [rax] | 2
64 | ff 24 c5 00 20 00 00 | jmp qword [rax * 8 + 0x2000] | r8 [rax * 8 + 0x2000] | 7
64 | ff 25 00 00 00 00 | jmp qword [rip] | r8 [rip] | 6
64 | ff 18 | callf far [rax] | r6 [rax] | 2
64 | ff 28 | jmpf far [rax] | r6 [rax] | 2
64 | e3 02 | jrcxz 0x1004 | - | 2
64 | e2 fe | loop 0x1000 | - | 2
64 | e0 00 | loopne 0x1002 | - | 2
64 | e1 00 | loope 0x1002 | - | 2
64 | a4 | movsb | r1 [rsi]; w1 es:[rdi] | 1
64 | a5 | movsd | r4 [rsi]; w4 es:[rdi] | 1
64 | 48 a5 | movsq | r8 [rsi]; w8 es:[rdi] | 2
64 | 66 a5 | movsw | r2 [rsi]; w2 es:[rdi] | 2
64 | f3 a4 | rep movsb | r1 [rsi]; w1 es:[rdi] | 2
64 | f3 48 a5 | rep movsq | r8 [rsi]; w8 es:[rdi] | 3
64 | f3 aa | rep stosb | w1 es:[rdi] | 2
64 | f3 48 ab | rep stosq | w8 es:[rdi] | 3
64 | aa | stosb | w1 es:[rdi] | 1
64 | ab | stosd | w4 es:[rdi] | 1
64 | ac | lodsb | r1 [rsi] | 1
64 | 48 ad | lodsq | r8 [rsi] | 2
64 | ae | scasb | r1 es:[rdi] | 1
64 | f2 ae | repne scasb | r1 es:[rdi] | 2
64 | a6 | cmpsb | r1 [rsi]; r1 es:[rdi] | 1
64 | f3 a6 | repe cmpsb | r1 [rsi]; r1 es:[rdi] | 2
64 | a7 | cmpsd | r4 [rsi]; r4 es:[rdi] | 1
64 | 6c | insb | w1 es:[rdi] | 1
64 | 6d | insd | w4 es:[rdi] | 1
64 | 6e | outsb | r1 [rsi] | 1
64 | 6f | outsd | r4 [rsi] | 1
64 | 91 | xchg ecx, eax | - | 1
64 | 48 97 | xchg rdi, rax | - | 2
64 | 90 | nop | - | 1
64 | 49 90 | xchg r8, rax | - | 2
64 | f3 90 | pause | - | 2
64 | 86 c8 | xchg al, cl | - | 2
64 | 87 07 | xchg dword [rdi], eax | rw4 [rdi] | 2
64 | 48 87 03 | xchg qword [rbx], rax | rw8 [rbx] | 3
64 | f0 0f b1 0f | lock cmpxchg dword [rdi], ecx | rw4 [rdi] | 4
64 | f0 48 0f b1 0e | lock cmpxchg qword [rsi], rcx | rw8 [rsi] | 5
64 | 0f b0 0a | cmpxchg byte [rdx], cl | rw1 [rdx] | 3
64 | f0 0f c1 07 | lock xadd dword [rdi], eax | rw4 [rdi] | 4
64 | f0 48 0f c1 06 | lock xadd qword [rsi], rax | rw8 [rsi] | 5
64 | 0f c0 c8 | xadd al, cl | - | 3
64 | f0 ff 00 | lock inc dword [rax] | rw4 [rax] | 3
64 | f0 48 ff 08 | lock dec qword [rax] | rw8 [rax] | 4
64 | f0 83 00 01 | lock add dword [rax], 0x1 | rw4 [rax] | 4
64 | f0 48 0f c7 0e | lock cmpxchg16b xmmword [rsi] | rw16 [rsi] | 5
64 | 0f c7 0f | cmpxchg8b qword [rdi] | rw8 [rdi] | 3
64 | f0 80 08 01 | lock or byte [rax], 0x1 | rw1 [rax] | 4
64 | f0 09 07 | lock or dword [rdi], eax | rw4 [rdi] | 3
64 | 0f 90 c0 | seto al | - | 3
64 | 0f 40 c1 | cmovo eax, ecx | - | 3
64 | 0f 91 c0 | setno al | - | 3
64 | 0f 41 c1 | cmovno eax, ecx | - | 3
64 | 0f 92 c0 | setb al | - | 3
64 | 0f 42 c1 | cmovb eax, ecx | - | 3
64 | 0f 93 c0 | setae al | - | 3
64 | 0f 43 c1 | cmovae eax, ecx | - | 3
64 | 0f 94 c0 | sete al | - | 3
64 | 0f 44 c1 | cmove eax, ecx | - | 3
64 | 0f 95 c0 | setne al | - | 3
64 | 0f 45 c1 | cmovne eax, ecx | - | 3
64 | 0f 96 c0 | setbe al | - | 3
64 | 0f 46 c1 | cmovbe eax, ecx | - | 3
64 | 0f 97 c0 | seta al | - | 3
64 | 0f 47 c1 | cmova eax, ecx | - | 3
64 | 0f 98 c0 | sets al | - | 3
64 | 0f 48 c1 | cmovs eax, ecx | - | 3
64 | 0f 99 c0 | setns al | - | 3
64 | 0f 49 c1 | cmovns eax, ecx | - | 3
64 | 0f 9a c0 | setp al | - | 3
64 | 0f 4a c1 | cmovp eax, ecx | - | 3
64 | 0f 9b c0 | setnp al | - | 3
64 | 0f 4b c1 | cmovnp eax, ecx | - | 3
64 | 0f 9c c0 | setl al | - | 3
64 | 0f 4c c1 | cmovl eax, ecx | - | 3
64 | 0f 9d c0 | setge al | - | 3
64 | 0f 4d c1 | cmovge eax, ecx | - | 3
64 | 0f 9e c0 | setle al | - | 3
64 | 0f 4e c1 | cmovle eax, ecx | - | 3
64 | 0f 9f c0 | setg al | - | 3
64 | 0f 4f c1 | cmovg eax, ecx | - | 3
64 | 0f 94 07 | sete byte [rdi] | w1 [rdi] | 3
64 | 48 0f 44 07 | cmove rax, qword [rdi] | r8 [rdi] | 4
64 | 0f 45 47 08 | cmovne eax, dword [rdi + 0x8] | r4 [rdi + 0x8] | 4
64 | 85 c0 | test eax, eax | - | 2
64 | 48 85 ff | test rdi, rdi | - | 3
64 | 84 07 | test byte [rdi], al | r1 [rdi] | 2
64 | a8 01 | test al, 0x1 | - | 2
64 | a9 00 00 01 00 | test eax, 0x10000 | - | 5
64 | f6 07 01 | test byte [rdi], 0x1 | r1 [rdi] | 3
64 | f7 47 04 00 00 00 80 | test dword [rdi + 0x4], 0x80000000 | r4 [rdi + 0x4] | 7
64 | 48 f7 c0 ff ff ff ff | test rax, -0x1 | - | 7
64 | f7 d0 | not eax | - | 2
64 | 48 f7 d8 | neg rax | - | 3
64 | f6 17 | not byte [rdi] | rw1 [rdi] | 2
64 | f7 1f | neg dword [rdi] | rw4 [rdi] | 2
64 | ff c0 | inc eax | - | 2
64 | 48 ff c8 | dec rax | - | 3
64 | fe 00 | inc byte [rax] | rw1 [rax] | 2
64 | fe 08 | dec byte [rax] | rw1 [rax] | 2
64 | ff 00 | inc dword [rax] | rw4 [rax] | 2
64 | 48 ff 48 08 | dec qword [rax + 0x8] | rw8 [rax + 0x8] | 4
64 | f7 e1 | mul ecx | - | 2
64 | f7 e9 | imul ecx | - | 2
64 | 48 f7 f1 | div rcx | - | 3
64 | 48 f7 f9 | idiv rcx | - | 3
64 | f7 36 | div dword [rsi] | r4 [rsi] | 2
64 | f7 3e | idiv dword [rsi] | r4 [rsi] | 2
64 | f6 f1 | div cl | - | 2
64 | f6 36 | div byte [rsi] | r1 [rsi] | 2
64 | 48 f7 76 08 | div qword [rsi + 0x8] | r8 [rsi + 0x8] | 4
64 | d1 e0 | shl eax, 0x1 | - | 2
64 | d1 e8 | shr eax, 0x1 | - | 2
64 | d1 f8 | sar eax, 0x1 | - | 2
64 | 48 d1 e0 | shl rax, 0x1 | - | 3
64 | c1 e0 04 | shl eax, 0x4 | - | 3
64 | 48 c1 e8 3f | shr rax, 0x3f | - | 4
64 | c1 f8 1f | sar eax, 0x1f | - | 3
64 | d3 e0 | shl eax, cl | - | 2
64 | 48 d3 e8 | shr rax, cl | - | 3
64 | d0 e0 | shl al, 0x1 | - | 2
64 | c0 e8 02 | shr al, 0x2 | - | 3
64 | d1 c0 | rol eax, 0x1 | - | 2
64 | c1 c8 08 | ror eax, 0x8 | - | 3
64 | d1 d0 | rcl eax, 0x1 | - | 2
64 | d1 d8 | rcr eax, 0x1 | - | 2
64 | c1 20 02 | shl dword [rax], 0x2 | rw4 [rax] | 3
64 | d3 28 | shr dword [rax], cl | rw4 [rax] | 2
64 | 0f a3 c8 | bt eax, ecx | - | 3
64 | 48 0f ab 07 | bts qword [rdi], rax | rw8 [rdi] | 4
64 | 0f b3 06 | btr dword [rsi], eax | rw4 [rsi] | 3
64 | 0f bb c8 | btc eax, ecx | - | 3
64 | 0f ba e0 03 | bt eax, 0x3 | - | 4
64 | 48 0f ba 28 3f | bts qword [rax], 0x3f | rw8 [rax] | 5
64 | 0f ba 30 01 | btr dword [rax], 0x1 | rw4 [rax] | 4
64 | 0f ba f8 1f | btc eax, 0x1f | - | 4
64 | 0f c8 | bswap eax | - | 2
64 | 48 0f c9 | bswap rcx | - | 3
64 | 41 0f cf | bswap r15d | - | 3
64 | 0f a4 c2 04 | shld edx, eax, 0x4 | - | 4
64 | 0f a5 c2 | shld edx, eax, cl | - | 3
64 | 48 0f ac d0 08 | shrd rax, rdx, 0x8 | - | 5
64 | 0f ad 07 | shrd dword [rdi], eax, cl | rw4 [rdi] | 3
64 | 0f af c1 | imul eax, ecx | - | 3
64 | 48 0f af 07 | imul rax, qword [rdi] | r8 [rdi] | 4
64 | 6b c0 0c | imul eax, eax, 0xc | - | 3
64 | 69 c0 00 01 00 00 | imul eax, eax, 0x100 | - | 6
64 | 48 6b 47 08 f0 | imul rax, qword [rdi + 0x8], -0x10 | r8 [rdi + 0x8] | 5
64 | 0f bc c1 | bsf eax, ecx | - | 3
64 | 0f bd 07 | bsr eax, dword [rdi] | r4 [rdi] | 3
64 | f3 0f bc c1 | tzcnt eax, ecx | - | 4
64 | f3 48 0f bd c1 | lzcnt rax, rcx | - | 5
64 | 98 | cwde | - | 1
64 | 48 98 | cdqe | - | 2
64 | 66 98 | cbw | - | 2
64 | 99 | cdq | - | 1
64 | 48 99 | cqo | - | 2
64 | 9e | sahf | - | 1
64 | 9f | lahf | - | 1
64 | f8 | clc | - | 1
64 | f9 | stc | - | 1
64 | fc | cld | - | 1
64 | fd | std | - | 1
64 | f5 | cmc | - | 1
64 | 0f 05 | syscall | - | 2
64 | 0f 0b | ud2 | - | 2
64 | 0f 31 | rdtsc | - | 2
64 | 0f a2 | cpuid | - | 2
64 | f4 | hlt | - | 1
64 | fa | cli | - | 1
64 | fb | sti | - | 1
64 | e4 60 | in al, 0x60 | - | 2
64 | e6 80 | out 0x80, al | - | 2
64 | ec | in al, dx | - | 1
64 | ee | out dx, al | - | 1
64 | ed | in eax, dx | - | 1
64 | ef | out dx, eax | - | 1
64 | 0f 1f 00 | nop dword [rax] | - | 3
64 | 0f 1f 40 00 | nop dword [rax] | - | 4
64 | 0f 1f 44 00 00 | nop dword [rax + rax] | - | 5
64 | 66 0f 1f 44 00 00 | nop word [rax + rax] | - | 6
64 | 0f 1f 80 00 00 00 00 | nop dword [rax] | - | 7
64 | 0f 18 08 | prefetcht0 byte [rax] | -1 [rax] | 3
64 | 0f 0d 08 | prefetchw byte [rax] | -1 [rax] | 3
64 | 0f 01 10 | lgdt tword [rax] | r10 [rax] | 3
64 | 0f 01 00 | sgdt tword [rax] | w10 [rax] | 3
64 | 0f 01 f8 | swapgs | - | 3
64 | 0f 30 | wrmsr | - | 2
64 | 0f 32 | rdmsr | - | 2
64 | 0f 09 | wbinvd | - | 2
64 | 0f 10 07 | movups xmm0, xmmword [rdi] | r16 [rdi] | 3
64 | 0f 11 07 | movups xmmword [rdi], xmm0 | w16 [rdi] | 3
64 | 66 0f 10 07 | movupd xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | 66 0f 11 47 10 | movupd xmmword [rdi + 0x10], xmm0 | w16 [rdi + 0x10] | 5
64 | f3 0f 10 07 | movss xmm0, dword [rdi] | r4 [rdi] | 4
64 | f3 0f 11 07 | movss dword [rdi], xmm0 | w4 [rdi] | 4
64 | f2 0f 10 07 | movsd xmm0, qword [rdi] | r8 [rdi] | 4
64 | f2 0f 11 4c 24 08 | movsd qword [rsp + 0x8], xmm1 | w8 [rsp + 0x8] | 6
64 | 0f 28 c1 | movaps xmm0, xmm1 | - | 3
64 | 0f 29 07 | movaps xmmword [rdi], xmm0 | w16 [rdi] | 3
64 | 66 0f 28 07 | movapd xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | 66 0f 29 07 | movapd xmmword [rdi], xmm0 | w16 [rdi] | 4
64 | 66 0f 6f 07 | movdqa xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | 66 0f 7f 07 | movdqa xmmword [rdi], xmm0 | w16 [rdi] | 4
64 | f3 0f 6f 07 | movdqu xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | f3 0f 7f 47 f0 | movdqu xmmword [rdi - 0x10], xmm0 | w16 [rdi - 0x10] | 5
64 | 66 44 0f 6f 07 | movdqa xmm8, xmmword [rdi] | r16 [rdi] | 5
64 | f3 41 0f 6f 00 | movdqu xmm0, xmmword [r8] | r16 [r8] | 5
64 | 66 0f e7 07 | movntdq xmmword [rdi], xmm0 | w16 [rdi] | 4
64 | 0f 2b 07 | movntps xmmword [rdi], xmm0 | w16 [rdi] | 3
64 | 66 0f 6e c0 | movd xmm0, eax | - | 4
64 | 66 48 0f 6e c0 | movq xmm0, rax | - | 5
64 | 66 0f 7e c0 | movd eax, xmm0 | - | 4
64 | 66 0f 7e 07 | movd dword [rdi], xmm0 | w4 [rdi] | 4
64 | 66 48 0f 7e 07 | movq qword [rdi], xmm0 | w8 [rdi] | 5
64 | f3 0f 7e 07 | movq xmm0, qword [rdi] | r8 [rdi] | 4
64 | 66 0f d6 07 | movq qword [rdi], xmm0 | w8 [rdi] | 4
64 | 0f 2e c1 | ucomiss xmm0, xmm1 | - | 3
64 | 66 0f 2f 07 | comisd xmm0, qword [rdi] | r8 [rdi] | 4
64 | 0f 57 c0 | xorps xmm0, xmm0 | - | 3
64 | 66 0f 57 c9 | xorpd xmm1, xmm1 | - | 4
64 | 0f 54 07 | andps xmm0, xmmword [rdi] | r16 [rdi] | 3
64 | 66 0f ef c0 | pxor xmm0, xmm0 | - | 4
64 | c5 f8 10 07 | vmovups xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | c5 f8 11 07 | vmovups xmmword [rdi], xmm0 | w16 [rdi] | 4
64 | c5 fc 10 07 | vmovups ymm0, ymmword [rdi] | r32 [rdi] | 4
64 | c5 fc 11 07 | vmovups ymmword [rdi], ymm0 | w32 [rdi] | 4
64 | c5 f9 28 07 | vmovapd xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | c5 fd 29 07 | vmovapd ymmword [rdi], ymm0 | w32 [rdi] | 4
64 | c5 fa 6f 07 | vmovdqu xmm0, xmmword [rdi] | r16 [rdi] | 4
64 | c5 fe 6f 07 | vmovdqu ymm0, ymmword [rdi] | r32 [rdi] | 4
64 | c5 fe 7f 07 | vmovdqu ymmword [rdi], ymm0 | w32 [rdi] | 4
64 | c5 fd 6f 07 | vmovdqa ymm0, ymmword [rdi] | r32 [rdi] | 4
64 | c5 f9 7f 47 20 | vmovdqa xmmword [rdi + 0x20], xmm0 | w16 [rdi + 0x20] | 5
64 | c4 c1 7e 6f 00 | vmovdqu ymm0, ymmword [r8] | r32 [r8] | 5
64 | c4 41 7c 10 00 | vmovups ymm8, ymmword [r8] | r32 [r8] | 5
64 | c5 fa 10 07 | vmovss xmm0, dword [rdi] | r4 [rdi] | 4
64 | c5 fb 11 07 | vmovsd qword [rdi], xmm0 | w8 [rdi] | 4
64 | c5 f8 57 c0 | vxorps xmm0, xmm0, xmm0 | - | 4
64 | c5 fc 57 c0 | vxorps ymm0, ymm0, ymm0 | - | 4
64 | c5 f9 ef c0 | vpxor xmm0, xmm0, xmm0 | - | 4
64 | c5 fd e7 07 | vmovntdq ymmword [rdi], ymm0 | w32 [rdi] | 4
32 | 40 | inc eax | - | 1
32 | 4f | dec edi | - | 1
32 | 50 | push eax | w4 [esp - 0x4] | 1
32 | 5f | pop edi | r4 [esp] | 1
32 | 89 c8 | mov eax, ecx | - | 2
32 | 8b 45 08 | mov eax, dword [ebp + 0x8] | r4 [ebp + 0x8] | 3
32 | 8b 04 24 | mov eax, dword [esp] | r4 [esp] | 3
32 | c7 05 45 00 00 00 05 00 00 00 | mov dword [0x45], 0x5 | w4 [0x45] | 10
32 | a1 00 10 00 00 | mov eax, dword [0x1000] | r4 [0x1000] | 5
32 | e8 00 00 00 00 | call 0x1005 | w4 [esp - 0x4] | 5
32 | ff 15 00 10 00 00 | call dword [0x1000] | r4 [0x1000]; w4 [esp - 0x4] | 6
32 | ff d0 | call eax | w4 [esp - 0x4] | 2
32 | ff 24 85 00 10 00 00 | jmp dword [eax * 4 + 0x1000] | r4 [eax * 4 + 0x1000] | 7
32 | 66 8b 07 | mov ax, word [edi] | r2 [edi] | 3
32 | 67 8b 07 | mov eax, dword [bx] | r4 [bx] | 3
32 | 67 8b 46 04 | mov eax, dword [bp + 0x4] | r4 [bp + 0x4] | 4
32 | f3 a5 | rep movsd | r4 [esi]; w4 es:[edi] | 2
32 | 8d 44 24 04 | lea eax, [esp + 0x4] | - | 4
32 | 0f b6 45 08 | movzx eax, byte [ebp + 0x8] | r1 [ebp + 0x8] | 4
32 | c3 | ret | r4 [esp] | 1
32 | c2 04 00 | ret 0x4 | r4 [esp] | 3
32 | 83 ec 10 | sub esp, 0x10 | - | 3
32 | 81 ec 00 01 00 00 | sub esp, 0x100 | - | 6
32 | f0 0f b1 0a | lock cmpxchg dword [edx], ecx | rw4 [edx] | 4
32 | 64 a1 18 00 00 00 | mov eax, dword fs:[0x18] | r4 fs:[0x18] | 6
32 | 64 8b 0d 00 00 00 00 | mov ecx, dword fs:[0x0] | r4 fs:[0x0] | 7
32 | cf | iretd | r4 [esp] | 1
32 | 6a 01 | push 0x1 | w4 [esp - 0x4] | 2
32 | 61 | unknown | - | 0
32 | c4 e2 79 18 07 | unknown | - | 0
32 | c5 f8 10 07 | vmovups xmm0, xmmword [edi] | r16 [edi] | 4
32 | c4 00 | unknown | - | 0
64 | 06 | unknown | - | 0
64 | 07 | unknown | - | 0
64 | 0e | unknown | - | 0
64 | 27 | unknown | - | 0
64 | ff ff | unknown | - | 0
64 | ff 38 | unknown | - | 0
64 | 8f 08 | unknown | - | 0
64 | c6 08 01 | unknown | - | 0
64 | c7 08 01 00 00 00 | unknown | - | 0
64 | 0f ff | unknown | - | 0
64 | 0f 0f c1 00 | unknown | - | 0
64 | 8d c0 | unknown | - | 0
64 | 0f 01 e8 | unknown | - | 0
64 | d6 | unknown | - | 0
64 | 62 00 | unknown | - | 0
64 | (none) | truncated | - | 0
64 | 8b | truncated | - | 0
64 | 8b 80 00 | truncated | - | 0
64 | 0f | truncated | - | 0
64 | 48 | truncated | - | 0
64 | 66 | truncated | - | 0
64 | f0 | truncated | - | 0
64 | e8 00 00 | truncated | - | 0
64 | c7 04 25 45 00 00 00 05 | truncated | - | 0
64 | 48 b8 01 02 03 04 | truncated | - | 0
64 | 0f 84 00 00 | truncated | - | 0
64 | c5 | truncated | - | 0
64 | c5 f8 | truncated | - | 0
64 | c4 e1 | truncated | - | 0
64 | 0f c7 c8 | unknown | - | 0
64 | ff d8 | unknown | - | 0
64 | 8c f8 | unknown | - | 0
64 | f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 f3 90 | unknown | - | 0
"""

    struct Row: CustomTestStringConvertible {
        var mode: X86Mode
        var bytes: [UInt8]
        var text: String
        var memory: String
        var length: Int
        var testDescription: String { "\(text) (\(bytes.map { String($0, radix: 16) }.joined(separator: " ")))" }
    }

    static let rows: [Row] = table.split(separator: "\n").map { line in
        let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let bytes = f[1] == "(none)" ? [] : f[1].split(separator: " ").map { UInt8($0, radix: 16)! }
        return Row(mode: f[0] == "64" ? .bits64 : .bits32, bytes: bytes, text: f[2], memory: f[3], length: Int(f[4])!)
    }

    static func describe(_ m: X86Memory) -> String {
        var bare = m
        bare.size = nil
        let access = m.access.map { ["read": "r", "write": "w", "readwrite": "rw"][$0.rawValue]! } ?? "-"
        return access + (m.size.map(String.init) ?? "?") + " " + X86Instruction.render(.memory(bare), lea: true)
    }

    @Test func theTableHasAtLeast300Rows() {
        #expect(Self.rows.count >= 300)
        #expect(Self.rows.filter { $0.text == "unknown" }.count >= 15)
        #expect(Self.rows.filter { $0.text == "truncated" }.count >= 10)
        #expect(Self.rows.contains { $0.mode == .bits32 })
    }

    @Test(arguments: rows)
    func decodesAsTheTableSays(_ row: Row) {
        let decoder = X86Decoder(mode: row.mode)
        do {
            let i = try decoder.decode(row.bytes, address: 0x1000)
            #expect(i.text == row.text)
            let memory = i.memoryOperands.map(Self.describe).joined(separator: "; ")
            #expect((memory.isEmpty ? "-" : memory) == row.memory)
            #expect(i.length == row.length)
        } catch {
            #expect((error == .truncated ? "truncated" : "unknown") == row.text)
        }
    }
}
