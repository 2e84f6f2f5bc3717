// Operational endpoints every deployment probes: /-/healthy, /-/ready and /metrics.
#ifndef STRATA_SERVER_OPS_HANDLERS_H_
#define STRATA_SERVER_OPS_HANDLERS_H_

#include <atomic>

#include "server/http_server.h"

namespace strata {

class MetricsRegistry;

// Whether the server may take traffic. Starts not ready; storage sets it once the WAL has
// been replayed. Thread-safe.
class Readiness {
 public:
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_release); }
  bool ready() const { return ready_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> ready_{false};
};

// GET/HEAD /-/healthy: 200 while the process serves HTTP.
// GET/HEAD /-/ready: 200 once `readiness` is set, 503 before.
// REQUIRES: `readiness` outlives the server.
void RegisterHealthHandlers(Router& router, const Readiness* readiness);

// GET /metrics: `registry` in the Prometheus text format (version 0.0.4).
// REQUIRES: `registry` outlives the server.
void RegisterMetricsHandler(Router& router, const MetricsRegistry* registry);

}  // namespace strata

#endif  // STRATA_SERVER_OPS_HANDLERS_H_
