/*
 * accelsim emulation harness: calls one TVM packed-API kernel
 *   int __tvm_ffi_<name>(void* self, const TVMFFIAny* args, int32_t n, TVMFFIAny* ret)
 * on DLTensors described by the generated header "accelsim_args.h", then prints the outputs.
 *
 * Output protocol on stdout (parsed by accelsim/codegen/emulate.py):
 *   ACCELSIM-ERROR <kind>: <message>\n      (zero or more, from TVMFFIErrorSetRaisedFromCStrParts)
 *   ACCELSIM-RC <decimal>\n                  (the kernel's return code)
 *   ACCELSIM-OUT <arg index> <nbytes>\n<hex bytes>\n   (per output, only when rc == 0)
 *   ACCELSIM-END\n
 * The process exit status is 0 when the kernel returned 0, 3 otherwise.
 *
 * Build with -DACCELSIM_FREESTANDING for targets without libc (Hexagon): then runtime_freestanding.c
 * supplies _start, memset/memcpy, write/exit system calls and a workspace arena.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef ACCELSIM_HAVE_TVM_FFI_HEADERS
#include <tvm/ffi/c_api.h>
#else
/* The ABI-stable subset of DLPack and tvm-ffi's c_api.h that the harness needs. */
typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
  void* data; DLDevice device; int32_t ndim; DLDataType dtype;
  int64_t* shape; int64_t* strides; uint64_t byte_offset;
} DLTensor;
typedef struct {
  int32_t type_index;
  union { uint32_t zero_padding; uint32_t small_str_len; };
  union { int64_t v_int64; double v_float64; void* v_ptr; const char* v_c_str; char v_bytes[8]; uint64_t v_uint64; };
} TVMFFIAny;
enum { kTVMFFINone = 0, kTVMFFIDLTensorPtr = 7 };
enum { kDLCPU = 1 };
#endif

/* ---- platform layer ---------------------------------------------------------------------- */
#ifdef ACCELSIM_FREESTANDING
long accelsim_sys_write(int fd, const void* buf, unsigned long n);
void accelsim_sys_exit(int code) __attribute__((noreturn));
void* accelsim_alloc(uint64_t nbytes);
void accelsim_free(void* p);
void* memset(void* d, int c, size_t n);
#else
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static long accelsim_sys_write(int fd, const void* buf, unsigned long n) { return write(fd, buf, n); }
static void accelsim_sys_exit(int code) { exit(code); }
static void* accelsim_alloc(uint64_t nbytes) {
  void* p = NULL;
  if (posix_memalign(&p, 128, nbytes ? (size_t)nbytes : 1) != 0) return NULL;
  return p;
}
static void accelsim_free(void* p) { free(p); }
#endif

/* ---- buffered stdout ----------------------------------------------------------------------- */
static char accelsim_obuf[8192];
static unsigned long accelsim_olen;

static void out_flush(void) {
  unsigned long off = 0;
  while (off < accelsim_olen) {
    long w = accelsim_sys_write(1, accelsim_obuf + off, accelsim_olen - off);
    if (w <= 0) accelsim_sys_exit(4);
    off += (unsigned long)w;
  }
  accelsim_olen = 0;
}
static void out_char(char c) {
  if (accelsim_olen == sizeof(accelsim_obuf)) out_flush();
  accelsim_obuf[accelsim_olen++] = c;
}
static void out_str(const char* s) { while (s && *s) out_char(*s++); }
static void out_dec(int64_t v) {
  char tmp[24]; int n = 0; uint64_t u;
  if (v < 0) { out_char('-'); u = (uint64_t)0 - (uint64_t)v; } else { u = (uint64_t)v; }
  do { tmp[n++] = (char)('0' + (int)(u % 10u)); u /= 10u; } while (u);
  while (n) out_char(tmp[--n]);
}
static void out_hex(const unsigned char* p, uint64_t n) {
  static const char digits[] = "0123456789abcdef";
  for (uint64_t i = 0; i < n; ++i) { out_char(digits[p[i] >> 4]); out_char(digits[p[i] & 15]); }
}

/* ---- what the TVM object imports ----------------------------------------------------------- */
void TVMFFIErrorSetRaisedFromCStrParts(const char* kind, const char** parts, int32_t n) {
  out_str("ACCELSIM-ERROR "); out_str(kind); out_str(": ");
  for (int32_t i = 0; i < n; ++i) {
    for (const char* s = parts[i]; s && *s; ++s) out_char(*s == '\n' ? ' ' : *s);
  }
  out_char('\n');
}
void TVMFFIErrorSetRaisedFromCStr(const char* kind, const char* msg) {
  const char* parts[1] = {msg};
  TVMFFIErrorSetRaisedFromCStrParts(kind, parts, 1);
}

static void* accelsim_workspace_alloc(int device_type, int device_id, uint64_t nbytes,
                                      int dtype_code_hint, int dtype_bits_hint) {
  (void)device_type; (void)device_id; (void)dtype_code_hint; (void)dtype_bits_hint;
  return accelsim_alloc(nbytes);
}
static int accelsim_workspace_free(int device_type, int device_id, void* ptr) {
  (void)device_type; (void)device_id;
  accelsim_free(ptr);
  return 0;
}
/* TVM's LLVM back end emits these as weak function-pointer variables that a loader fills in;
 * strong definitions here win at link time. */
