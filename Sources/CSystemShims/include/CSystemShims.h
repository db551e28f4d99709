// System calls that Swift's Glibc module does not expose (they need _GNU_SOURCE).
#ifndef POSTMORTEM_CSYSTEMSHIMS_H
#define POSTMORTEM_CSYSTEMSHIMS_H
#include <stddef.h>

/// Grows or shrinks an anonymous mapping, moving it if needed (Linux mremap with MREMAP_MAYMOVE).
/// Returns NULL on failure or where mremap does not exist.
void *pm_remap(void *old_address, size_t old_size, size_t new_size);

/// The first occurrence of `needle` in `haystack` (glibc's two-way memmem), or NULL.
const void *pm_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/// The offset of the first byte in `bytes[0..<length]` that ends a run of plain JSON string text
/// (`"`, `\\` or a control character below 0x20), or `length` when there is none.
/// Sixteen bytes per step with SSE2; bytewise elsewhere.
size_t pm_json_string_run(const unsigned char *bytes, size_t length);

/// Writes all `length` bytes to `fd`, again after EINTR and short writes: 0, or -1 with errno set
/// (EIO when the file takes nothing).
int pm_write_all(int fd, const void *bytes, size_t length);

/// zlib's CRC-32 of `bytes`, continuing from `crc` (0 to start): ZIP member checksums, at zlib's
/// speed rather than a bytewise table.
unsigned int pm_crc32(unsigned int crc, const unsigned char *bytes, size_t length);

/// Hands memory the allocator holds free back to the system (glibc's malloc_trim; nothing
/// elsewhere): after a phase that freed a lot, so the next one does not start from its peak.
void pm_release_free_memory(void);

/// Decompresses bzip2 data with the system's libbz2 (libbz2.so.1.0, loaded at first use; every
/// Debian has it, dpkg needs it), handing each decompressed block to `sink`, which returns
/// nonzero to stop. Returns 0 when the stream ended, -1 when libbz2 is not there, -2 when the
/// data is not bzip2 or is damaged, -3 when `sink` stopped, -4 when the data ends early.
int pm_bunzip2(const void *bytes, size_t length, int (*sink)(void *context, const void *block, size_t count), void *context);

#endif
