// HTTP handlers run on a WorkPool (src/work_pool.h): the pool that evaluates queries
// (--query.max-concurrency threads), so that slow queries never occupy the HTTP I/O threads.
#ifndef STRATA_SERVER_WORK_POOL_H_
#define STRATA_SERVER_WORK_POOL_H_

#include <atomic>

#include "server/http_server.h"
#include "src/work_pool.h"

namespace strata {

// How many handlers may run on HTTP I/O threads at once (RunOnPool). Kept below the number
// of I/O threads, so that one is always left for the other connections. Thread-safe.
class InlineSlots {
 public:
  explicit InlineSlots(int n) : free_(n) {}
  bool TryTake() {
    int n = free_.load(std::memory_order_relaxed);
    while (n > 0) {
      if (free_.compare_exchange_weak(n, n - 1, std::memory_order_acquire)) return true;
    }
    return false;
  }
  void Give() { free_.fetch_add(1, std::memory_order_release); }

 private:
  std::atomic<int> free_;
};

// Wraps `handler` so that it runs on `pool` instead of the I/O thread. When the pool refuses
// the work, the client gets 503 with the Prometheus error shape (errorType "unavailable").
// With `here`: when a slot is free and a worker of `pool` idle, the handler runs on the I/O
// thread that read the request, holding that worker back (WorkPool::TryRunHere), and the
// answer is written from there: no hand-over to the worker and back, which for a light
// query cost more than the query. The client going away still stops it.
// REQUIRES: `pool` and `here` outlive the server.
HttpHandler RunOnPool(WorkPool* pool, HttpHandler handler, InlineSlots* here = nullptr);

}  // namespace strata

#endif  // STRATA_SERVER_WORK_POOL_H_
