#include "server/flags.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "CLI/CLI.hpp"
#include "src/strings.h"
#include "src/time.h"

namespace strata {
namespace {

constexpr int64_t kDefaultRetentionMs = 15LL * 24 * 3600 * 1000;

// A Prometheus duration flag ("2m", "15d"); CLI11 reports the thrown message.
int64_t DurationFlag(std::string_view flag, const std::string& text) {
  auto d = ParseDuration(text);
  if (!d.ok()) {
    throw CLI::ValidationError(std::string(flag),
                               fmt::format("invalid duration \"{}\" (want e.g. 2m, 15d)", text));
  }
  return *d;
}

}  // namespace

bool ServerConfig::FeatureEnabled(std::string_view name) const {
  return std::find(features.begin(), features.end(), name) != features.end();
}

bool IsKnownFeature(std::string_view name) {
  static constexpr std::string_view kKnown[] = {
      "promql-experimental-functions",
      "promql-per-step-stats",
      "promql-delayed-name-removal",
      "exemplar-storage",
      "memory-snapshot-on-shutdown",
      "extra-scrape-metrics",
      "native-histograms",
      "created-timestamp-zero-ingestion",
      "concurrent-rule-eval",
      "delayed-compaction",
      "metadata-wal-records",
      "auto-gomaxprocs",
      "auto-gomemlimit",
      "otlp-deltatocumulative",
  };
  return std::find(std::begin(kKnown), std::end(kKnown), name) != std::end(kKnown);
}

absl::Status SplitListenAddress(std::string_view address, std::string* host, uint16_t* port) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("invalid listen address \"{}\": {}", address, why));
  };
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("missing port");
  std::string_view h = address.substr(0, colon);
  std::string_view p = address.substr(colon + 1);
  if (!h.empty() && h.front() == '[') {
    if (h.back() != ']') return bad("unterminated [ in IPv6 address");
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return bad("IPv6 addresses must be in brackets, as in [::1]:9090");
  }
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || v > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  *host = h.empty() ? "0.0.0.0" : std::string(h);
  *port = static_cast<uint16_t>(v);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseByteSize(std::string_view s) {
  auto bad = [&] {
    return absl::InvalidArgumentError(fmt::format(
        "invalid size \"{}\": want an integer and a unit B, KB, MB, GB, TB, PB or EB", s));
  };
  if (s == "0") return 0;
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0) return bad();
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, n);
  if (ec != std::errc()) return bad();
  std::string_view unit = s.substr(i);
  static constexpr std::string_view kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  auto it = std::find(std::begin(kUnits), std::end(kUnits), unit);
  if (it == std::end(kUnits)) return bad();
  int shift = static_cast<int>(it - std::begin(kUnits)) * 10;
  if (shift > 0 && n > (uint64_t{INT64_MAX} >> shift)) return bad();
  return static_cast<int64_t>(n << shift);
}

std::vector<std::pair<std::string, std::string>> FlagValues(const ServerConfig& c) {
  auto size = [](int64_t bytes) {
    return bytes == 0 ? std::string("0B") : fmt::format("{}B", bytes);
  };
  std::string features;
  for (const std::string& f : c.features) {
    if (!features.empty()) features += ',';
    features += f;
  }
  std::vector<std::pair<std::string, std::string>> out = {
      {"enable-feature", features},
      {"log.format", c.log_format},
      {"log.level", c.log_level},
      {"query.lookback-delta", FormatDuration(c.query_lookback_delta_ms)},
      {"query.max-concurrency", std::to_string(c.query_max_concurrency)},
      {"query.max-samples", std::to_string(c.query_max_samples)},
      {"query.parallelism", std::to_string(c.query_parallelism)},
      {"query.timeout", FormatDuration(c.query_timeout_ms)},
      {"self-scrape.interval", FormatDuration(c.self_scrape_interval_ms)},
      {"storage.tsdb.out-of-order-time-window", FormatDuration(c.out_of_order_window_ms)},
      {"storage.tsdb.path", c.storage_path},
      {"storage.tsdb.retention.size", size(c.retention_size_bytes)},
      {"storage.tsdb.retention.time", FormatDuration(c.retention_time_ms)},
      {"storage.wal-fsync", c.wal_fsync},
      {"web.enable-admin-api", c.enable_admin_api ? "true" : "false"},
      {"web.io-threads", std::to_string(c.io_threads)},
      {"web.listen-address", c.listen_address},
      {"web.max-connections", std::to_string(c.max_connections)},
      {"web.read-timeout", FormatDuration(c.read_timeout_ms)},
  };
  std::sort(out.begin(), out.end());
  return out;
}

