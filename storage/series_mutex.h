// A 4-byte mutex for per-series state: there is one per head series, and std::mutex takes
// 40 bytes. Waiters sleep on the word (futex via std::atomic::wait), so a long hold costs
// them no CPU. Satisfies Lockable (std::lock_guard, std::unique_lock).
#ifndef STRATA_STORAGE_SERIES_MUTEX_H_
#define STRATA_STORAGE_SERIES_MUTEX_H_

#include <atomic>
#include <cstdint>

namespace strata {

class SeriesMutex {
 public:
  SeriesMutex() = default;
  SeriesMutex(const SeriesMutex&) = delete;
  SeriesMutex& operator=(const SeriesMutex&) = delete;

  void lock() {
    uint32_t expected = kFree;
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire)) return;
    LockSlow();
  }
  bool try_lock() {
    uint32_t expected = kFree;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire);
  }
  void unlock() {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) state_.notify_one();
  }

 private:
  static constexpr uint32_t kFree = 0;
  static constexpr uint32_t kLocked = 1;     // held, nobody waits
  static constexpr uint32_t kContended = 2;  // held, someone may wait

  void LockSlow() {
    for (int spin = 0; spin < 64; ++spin) {
      uint32_t expected = kFree;
      if (state_.load(std::memory_order_relaxed) == kFree &&
          state_.compare_exchange_weak(expected, kLocked, std::memory_order_acquire)) {
        return;
      }
    }
    // Marking the word contended makes the holder wake someone on unlock.
    while (state_.exchange(kContended, std::memory_order_acquire) != kFree) {
      state_.wait(kContended, std::memory_order_relaxed);
    }
  }

  std::atomic<uint32_t> state_{kFree};
};

}  // namespace strata

#endif  // STRATA_STORAGE_SERIES_MUTEX_H_
