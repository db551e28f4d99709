/* selfdump: crashes (SIGSEGV through crash_here <- level2 <- level1 <- main) and, from its
 * signal handler, writes a minidump of its crashing thread to argv[1]: SystemInfo, one thread
 * (the signal's CPU context and the stack from sp up to 64 KiB), the executable mappings of
 * /proc/self/maps as modules, and the exception. It lets the stackwalker tests make real dumps
 * of ARM64, ARM (Thumb) and x86-64 code, the first two under qemu-user. Layouts follow the
 * minidump format (../shared/reference/minidump.md); written for Postmortem's tests. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static const char *g_path;
static uint8_t g_out[1 << 20];
static uint32_t g_len;

static uint32_t put(const void *p, uint32_t n) {
  g_len = (g_len + 7) & ~7u;
  uint32_t at = g_len;
  if (at + n > sizeof g_out) _exit(3);
  memcpy(g_out + at, p, n);
  g_len += n;
  return at;
}

#if defined(__aarch64__)
#define ARCH 12
#define CONTEXT_SIZE 912
static void context(uint8_t *c, const ucontext_t *uc) {
  uint32_t flags = 0x00400002, cpsr = (uint32_t)uc->uc_mcontext.pstate;
  memcpy(c, &flags, 4); memcpy(c + 4, &cpsr, 4);
  for (int i = 0; i < 31; i++) memcpy(c + 8 + 8 * i, &uc->uc_mcontext.regs[i], 8);
  memcpy(c + 256, &uc->uc_mcontext.sp, 8);
  memcpy(c + 264, &uc->uc_mcontext.pc, 8);
}
static uint64_t stack_pointer(const ucontext_t *uc) { return uc->uc_mcontext.sp; }
#elif defined(__arm__)
#define ARCH 5
#define CONTEXT_SIZE 368
static void context(uint8_t *c, const ucontext_t *uc) {
  const mcontext_t *m = &uc->uc_mcontext;
  uint32_t flags = 0x40000006;
  uint32_t r[16] = {m->arm_r0, m->arm_r1, m->arm_r2, m->arm_r3, m->arm_r4, m->arm_r5, m->arm_r6, m->arm_r7,
                    m->arm_r8, m->arm_r9, m->arm_r10, m->arm_fp, m->arm_ip, m->arm_sp, m->arm_lr, m->arm_pc};
  uint32_t cpsr = m->arm_cpsr;
  memcpy(c, &flags, 4); memcpy(c + 4, r, 64); memcpy(c + 68, &cpsr, 4);
}
static uint64_t stack_pointer(const ucontext_t *uc) { return uc->uc_mcontext.arm_sp; }
#elif defined(__x86_64__)
#define ARCH 9
#define CONTEXT_SIZE 1232
static void context(uint8_t *c, const ucontext_t *uc) {
  const greg_t *g = uc->uc_mcontext.gregs;
  uint32_t flags = 0x0010001F, eflags = (uint32_t)g[REG_EFL];
  memcpy(c + 48, &flags, 4); memcpy(c + 68, &eflags, 4);
  int order[17] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI, REG_R8, REG_R9,
                   REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP};
  for (int i = 0; i < 17; i++) memcpy(c + 120 + 8 * i, &g[order[i]], 8);
}
static uint64_t stack_pointer(const ucontext_t *uc) { return uc->uc_mcontext.gregs[REG_RSP]; }
#else
#error "unsupported CPU"
#endif

static uint32_t put_string(const char *s) {  /* MINIDUMP_STRING: byte length, UTF-16LE, NUL */
  uint16_t u[2 + 512];
  uint32_t n = 0;
  while (s[n] && n < 511) { u[2 + n] = (uint8_t)s[n]; n++; }
  u[2 + n] = 0;
  uint32_t bytes = n * 2;
  memcpy(u, &bytes, 4);
  return put(u, 4 + (n + 1) * 2);
}

struct mapping { uint64_t start, end; char path[256]; int exec; };
static struct mapping g_maps[512];
static int g_nmaps;

static void read_maps(void) {
  static char text[256 * 1024];
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return;
  ssize_t n, len = 0;
  while ((n = read(fd, text + len, sizeof text - 1 - len)) > 0) len += n;
  close(fd);
  text[len] = 0;
  for (char *line = text; *line && g_nmaps < 512;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    unsigned long long s, e;
    char perms[8] = {0}, path[256] = {0};
    if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %255s", &s, &e, perms, path) >= 3) {
      struct mapping *m = &g_maps[g_nmaps++];
      m->start = s; m->end = e; m->exec = perms[2] == 'x';
      strncpy(m->path, path, sizeof m->path - 1);
    }
    if (!nl) break;
    line = nl + 1;
  }
}

