#include "server/strata_server.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "server/admin_handlers.h"
#include "server/flags.h"
#include "server/logging.h"
#include "server/remote_read.h"
#include "server/status_handlers.h"
#include "spdlog/spdlog.h"
#include "src/process_metrics.h"
#include "src/status.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata {

promql::EngineOptions EngineOptionsFromConfig(const ServerConfig& config) {
  promql::EngineOptions o;
  o.lookback_ms = config.query_lookback_delta_ms;
  o.max_samples = config.query_max_samples;
  o.parallelism = config.query_parallelism;
  o.timeout = config.query_timeout_ms > 0 ? absl::Milliseconds(config.query_timeout_ms)
                                          : absl::InfiniteDuration();
  o.experimental_functions = config.FeatureEnabled("promql-experimental-functions");
  o.delayed_name_removal = config.FeatureEnabled("promql-delayed-name-removal");
  o.extended_range_selectors = config.FeatureEnabled("promql-extended-range-selectors");
  o.binop_fill_modifiers = config.FeatureEnabled("promql-binop-fill-modifiers");
  return o;
}

StorageOptions StorageOptionsFromConfig(const ServerConfig& config, MetricsRegistry* metrics) {
  StorageOptions o;
  o.dir = config.storage_path;
  // Prometheus keeps 15 d unless a time is given; a size limit alone turns the time limit
  // off. Both limits may be set; whichever is reached first drops data.
  if (config.retention_time_ms > 0) {
    o.retention_ms = config.retention_time_ms;
  } else if (config.retention_size_bytes > 0) {
    o.retention_ms = 0;
  }
  o.retention_bytes = config.retention_size_bytes;
  o.out_of_order_window_ms = config.out_of_order_window_ms;
  o.wal_sync = config.wal_fsync == "commit";
  o.metrics = metrics;
  return o;
}

StrataServer::StrataServer(ServerConfig config, MetricsRegistry* metrics)
    : config_(std::move(config)), metrics_(metrics != nullptr ? metrics : &DefaultRegistry()) {}

StrataServer::~StrataServer() { Stop().IgnoreError(); }

uint16_t StrataServer::port() const { return http_ ? http_->port() : 0; }

absl::Status StrataServer::Start() {
  int query_threads = std::max(1, config_.query_max_concurrency);
  query_pool_ = std::make_unique<WorkPool>(query_threads, static_cast<size_t>(query_threads) * 4);
  // Appends wait for the WAL's group commit; a few threads keep several in one commit.
  write_pool_ = std::make_unique<WorkPool>(std::max(4, config_.io_threads * 2), 256);
  api_ = std::make_unique<ApiContext>();
  api_->engine_options = EngineOptionsFromConfig(config_);
  api_->query_pool = query_pool_.get();
  // All I/O threads but one may run light queries themselves (none with one I/O thread).
  query_inline_ = std::make_unique<InlineSlots>(std::max(0, config_.io_threads - 1));
  api_->query_inline = query_inline_.get();
  api_->write_pool = write_pool_.get();
  api_->queries_canceled = metrics_->GetCounter(
      "strata_queries_canceled_total",
      "API requests (queries, label and series lookups) stopped because their client went "
      "away while they were queued or evaluating.");

  RegisterProcessMetrics(metrics_);
  metrics_
      ->GaugeFamily("strata_build_info",
                    "A metric with a constant '1' value labeled by Strata's version and the "
                    "Prometheus API version it implements.",
                    {"version", "prometheus_api_version"})
      ->With({kStrataVersion, kPrometheusCompatibleVersion})
      ->Set(1);

  Router router;
  RegisterHealthHandlers(router, &readiness_);
  RegisterMetricsHandler(router, metrics_);
  std::error_code cwd_error;
  RegisterStatusHandlers(
      router, StatusInfo{config_, NowMillis(), std::filesystem::current_path(cwd_error).string()});
  RegisterApiMetrics(metrics_, api_.get());
  RegisterApiHandlers(router, api_.get());
  RegisterRemoteReadHandler(router, api_.get());
  RegisterAdminHandlers(router, api_.get(), config_.enable_admin_api);

  HttpServerOptions options;
  options.host = config_.listen_host;
  options.port = config_.listen_port;
  options.io_threads = config_.io_threads;
  options.max_connections = static_cast<size_t>(config_.max_connections);
  options.idle_timeout = std::chrono::milliseconds(config_.read_timeout_ms);
  options.metrics = metrics_;
  http_ = std::make_unique<HttpServer>(std::move(options), std::move(router));
  STRATA_RETURN_IF_ERROR(http_->Start());
  LogEvent(spdlog::level::info, "Listening",
           {{"address", fmt::format("{}:{}", config_.listen_host, http_->port())}});

  LogEvent(spdlog::level::info, "Opening storage", {{"path", config_.storage_path}});
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      Storage::Open(StorageOptionsFromConfig(config_, metrics_));
  if (!storage.ok()) {
    http_->Stop();
    return storage.status();
  }
  storage_ = std::move(*storage);
  StorageStats stats = storage_->stats();
  LogEvent(spdlog::level::info, "Storage opened",
           {{"head_series", std::to_string(stats.head_series)},
            {"wal_replayed_records", std::to_string(stats.wal_replayed_records)},
            {"wal_was_truncated", stats.wal_was_truncated ? "true" : "false"}});
  api_->storage.store(storage_.get(), std::memory_order_release);
  readiness_.SetReady(true);

  if (config_.self_scrape_interval_ms > 0) {
    Storage* db = storage_.get();
    scraper_ = std::make_unique<SelfScraper>(
        metrics_, fmt::format("{}:{}", config_.listen_host, http_->port()),
        config_.self_scrape_interval_ms, [db](Timestamp t, std::vector<GatheredSample> samples) {
          std::vector<SeriesBatch> batch;
          batch.reserve(samples.size());
          for (GatheredSample& s : samples) {
            batch.push_back(SeriesBatch{std::move(s.labels), {Sample{t, s.value}}});
          }
          absl::StatusOr<AppendResult> r = db->Append(batch);
          if (!r.ok()) {
            LogEvent(spdlog::level::warn, "Self-scrape append failed",
                     {{"err", std::string(r.status().ToString())}});
          }
        });
    scraper_->Start();
  }
  return absl::OkStatus();
}

absl::Status StrataServer::Stop() {
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  readiness_.SetReady(false);
  if (scraper_) scraper_->Stop();
  if (http_) http_->Stop();
  UnregisterProcessMetrics(metrics_);
  // Requests handed to the pools finish before storage goes away.
  if (query_pool_) query_pool_->Shutdown();
  if (write_pool_) write_pool_->Shutdown();
  if (api_) {
    api_->storage.store(nullptr, std::memory_order_release);
    api_->series_refs.Clear();  // let go of the head's series before it closes
  }
  absl::Status result;
  if (storage_) {
    // Close flushes the whole head to RocksDB and empties the WAL (flush_on_close); on a
    // failure the WAL keeps everything for the next start.
    LogEvent(spdlog::level::info, "Flushing the head and closing storage", {});
    if (absl::Status st = storage_->Close(); !st.ok()) {
      LogEvent(spdlog::level::err, "Closing storage failed", {{"err", st.ToString()}});
      result.Update(st);
    }
    storage_.reset();
  }
  return result;
}

}  // namespace strata
