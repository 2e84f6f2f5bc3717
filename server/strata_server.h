// The whole server in one object: HTTP server, storage, query engine, handlers and the
// self-scrape, started and stopped in the right order. main.cc adds flags, the data
// directory lock and signals; tests start it in-process on port 0.
#ifndef STRATA_SERVER_STRATA_SERVER_H_
#define STRATA_SERVER_STRATA_SERVER_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "query/engine.h"
#include "server/api_handlers.h"
#include "server/flags.h"
#include "server/http_server.h"
#include "server/ops_handlers.h"
#include "server/self_scrape.h"
#include "server/work_pool.h"
#include "src/metrics.h"
#include "storage/db.h"

namespace strata {

// The engine options that flags select: --query.timeout, --query.max-samples,
// --query.lookback-delta and the promql-* names of --enable-feature.
promql::EngineOptions EngineOptionsFromConfig(const ServerConfig& config);
// The storage options that flags select (--storage.tsdb.path, --storage.tsdb.retention.time).
StorageOptions StorageOptionsFromConfig(const ServerConfig& config, MetricsRegistry* metrics);

// Not thread-safe: Start and Stop from one thread.
class StrataServer {
 public:
  // `metrics` receives the server's and the storage's metrics and is what /metrics and the
  // self-scrape show; null means DefaultRegistry(). It must outlive the server, and one
  // registry serves one running server at a time.
  explicit StrataServer(ServerConfig config, MetricsRegistry* metrics = nullptr);
  ~StrataServer();  // Stop()
  StrataServer(const StrataServer&) = delete;
  StrataServer& operator=(const StrataServer&) = delete;

  // Starts serving HTTP (health and status at once; /-/ready and /api/v1 answer 503 until
  // storage is open), opens storage (replaying the WAL), then becomes ready and starts the
  // self-scrape. Errors name what failed (address in use, data directory).
  absl::Status Start();
  uint16_t port() const;
  // Stops the self-scrape, stops HTTP (finishing in-flight requests), drains the pools,
  // closes storage (which flushes the whole head and empties the WAL). Idempotent; returns
  // the storage error (the WAL then still holds the head).
  absl::Status Stop();

  Storage* storage() { return storage_.get(); }

 private:
  ServerConfig config_;
  MetricsRegistry* metrics_;
  Readiness readiness_;
  std::unique_ptr<WorkPool> query_pool_;
  std::unique_ptr<WorkPool> write_pool_;
  std::unique_ptr<InlineSlots> query_inline_;
  std::unique_ptr<ApiContext> api_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<SelfScraper> scraper_;
  bool stopped_ = false;
};

}  // namespace strata

#endif  // STRATA_SERVER_STRATA_SERVER_H_
