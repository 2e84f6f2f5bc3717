// strata-loadgen: sends a node-exporter-like remote-write load to a Prometheus-compatible
// receiver and reports what was accepted. See tools/loadgen.h.
//
// The report goes to stdout as "key value" lines (easy to read from scripts); progress goes
// to stderr. Exit code 0 when every sample was acknowledged, 1 otherwise, 2 on bad flags.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "CLI/CLI.hpp"
#include "fmt/format.h"
#include "tools/loadgen.h"

namespace strata::loadgen {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Run(int argc, char** argv) {
  LoadConfig config;
  SendTarget target;
  std::string url = "http://127.0.0.1:9090/api/v1/write";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool quiet = false;
  int64_t start_ms = -1;

  CLI::App app(
      "strata-loadgen: a remote write 1.0 load of node-exporter-like series (about 1,000 per "
      "host), encoded before timing starts and sent over keep-alive HTTP/1.1 connections.",
      "strata-loadgen");
  app.add_option("--url", url, "Remote write endpoint (http only)")->capture_default_str();
  app.add_option("--hosts", config.hosts, "Simulated hosts (instance label values)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--steps", config.steps, "Scrapes per series (samples per series)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  app.add_option("--interval-ms", config.interval_ms, "Scrape interval in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  app.add_option("--jitter-ms", config.jitter_ms,
                 "Each scrape's timestamp is up to this much late (less than the interval)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--start-ms", start_ms,
                 "First scrape time in Unix milliseconds (default: now minus steps * interval, "
                 "so the last scrape is about now)");
  app.add_option("--connections", config.connections, "Concurrent connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--samples-per-request", config.samples_per_request,
                 "Samples per remote write request (Prometheus sends up to 2000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("--job", config.job, "The job label")->capture_default_str();
  app.add_option("--seed", config.seed, "Seed for values and label choices")->capture_default_str();
  app.add_option("--encode-threads", threads, "Threads that encode the load before sending")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_flag("--quiet", quiet, "No progress on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (config.jitter_ms >= config.interval_ms) {
    std::fprintf(stderr, "strata-loadgen: --jitter-ms must be less than --interval-ms\n");
    return 2;
  }
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    std::fprintf(stderr, "strata-loadgen: --url must start with http://\n");
    return 2;
  }
  {
    std::string rest = url.substr(kScheme.size());
    size_t slash = rest.find('/');
    target.path = slash == std::string::npos ? "/" : rest.substr(slash);
    std::string hostport = rest.substr(0, slash);
    size_t colon = hostport.rfind(':');
    target.host = hostport.substr(0, colon);
    int port = colon == std::string::npos ? 80 : std::atoi(hostport.c_str() + colon + 1);
    if (target.host.empty() || port <= 0 || port > 65535) {
      std::fprintf(stderr, "strata-loadgen: bad --url %s\n", url.c_str());
      return 2;
    }
    if (target.host.front() == '[' && target.host.back() == ']') {
      target.host = target.host.substr(1, target.host.size() - 2);
    }
    target.port = static_cast<uint16_t>(port);
  }
  config.start_ms = start_ms >= 0 ? start_ms : NowMs() - config.steps * config.interval_ms;
  signal(SIGPIPE, SIG_IGN);

  auto encode_start = std::chrono::steady_clock::now();
  const uint64_t expected = NodeExporterSeries(0, config.job, config.seed).size() *
                            static_cast<uint64_t>(config.hosts) *
                            static_cast<uint64_t>(config.steps);
  EncodedLoad load = BuildLoad(config, threads, [&](uint64_t done) {
    if (!quiet) {
      std::fprintf(stderr, "\rencoding: %llu / %llu samples", static_cast<unsigned long long>(done),
                   static_cast<unsigned long long>(expected));
    }
  });
  double encode_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - encode_start).count();
  size_t requests = 0;
  for (const auto& c : load.requests) requests += c.size();
  if (!quiet) {
    std::fprintf(stderr,
                 "\nencoded %zu series, %llu samples in %zu requests (%.1f MB protobuf, %.1f MB "
                 "snappy) in %.1f s; sending over %d connections\n",
                 load.series, static_cast<unsigned long long>(load.samples), requests,
                 static_cast<double>(load.raw_bytes) / 1e6,
                 static_cast<double>(load.compressed_bytes) / 1e6, encode_seconds,
                 config.connections);
  }

  SendProgress progress;
  std::atomic<bool> done{false};
  std::thread reporter([&] {
    if (quiet) return;
    auto t0 = std::chrono::steady_clock::now();
    uint64_t last = 0;
    auto last_t = t0;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto now = std::chrono::steady_clock::now();
      if (now - last_t < std::chrono::seconds(1) && !done.load()) continue;
      uint64_t acked = progress.samples_acked.load();
      double dt = std::chrono::duration<double>(now - last_t).count();
      std::fprintf(stderr,
                   "%6.1fs  sent %llu / %llu (%.0f%%)  acked %llu  %.0f samples/s  failed "
                   "requests %llu\n",
                   std::chrono::duration<double>(now - t0).count(),
                   static_cast<unsigned long long>(progress.samples_sent.load()),
                   static_cast<unsigned long long>(load.samples),
                   load.samples ? 100.0 * static_cast<double>(progress.samples_sent.load()) /
                                      static_cast<double>(load.samples)
                                : 100.0,
                   static_cast<unsigned long long>(acked), static_cast<double>(acked - last) / dt,
                   static_cast<unsigned long long>(progress.requests_failed.load()));
      last = acked;
      last_t = now;
    }
  });
  SendStats stats = SendLoad(load, target, &progress);
  done = true;
  reporter.join();

  std::string codes;
  for (auto [code, n] : stats.rejected_requests_by_code) {
    codes += fmt::format("{}{}:{}", codes.empty() ? "" : ",", code, n);
  }
  std::printf("%s",
              fmt::format("series {}\n"
                          "samples_sent {}\n"
                          "samples_acked {}\n"
                          "samples_rejected {}\n"
                          "samples_failed {}\n"
                          "requests {}\n"
                          "rejected_requests_by_code {}\n"
                          "wall_seconds {:.3f}\n"
                          "samples_per_second {:.0f}\n"
                          "encode_seconds {:.3f}\n"
                          "compressed_bytes {}\n"
                          "first_sample_ms {}\n"
                          "last_sample_ms {}\n",
                          load.series, stats.samples_sent, stats.samples_acked,
                          stats.samples_rejected, stats.samples_failed, stats.requests,
                          codes.empty() ? "-" : codes, stats.wall_seconds,
                          stats.wall_seconds > 0
                              ? static_cast<double>(stats.samples_acked) / stats.wall_seconds
                              : 0.0,
                          encode_seconds, load.compressed_bytes, load.min_time_ms, load.max_time_ms)
                  .c_str());
  if (!stats.first_error.empty()) {
    std::printf("first_error %s\n", stats.first_error.c_str());
  }
  std::fflush(stdout);
  return stats.samples_acked == stats.samples_sent && stats.samples_sent == load.samples ? 0 : 1;
}

}  // namespace
}  // namespace strata::loadgen

int main(int argc, char** argv) { return strata::loadgen::Run(argc, argv); }
