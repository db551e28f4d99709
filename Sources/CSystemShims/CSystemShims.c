#define _GNU_SOURCE
#include "CSystemShims.h"
#include <sys/mman.h>

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
