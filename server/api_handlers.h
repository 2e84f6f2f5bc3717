// The /api/v1 endpoints that read or write storage: query, query_range, series, labels,
// label values, format_query, metadata, query_exemplars, status/tsdb and the remote-write
// receiver.
// Answers follow Prometheus 3: the same JSON shapes, value and timestamp formatting, error
// types, codes and messages.
#ifndef STRATA_SERVER_API_HANDLERS_H_
#define STRATA_SERVER_API_HANDLERS_H_

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "query/engine.h"
#include "server/http_server.h"
#include "server/remote_write.h"
#include "server/series_ref_cache.h"
#include "server/work_pool.h"
#include "src/metrics.h"
#include "storage/db.h"

namespace strata {

// The metadata remote-write senders send (type, help, unit per metric family), as
// /api/v1/metadata reports it. Kept in memory only, as Prometheus keeps scrape metadata.
// Thread-safe.
class MetadataStore {
 public:
  struct Entry {
    std::string type;
    std::string help;
    std::string unit;
    friend bool operator==(const Entry&, const Entry&) = default;
  };

  // Records one entry; an identical entry for the metric is kept once.
  void Add(std::string_view metric, Entry entry);
  // metric name -> entries in the order first seen. `metric` non-empty: that metric only.
  // `limit` > 0: at most that many metrics; `limit_per_metric` > 0: entries per metric.
  std::map<std::string, std::vector<Entry>> Get(std::string_view metric, int64_t limit,
                                                int64_t limit_per_metric) const;

 private:
  // A sender may describe many metrics; past this many the oldest are not dropped, new ones
  // are ignored, so a misbehaving sender cannot grow memory without bound.
  static constexpr size_t kMaxMetrics = 100'000;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<Entry>, std::less<>> metrics_;
};

// What the handlers use. The storage is set once it is open; until then the handlers answer
// 503 (errorType "unavailable"), as Prometheus does before its TSDB is ready.
struct ApiContext {
  std::atomic<Storage*> storage{nullptr};
  promql::EngineOptions engine_options;
  RemoteWriteLimits remote_write_limits;
  MetadataStore metadata;
  // Remote write's label bytes → head series (see series_ref_cache.h).
  SeriesRefCache series_refs;
  // Query evaluation and label lookups run here, never on the I/O threads.
  WorkPool* query_pool = nullptr;
  // Light requests may run on the I/O thread that read them instead (RunOnPool). Null: never.
  InlineSlots* query_inline = nullptr;
  // Remote-write appends (which wait for the WAL) run here.
  WorkPool* write_pool = nullptr;
  // Counts queries stopped because their client went away while they were queued or
  // evaluating (strata_queries_canceled_total). Null: not counted.
  Counter* queries_canceled = nullptr;
  // Ingest and query figures for /metrics (RegisterApiMetrics); null members are not counted.
  struct Metrics {
    Counter* remote_write_samples = nullptr;          // samples in decoded requests
    Counter* remote_write_invalid_samples = nullptr;  // of series refused for their labels
    Counter* remote_write_exemplars_dropped = nullptr;
    Counter* remote_write_histograms_dropped = nullptr;
    Counter* import_samples = nullptr;
    Histogram* instant_query_duration = nullptr;
    Histogram* range_query_duration = nullptr;
    Counter* query_samples = nullptr;  // samples read from storage by queries
  } metrics;
};

// Creates the ApiContext::Metrics families in `registry` and points `ctx` at them.
void RegisterApiMetrics(MetricsRegistry* registry, ApiContext* ctx);

// Registers GET and POST /api/v1/query, /api/v1/query_range, /api/v1/series,
// /api/v1/labels, /api/v1/label/:name/values, /api/v1/format_query, /api/v1/metadata,
// /api/v1/query_exemplars, GET /api/v1/status/tsdb, POST /api/v1/write (remote write 1.0)
// and POST /api/v1/import/prometheus (text exposition format, as VictoriaMetrics takes it:
// `timestamp` and `extra_label` parameters, optional gzip; see ImportPrometheusText).
// REQUIRES: `ctx` and its pools outlive the server.
void RegisterApiHandlers(Router& router, ApiContext* ctx);

}  // namespace strata

#endif  // STRATA_SERVER_API_HANDLERS_H_
