/*
 * Minimal runtime for the Hexagon harness (no libc): process entry, Linux system calls through
 * trap0(#1) (qemu-hexagon user mode: number in r6, arguments in r0..r5), the memory routines a
 * compiled kernel may call, a stack-like arena allocator for TVM workspaces, and the integer division
 * and float square root builtins that LLVM's Hexagon back end calls (compiler-rt is not installed
 * for Hexagon).
 *
 * Compiled with -ffreestanding (hence -fno-builtin): the loops below are not turned back into
 * calls to memset/memcpy, and no '/' or '%' on 32/64-bit integers appears in this file.
 */
#include <stddef.h>
#include <stdint.h>

#ifndef ACCELSIM_ARENA_BYTES
#define ACCELSIM_ARENA_BYTES (64u << 20)
#endif

int accelsim_main(void);

/* ---- system calls ---------------------------------------------------------------------- */
long accelsim_sys_write(int fd, const void* buf, unsigned long n) {
  register long r0 __asm__("r0") = fd;
  register long r1 __asm__("r1") = (long)buf;
  register long r2 __asm__("r2") = (long)n;
  register long r6 __asm__("r6") = 64; /* write */
  __asm__ volatile("trap0(#1)" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r6) : "memory");
  return r0;
}

__attribute__((noreturn)) void accelsim_sys_exit(int code) {
  register long r0 __asm__("r0") = code;
  register long r6 __asm__("r6") = 93; /* exit */
  for (;;) __asm__ volatile("trap0(#1)" : : "r"(r0), "r"(r6) : "memory");
}

/* ---- entry ---------------------------------------------------------------------------- */
__attribute__((noreturn, used)) void accelsim_start_c(void) { accelsim_sys_exit(accelsim_main()); }

__asm__(
    ".text\n"
    ".globl _start\n"
    ".type _start,@function\n"
    ".p2align 4\n"
    "_start:\n"
    "  { r29 = and(r29, #-64); r30 = #0; r31 = #0 }\n"
    "  call accelsim_start_c\n"
    ".size _start, .-_start\n");

/* ---- memory routines ------------------------------------------------------------------ */
void* memset(void* dst, int c, size_t n) {
  unsigned char* d = (unsigned char*)dst;
  unsigned char b = (unsigned char)c;
  while (n && ((uintptr_t)d & 7u)) { *d++ = b; --n; }
  uint64_t w = b;
  w |= w << 8; w |= w << 16; w |= w << 32;
  for (; n >= 8; n -= 8, d += 8) *(volatile uint64_t*)d = w;
  while (n) { *d++ = b; --n; }
  return dst;
}

void* memcpy(void* dst, const void* src, size_t n) {
  unsigned char* d = (unsigned char*)dst;
  const unsigned char* s = (const unsigned char*)src;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 7u) == 0) {
    while (n && ((uintptr_t)d & 7u)) { *d++ = *s++; --n; }
    for (; n >= 8; n -= 8, d += 8, s += 8) *(volatile uint64_t*)d = *(const volatile uint64_t*)s;
  }
  while (n) { *d++ = *s++; --n; }
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  unsigned char* d = (unsigned char*)dst;
  const unsigned char* s = (const unsigned char*)src;
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  while (n) { --n; d[n] = s[n]; }
  return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* x = (const unsigned char*)a;
  const unsigned char* y = (const unsigned char*)b;
  for (; n; --n, ++x, ++y) if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}

/* LLVM's Hexagon back end calls this for aligned copies of >= 32 bytes, a multiple of 8. */
void* __hexagon_memcpy_likely_aligned_min32bytes_mult8bytes(void* dst, const void* src, size_t n) {
  return memcpy(dst, src, n);
}

/* ---- allocator: a stack-like arena (TVM frees workspaces in reverse order) ------------- */
static unsigned char accelsim_arena[ACCELSIM_ARENA_BYTES] __attribute__((aligned(128)));
static size_t accelsim_arena_top;               /* first free byte */
static long accelsim_arena_last = -1;           /* header offset of the newest live block */

