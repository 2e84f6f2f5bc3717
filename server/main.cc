// The `strata` server: flags, logging, data directory, HTTP server, clean shutdown on
// SIGTERM and SIGINT.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "server/data_dir.h"
#include "server/flags.h"
#include "server/http_server.h"
#include "server/logging.h"
#include "server/ops_handlers.h"
#include "server/status_handlers.h"
#include "spdlog/spdlog.h"
#include "src/metrics.h"
#include "src/strings.h"
#include "src/time.h"

namespace strata {
namespace {

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

int Run(int argc, char** argv) {
  FlagParseResult flags = ParseServerFlags(argc, argv);
  if (flags.exit) {
    std::fputs(flags.output.c_str(), flags.exit_code == 0 ? stdout : stderr);
    return flags.exit_code;
  }
  const ServerConfig& config = flags.config;
  if (absl::Status st = SetupLogging(config.log_level, config.log_format); !st.ok()) {
    std::fprintf(stderr, "strata: %s\n", Msg(st).c_str());
    return 2;
  }
  LogEvent(spdlog::level::info, "Starting Strata",
           {{"version", std::string(kStrataVersion)},
            {"listen_address", config.listen_address},
            {"storage_path", config.storage_path},
            {"retention_time", FormatDuration(config.retention_time_ms)},
            {"retention_size_bytes", std::to_string(config.retention_size_bytes)},
            {"query_timeout", FormatDuration(config.query_timeout_ms)},
            {"query_max_concurrency", std::to_string(config.query_max_concurrency)}});
  for (const std::string& f : config.features) {
    if (IsKnownFeature(f)) {
      LogEvent(spdlog::level::info, "Experimental feature enabled", {{"feature", f}});
    } else {
      LogEvent(spdlog::level::warn, "Unknown option for --enable-feature", {{"option", f}});
    }
  }

  auto lock = DataDirLock::Acquire(config.storage_path);
  if (!lock.ok()) {
    LogEvent(spdlog::level::err, "Cannot open the data directory", {{"err", Msg(lock.status())}});
    return 1;
  }

  // Handle SIGTERM and SIGINT on this thread only: block them before any other thread
  // starts, so every thread inherits the mask, and wait for them with sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Readiness readiness;
  Router router;
  RegisterHealthHandlers(router, &readiness);
  RegisterMetricsHandler(router, &DefaultRegistry());
  std::error_code cwd_error;
  RegisterStatusHandlers(
      router, StatusInfo{config, NowMillis(), std::filesystem::current_path(cwd_error).string()});
  // The /api/v1 handlers register here once storage and the query engine are wired in,
  // and a SelfScraper (server/self_scrape.h) appends to storage every
  // --self-scrape.interval.

  HttpServerOptions options;
  options.host = config.listen_host;
  options.port = config.listen_port;
  options.io_threads = config.io_threads;
  options.max_connections = static_cast<size_t>(config.max_connections);
  options.idle_timeout = std::chrono::milliseconds(config.read_timeout_ms);
  HttpServer server(std::move(options), std::move(router));
  if (absl::Status st = server.Start(); !st.ok()) {
    LogEvent(spdlog::level::err, "Cannot start the HTTP server", {{"err", Msg(st)}});
    return 1;
  }
  LogEvent(spdlog::level::info, "Listening",
           {{"address", fmt::format("{}:{}", config.listen_host, server.port())}});
  // Storage sets readiness after WAL replay once it is wired in; nothing to replay yet.
  readiness.SetReady(true);
  LogEvent(spdlog::level::info, "Server is ready to receive web requests.", {});

  int sig = 0;
  sigwait(&signals, &sig);
  LogEvent(spdlog::level::warn, "Received shutdown signal, stopping",
           {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  readiness.SetReady(false);
  server.Stop();
  LogEvent(spdlog::level::info, "See you next time!", {});
  return 0;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) { return strata::Run(argc, argv); }
