// The `strata` server: flags, logging, the data directory lock, then StrataServer (HTTP,
// storage, query engine); clean shutdown on SIGTERM and SIGINT.
#include <signal.h>

#include <cstdio>
#include <string>

#include "server/data_dir.h"
#include "server/flags.h"
#include "server/logging.h"
#include "server/strata_server.h"
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

  // Serves HTTP at once (/-/ready answers 503), opens storage (WAL replay), then is ready.
  StrataServer server(config);
  if (absl::Status st = server.Start(); !st.ok()) {
    LogEvent(spdlog::level::err, "Cannot start", {{"err", Msg(st)}});
    return 1;
  }
  LogEvent(spdlog::level::info, "Server is ready to receive web requests.", {});

  int sig = 0;
  sigwait(&signals, &sig);
  LogEvent(spdlog::level::warn, "Received shutdown signal, stopping",
           {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  if (absl::Status st = server.Stop(); !st.ok()) {
    LogEvent(spdlog::level::err, "Storage did not close cleanly", {{"err", Msg(st)}});
    return 1;
  }
  LogEvent(spdlog::level::info, "See you next time!", {});
  return 0;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) { return strata::Run(argc, argv); }
