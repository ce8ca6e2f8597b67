// ThreadSanitizer annotations for Debian's Abseil synchronization primitives, preloaded
// (LD_PRELOAD) into the TSan test processes by scripts/sanitizers.sh.
//
// libabsl_synchronization.so is not built with TSan, so absl::Mutex, CondVar and Notification
// synchronize through atomics and futexes that TSan never sees: every access guarded by an
// absl::Mutex (the project's ABSL_GUARDED_BY fields, gRPC's own locks) would be reported as a
// race. Each wrapper below calls the real function (dlsym RTLD_NEXT) and adds the happens-before
// edge the primitive provides: release on the object before unlocking / notifying / waiting,
// acquire on it after locking / waking. Lock-order (deadlock) checking is not modelled.
//
// The functions are defined under their mangled names (Abseil 20220623, inline namespace
// debian3), so the dynamic linker resolves the project's and gRPC's calls to them. Built without
// instrumentation; the __tsan_* entry points are weak, so a process without the TSan runtime
// that inherits LD_PRELOAD is unaffected.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
}

namespace {

// absl::Duration and absl::Time as passed by value: { int64 hi; uint32 lo } (Time wraps a
// Duration), two integer registers in the x86-64 ABI.
struct Duration {
  int64_t hi;
  uint32_t lo;
};

void Acquire(const void* object) {
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(object));
}
void Release(const void* object) {
  if (__tsan_release != nullptr) __tsan_release(const_cast<void*>(object));
}

template <typename Fn>
Fn Real(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_sync_tsan: %s not found\n", name);
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// absl::Notification is { Mutex mutex_; std::atomic<bool> notified_yet_; }: HasBeenNotified()
// is inline and loads notified_yet_ with acquire, so Notify releases that address too.
const void* NotifiedFlag(const void* notification) {
  return static_cast<const char*>(notification) + sizeof(void*);
}

}  // namespace

#define MSWA_REAL(name, type) static const auto real = Real<type>(#name)

extern "C" {

// ---- absl::Mutex ------------------------------------------------------------------------------
void _ZN4absl7debian35Mutex4LockEv(void* mu) {
  MSWA_REAL(_ZN4absl7debian35Mutex4LockEv, void (*)(void*));
  real(mu);
  Acquire(mu);
}
void _ZN4absl7debian35Mutex10ReaderLockEv(void* mu) {
  MSWA_REAL(_ZN4absl7debian35Mutex10ReaderLockEv, void (*)(void*));
  real(mu);
  Acquire(mu);
}
bool _ZN4absl7debian35Mutex7TryLockEv(void* mu) {
  MSWA_REAL(_ZN4absl7debian35Mutex7TryLockEv, bool (*)(void*));
  const bool locked = real(mu);
  if (locked) Acquire(mu);
  return locked;
}
bool _ZN4absl7debian35Mutex13ReaderTryLockEv(void* mu) {
  MSWA_REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv, bool (*)(void*));
  const bool locked = real(mu);
  if (locked) Acquire(mu);
  return locked;
}
void _ZN4absl7debian35Mutex6UnlockEv(void* mu) {
  MSWA_REAL(_ZN4absl7debian35Mutex6UnlockEv, void (*)(void*));
  Release(mu);
  real(mu);
}
void _ZN4absl7debian35Mutex12ReaderUnlockEv(void* mu) {
  MSWA_REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv, void (*)(void*));
  Release(mu);
  real(mu);
}
// LockWhen*: return holding the lock (the bool of the timed ones says whether the condition
// held).
void _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(void* mu, const void* cond) {
  MSWA_REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, void (*)(void*, const void*));
  real(mu, cond);
  Acquire(mu);
}
void _ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(void* mu, const void* cond) {
  MSWA_REAL(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE,
            void (*)(void*, const void*));
  real(mu, cond);
  Acquire(mu);
}
bool _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    void* mu, const void* cond, Duration timeout) {
  MSWA_REAL(_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
            bool (*)(void*, const void*, Duration));
  const bool result = real(mu, cond, timeout);
  Acquire(mu);
  return result;
}
bool _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    void* mu, const void* cond, Duration deadline) {
  MSWA_REAL(_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
            bool (*)(void*, const void*, Duration));
  const bool result = real(mu, cond, deadline);
  Acquire(mu);
  return result;
}
bool _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    void* mu, const void* cond, Duration timeout) {
  MSWA_REAL(_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
            bool (*)(void*, const void*, Duration));
  const bool result = real(mu, cond, timeout);
  Acquire(mu);
  return result;
}
bool _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    void* mu, const void* cond, Duration deadline) {
  MSWA_REAL(_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
            bool (*)(void*, const void*, Duration));
  const bool result = real(mu, cond, deadline);
  Acquire(mu);
  return result;
}
// Await*: called holding the lock; release it while waiting and take it again.
void _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(void* mu, const void* cond) {
  MSWA_REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, void (*)(void*, const void*));
  Release(mu);
  real(mu, cond);
  Acquire(mu);
}
bool _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    void* mu, const void* cond, Duration timeout) {
  MSWA_REAL(_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
            bool (*)(void*, const void*, Duration));
  Release(mu);
  const bool result = real(mu, cond, timeout);
  Acquire(mu);
  return result;
}
bool _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    void* mu, const void* cond, Duration deadline) {
  MSWA_REAL(_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
            bool (*)(void*, const void*, Duration));
  Release(mu);
  const bool result = real(mu, cond, deadline);
  Acquire(mu);
  return result;
}

// ---- absl::CondVar: Wait releases the mutex and takes it again --------------------------------
void _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(void* cv, void* mu) {
  MSWA_REAL(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, void (*)(void*, void*));
  Release(mu);
  real(cv, mu);
  Acquire(mu);
}
bool _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(void* cv, void* mu,
                                                                           Duration timeout) {
  MSWA_REAL(_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
            bool (*)(void*, void*, Duration));
  Release(mu);
  const bool result = real(cv, mu, timeout);
  Acquire(mu);
  return result;
}
bool _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(void* cv, void* mu,
                                                                        Duration deadline) {
  MSWA_REAL(_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
            bool (*)(void*, void*, Duration));
  Release(mu);
  const bool result = real(cv, mu, deadline);
  Acquire(mu);
  return result;
}

// ---- absl::Notification ---------------------------------------------------------------------
void _ZN4absl7debian312Notification6NotifyEv(void* n) {
  MSWA_REAL(_ZN4absl7debian312Notification6NotifyEv, void (*)(void*));
  Release(n);
  Release(NotifiedFlag(n));
  real(n);
}
void _ZNK4absl7debian312Notification19WaitForNotificationEv(const void* n) {
  MSWA_REAL(_ZNK4absl7debian312Notification19WaitForNotificationEv, void (*)(const void*));
  real(n);
  Acquire(n);
}
bool _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const void* n, Duration timeout) {
  MSWA_REAL(_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
            bool (*)(const void*, Duration));
  const bool notified = real(n, timeout);
  if (notified) Acquire(n);
  return notified;
}
bool _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const void* n, Duration deadline) {
  MSWA_REAL(_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
            bool (*)(const void*, Duration));
  const bool notified = real(n, deadline);
  if (notified) Acquire(n);
  return notified;
}

}  // extern "C"