void* (*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = accelsim_workspace_alloc;
int (*__TVMBackendFreeWorkspace)(int, int, void*) = accelsim_workspace_free;

/* TVM's `parallel` loops call __TVMBackendParallelLaunch(lambda, closure, num_task) (num_task 0:
 * "as many as the runtime likes": the target's hardware threads, accelsim_num_tasks() from the
 * generated header). The harness runs the tasks one after the other on the one emulated core;
 * barriers are then no-ops. */
static int accelsim_num_tasks(void);
typedef struct { void* sync_handle; int32_t num_task; } accelsim_parallel_env_t;
typedef int (*accelsim_parallel_lambda_t)(int task_id, accelsim_parallel_env_t* penv, void* cdata);
static int accelsim_parallel_launch(accelsim_parallel_lambda_t flambda, void* cdata, int num_task) {
  accelsim_parallel_env_t env;
  env.sync_handle = (void*)0;
  env.num_task = num_task > 0 ? num_task : accelsim_num_tasks();
  for (int task = 0; task < env.num_task; ++task) {
    int rc = flambda(task, &env, cdata);
    if (rc != 0) return rc;
  }
  return 0;
}
static int accelsim_parallel_barrier(int task_id, accelsim_parallel_env_t* penv) {
  (void)task_id; (void)penv;
  return 0;
}
int (*__TVMBackendParallelLaunch)(accelsim_parallel_lambda_t, void*, int) = accelsim_parallel_launch;
int (*__TVMBackendParallelBarrier)(int, accelsim_parallel_env_t*) = accelsim_parallel_barrier;
void (*__TVMFFIErrorSetRaisedFromCStr)(const char*, const char*) = TVMFFIErrorSetRaisedFromCStr;

/* ---- the generated part: arrays, shapes, dtypes, the entry point --------------------------- */
typedef struct {
  void* data;
  int32_t ndim;
  int64_t* shape;
  uint8_t code, bits;
  uint16_t lanes;
  uint64_t nbytes;
  int is_output;
} accelsim_arg_t;

#include "accelsim_args.h"   /* defines ACCELSIM_NARGS, accelsim_args[], ACCELSIM_ENTRY */

extern int ACCELSIM_ENTRY(void* self, const TVMFFIAny* args, int32_t n, TVMFFIAny* ret);

static DLTensor accelsim_tensors[ACCELSIM_NARGS];
static TVMFFIAny accelsim_packed[ACCELSIM_NARGS];
static TVMFFIAny accelsim_ret;

/* The only code between the kernel call and its return: the emulator's instruction counter
 * starts at the kernel's entry and stops at the first block executed in this function after it. */
volatile int accelsim_kernel_rc;
__attribute__((noinline)) int accelsim_call_kernel(const TVMFFIAny* args, int32_t n, TVMFFIAny* ret) {
  accelsim_kernel_rc = ACCELSIM_ENTRY((void*)0, args, n, ret); /* the store prevents a tail call */
  return accelsim_kernel_rc;
}

int accelsim_main(void) {
  for (int i = 0; i < ACCELSIM_NARGS; ++i) {
    DLTensor* t = &accelsim_tensors[i];
    t->data = accelsim_args[i].data;
    t->device.device_type = kDLCPU;
    t->device.device_id = 0;
    t->ndim = accelsim_args[i].ndim;
    t->dtype.code = accelsim_args[i].code;
    t->dtype.bits = accelsim_args[i].bits;
    t->dtype.lanes = accelsim_args[i].lanes;
    t->shape = accelsim_args[i].shape;
    t->strides = NULL;      /* compact row-major */
    t->byte_offset = 0;
    accelsim_packed[i].type_index = kTVMFFIDLTensorPtr;
    accelsim_packed[i].zero_padding = 0;
    accelsim_packed[i].v_int64 = 0;
    accelsim_packed[i].v_ptr = t;
  }
  accelsim_ret.type_index = kTVMFFINone;
  accelsim_ret.zero_padding = 0;
  accelsim_ret.v_int64 = 0;

  int rc = accelsim_call_kernel(accelsim_packed, ACCELSIM_NARGS, &accelsim_ret);

  out_str("ACCELSIM-RC "); out_dec(rc); out_char('\n');
  if (rc == 0) {
    for (int i = 0; i < ACCELSIM_NARGS; ++i) {
      if (!accelsim_args[i].is_output) continue;
      out_str("ACCELSIM-OUT "); out_dec(i); out_char(' '); out_dec((int64_t)accelsim_args[i].nbytes);
      out_char('\n');
      out_hex((const unsigned char*)accelsim_args[i].data, accelsim_args[i].nbytes);
      out_char('\n');
    }
  }
  out_str("ACCELSIM-END\n");
  out_flush();
  return rc == 0 ? 0 : 3;
}

#ifndef ACCELSIM_FREESTANDING
int main(void) { return accelsim_main(); }
#endif
