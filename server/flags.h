// Command-line flags of the `strata` server, with Prometheus' names where Prometheus has the
// flag (--web.listen-address, --storage.tsdb.path, --query.timeout, ...).
#ifndef STRATA_SERVER_FLAGS_H_
#define STRATA_SERVER_FLAGS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strata {

inline constexpr std::string_view kStrataVersion = "0.1.0";

struct ServerConfig {
  // --web.listen-address, split into host and port ("" host: every interface).
  std::string listen_address = "0.0.0.0:9090";
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 9090;
  int64_t read_timeout_ms = 5 * 60 * 1000;  // --web.read-timeout: idle connection limit
  int io_threads = 2;                       // --web.io-threads (Strata's own)
  int max_connections = 512;                // --web.max-connections; 0: no limit
  bool enable_admin_api = false;            // --web.enable-admin-api

  std::string storage_path = "data/";  // --storage.tsdb.path
  // --storage.tsdb.retention.time; 0 with no size limit means the default, 15 d.
  int64_t retention_time_ms = 0;
  int64_t retention_size_bytes = 0;  // --storage.tsdb.retention.size; 0: no limit
  // --storage.tsdb.out-of-order-time-window; 0: out-of-order samples are rejected.
  int64_t out_of_order_window_ms = 0;
  // --storage.wal-fsync (Strata's own): "segment" acknowledges writes once the WAL's write()
  // is done and fsyncs when a segment is closed (a killed process loses nothing; a power loss
  // may lose the last seconds, as with Prometheus); "commit" also fsyncs every group commit
  // before acknowledging it.
  std::string wal_fsync = "segment";

  int64_t query_timeout_ms = 2 * 60 * 1000;         // --query.timeout
  int64_t query_max_samples = 50'000'000;           // --query.max-samples
  int query_max_concurrency = 20;                   // --query.max-concurrency
  int query_parallelism = 1;                        // --query.parallelism; 0: one per CPU
  int64_t query_lookback_delta_ms = 5 * 60 * 1000;  // --query.lookback-delta

  std::string log_level = "info";     // --log.level: debug, info, warn, error
  std::string log_format = "logfmt";  // --log.format: logfmt, json
  // --enable-feature, repeatable and comma-separated, in the order given.
  std::vector<std::string> features;
  int64_t self_scrape_interval_ms = 15'000;  // --self-scrape.interval; 0 turns it off

  bool FeatureEnabled(std::string_view name) const;
};

// What parsing the command line decided.
struct FlagParseResult {
  ServerConfig config;
  // True when the program should exit at once with `exit_code` after printing `output`
  // (--help and --version to stdout with code 0; errors to stderr with code 2).
  bool exit = false;
  int exit_code = 0;
  std::string output;
};

FlagParseResult ParseServerFlags(int argc, const char* const* argv);

// Every flag and its value as text, sorted by name, without the leading "--", as
// /api/v1/status/flags reports them ("query.timeout": "2m", "web.enable-admin-api": "false").
std::vector<std::pair<std::string, std::string>> FlagValues(const ServerConfig& config);

// "host:port", ":port" (every interface) or "[v6addr]:port".
absl::Status SplitListenAddress(std::string_view address, std::string* host, uint16_t* port);

// A byte size as Prometheus takes it: an integer with a unit B, KB, MB, GB, TB, PB or EB
// (powers of 1024), e.g. "512MB"; "0" alone is zero.
absl::StatusOr<int64_t> ParseByteSize(std::string_view s);

// The feature names Prometheus knows for --enable-feature; others are accepted with a
// warning, as Prometheus does.
bool IsKnownFeature(std::string_view name);

}  // namespace strata

#endif  // STRATA_SERVER_FLAGS_H_