FlagParseResult ParseServerFlags(int argc, const char* const* argv) {
  FlagParseResult result;
  ServerConfig& c = result.config;
  CLI::App app("Strata: a Prometheus-compatible time-series database.", "strata");
  app.set_version_flag(
      "--version",
      fmt::format("strata, version {} (Prometheus HTTP API 3.x compatible)", kStrataVersion));
  app.option_defaults()->always_capture_default();

  std::string retention_time, retention_size, query_timeout = "2m", lookback = "5m",
                                              self_scrape = "15s", read_timeout = "5m",
                                              ooo_window = "0s";
  std::vector<std::string> features;

  app.add_option("--web.listen-address", c.listen_address,
                 "Address to listen on for the API, UI and remote write.");
  app.add_option("--web.read-timeout", read_timeout,
                 "Maximum time a connection may stay idle between requests.");
  app.add_option("--web.io-threads", c.io_threads, "Threads serving HTTP connections.")
      ->check(CLI::Range(1, 256));
  app.add_option("--web.max-connections", c.max_connections,
                 "Maximum number of simultaneous connections; 0 means no limit.")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--web.enable-admin-api", c.enable_admin_api,
               "Enable the admin endpoints (delete_series, clean_tombstones, snapshot).");
  app.add_option("--storage.tsdb.path", c.storage_path, "Base path for the data directory.");
  app.add_option("--storage.tsdb.retention.time", retention_time,
                 "How long to keep samples. Default 15d unless a size limit is set.");
  app.add_option("--storage.tsdb.retention.size", retention_size,
                 "Maximum bytes of storage, e.g. 512MB (units B, KB, MB, GB, TB, PB, EB).");
  app.add_option("--storage.tsdb.out-of-order-time-window", ooo_window,
                 "Accept samples older than their series' newest one by at most this much "
                 "(e.g. 5m, for senders with parallel queues such as vmagent); 0s rejects "
                 "them as out of order.");
  app.add_option("--storage.wal-fsync", c.wal_fsync,
                 "When to fsync the write-ahead log: 'segment' when a segment file is closed "
                 "(writes are acknowledged once written to the file: a killed process loses "
                 "nothing, a power loss may lose the last seconds, as with Prometheus); "
                 "'commit' before acknowledging every write (survives power loss; each write "
                 "waits for the disk).")
      ->check(CLI::IsMember({"segment", "commit"}));
  app.add_option("--query.timeout", query_timeout, "Maximum time a query may take.");
  app.add_option("--query.max-samples", c.query_max_samples,
                 "Maximum number of samples a query may load into memory.")
      ->check(CLI::PositiveNumber);
  app.add_option("--query.max-concurrency", c.query_max_concurrency,
                 "Maximum number of queries evaluated at once.")
      ->check(CLI::Range(1, 100000));
  app.add_option("--query.parallelism", c.query_parallelism,
                 "Threads one query may use to read series and apply range functions to "
                 "them; 0 uses one per CPU (at most 8), 1 (the default) keeps each query on "
                 "one thread.")
      ->check(CLI::Range(0, 64));
  app.add_option("--query.lookback-delta", lookback,
                 "How far back a query looks for the latest sample of a series.");
  app.add_option("--log.level", c.log_level, "Only log messages of this level or above.")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log.format", c.log_format, "Log line format.")
      ->check(CLI::IsMember({"logfmt", "json"}));
  app.add_option("--enable-feature", features,
                 "Comma-separated feature names to enable; may be repeated.")
      ->delimiter(',')
      ->take_all();
  app.add_option("--self-scrape.interval", self_scrape,
                 "How often the server stores its own metrics under job=\"strata\"; 0 turns "
                 "it off.");

  std::ostringstream out, err;
  try {
    app.parse(argc, argv);
    c.read_timeout_ms = DurationFlag("--web.read-timeout", read_timeout);
    c.query_timeout_ms = DurationFlag("--query.timeout", query_timeout);
    c.query_lookback_delta_ms = DurationFlag("--query.lookback-delta", lookback);
    c.self_scrape_interval_ms = DurationFlag("--self-scrape.interval", self_scrape);
    c.out_of_order_window_ms = DurationFlag("--storage.tsdb.out-of-order-time-window", ooo_window);
    if (!retention_time.empty()) {
      c.retention_time_ms = DurationFlag("--storage.tsdb.retention.time", retention_time);
    }
    if (!retention_size.empty()) {
      auto size = ParseByteSize(retention_size);
      if (!size.ok()) {
        throw CLI::ValidationError("--storage.tsdb.retention.size",
                                   std::string(size.status().message()));
      }
      c.retention_size_bytes = *size;
    }
    if (c.retention_time_ms == 0 && c.retention_size_bytes == 0) {
      c.retention_time_ms = kDefaultRetentionMs;
    }
    if (absl::Status st = SplitListenAddress(c.listen_address, &c.listen_host, &c.listen_port);
        !st.ok()) {
      throw CLI::ValidationError("--web.listen-address", std::string(st.message()));
    }
    for (std::string& f : features) {
      if (!f.empty() && !c.FeatureEnabled(f)) c.features.push_back(std::move(f));
    }
  } catch (const CLI::ParseError& e) {
    result.exit = true;
    // CLI11 returns 0 for --help and --version and a code per error kind otherwise; one
    // code for every usage error is what scripts want.
    result.exit_code = app.exit(e, out, err) == 0 ? 0 : 2;
    result.output = out.str() + err.str();
  }
  return result;
}

}  // namespace strata
