// strata-loadgen: the requests it encodes decode as valid remote write with the promised
// shape, and what it reports against a real `strata` on loopback is what the server stores.
#include "tools/loadgen.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"
#include "server/remote_write.h"
#include "tests/server/http_test_client.h"

namespace strata::loadgen {
namespace {

using ::strata::testing::TestHttpClient;

std::string Label(const std::vector<LabelView>& labels, std::string_view name) {
  for (const LabelView& l : labels) {
    if (l.name == name) return std::string(l.value);
  }
  return "";
}

std::string Key(std::span<const LabelView> labels) {
  std::string k;
  for (const LabelView& l : labels) {
    k += l.name;
    k += '=';
    k += l.value;
    k += ',';
  }
  return k;
}

TEST(NodeExporterSeries, AboutAThousandDistinctSortedSeriesPerHost) {
  std::vector<SeriesDef> series = NodeExporterSeries(3, "node", 1);
  EXPECT_GE(series.size(), 950u);
  EXPECT_LE(series.size(), 1050u);
  std::set<std::vector<std::pair<std::string, std::string>>> distinct;
  std::set<std::string> names;
  for (const SeriesDef& s : series) {
    EXPECT_TRUE(std::is_sorted(s.labels.begin(), s.labels.end())) << s.labels[0].second;
    distinct.insert(s.labels);
    for (const auto& [n, v] : s.labels) {
      EXPECT_FALSE(v.empty()) << n;
      if (n == "__name__") names.insert(v);
      if (n == "instance") {
        EXPECT_EQ(v, "host-0003:9100");
      }
      if (n == "job") {
        EXPECT_EQ(v, "node");
      }
    }
  }
  EXPECT_EQ(distinct.size(), series.size());
  for (const char* want :
       {"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes",
        "node_network_receive_bytes_total", "node_disk_written_bytes_total", "node_load1",
        "http_request_duration_seconds_bucket", "up"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
}

// Decodes every request of a small load with the server's decoder and checks: every series
// valid, each series on one connection only, timestamps strictly increasing per series and
// one interval apart give or take the jitter, counters never decreasing, histogram buckets
// cumulative, and the totals the load claims.
TEST(BuildLoad, RequestsDecodeToOrderedSeriesWithPlausibleValues) {
  LoadConfig config;
  config.hosts = 3;
  config.steps = 12;
  config.connections = 3;
  config.samples_per_request = 500;
  config.start_ms = 1'700'000'000'000;
  EncodedLoad load = BuildLoad(config, 2);
  const size_t per_host = NodeExporterSeries(0, "node", 1).size();
  EXPECT_EQ(load.series, per_host * 3);
  EXPECT_EQ(load.samples, load.series * 12);
  ASSERT_EQ(load.requests.size(), 3u);

  struct Seen {
    size_t connection;
    std::vector<Sample> samples;
    std::vector<LabelView> labels;
    std::vector<std::string> storage;
  };
  std::map<std::string, Seen> seen;
  WriteRequestDecoder decoder;
  std::string raw;
  uint64_t samples = 0;
  for (size_t c = 0; c < load.requests.size(); ++c) {
    for (const EncodedRequest& r : load.requests[c]) {
      RemoteWriteDecodeResult res = DecodeRemoteWriteBody(r.body, {}, &raw, &decoder);
      ASSERT_TRUE(res.status.ok()) << res.status;
      ASSERT_EQ(decoder.series_count(), r.series);
      EXPECT_LE(r.samples, 500u);
      for (size_t i = 0; i < decoder.series_count(); ++i) {
        RemoteWriteSeries s = decoder.series(i);
        ASSERT_TRUE(s.ok()) << s.error;
        samples += s.samples.size();
        auto [it, inserted] = seen.try_emplace(Key(s.labels));
        Seen& rec = it->second;
        if (inserted) {
          rec.connection = c;
          for (const LabelView& l : s.labels) {
            rec.storage.emplace_back(l.name);
            rec.storage.emplace_back(l.value);
          }
          for (size_t k = 0; k < rec.storage.size(); k += 2) {
            rec.labels.push_back({rec.storage[k], rec.storage[k + 1]});
          }
        }
        EXPECT_EQ(rec.connection, c) << it->first;
        rec.samples.insert(rec.samples.end(), s.samples.begin(), s.samples.end());
      }
    }
  }
  EXPECT_EQ(samples, load.samples);
  EXPECT_EQ(seen.size(), load.series);

  // Histogram buckets per (instance, handler, method, step), to check they are cumulative.
  std::map<std::string, std::map<double, double>> buckets;
  for (const auto& [key, rec] : seen) {
    ASSERT_EQ(rec.samples.size(), 12u) << key;
    for (size_t i = 1; i < rec.samples.size(); ++i) {
      int64_t gap = rec.samples[i].t - rec.samples[i - 1].t;
      EXPECT_GE(gap, config.interval_ms - config.jitter_ms) << key;
      EXPECT_LE(gap, config.interval_ms + config.jitter_ms) << key;
    }
    EXPECT_GE(rec.samples.front().t, config.start_ms);
    EXPECT_LE(rec.samples.back().t, load.max_time_ms);
    std::string name = Label(rec.labels, "__name__");
    if (name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_count")) {
      for (size_t i = 1; i < rec.samples.size(); ++i) {
        EXPECT_GE(rec.samples[i].v, rec.samples[i - 1].v) << key;
      }
    }
    if (name == "http_request_duration_seconds_bucket") {
      std::string le = Label(rec.labels, "le");
      double bound = le == "+Inf" ? INFINITY : std::stod(le);
      for (size_t i = 0; i < rec.samples.size(); ++i) {
        std::string group = Label(rec.labels, "instance") + Label(rec.labels, "handler") +
                            Label(rec.labels, "method") + std::to_string(i);
        buckets[group][bound] = rec.samples[i].v;
      }
    }
  }
  ASSERT_FALSE(buckets.empty());
  bool grew = false;
  for (const auto& [group, by_le] : buckets) {
    double prev = 0;
    for (const auto& [le, v] : by_le) {
      EXPECT_GE(v, prev) << group << " le=" << le;
      prev = v;
    }
    if (prev > 0) grew = true;
  }
  EXPECT_TRUE(grew);
}

// The `strata` server as a child process, stopped by PID when the test ends.
class StrataProcess {
 public:
  explicit StrataProcess(const std::filesystem::path& dir) : log_(dir / "strata.log") {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string data = "--storage.tsdb.path=" + (dir / "data").string();
      FILE* f = std::freopen(log_.c_str(), "w", stderr);
      (void)f;
      ::execl(STRATA_BINARY, STRATA_BINARY, "--web.listen-address=127.0.0.1:0", data.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~StrataProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits until the server is ready and returns its port, or 0.
  uint16_t WaitReady() {
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(log_);
      std::stringstream text;
      text << in.rdbuf();
      std::string s = text.str();
      size_t at = s.find("msg=Listening address=127.0.0.1:");
      if (at != std::string::npos && s.find("Server is ready") != std::string::npos) {
        return static_cast<uint16_t>(std::stoi(s.substr(at + 32)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
  }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

// Runs strata-loadgen, returning its exit code and its "key value" report.
int RunLoadgen(const std::string& args, std::map<std::string, std::string>* report) {
  std::string cmd = std::string(LOADGEN_BINARY) + " --quiet " + args;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char line[4096];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    size_t sp = s.find(' ');
    if (sp != std::string::npos) (*report)[s.substr(0, sp)] = s.substr(sp + 1);
  }
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The scalar result of an instant query, "" when there is none.
std::string QueryValue(uint16_t port, const std::string& query, const std::string& time) {
  std::string q;
  for (unsigned char c : query) {
    if (std::isalnum(c) || c == '_' || c == '.') {
      q += static_cast<char>(c);
    } else {
      q += fmt::format("%{:02X}", c);
    }
  }
  TestHttpClient client(port);
  auto resp = client.Get("/api/v1/query?query=" + q + "&time=" + time);
  if (!resp || resp->status != 200) return "error";
  // {"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[T,"V"]}]}}
  size_t at = resp->body.find("\"value\":[");
  if (at == std::string::npos) return "";
  size_t q1 = resp->body.find('"', resp->body.find(',', at));
  size_t q2 = resp->body.find('"', q1 + 1);
  return resp->body.substr(q1 + 1, q2 - q1 - 1);
}

// The number of samples in the matrix answer of an instant query for a range selector, or
// -1 when the query fails. Counted in the JSON: each series' "values":[[t,"v"],...] holds
// one more sample than it has "],[" separators (loadgen label values hold no brackets).
int64_t MatrixSamples(uint16_t port, const std::string& query, const std::string& time) {
  std::string q;
  for (unsigned char c : query) {
    q += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : fmt::format("%{:02X}", c);
  }
  TestHttpClient client(port);
  auto resp = client.Get("/api/v1/query?query=" + q + "&time=" + time);
  if (!resp || resp->status != 200) return -1;
  auto count = [&](std::string_view needle) {
    int64_t n = 0;
    for (size_t at = resp->body.find(needle); at != std::string::npos;
         at = resp->body.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  return count("\"values\":[[") + count("],[");
}

class LoadgenAgainstStrata : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("strata_loadgen_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LoadgenAgainstStrata, ReportedCountsMatchWhatTheServerStores) {
  StrataProcess server(dir_);
  uint16_t port = server.WaitReady();
  ASSERT_NE(port, 0) << server.Log();
  std::map<std::string, std::string> report;
  int rc = RunLoadgen(fmt::format("--url http://127.0.0.1:{}/api/v1/write --hosts 3 --steps 8 "
                                  "--connections 5 --samples-per-request 700 --job loadgen_test",
                                  port),
                      &report);
  ASSERT_EQ(rc, 0) << report["first_error"];
  const size_t per_host = NodeExporterSeries(0, "loadgen_test", 1).size();
  EXPECT_EQ(report["series"], std::to_string(3 * per_host));
  EXPECT_EQ(report["samples_sent"], std::to_string(3 * per_host * 8));
  EXPECT_EQ(report["samples_acked"], report["samples_sent"]);
  EXPECT_EQ(report["samples_rejected"], "0");
  EXPECT_EQ(report["rejected_requests_by_code"], "-");

  // Query at the last sample's time, over a window that covers the whole load.
  int64_t last_ms = std::stoll(report["last_sample_ms"]);
  int64_t first_ms = std::stoll(report["first_sample_ms"]);
  std::string at = fmt::format("{}.{:03d}", last_ms / 1000, last_ms % 1000);
  int64_t window_s = (last_ms - first_ms) / 1000 + 60;
  // Every stored sample, read raw: count_over_time over all metrics would drop the metric
  // names and refuse the colliding label sets, as Prometheus does.
  EXPECT_EQ(std::to_string(
                MatrixSamples(port, fmt::format("{{job=\"loadgen_test\"}}[{}s]", window_s), at)),
            report["samples_acked"]);
  EXPECT_EQ(QueryValue(port, "count({job=\"loadgen_test\"})", at), report["series"]);
  EXPECT_EQ(QueryValue(port, "count(count by (instance) (up{job=\"loadgen_test\"}))", at), "3");
}

TEST_F(LoadgenAgainstStrata, CountsRejectedRequestsByStatusCode) {
  StrataProcess server(dir_);
  uint16_t port = server.WaitReady();
  ASSERT_NE(port, 0) << server.Log();
  // A path the server does not serve: every request is answered 404.
  std::map<std::string, std::string> report;
  int rc = RunLoadgen(
      fmt::format("--url http://127.0.0.1:{}/no/such/path --hosts 1 --steps 3 --connections 2 "
                  "--samples-per-request 1000",
                  port),
      &report);
  EXPECT_EQ(rc, 1);
  const size_t per_host = NodeExporterSeries(0, "node", 1).size();
  EXPECT_EQ(report["samples_sent"], std::to_string(3 * per_host));
  EXPECT_EQ(report["samples_acked"], "0");
  EXPECT_EQ(report["samples_rejected"], report["samples_sent"]);
  EXPECT_EQ(report["rejected_requests_by_code"], fmt::format("404:{}", report["requests"]));
  EXPECT_EQ(QueryValue(port, "count({job=\"node\"})", report["last_sample_ms"].substr(0, 10)), "");
}

}  // namespace
}  // namespace strata::loadgen
