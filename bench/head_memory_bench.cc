// Head memory per active series. Figures go to bench/RESULTS.md.
//
//   BM_HeadMemory/N/S opens a storage (WAL without fsync, no background flush), creates N
//                     node-exporter-like series (about 580 per host: CPU modes, filesystems,
//                     network and disk devices, memory/vmstat/netstat gauges, collector
//                     durations; each with __name__, instance, job, env, region, team and
//                     0-3 metric-specific labels), appends S samples to each (15 s apart) in
//                     batches of 1,000 series, and reports the growth of the process'
//                     memory divided by N (S = 120 fills each series' open chunk: the most
//                     a series holds between flushes, closed chunks aside):
//                       rss_per_series    resident set (/proc/self/statm) after malloc_trim
//                       heap_per_series   bytes malloc reports in use (mallinfo2)
//
// Run one size at a time for clean figures, e.g.
//   head_memory_bench --benchmark_filter=BM_HeadMemory/1000000/4

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "storage/db.h"

namespace strata {
namespace {

struct Template {
  std::string name;
  std::vector<std::pair<std::string, std::string>> extra;
};

std::vector<Template> HostTemplates() {
  std::vector<Template> t;
  const char* modes[] = {"user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"};
  for (int cpu = 0; cpu < 16; ++cpu) {
    for (const char* m : modes) {
      t.push_back({"node_cpu_seconds_total", {{"cpu", std::to_string(cpu)}, {"mode", m}}});
    }
    for (const char* m : {"user", "nice"}) {
      t.push_back({"node_cpu_guest_seconds_total", {{"cpu", std::to_string(cpu)}, {"mode", m}}});
    }
    t.push_back({"node_softnet_processed_total", {{"cpu", std::to_string(cpu)}}});
    t.push_back({"node_softnet_dropped_total", {{"cpu", std::to_string(cpu)}}});
  }
  const char* mounts[][3] = {{"/dev/sda1", "ext4", "/"},      {"/dev/sda2", "ext4", "/var"},
                             {"/dev/sdb1", "xfs", "/data"},   {"tmpfs", "tmpfs", "/run"},
                             {"tmpfs", "tmpfs", "/run/lock"}, {"/dev/sdc1", "xfs", "/srv"}};
  for (const char* metric :
       {"node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_filesystem_free_bytes",
        "node_filesystem_files", "node_filesystem_files_free", "node_filesystem_readonly",
        "node_filesystem_device_error"}) {
    for (const auto& m : mounts) {
      t.push_back({metric, {{"device", m[0]}, {"fstype", m[1]}, {"mountpoint", m[2]}}});
    }
  }
  for (const char* dir : {"receive", "transmit"}) {
    for (const char* what : {"bytes", "packets", "errs", "drop"}) {
      for (const char* dev : {"eth0", "eth1", "lo", "docker0"}) {
        t.push_back(
            {std::string("node_network_") + dir + "_" + what + "_total", {{"device", dev}}});
      }
    }
  }
  for (const char* metric : {"node_disk_reads_completed_total", "node_disk_writes_completed_total",
                             "node_disk_read_bytes_total", "node_disk_written_bytes_total",
                             "node_disk_io_time_seconds_total", "node_disk_read_time_seconds_total",
                             "node_disk_write_time_seconds_total", "node_disk_io_now"}) {
    for (const char* dev : {"sda", "sdb", "sdc", "nvme0n1"})
      t.push_back({metric, {{"device", dev}}});
  }
  for (int i = 0; i < 50; ++i)
    t.push_back({"node_memory_field" + std::to_string(i) + "_bytes", {}});
  for (int i = 0; i < 40; ++i) t.push_back({"node_vmstat_field" + std::to_string(i), {}});
  for (int i = 0; i < 60; ++i) t.push_back({"node_netstat_Field" + std::to_string(i), {}});
  for (int i = 0; i < 40; ++i) {
    std::string c = "collector" + std::to_string(i);
    t.push_back({"node_scrape_collector_duration_seconds", {{"collector", c}}});
    t.push_back({"node_scrape_collector_success", {{"collector", c}}});
  }
  for (int chip = 0; chip < 4; ++chip) {
    for (int sensor = 0; sensor < 5; ++sensor) {
      t.push_back({"node_hwmon_temp_celsius",
                   {{"chip", "platform_coretemp_" + std::to_string(chip)},
                    {"sensor", "temp" + std::to_string(sensor + 1)}}});
    }
  }
  return t;
}

Labels SeriesLabels(const std::vector<Template>& templates, int64_t i) {
  const int64_t host = i / static_cast<int64_t>(templates.size());
  const Template& t = templates[i % templates.size()];
  std::vector<std::pair<std::string, std::string>> pairs = t.extra;
  pairs.emplace_back("__name__", t.name);
  pairs.emplace_back("instance", "host-" + std::to_string(host) + ".dc1.example.com:9100");
  pairs.emplace_back("job", "node");
  pairs.emplace_back("env", host % 10 == 0 ? "staging" : "prod");
  const char* regions[] = {"eu-west-1", "us-east-1", "ap-south-1"};
  pairs.emplace_back("region", regions[host % 3]);
  pairs.emplace_back("team", "team-" + std::to_string(host % 25));
  return Labels::FromPairs(std::move(pairs));
}

struct Memory {
  int64_t rss = 0;
  int64_t heap = 0;
};

Memory MeasureMemory() {
  malloc_trim(0);
  Memory m;
  long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  m.rss = static_cast<int64_t>(resident) * ::sysconf(_SC_PAGESIZE);
  m.heap = static_cast<int64_t>(mallinfo2().uordblks);
  return m;
}

void BM_HeadMemory(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int samples = static_cast<int>(state.range(1));
  const std::vector<Template> templates = HostTemplates();
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("strata_bench_memory_" + std::to_string(::getpid())))
                        .string();
  for (auto _ : state) {
    std::filesystem::remove_all(dir);
    StorageOptions o;
    o.dir = dir;
    o.wal_sync = false;
    o.flush_interval_ms = 0;
    o.max_sample_age_ms = 0;
    o.retention_ms = 0;
    auto db = Storage::Open(o);
    if (!db.ok()) {
      state.SkipWithError("open failed");
      return;
    }
    Memory before = MeasureMemory();
    constexpr int kBatch = 1000;
    // Four samples per series per batch, as a scrape every 15 s would add them.
    for (int j0 = 0; j0 < samples; j0 += 4) {
      const int per = std::min(4, samples - j0);
      for (int64_t first = 0; first < n; first += kBatch) {
        std::vector<SeriesBatch> batch;
        for (int64_t i = first; i < std::min(n, first + kBatch); ++i) {
          SeriesBatch b{SeriesLabels(templates, i), {}};
          for (int j = j0; j < j0 + per; ++j) {
            // Counters that grow by a varying amount: a few bytes per sample, as real ones.
            b.samples.push_back({1'700'000'000'000 + j * 15000, double(i + j * (i % 97 + 1))});
          }
          batch.push_back(std::move(b));
        }
        auto r = (*db)->Append(batch);
        if (!r.ok() || r->appended != static_cast<int64_t>(batch.size()) * per) {
          state.SkipWithError("append failed");
          return;
        }
      }
    }
    Memory after = MeasureMemory();
    if ((*db)->head().num_series() != n) state.SkipWithError("wrong series count");
    state.counters["rss_per_series"] = double(after.rss - before.rss) / double(n);
    state.counters["heap_per_series"] = double(after.heap - before.heap) / double(n);
    state.counters["series"] = double(n);
    state.counters["samples_per_series"] = samples;
    db->reset();
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_HeadMemory)
    ->Args({100000, 4})
    ->Args({1000000, 4})
    ->Args({1000000, 120})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace strata