typedef struct { long prev; long freed; } accelsim_block_t;  /* in a 128-byte header */

void* accelsim_alloc(uint64_t nbytes) {
  /* The 128-byte header keeps the payload HVX-aligned. */
  uint64_t need = ((nbytes + 127u) & ~(uint64_t)127u) + 128u;
  if (need > (uint64_t)(ACCELSIM_ARENA_BYTES - accelsim_arena_top)) return (void*)0;
  accelsim_block_t* h = (accelsim_block_t*)(accelsim_arena + accelsim_arena_top);
  h->prev = accelsim_arena_last;
  h->freed = 0;
  accelsim_arena_last = (long)accelsim_arena_top;
  accelsim_arena_top += (size_t)need;
  return (unsigned char*)h + 128;
}

void accelsim_free(void* p) {
  if (!p) return;
  ((accelsim_block_t*)((unsigned char*)p - 128))->freed = 1;
  /* Pop every freed block from the top; a block freed out of order waits until it is on top. */
  while (accelsim_arena_last >= 0) {
    accelsim_block_t* h = (accelsim_block_t*)(accelsim_arena + accelsim_arena_last);
    if (!h->freed) break;
    accelsim_arena_top = (size_t)accelsim_arena_last;
    accelsim_arena_last = h->prev;
  }
}

/* ---- integer division builtins ---------------------------------------------------------- */
/* Restoring division over the significant bits only: cl0 (count leading zeros) lines the divisor
 * up with the dividend, then one quotient bit per step. */
static uint64_t udivmod64(uint64_t n, uint64_t d, uint64_t* rem) {
  if (d == 0) { if (rem) *rem = n; return ~(uint64_t)0; } /* undefined in C; never trap */
  if (n < d) { if (rem) *rem = n; return 0; }
  int shift = __builtin_clzll(d) - __builtin_clzll(n);
  uint64_t q = 0;
  d <<= shift;
  for (int i = 0; i <= shift; ++i) {
    q <<= 1;
    if (n >= d) { n -= d; q |= 1u; }
    d >>= 1;
  }
  if (rem) *rem = n;
  return q;
}

static uint32_t udivmod32(uint32_t n, uint32_t d, uint32_t* rem) {
  if (d == 0) { if (rem) *rem = n; return ~(uint32_t)0; }
  if (n < d) { if (rem) *rem = n; return 0; }
  int shift = __builtin_clz(d) - __builtin_clz(n);
  uint32_t q = 0;
  d <<= shift;
  for (int i = 0; i <= shift; ++i) {
    q <<= 1;
    if (n >= d) { n -= d; q |= 1u; }
    d >>= 1;
  }
  if (rem) *rem = n;
  return q;
}

uint32_t __hexagon_udivsi3(uint32_t a, uint32_t b) { return udivmod32(a, b, (uint32_t*)0); }
uint32_t __hexagon_umodsi3(uint32_t a, uint32_t b) { uint32_t r; udivmod32(a, b, &r); return r; }
int32_t __hexagon_divsi3(int32_t a, int32_t b) {
  uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a, ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
  uint32_t q = udivmod32(ua, ub, (uint32_t*)0);
  return (int32_t)(((a < 0) != (b < 0)) ? 0u - q : q);
}
int32_t __hexagon_modsi3(int32_t a, int32_t b) {
  uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a, ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b, r;
  udivmod32(ua, ub, &r);
  return (int32_t)(a < 0 ? 0u - r : r);
}
uint64_t __hexagon_udivdi3(uint64_t a, uint64_t b) { return udivmod64(a, b, (uint64_t*)0); }
uint64_t __hexagon_umoddi3(uint64_t a, uint64_t b) { uint64_t r; udivmod64(a, b, &r); return r; }
int64_t __hexagon_divdi3(int64_t a, int64_t b) {
  uint64_t ua = a < 0 ? 0u - (uint64_t)a : (uint64_t)a, ub = b < 0 ? 0u - (uint64_t)b : (uint64_t)b;
  uint64_t q = udivmod64(ua, ub, (uint64_t*)0);
  return (int64_t)(((a < 0) != (b < 0)) ? 0u - q : q);
}
int64_t __hexagon_moddi3(int64_t a, int64_t b) {
  uint64_t ua = a < 0 ? 0u - (uint64_t)a : (uint64_t)a, ub = b < 0 ? 0u - (uint64_t)b : (uint64_t)b, r;
  udivmod64(ua, ub, &r);
  return (int64_t)(a < 0 ? 0u - r : r);
}
/* Generic names, in case code was compiled without the Hexagon-specific libcall names. */
uint32_t __udivsi3(uint32_t a, uint32_t b) { return __hexagon_udivsi3(a, b); }
uint32_t __umodsi3(uint32_t a, uint32_t b) { return __hexagon_umodsi3(a, b); }
int32_t __divsi3(int32_t a, int32_t b) { return __hexagon_divsi3(a, b); }
int32_t __modsi3(int32_t a, int32_t b) { return __hexagon_modsi3(a, b); }
uint64_t __udivdi3(uint64_t a, uint64_t b) { return __hexagon_udivdi3(a, b); }
uint64_t __umoddi3(uint64_t a, uint64_t b) { return __hexagon_umoddi3(a, b); }
int64_t __divdi3(int64_t a, int64_t b) { return __hexagon_divdi3(a, b); }
int64_t __moddi3(int64_t a, int64_t b) { return __hexagon_moddi3(a, b); }

