// Writes the storage benchmarks' node-exporter-like day (bench/node_exporter_data.h, the
// data of compacted_bench's BM_OnDisk) as Prometheus text exposition with millisecond
// timestamps, in files of about 16 MiB, so that whole servers can be fed the same samples through
// their text import (bench/macro/disk.py). Scrape by scrape, hosts interleaved, as a server
// receives them; every float in its shortest round-tripping form.
//
//   node_exporter_text --out DIR [--hosts N] [--noisy 0|1] [--day-start-ms MS]
//
// Prints the number of samples written. The one stale marker per host is left out (the
// text format has no way to say it); everything else is the benchmark's data bit for bit.

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "bench/node_exporter_data.h"

namespace strata::bench {
namespace {

constexpr int kScrapesPerHour = 240;
constexpr int kScrapes = 24 * kScrapesPerHour - 2;  // as BM_OnDisk: the day and no more
// A file ends at the first scrape boundary past this size (the server's body limit is 32 MiB).
constexpr size_t kFileBytes = 16 << 20;

void AppendEscaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
}

// `name{a="b",...}`: the series part of a line.
std::string SeriesText(const Labels& labels) {
  std::string out(labels.Get(kMetricName));
  bool first = true;
  for (const auto& l : labels) {
    if (l.name == kMetricName) continue;
    out += first ? '{' : ',';
    first = false;
    out.append(l.name);
    out += "=\"";
    AppendEscaped(out, l.value);
    out += '"';
  }
  if (!first) out += '}';
  return out;
}

void AppendSample(std::string& out, const std::string& series, Sample s) {
  char buf[64];
  out += series;
  out += ' ';
  auto r = std::to_chars(buf, buf + sizeof buf, s.v);
  out.append(buf, r.ptr);
  out += ' ';
  r = std::to_chars(buf, buf + sizeof buf, s.t);
  out.append(buf, r.ptr);
  out += '\n';
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "node_exporter_text: %s\n"
               "usage: node_exporter_text --out DIR [--hosts N] [--noisy 0|1] "
               "[--day-start-ms MS]\n"
               "  DIR receives part-0000.prom, part-0001.prom, ... in time order; MS must be a "
               "multiple of a day\n",
               why);
  return 2;
}

int Main(int argc, char** argv) {
  std::string out_dir;
  int hosts = 10;
  bool noisy = true;
  constexpr int64_t kDay = 24 * 3600 * 1000;
  Timestamp day_start = 1700000000000 / kDay * kDay;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc) return Usage("every flag needs a value");
    const char* value = argv[++i];
    if (arg == "--out") {
      out_dir = value;
    } else if (arg == "--hosts") {
      hosts = std::atoi(value);
    } else if (arg == "--noisy") {
      noisy = std::atoi(value) != 0;
    } else if (arg == "--day-start-ms") {
      day_start = std::atoll(value);
    } else {
      return Usage("unknown flag");
    }
  }
  if (out_dir.empty()) return Usage("--out is required");
  if (hosts < 1) return Usage("--hosts must be at least 1");
  if (day_start % kDay != 0) return Usage("--day-start-ms is not at midnight UTC");
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Usage(("cannot create the output directory: " + ec.message()).c_str());

  std::vector<std::vector<BenchSeries>> data;
  std::vector<std::vector<std::string>> names(hosts);
  for (int h = 0; h < hosts; ++h) {
    data.push_back(NodeExporterHost(h, kScrapes, noisy, day_start));
    for (const auto& s : data[h]) names[h].push_back(SeriesText(s.labels));
  }
  std::vector<std::vector<size_t>> pos(hosts);
  for (int h = 0; h < hosts; ++h) pos[h].assign(data[h].size(), 0);
  int64_t samples = 0;
  int files = 0;
  std::string text;
  auto write_file = [&]() {
    char file[32];
    std::snprintf(file, sizeof file, "part-%04d.prom", files++);
    const std::string path = out_dir + "/" + file;
    FILE* f = std::fopen(path.c_str(), "wb");
    bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (f != nullptr && std::fclose(f) != 0) ok = false;
    if (!ok) std::fprintf(stderr, "node_exporter_text: cannot write %s\n", path.c_str());
    text.clear();
    return ok;
  };
  for (int k = 0; k < kScrapes; ++k) {
    for (int h = 0; h < hosts; ++h) {
      const Timestamp scrape = data[h][0].samples[k].t;  // series 0 is in every scrape
      for (size_t i = 0; i < data[h].size(); ++i) {
        const auto& s = data[h][i].samples;
        size_t& p = pos[h][i];
        if (p >= s.size() || s[p].t != scrape) continue;
        if (!IsStaleNaN(s[p].v)) {
          AppendSample(text, names[h][i], s[p]);
          ++samples;
        }
        ++p;
      }
    }
    if ((text.size() >= kFileBytes || k + 1 == kScrapes) && !write_file()) return 1;
  }
  std::printf("%lld\n", static_cast<long long>(samples));
  return 0;
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) { return strata::bench::Main(argc, argv); }
