// Memory-mapped files for the safetensors loader. A file is mapped once, privately (copy-on-write: an in-place
// update of a parameter never reaches the file), and each tensor becomes an external ArrayBuffer over its own byte
// range, so tensors are views of the page cache: nothing is read until a kernel touches it. The mapping is
// reference-counted by the handle and by every view; it is unmapped when the last of them is collected.
#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"

namespace {

struct Mapping {
  void* base;
  size_t len;
  std::atomic<long> refs;
};

void release(Mapping* m) {
  if (m->refs.fetch_sub(1) == 1) {
    if (m->len) munmap(m->base, m->len);
    delete m;
  }
}

// mapFd(fd, size, hugePages) → handle: maps `size` bytes of an open regular file. The caller keeps (and closes) the
// fd. hugePages asks the kernel (MADV_HUGEPAGE) to read the file into 2 MiB page-cache folios on fault and map them
// with one page-table entry each: a decode step streams every weight once, and with 4 KiB pages each 4 KiB costs a
// TLB miss whose page walk (two-dimensional in a virtual machine) stalls the stream. Measured on a 9B int4 decode in
// a VM: 5.1 / 3.3 → 7.2 / 6.2 tok/s. Advice only: kernels or file systems without file-backed huge pages ignore it.
Napi::Value MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int64_t size = info[1].As<Napi::Number>().Int64Value();
  bool huge = info.Length() > 2 && info[2].ToBoolean().Value();
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Napi::Error::New(env, std::string("mapFd: fstat failed: ") + strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!S_ISREG(st.st_mode)) {
    Napi::Error::New(env, "mapFd: not a regular file").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (size < 0 || size > (int64_t)st.st_size) {
    Napi::Error::New(env, "mapFd: the file is " + std::to_string((long long)st.st_size) + " bytes, " + std::to_string((long long)size) + " requested").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* base = nullptr;
  if (size > 0) {
    base = mmap(nullptr, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      Napi::Error::New(env, std::string("mmap failed: ") + strerror(errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
#ifdef MADV_HUGEPAGE
    if (huge) madvise(base, (size_t)size, MADV_HUGEPAGE);
#endif
  }
  Mapping* m = new Mapping{base, (size_t)size, {1}};
  return Napi::External<Mapping>::New(env, m, [](Napi::Env, Mapping* p) { release(p); });
}

// mapView(handle, offset, length) → ArrayBuffer over [offset, offset + length) of the mapping (no copy).
Napi::Value MapView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Mapping* m = info[0].As<Napi::External<Mapping>>().Data();
  int64_t off = info[1].As<Napi::Number>().Int64Value();
  int64_t len = info[2].As<Napi::Number>().Int64Value();
  if (off < 0 || len < 0 || (uint64_t)(off + len) > m->len) {
    Napi::RangeError::New(env, "mapView: range outside the mapping").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (len == 0) return Napi::ArrayBuffer::New(env, 0);
  m->refs.fetch_add(1);
  napi_value ab;
  napi_status s = napi_create_external_arraybuffer(
      env, (char*)m->base + off, (size_t)len, [](napi_env, void*, void* hint) { release((Mapping*)hint); }, m, &ab);
  if (s != napi_ok) {
    release(m);
    Napi::Error::New(env, "mapView: external ArrayBuffers are not supported by this Node build").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Value(env, ab);
}

// mapAdviseScattered(handle, offset, length): a tensor read in scattered rows (an embedding table touched at a few
// thousand token rows). The whole 2 MiB blocks that hold it are mapped with 4 KiB pages (MADV_NOHUGEPAGE) and its own
// pages are faulted in one at a time, without readahead (MADV_RANDOM): the kernel maps a whole page-cache folio on a
// fault, so a table read into 2 MiB folios would bring the 2 MiB around every row touched into the RSS — most of a
// 1.2 GB table for a 9B model. Pages another reader already cached in large folios still map whole.
Napi::Value AdviseScattered(const Napi::CallbackInfo& info) {
  Mapping* m = info[0].As<Napi::External<Mapping>>().Data();
  int64_t off = info[1].As<Napi::Number>().Int64Value();
  int64_t len = info[2].As<Napi::Number>().Int64Value();
  if (!m->len || off < 0 || len <= 0 || (uint64_t)(off + len) > m->len) return info.Env().Undefined();
  const uintptr_t base = (uintptr_t)m->base, page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const auto advise = [&](uintptr_t start, uintptr_t end, int advice) {
    start = std::max(base, start / page * page);
    end = std::min(base + m->len, (end + page - 1) / page * page);
    if (end > start) madvise((void*)start, (size_t)(end - start), advice);
  };
#ifdef MADV_NOHUGEPAGE
  const uintptr_t huge = 2 << 20;
  advise((base + off) / huge * huge, (base + off + len + huge - 1) / huge * huge, MADV_NOHUGEPAGE);
#endif
  advise(base + off, base + off + len, MADV_RANDOM);
  return info.Env().Undefined();
}

}  // namespace

namespace glmv {
void register_mapped(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFd", Napi::Function::New(env, MapFd));
  exports.Set("mapView", Napi::Function::New(env, MapView));
  exports.Set("mapAdviseScattered", Napi::Function::New(env, AdviseScattered));
}
}  // namespace glmv
