// The process_* metrics every Prometheus exporter publishes (CPU seconds, resident and
// virtual memory, open and maximum file descriptors, start time), read from /proc at
// collection time, so dashboards and alerts written for any exporter work on Strata.
#ifndef STRATA_SRC_PROCESS_METRICS_H_
#define STRATA_SRC_PROCESS_METRICS_H_

#include <optional>

#include "src/metrics.h"

namespace strata {

struct ProcessStats {
  double cpu_seconds = 0;     // user + system
  double resident_bytes = 0;  // RSS
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;             // soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // Unix time the process started
  double threads = 0;
};

// Reads this process' figures; nullopt when /proc is unreadable.
std::optional<ProcessStats> ReadProcessStats();

// Registers process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds and process_threads as callbacks in `registry`.
// Undo with UnregisterProcessMetrics before the registry's users go away.
void RegisterProcessMetrics(MetricsRegistry* registry);
void UnregisterProcessMetrics(MetricsRegistry* registry);

}  // namespace strata

#endif  // STRATA_SRC_PROCESS_METRICS_H_
