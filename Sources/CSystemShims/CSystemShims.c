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

#include <dlfcn.h>
#include <pthread.h>

/* libbz2's stream, as bzlib.h declares it (a stable ABI since 1.0). */
typedef struct {
    char *next_in;
    unsigned int avail_in;
    unsigned int total_in_lo32;
    unsigned int total_in_hi32;
    char *next_out;
    unsigned int avail_out;
    unsigned int total_out_lo32;
    unsigned int total_out_hi32;
    void *state;
    void *(*bzalloc)(void *, int, int);
    void (*bzfree)(void *, void *);
    void *opaque;
} pm_bz_stream;

static int (*bz_init)(pm_bz_stream *, int, int);
static int (*bz_decompress)(pm_bz_stream *);
static int (*bz_end)(pm_bz_stream *);
static pthread_once_t bz_once = PTHREAD_ONCE_INIT;

static void bz_load(void) {
    const char *names[] = { "libbz2.so.1.0", "libbz2.so.1", "libbz2.so", "libbz2.1.0.dylib", "libbz2.dylib" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        bz_init = (int (*)(pm_bz_stream *, int, int))dlsym(h, "BZ2_bzDecompressInit");
        bz_decompress = (int (*)(pm_bz_stream *))dlsym(h, "BZ2_bzDecompress");
        bz_end = (int (*)(pm_bz_stream *))dlsym(h, "BZ2_bzDecompressEnd");
        if (bz_init && bz_decompress && bz_end) return;
        bz_init = 0; bz_decompress = 0; bz_end = 0;
    }
}

int pm_bunzip2(const void *bytes, size_t length, int (*sink)(void *, const void *, size_t), void *context) {
    pthread_once(&bz_once, bz_load);
    if (!bz_init) return -1;
    pm_bz_stream s;
    memset(&s, 0, sizeof s);
    if (bz_init(&s, 0, 0) != 0) return -2;
    char block[1 << 16];
    const char *in = (const char *)bytes;
    size_t left = length;
    int result = -4;
    for (;;) {
        /* avail_in is 32 bits: feed at most 1 GiB at a time. */
        if (s.avail_in == 0 && left > 0) {
            size_t n = left > (1u << 30) ? (1u << 30) : left;
            s.next_in = (char *)in;
            s.avail_in = (unsigned int)n;
            in += n;
            left -= n;
        }
        s.next_out = block;
        s.avail_out = sizeof block;
        int r = bz_decompress(&s);
        size_t produced = sizeof block - s.avail_out;
        if (produced > 0 && sink(context, block, produced) != 0) { result = -3; break; }
        if (r == 4 /* BZ_STREAM_END */) { result = 0; break; }
        if (r != 0 /* BZ_OK */) { result = -2; break; }
        if (s.avail_in == 0 && left == 0 && produced == 0) { result = -4; break; }
    }
    bz_end(&s);
    return result;
}