static void on_crash(int sig, siginfo_t *si, void *ucv) {
  const ucontext_t *uc = ucv;
  read_maps();
  g_len = 32;  /* header */
  uint32_t dir[5][3];
  int streams = 0;

  /* SystemInfo */
  uint32_t csd = put_string("");
  uint8_t sys[56] = {0};
  uint16_t arch = ARCH;
  uint32_t platform = 0x8201;
  memcpy(sys, &arch, 2); sys[6] = 1;
  memcpy(sys + 20, &platform, 4); memcpy(sys + 24, &csd, 4);
  dir[streams][0] = 7; dir[streams][1] = 56; dir[streams][2] = put(sys, 56); streams++;

  /* Thread: context and stack */
  uint8_t ctx[CONTEXT_SIZE] = {0};
  context(ctx, uc);
  uint32_t ctx_rva = put(ctx, CONTEXT_SIZE);
  uint64_t sp = stack_pointer(uc) & ~(uint64_t)15, stack_end = sp;
  for (int i = 0; i < g_nmaps; i++)
    if (sp >= g_maps[i].start && sp < g_maps[i].end) stack_end = g_maps[i].end;
  if (stack_end - sp > 65536) stack_end = sp + 65536;
  uint32_t stack_size = (uint32_t)(stack_end - sp), stack_rva = put((void *)(uintptr_t)sp, stack_size);
  uint32_t tid = (uint32_t)syscall(SYS_gettid);
  uint8_t threads[4 + 48] = {0};
  uint32_t one = 1;
  memcpy(threads, &one, 4);
  memcpy(threads + 4, &tid, 4);
  memcpy(threads + 4 + 24, &sp, 8); memcpy(threads + 4 + 32, &stack_size, 4); memcpy(threads + 4 + 36, &stack_rva, 4);
  uint32_t ctx_size = CONTEXT_SIZE;
  memcpy(threads + 4 + 40, &ctx_size, 4); memcpy(threads + 4 + 44, &ctx_rva, 4);
  dir[streams][0] = 3; dir[streams][1] = sizeof threads; dir[streams][2] = put(threads, sizeof threads); streams++;

  /* Modules: each file with an executable mapping, from its first to its last mapping. */
  static uint8_t modules[4 + 64 * 108];
  uint32_t count = 0;
  for (int i = 0; i < g_nmaps && count < 64; i++) {
    if (!g_maps[i].exec || g_maps[i].path[0] != '/') continue;
    uint64_t base = g_maps[i].start, end = g_maps[i].end;
    for (int j = 0; j < g_nmaps; j++) {
      if (strcmp(g_maps[j].path, g_maps[i].path)) continue;
      if (g_maps[j].start < base) base = g_maps[j].start;
      if (g_maps[j].end > end) end = g_maps[j].end;
    }
    int seen = 0;
    for (uint32_t k = 0; k < count; k++) {
      uint64_t b;
      memcpy(&b, modules + 4 + k * 108, 8);
      if (b == base) seen = 1;
    }
    if (seen) continue;
    uint8_t *m = modules + 4 + count * 108;
    uint32_t size = (uint32_t)(end - base), name = put_string(g_maps[i].path);
    memcpy(m, &base, 8); memcpy(m + 8, &size, 4); memcpy(m + 20, &name, 4);
    count++;
  }
  memcpy(modules, &count, 4);
  dir[streams][0] = 4; dir[streams][1] = 4 + count * 108; dir[streams][2] = put(modules, 4 + count * 108); streams++;

  /* Exception */
  uint8_t exc[168] = {0};
  uint32_t code = (uint32_t)sig;
  uint64_t address = (uint64_t)(uintptr_t)si->si_addr;
  memcpy(exc, &tid, 4); memcpy(exc + 8, &code, 4); memcpy(exc + 24, &address, 8);
  memcpy(exc + 160, &ctx_size, 4); memcpy(exc + 164, &ctx_rva, 4);
  dir[streams][0] = 6; dir[streams][1] = 168; dir[streams][2] = put(exc, 168); streams++;

  uint32_t dir_rva = put(dir, streams * 12);
  uint32_t header[8] = {0x504D444D, 0xA793, (uint32_t)streams, dir_rva, 0, 0x60000000, 0, 0};
  memcpy(g_out, header, 32);
  int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    for (uint32_t done = 0; done < g_len;) {
      ssize_t w = write(fd, g_out + done, g_len - done);
      if (w <= 0) break;
      done += (uint32_t)w;
    }
    close(fd);
  }
  _exit(0);
}

__attribute__((noinline)) static void crash_here(volatile int *p) { *p = 42; }
__attribute__((noinline)) static void level2(volatile int *p) { crash_here(p); __asm__ volatile(""); }
__attribute__((noinline)) static void level1(volatile int *p) { level2(p); __asm__ volatile(""); }

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTPUT.dmp\n", argv[0]);
    return 2;
  }
  g_path = argv[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_crash;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  volatile int *volatile null_ptr = NULL;
  level1(null_ptr);
  return 1;
}