/* ---- float square root ---------------------------------------------------------------------- */
/* LLVM's Hexagon back end calls __hexagon_sqrtf for a float32 square root (compiler-rt's is
 * hand-written assembly around sfinvsqrta; it is not installed here). This one is correctly
 * rounded (to nearest, ties to even) in integer arithmetic: the significand, scaled to an even
 * power of two in [2^49, 2^51), through a bitwise integer square root whose remainder decides the
 * rounding. Checked bit for bit against glibc's sqrtf on 22 million float32 values (every 97th
 * bit pattern: subnormals, infinities, NaN). About 300 instructions a call; a layer norm calls it
 * once per row. */
static uint64_t accelsim_isqrt64(uint64_t n, uint64_t* rem) {
    uint64_t res = 0, bit = (uint64_t)1 << 62;
    while (bit > n) bit >>= 2;
    while (bit) {
        if (n >= res + bit) {
            n -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    *rem = n;
    return res;
}

float __hexagon_sqrtf(float x) {
    union { float f; uint32_t u; } v;
    v.f = x;
    uint32_t u = v.u;
    if ((u & 0x7fffffffu) == 0) return x;                       /* +-0 */
    if (u >> 31) { v.u = 0x7fc00000u; return v.f; }              /* negative: NaN */
    uint32_t e = u >> 23;
    if (e == 0xff) return x;                                     /* inf, NaN */
    uint64_t m = u & 0x7fffffu;
    int32_t E;
    if (e == 0) {                                                /* subnormal */
        E = -149;
    } else {
        m |= 0x800000u;
        E = (int32_t)e - 150;                                    /* x = m * 2^E */
    }
    if (E & 1) { m <<= 1; E -= 1; }
    int sh = 0;                                                  /* m << sh in [2^49, 2^51) */
    while ((m << sh) < ((uint64_t)1 << 49)) sh += 2;
    uint64_t rem, q = accelsim_isqrt64(m << sh, &rem);
    int32_t half = (E - sh) >> 1;             /* E - sh is even: sqrt(x) = q * 2^half */
    int b = 0;
    while ((q >> b) > 1) b++;
    b += 1;                                                      /* bit length of q */
    int shift = b - 24;
    uint64_t kept = q >> shift, dropped = q & (((uint64_t)1 << shift) - 1);
    uint64_t halfway = (uint64_t)1 << (shift - 1);
    if (dropped > halfway || (dropped == halfway && (rem != 0 || (kept & 1)))) kept += 1;
    if (kept >> 24) { kept >>= 1; shift += 1; }
    v.u = (uint32_t)((half + shift + 23 + 127) << 23) | (uint32_t)(kept & 0x7fffffu);
    return v.f;
}
