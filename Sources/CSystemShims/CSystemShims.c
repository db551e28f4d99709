#define _GNU_SOURCE
#include "CSystemShims.h"
#include <sys/mman.h>
#include <zlib.h>
#include <errno.h>
#include <unistd.h>

void *pm_remap(void *old_address, size_t old_size, size_t new_size) {
#ifdef __linux__
    void *p = mremap(old_address, old_size, new_size, MREMAP_MAYMOVE);
    return p == MAP_FAILED ? NULL : p;
#else
    (void)old_address; (void)old_size; (void)new_size;
    return NULL;
#endif
}

#include <string.h>

const void *pm_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

size_t pm_json_string_run(const unsigned char *bytes, size_t length) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), control = _mm_set1_epi8(0x1F);
    for (; i + 16 <= length; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(bytes + i));
        // Unsigned v <= 0x1F exactly when max(v, 0x1F) == 0x1F.
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                       _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));
        int mask = _mm_movemask_epi8(special);
        if (mask != 0) return i + (size_t)__builtin_ctz((unsigned)mask);
    }
#endif
    for (; i < length; i++) {
        unsigned char c = bytes[i];
        if (c == '"' || c == '\\' || c < 0x20) return i;
    }
    return length;
}

unsigned int pm_crc32(unsigned int crc, const unsigned char *bytes, size_t length) {
    return (unsigned int)crc32_z(crc, bytes, length);
}

int pm_write_all(int fd, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    while (length > 0) {
        ssize_t n = write(fd, p, length);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) { errno = EIO; return -1; }
        p += n;
        length -= (size_t)n;
    }
    return 0;
}

#if defined(__GLIBC__)
#include <malloc.h>
void pm_release_free_memory(void) { malloc_trim(0); }
#else
void pm_release_free_memory(void) {}
#endif
