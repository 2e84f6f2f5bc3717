#include "src/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace strata {
namespace {

// Field 22 of /proc/self/stat (1-based) is the start time in clock ticks after boot; the
// fields after the command name, which may contain spaces, start after the last ')'.
std::optional<double> StartTicksAfterBoot(const std::string& stat) {
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(stat.substr(close + 1));
  std::string field;
  // After ')': field 3 (state) is the first; start time is field 22, the 20th token.
  for (int i = 3; i <= 22; ++i) {
    if (!(in >> field)) return std::nullopt;
  }
  char* end = nullptr;
  double v = std::strtod(field.c_str(), &end);
  if (end == field.c_str()) return std::nullopt;
  return v;
}

std::optional<double> BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      if (in >> value) return value;
      return std::nullopt;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return std::nullopt;
}

double CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the descriptor opendir itself holds
}

const char* const kNames[] = {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
};

}  // namespace

std::optional<ProcessStats> ReadProcessStats() {
  ProcessStats s;
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return std::nullopt;
  s.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                  static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;

  std::ifstream statm("/proc/self/statm");
  double pages_virtual = 0, pages_resident = 0;
  if (!(statm >> pages_virtual >> pages_resident)) return std::nullopt;
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  s.virtual_bytes = pages_virtual * page;
  s.resident_bytes = pages_resident * page;

  s.open_fds = CountOpenFds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) s.max_fds = static_cast<double>(limit.rlim_cur);

  std::ifstream stat_file("/proc/self/stat");
  std::stringstream buf;
  buf << stat_file.rdbuf();
  std::optional<double> ticks = StartTicksAfterBoot(buf.str());
  std::optional<double> boot = BootTimeSeconds();
  if (ticks && boot) {
    s.start_time_seconds = *boot + *ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) {
      s.threads = std::strtod(line.c_str() + 8, nullptr);
      break;
    }
  }
  return s;
}

void RegisterProcessMetrics(MetricsRegistry* registry) {
  auto field = [](double ProcessStats::*member) {
    return [member] {
      std::optional<ProcessStats> s = ReadProcessStats();
      return s ? (*s).*member : 0.0;
    };
  };
  registry->AddCallbackCounter(kNames[0], "Total user and system CPU time spent in seconds.",
                               field(&ProcessStats::cpu_seconds));
  registry->AddCallbackGauge(kNames[1], "Resident memory size in bytes.",
                             field(&ProcessStats::resident_bytes));
  registry->AddCallbackGauge(kNames[2], "Virtual memory size in bytes.",
                             field(&ProcessStats::virtual_bytes));
  registry->AddCallbackGauge(kNames[3], "Number of open file descriptors.",
                             field(&ProcessStats::open_fds));
  registry->AddCallbackGauge(kNames[4], "Maximum number of open file descriptors.",
                             field(&ProcessStats::max_fds));
  // The start time does not change: read it once.
  std::optional<ProcessStats> now = ReadProcessStats();
  double start = now ? now->start_time_seconds : 0;
  registry->AddCallbackGauge(kNames[5], "Start time of the process since unix epoch in seconds.",
                             [start] { return start; });
  registry->AddCallbackGauge(kNames[6], "Number of OS threads in the process.",
                             field(&ProcessStats::threads));
}

void UnregisterProcessMetrics(MetricsRegistry* registry) {
  for (const char* name : kNames) registry->RemoveCallback(name);
}

}  // namespace strata
