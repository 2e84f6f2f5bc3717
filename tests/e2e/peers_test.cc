// End-to-end tests of the real `strata` binary against real peers, all started once for the
// whole binary (PeersEnvironment):
//
//   prometheus-node-exporter <- prometheus (1 s scrapes of itself and both exporters)
//   prometheus-node-exporter "node-gone"   `-- remote_write --> strata "prom"
//     (stopped half way: its series end with stale markers)
//   prometheus "reader" --remote_read--> strata "prom"
//   prometheus-node-exporter <- vmagent --remoteWrite--> strata "vm" and victoria-metrics
//
// After about 85 s of data:
// - PrometheusE2e: Grafana-style PromQL (instant and range) and the series / labels / label
//   values endpoints give the same answers from Strata as from the Prometheus that wrote the
//   data, over a window both hold.
// - GrafanaReplay: the requests Grafana's Prometheus data source makes, against the real
//   binary holding real data, with every field Grafana reads checked, types included.
// - VmagentE2e: what vmagent sent arrives in Strata with the same raw samples VictoriaMetrics
//   stored.
//
// The peer is Prometheus 2.42 while Strata implements 3.x semantics. Differences that are by
// design and that the queries here therefore avoid:
// - Range selectors (and subquery ranges) are left-open in 3.x, `(t-range, t]`, closed in 2.x,
//   `[t-range, t]`. Evaluation times sit at a millisecond phase that no scrape uses (read from
//   the raw samples first), so no sample ever lies on a window's left edge. Subqueries evaluate
//   their inner expression at multiples of the subquery step (phase 0), so the inner range
//   selectors carry an `offset` that moves their edges to that phase as well.
// - topk/bottomk/sort order equal values arbitrarily: only queried where values differ.
// - atan2 keeps the metric name in 2.42 (fixed in 2.46, prometheus#12595): only queried under
//   an aggregation.
// - 3.x renamed holt_winters to double_exponential_smoothing (behind a feature flag): not
//   queried.
// - 3.x sums with Kahan compensation (sum, avg, *_over_time), 2.42 does not, and Go's math
//   functions (atan2, exp, ln) can be an ulp off glibc's: float results are compared with a
//   relative tolerance of 1e-9, exact text only where no arithmetic happens. Where values
//   cancel (stddev, stdvar of equal values) the rounding residue near 0 differs in every
//   digit: those queries also accept an absolute difference far below the data's resolution.
// - Prometheus 2.42 answers label names and values with match[] from its head index without
//   looking at sample times (see SeriesLabelsAndLabelValuesAgree), and serves label values by
//   GET only (Strata also takes a form POST there).
#include "tests/e2e/peers.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "tests/e2e/result_compare.h"

namespace strata::e2e {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr const char* kNodeExporter = "/usr/bin/prometheus-node-exporter";
constexpr const char* kVictoriaMetrics = "/usr/bin/victoria-metrics";
constexpr const char* kVmagent = "/usr/bin/vmagent";

// How long the peers collect data before the tests compare: the queries reach back at most
// 71 s before the window's end, which lies 10 s before the tests start.
constexpr int kDataSeconds = 85;
// When the "node-gone" exporter stops: inside the comparison window.
constexpr int kGoneSeconds = 55;

std::string SecondsText(int64_t ms) { return fmt::format("{:.3f}", ms / 1000.0); }

class PeersEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override {
    StopAll();
    // Strata exits cleanly on SIGTERM (under the sanitizers: without a leak or error report).
    for (const auto& p : peers_) {
      if (p->name().starts_with("strata") && p->exit_status() != 0) {
        ADD_FAILURE() << p->name() << " did not exit with 0 on SIGTERM\n" << p->LogTail();
      }
    }
    // Keep the logs and data of a failed run.
    if (::testing::UnitTest::GetInstance()->Passed()) {
      std::filesystem::remove_all(dir);
    } else {
      std::printf("peer logs and data kept in %s\n", dir.c_str());
    }
  }

  void StopAll() {
    // Writers first, then what they write to.
    for (auto it = peers_.rbegin(); it != peers_.rend(); ++it) (*it)->Stop();
  }

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  uint16_t strata_prom = 0, strata_vm = 0, prometheus = 0, node_exporter = 0, vm = 0, vmagent = 0,
           node_exporter_gone = 0, prometheus_reader = 0;
  int64_t data_start_ms = 0;  // when Prometheus was ready (no sample is older)
  int64_t gone_ms = 0;        // when the "node-gone" exporter was stopped
  std::filesystem::path dir;

  // The logs of every peer, for a failure message.
  std::string Logs(size_t bytes = 1500) const {
    std::string out;
    for (const auto& p : peers_) out += p->LogTail(bytes) + "\n";
    return out;
  }

 private:
  PeerProcess* Add(std::string name, std::string binary, std::vector<std::string> args) {
    peers_.push_back(std::make_unique<PeerProcess>(name, std::move(binary), std::move(args),
                                                   dir / (name + ".log")));
    return peers_.back().get();
  }
  bool StartAndWait(PeerProcess* p, uint16_t port, std::string_view path) {
    std::string error;
    if (!p->Start(&error) || !WaitForHttpOk(port, path, *p, 60, &error)) {
      error_ = error;
      return false;
    }
    return true;
  }

  std::vector<std::unique_ptr<PeerProcess>> peers_;
  std::string error_;
};

// Registered before main() runs; gtest owns it and calls TearDown even when tests fail.
PeersEnvironment* const g_env = [] {
  auto* env = new PeersEnvironment();
  ::testing::AddGlobalTestEnvironment(env);
  return env;
}();

void PeersEnvironment::SetUp() {
  dir = std::filesystem::temp_directory_path() / fmt::format("strata_e2e_{}", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  strata_prom = FreePort();
  strata_vm = FreePort();
  prometheus = FreePort();
  node_exporter = FreePort();
  node_exporter_gone = FreePort();
  prometheus_reader = FreePort();
  vm = FreePort();
  vmagent = FreePort();

  auto strata = [&](const std::string& name, uint16_t port, std::vector<std::string> more) {
    std::vector<std::string> args = {fmt::format("--web.listen-address=127.0.0.1:{}", port),
                                     "--storage.tsdb.path=" + (dir / name).string(),
                                     "--self-scrape.interval=0"};
    args.insert(args.end(), more.begin(), more.end());
    return Add(name, STRATA_BINARY, args);
  };
  PeerProcess* s1 = strata("strata-prom", strata_prom, {});
  // vmagent's parallel senders deliver blocks of consecutive scrapes out of order: the
  // out-of-order window takes the late ones (without it they are rejected, and vmagent
  // drops the block).
  PeerProcess* s2 = strata("strata-vm", strata_vm, {"--storage.tsdb.out-of-order-time-window=5m"});
  // Collectors that are cheap and stable in a container (no filesystem, disk or hwmon scans).
  PeerProcess* ne = Add("node-exporter", kNodeExporter,
                        {fmt::format("--web.listen-address=127.0.0.1:{}", node_exporter),
                         "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo",
                         "--collector.loadavg", "--collector.netdev", "--collector.stat",
                         "--collector.vmstat", "--collector.uname"});
  // A second exporter, job "node-gone", stopped while the data is collected: its series end
  // with Prometheus' stale markers inside the comparison window.
  PeerProcess* gone = Add("node-exporter-gone", kNodeExporter,
                          {fmt::format("--web.listen-address=127.0.0.1:{}", node_exporter_gone),
                           "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo",
                           "--collector.loadavg"});
  PeerProcess* victoria = Add("victoria-metrics", kVictoriaMetrics,
                              {fmt::format("-httpListenAddr=127.0.0.1:{}", vm),
                               "-storageDataPath=" + (dir / "victoria-metrics").string(),
                               "-retentionPeriod=1", "-search.latencyOffset=1s"});
  if (!StartAndWait(s1, strata_prom, "/-/ready") || !StartAndWait(s2, strata_vm, "/-/ready") ||
      !StartAndWait(ne, node_exporter, "/metrics") ||
      !StartAndWait(gone, node_exporter_gone, "/metrics") ||
      !StartAndWait(victoria, vm, "/health")) {
    return;
  }

  std::filesystem::path prom_yml = dir / "prometheus.yml";
  std::ofstream(prom_yml) << fmt::format(
      "global:\n"
      "  scrape_interval: 1s\n"
      // The default step of a subquery written without one; Strata's is 1m too.
      "  evaluation_interval: 1m\n"
      "scrape_configs:\n"
      "  - job_name: prometheus\n"
      "    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n"
      "  - job_name: node\n"
      "    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n"
      "  - job_name: node-gone\n"
      "    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n"
      "remote_write:\n"
      "  - url: http://127.0.0.1:{}/api/v1/write\n"
      "    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}\n"
      "    metadata_config: {{send: true, send_interval: 2s}}\n",
      prometheus, node_exporter, node_exporter_gone, strata_prom);
  PeerProcess* prom = Add(
      "prometheus", kPrometheus,
      {"--config.file=" + prom_yml.string(), "--storage.tsdb.path=" + (dir / "prometheus").string(),
       fmt::format("--web.listen-address=127.0.0.1:{}", prometheus)});

  // A second Prometheus that scrapes nothing and reads everything from Strata (remote_read).
  std::filesystem::path reader_yml = dir / "prometheus-reader.yml";
  std::ofstream(reader_yml) << fmt::format(
      "remote_read:\n"
      "  - url: http://127.0.0.1:{}/api/v1/read\n"
      "    read_recent: true\n",
      strata_prom);
  PeerProcess* reader = Add("prometheus-reader", kPrometheus,
                            {"--config.file=" + reader_yml.string(),
                             "--storage.tsdb.path=" + (dir / "prometheus-reader").string(),
                             fmt::format("--web.listen-address=127.0.0.1:{}", prometheus_reader)});

  std::filesystem::path vma_yml = dir / "vmagent.yml";
  std::ofstream(vma_yml) << fmt::format(
      "global:\n"
      "  scrape_interval: 1s\n"
      "scrape_configs:\n"
      "  - job_name: vmagent-node\n"
      "    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
      node_exporter);
  PeerProcess* agent =
      Add("vmagent", kVmagent,
          {fmt::format("-httpListenAddr=127.0.0.1:{}", vmagent),
           "-promscrape.config=" + vma_yml.string(),
           fmt::format("-remoteWrite.url=http://127.0.0.1:{}/api/v1/write", strata_vm),
           fmt::format("-remoteWrite.url=http://127.0.0.1:{}/api/v1/write", vm),
           "-remoteWrite.tmpDataPath=" + (dir / "vmagent").string(),
           // Several senders per URL (the default is 2 per CPU; this machine may have one).
           "-remoteWrite.queues=4", "-remoteWrite.flushInterval=1s"});
  if (!StartAndWait(prom, prometheus, "/-/ready")) return;
  data_start_ms = NowMs();
  if (!StartAndWait(agent, vmagent, "/health")) return;
  if (!StartAndWait(reader, prometheus_reader, "/-/ready")) return;

  // Collect data. Meanwhile give Prometheus some HTTP traffic so that its request histograms
  // (queried with histogram_quantile below) have observations, and watch that nobody dies.
  // The traffic touches every endpoint the tests call on Prometheus later: its
  // prometheus_http_requests_total{handler=...} series then all exist before the comparison
  // window (see SeriesLabelsAndLabelValuesAgree).
  const char* traffic[] = {
      "/api/v1/query?query=up",    "/api/v1/query_range?query=up&start=1&end=100&step=10",
      "/api/v1/series?match[]=up", "/api/v1/labels",
      "/api/v1/label/job/values",  "/api/v1/metadata?metric=up",
      "/api/v1/status/buildinfo",  "/api/v1/query?query=sum(rate(up[5s]))"};
  size_t i = 0;
  while (NowMs() < data_start_ms + kDataSeconds * 1000) {
    HttpGet(prometheus, traffic[i++ % std::size(traffic)]);
    if (gone_ms == 0 && NowMs() >= data_start_ms + kGoneSeconds * 1000) {
      gone->Stop();
      gone_ms = NowMs();
    }
    for (const auto& p : peers_) {
      if (p.get() != gone && !p->Alive()) {
        error_ = fmt::format("{} died while collecting data\n{}", p->name(), p->LogTail());
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
}

// Every test reports a failed environment (a missing peer binary, a peer that died): nothing
// is skipped silently.
#define ASSERT_PEERS_READY() \
  ASSERT_TRUE(g_env != nullptr && g_env->ready()) << (g_env ? g_env->error() : "no environment")

std::string Get(uint16_t port, const std::string& target, int* status = nullptr) {
  auto r = HttpGet(port, target);
  if (status) *status = r ? r->status : 0;
  return r ? r->body : "";
}

std::string Post(uint16_t port, const std::string& path, const Params& params,
                 int* status = nullptr) {
  auto r = HttpPostForm(port, path, params);
  if (status) *status = r ? r->status : 0;
  return r ? r->body : "";
}

// ---- The comparison window ----

// Times of the comparison with Prometheus: the window [start_ms, end_ms] lies well before
// now, and every time in it (and every subquery inner range edge) avoids the millisecond
// phases at which the scrapes happen.
struct Window {
  int64_t start_ms = 0, end_ms = 0;
  int phase_ms = 0;            // of start_ms and end_ms
  int subquery_offset_ms = 0;  // moves inner range edges from phase 0 to phase_ms
  std::string error;
};

// The phase (ms within a second) farthest from every phase in `used`.
int FreePhase(std::vector<int> used) {
  std::sort(used.begin(), used.end());
  used.erase(std::unique(used.begin(), used.end()), used.end());
  int best = 500, best_gap = -1;
  for (size_t i = 0; i < used.size(); ++i) {
    int a = used[i], b = i + 1 < used.size() ? used[i + 1] : used[0] + 1000;
    if (b - a > best_gap) {
      best_gap = b - a;
      best = (a + (b - a) / 2) % 1000;
    }
  }
  return best;
}

const Window& GetWindow() {
  static Window w = [] {
    Window w;
    // The scrape phases, from the raw `up` samples of every target.
    int64_t now = NowMs();
    std::string body = Post(g_env->strata_prom, "/api/v1/query",
                            {{"query", "up[60s]"}, {"time", SecondsText(now - 5000)}});
    QueryResult raw;
    if (!ParseQueryResponse(body, &raw, &w.error)) return w;
    std::vector<int> phases = {0};  // subquery steps are aligned to phase 0
    for (const Series& s : raw.series) {
      for (const Sample& smp : s.samples) phases.push_back(static_cast<int>(smp.t_ms % 1000));
    }
    if (raw.series.size() != 3) {
      w.error = "expected the up series of 3 targets in Strata, got: " + Abbreviate(body);
      return w;
    }
    w.phase_ms = FreePhase(phases);
    w.subquery_offset_ms = (1000 - w.phase_ms) % 1000;
    w.end_ms = (now / 1000 - 10) * 1000 + w.phase_ms;
    w.start_ms = w.end_ms - 30000;
    return w;
  }();
  return w;
}

// ---- Prometheus ----

struct PromQuery {
  std::string expr;
  bool exact = false;    // no float arithmetic: the value text must match
  bool ordered = false;  // an instant query's result order matters
  // Values this close count as equal whatever their ratio: for results that cancel (a
  // standard deviation of equal values is 0 up to rounding residue that depends on the order
  // of the arithmetic, 2.45e-16 here and 2.45e-16 with other digits there).
  double abs_tol = 0;
};

// Grafana-style dashboard queries. {SO} is the subquery inner offset (see Window), {T0} the
// window's start (for @).
const std::vector<PromQuery>& Queries() {
  static const std::vector<PromQuery> q = {
      {"up", true},
      {"up == 1", true},
      {"node_load1 > 0", true},
      {"prometheus_http_requests_total > bool 0", true},
      {R"(node_cpu_seconds_total{mode=~"user|system|idle", cpu="0"})", true},
      {R"({__name__=~"node_load.*"})", true},
      {"rate(node_cpu_seconds_total[30s])"},
      {R"(irate(node_network_receive_bytes_total[30s]))"},
      {"increase(prometheus_http_requests_total[30s])"},
      {"sum by (mode) (rate(node_cpu_seconds_total[30s]))"},
      {R"(avg by (cpu) (rate(node_cpu_seconds_total{mode!="idle"}[30s])))"},
      {"sum without (cpu) (rate(node_cpu_seconds_total[30s]))"},
      {"max by (job) (scrape_duration_seconds)", true},
      {"min by (job) (scrape_samples_scraped)", true},
      // Ties make topk, bottomk and sort pick arbitrarily: both exporters read the same
      // /proc, idle modes and interfaces rate 0. These select distinct values.
      {R"(topk(3, node_cpu_seconds_total{job="node"}))", true},
      {R"(bottomk(2, rate(node_cpu_seconds_total{job="node", mode="idle"}[30s])))"},
      {R"(count by (job) ({__name__=~".+"}))", true},
      {"count(count by (cpu) (node_cpu_seconds_total))", true},
      {"count_values(\"value\", up)", true},
      {"node_memory_MemAvailable_bytes / on(instance) node_memory_MemTotal_bytes * 100"},
      {"node_load1 * on(instance) group_left(nodename, machine) node_uname_info"},
      {"go_goroutines / on() group_left sum(go_goroutines)"},
      {R"(rate(node_cpu_seconds_total{mode="user"}[30s]) / ignoring(mode) )"
       R"(group_left sum without (mode) (rate(node_cpu_seconds_total[30s])))"},
      {R"(label_replace(up, "host", "$1", "instance", "(.*):.*"))", true},
      {R"(label_join(up, "both", "/", "job", "instance"))", true},
      {"histogram_quantile(0.9, sum by (le, handler) "
       "(rate(prometheus_http_request_duration_seconds_bucket[30s])))"},
      {"histogram_quantile(0.99, sum by (le) "
       "(rate(prometheus_http_request_duration_seconds_bucket[30s])))"},
      {"histogram_quantile(0.5, rate(prometheus_http_response_size_bytes_bucket[30s]))"},
      {"rate(prometheus_http_request_duration_seconds_sum[30s]) / "
       "rate(prometheus_http_request_duration_seconds_count[30s])"},
      {"rate(node_cpu_seconds_total[20s] offset 10s)"},
      {"max_over_time(rate(node_network_receive_bytes_total[10s] offset {SO}ms)[30s:5s])"},
      {"avg_over_time(sum(rate(node_cpu_seconds_total[10s] offset {SO}ms))[30s:5s])"},
      {"max_over_time(scrape_duration_seconds[30s:5s])", true},
      {"avg_over_time(node_load1[30s])"},
      {"min_over_time(scrape_duration_seconds[30s])", true},
      {"max_over_time(go_goroutines[30s])", true},
      {"count_over_time(up[30s])", true},
      {"quantile_over_time(0.9, scrape_duration_seconds[30s])"},
      {"stddev_over_time(process_resident_memory_bytes[30s])", false, false, 1e-6},
      {"last_over_time(up[30s])", true},
      {"absent(nonexistent_metric{job=\"x\"})", true},
      {"absent(up{job=\"node\"})", true},
      {"absent_over_time(up{job=\"nope\"}[30s])", true},
      {"deriv(process_resident_memory_bytes[30s])"},
      {"delta(process_resident_memory_bytes[30s])"},
      {"idelta(go_memstats_alloc_bytes_total[30s])"},
      {"predict_linear(node_memory_MemFree_bytes[30s], 3600)"},
      {"changes(process_resident_memory_bytes[30s])", true},
      {"resets(node_cpu_seconds_total[30s])", true},
      {"quantile(0.5, rate(node_cpu_seconds_total[30s]))"},
      {"stddev by (mode) (rate(node_cpu_seconds_total[30s]))", false, false, 1e-12},
      {"time() - process_start_time_seconds"},
      {"timestamp(up)", true},
      {"sort_desc(sum by (job) (scrape_samples_scraped))", true, true},
      {"sort(scrape_duration_seconds)", true, true},
      {"clamp_min(node_load1, 0.5)", true},
      {"round(rate(node_cpu_seconds_total[30s]), 0.01)"},
      {"up unless on(job) up{job=\"node\"}", true},
      {"up or vector(0)", true},
      {"up and on(instance) node_load1", true},
      {"sum(up) by (job) > 0", true},
      {"scalar(sum(up))", true},
      {"vector(1)", true},
      {"1 + 1", true},
      {"scalar(count(up)) * 2", true},
      {"go_gc_duration_seconds{quantile=\"0.5\"}", true},
      {"rate(go_gc_duration_seconds_count[30s])"},
      {R"(topk by (mode) (1, node_cpu_seconds_total{job="node", mode=~"idle|user"}))", true},
      {"quantile by (job) (0.9, scrape_duration_seconds)"},
      {"stdvar(rate(node_cpu_seconds_total[30s]))", false, false, 1e-12},
      {"group by (job) (up)", true},
      {"count without (instance) (up)", true},
      {"max(up) by (job) == bool on(job) min(up) by (job)", true},
      {"node_cpu_seconds_total % 7"},
      {"-node_load1 ^ 2"},
      {"exp(node_load1) + ln(node_memory_MemTotal_bytes) - log2(node_memory_MemFree_bytes)"},
      {"sqrt(abs(deriv(node_memory_MemFree_bytes[30s])))"},
      {"sgn(delta(go_goroutines[30s]))"},
      {"sum by (instance) (node_load1 atan2 node_load5)"},
      {"hour(timestamp(up)) + minute(timestamp(up)) + days_in_month(timestamp(up))", true},
      {"vector(time())", true},
      {"scrape_duration_seconds @ {T0}", true},
      {"rate(node_cpu_seconds_total[30s] @ {T0})"},
      {"increase(prometheus_http_requests_total[20s] offset -5s)"},
      {"max_over_time(up[50s:])", true},
      {"absent(up{job=\"node\"} offset 10s)", true},
      {"timestamp(node_load1 offset 5s)", true},
      {R"({__name__=~"node_network_.*_total", device="lo"})", true},
      {R"(up{instance=~"127.*", job!~"prom.*"})", true},
      {R"q(label_replace(node_load1, "__name__", "renamed_$1", "__name__", "node_(.*)"))q", true},
      {"sum(rate(node_network_receive_bytes_total[30s])) by (device) / "
       "sum(rate(node_network_receive_packets_total[30s])) by (device)"},
      {"sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[30s])) > 0"},
      {"irate(node_cpu_seconds_total{mode=\"user\"}[30s] offset 2s) * 100"},
      // Edge values and their formatting (exact text: "+Inf", "NaN", "1e+21", "1e-07").
      {"node_load1 * 1e21", false},
      {"vector(1e21)", true},
      {"vector(1e-7) * up", true},
      {"up / 0", true},
      {"-up / 0", true},
      {"(up - 1) / 0", true},
      {"ln(up - 1)", true},
      {"sqrt(up - 2)", true},
      {"scalar(up)", true},
      {"quantile(1.5, up)", true},
      {"histogram_quantile(1.5, sum by (le) "
       "(rate(prometheus_http_request_duration_seconds_bucket[30s])))",
       true},
      {"clamp(node_load1, 2, 1)", true},
      {"clamp(node_load1, 0.1, 0.2)", true},
      {"round(node_memory_MemFree_bytes / 1e6)", true},
      {R"(count_values("load", round(node_load1, 0.5)))", true},
      {R"q(label_replace(up, "x", "$1", "job", "(nomatch)"))q", true},
      {R"(sum_over_time(up[30s]) - count_over_time(up[30s]))", true},
      {"time() > bool 0", true},
      {"rate(node_cpu_seconds_total[30s] @ end())"},
      {"up @ start()", true},
      {"sum(rate(node_cpu_seconds_total[30s] offset 5s @ end()))"},
      // Series that end with stale markers inside the window.
      {R"(node_load1{job="node-gone"})", true},
      {R"(up{job="node-gone"})", true},
      {R"(count_over_time(node_load1{job="node-gone"}[30s]))", true},
      {R"(last_over_time(node_load1{job="node-gone"}[30s]))", true},
      {R"(present_over_time(node_memory_MemFree_bytes{job="node-gone"}[20s]))", true},
      {R"(absent(node_load1{job="node-gone"}))", true},
      {R"(timestamp(node_load1{job="node-gone"}))", true},
      {R"(rate(node_cpu_seconds_total{job="node-gone"}[30s]))"},
      {R"(count by (job) (node_load1))", true},
  };
  return q;
}

std::string Expand(std::string expr, const Window& w) {
  size_t at;
  while ((at = expr.find("{SO}")) != std::string::npos) {
    expr.replace(at, 4, std::to_string(w.subquery_offset_ms));
  }
  while ((at = expr.find("{T0}")) != std::string::npos) {
    expr.replace(at, 4, SecondsText(w.start_ms));
  }
  return expr;
}

class PrometheusE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_PEERS_READY();
    ASSERT_TRUE(GetWindow().error.empty()) << GetWindow().error;
  }
  // Posts the same form to Strata and Prometheus; returns the difference ("" if none).
  // `samples`, when given, gets the number of samples in Strata's answer.
  std::string CompareQuery(const std::string& path, const Params& params,
                           const CompareOptions& options, size_t* samples = nullptr) {
    int s1 = 0, s2 = 0;
    std::string ours = Post(g_env->strata_prom, path, params, &s1);
    std::string theirs = Post(g_env->prometheus, path, params, &s2);
    std::string diff;
    if (s1 != 200 || s2 != 200) {
      diff = fmt::format("HTTP status: ours {} theirs {}\n", s1, s2);
    } else {
      diff = CompareQueryResponses(ours, theirs, options);
    }
    if (samples) {
      *samples = 0;
      QueryResult r;
      std::string error;
      if (ParseQueryResponse(ours, &r, &error)) {
        for (const Series& s : r.series) *samples += s.samples.size();
      }
    }
    if (diff.empty()) return "";
    return fmt::format("{} {}\n{}ours:   {}\ntheirs: {}\n", path, FormEncode(params), diff,
                       Abbreviate(ours), Abbreviate(theirs));
  }
};

// Strata holds exactly the samples Prometheus scraped: every series, every sample, over the
// whole time the queries below reach into. Remote write lags a little, so this retries for a
// while before it reports the difference.
TEST_F(PrometheusE2e, RawSamplesAgree) {
  const Window& w = GetWindow();
  Params params = {{"query", R"({__name__=~".+"}[80s])"}, {"time", SecondsText(w.end_ms)}};
  std::string diff;
  for (int attempt = 0; attempt < 30; ++attempt) {
    diff = CompareQuery("/api/v1/query", params, CompareOptions{.exact = true});
    if (diff.empty()) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  EXPECT_EQ(diff, "");
  // And the data is not trivially empty.
  QueryResult raw;
  std::string error;
  ASSERT_TRUE(ParseQueryResponse(Post(g_env->strata_prom, "/api/v1/query", params), &raw, &error))
      << error;
  EXPECT_GT(raw.series.size(), 300u);
  size_t samples = 0;
  for (const Series& s : raw.series) samples += s.samples.size();
  EXPECT_GT(samples, 300u * 60);
}

TEST_F(PrometheusE2e, GrafanaQueriesAgree) {
  const Window& w = GetWindow();
  // Let remote write catch up with the window's end first (and the 5 s after it that a
  // negative offset reaches).
  for (int i = 0; i < 30; ++i) {
    if (CompareQuery("/api/v1/query", {{"query", "up[5s]"}, {"time", SecondsText(w.end_ms + 6000)}},
                     CompareOptions{.exact = true})
            .empty()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  const int64_t instants[] = {w.start_ms, w.start_ms + 15000, w.end_ms};
  int compared = 0, failed = 0, empty = 0;
  size_t total_samples = 0;
  for (const PromQuery& q : Queries()) {
    std::string expr = Expand(q.expr, w);
    for (int64_t t : instants) {
      size_t samples = 0;
      std::string diff = CompareQuery(
          "/api/v1/query", {{"query", expr}, {"time", SecondsText(t)}},
          CompareOptions{.exact = q.exact, .abs_tol = q.abs_tol, .ordered = q.ordered}, &samples);
      ++compared;
      total_samples += samples;
      if (samples == 0) ++empty;
      if (!diff.empty()) ++failed;
      EXPECT_EQ(diff, "") << "instant query " << expr << " at " << SecondsText(t);
    }
    for (int step_s : {5, 2}) {
      size_t samples = 0;
      std::string diff =
          CompareQuery("/api/v1/query_range",
                       {{"query", expr},
                        {"start", SecondsText(w.start_ms)},
                        {"end", SecondsText(w.end_ms)},
                        {"step", std::to_string(step_s)}},
                       CompareOptions{.exact = q.exact, .abs_tol = q.abs_tol}, &samples);
      ++compared;
      total_samples += samples;
      if (samples == 0) ++empty;
      if (!diff.empty()) ++failed;
      EXPECT_EQ(diff, "") << "range query " << expr << " step " << step_s;
    }
  }
  EXPECT_GE(Queries().size(), 30u);
  // Agreeing on nothing proves nothing: only a few queries are meant to be empty (absent of
  // a present series, an empty clamp range, the stopped exporter at the window's end).
  EXPECT_LT(empty, compared / 10) << "answers without a sample";
  RecordProperty("compared", compared);
  std::printf(
      "compared %d query answers (%zu samples, %d answers empty), %d differ (window %s..%s, "
      "phase %d ms)\n",
      compared, total_samples, empty, failed, SecondsText(w.start_ms).c_str(),
      SecondsText(w.end_ms).c_str(), w.phase_ms);
}

// The "node-gone" exporter stopped inside the window: its series are there at the start and
// gone at the end (Prometheus' stale markers arrived and count), and both servers agree.
TEST_F(PrometheusE2e, StaleMarkersEndSeries) {
  const Window& w = GetWindow();
  ASSERT_GT(g_env->gone_ms, w.start_ms);
  ASSERT_LT(g_env->gone_ms + 2000, w.end_ms);
  for (int64_t t : {w.start_ms, w.end_ms}) {
    Params params = {{"query", R"(node_load1{job="node-gone"})"}, {"time", SecondsText(t)}};
    QueryResult r;
    std::string error;
    ASSERT_TRUE(ParseQueryResponse(Post(g_env->strata_prom, "/api/v1/query", params), &r, &error))
        << error;
    EXPECT_EQ(r.series.size(), t == w.start_ms ? 1u : 0u) << SecondsText(t);
    EXPECT_EQ(CompareQuery("/api/v1/query", params, {.exact = true}), "");
  }
}

// A Prometheus reading from Strata through remote read (streamed XOR chunks) sees exactly
// what the scraping Prometheus holds: raw samples, stale markers included (the "node-gone"
// series end inside the window), and so the same query answers, bit for bit.
TEST_F(PrometheusE2e, RemoteReadByPrometheus) {
  const Window& w = GetWindow();
  auto compare = [&](const std::string& path, const Params& params) {
    int s1 = 0, s2 = 0;
    std::string ours = Post(g_env->prometheus_reader, path, params, &s1);
    std::string theirs = Post(g_env->prometheus, path, params, &s2);
    std::string diff = s1 != 200 || s2 != 200
                           ? fmt::format("HTTP status: reader {} prometheus {}", s1, s2)
                           : CompareQueryResponses(ours, theirs, {.exact = true});
    EXPECT_EQ(diff, "") << path << " " << FormEncode(params) << "\nreader:     " << Abbreviate(ours)
                        << "\nprometheus: " << Abbreviate(theirs);
  };
  compare("/api/v1/query",
          {{"query", R"({__name__=~".+"}[80s])"}, {"time", SecondsText(w.end_ms)}});
  for (const char* q :
       {R"(node_load1)", R"(up)", R"(count_over_time(node_load1{job="node-gone"}[30s]))",
        "rate(node_cpu_seconds_total[30s])",
        "histogram_quantile(0.9, sum by (le) "
        "(rate(prometheus_http_request_duration_seconds_bucket[30s])))"}) {
    compare("/api/v1/query_range", {{"query", q},
                                    {"start", SecondsText(w.start_ms)},
                                    {"end", SecondsText(w.end_ms)},
                                    {"step", "1"}});
  }
}

// Prometheus 2.42 answers label names and values with match[] from its head index without
// looking at sample times: a series created after `end` still contributes (Strata looks at
// the samples). The window lies before the tests run and every
// prometheus_http_requests_total{handler} series exists since the warm-up traffic, so that
// imprecision does not show here.
TEST_F(PrometheusE2e, SeriesLabelsAndLabelValuesAgree) {
  const Window& w = GetWindow();
  const std::string start = SecondsText(w.start_ms), end = SecondsText(w.end_ms);
  auto compare = [&](const std::string& path, Params params, bool series) {
    params.emplace_back("start", start);
    params.emplace_back("end", end);
    int s1 = 0, s2 = 0;
    std::string ours, theirs;
    if (path.starts_with("/api/v1/label/")) {
      // Prometheus serves label values by GET only (as Grafana asks for them).
      std::string target = path + "?" + FormEncode(params);
      ours = Get(g_env->strata_prom, target, &s1);
      theirs = Get(g_env->prometheus, target, &s2);
    } else {
      ours = Post(g_env->strata_prom, path, params, &s1);
      theirs = Post(g_env->prometheus, path, params, &s2);
    }
    std::string diff = s1 != 200 || s2 != 200
                           ? fmt::format("HTTP status: ours {} theirs {}", s1, s2)
                       : series ? CompareSeriesResponses(ours, theirs)
                                : CompareStringListResponses(ours, theirs);
    EXPECT_EQ(diff, "") << path << " " << FormEncode(params) << "\nours:   " << Abbreviate(ours)
                        << "\ntheirs: " << Abbreviate(theirs);
  };
  compare("/api/v1/series", {{"match[]", "up"}}, true);
  compare("/api/v1/series", {{"match[]", R"(node_cpu_seconds_total{mode="idle"})"}}, true);
  compare("/api/v1/series",
          {{"match[]", R"({job="prometheus",__name__=~"prometheus_http.*"})"},
           {"match[]", "node_load1"}},
          true);
  compare("/api/v1/series", {{"match[]", R"({__name__=~".+"})"}}, true);
  compare("/api/v1/labels", {}, false);
  compare("/api/v1/labels", {{"match[]", "node_cpu_seconds_total"}}, false);
  compare("/api/v1/labels", {{"match[]", "up"}, {"match[]", "prometheus_http_requests_total"}},
          false);
  compare("/api/v1/label/job/values", {}, false);
  compare("/api/v1/label/__name__/values", {}, false);
  compare("/api/v1/label/__name__/values", {{"match[]", R"({job="node"})"}}, false);
  compare("/api/v1/label/mode/values", {{"match[]", "node_cpu_seconds_total"}}, false);
  compare("/api/v1/label/handler/values", {{"match[]", "prometheus_http_requests_total"}}, false);
  compare("/api/v1/label/instance/values", {{"match[]", R"(up{job="node"})"}}, false);
  compare("/api/v1/label/nonexistent/values", {}, false);
}

// Bad queries fail alike: the same HTTP status and errorType (the messages' wording differs
// between versions).
TEST_F(PrometheusE2e, ErrorsAgree) {
  const Window& w = GetWindow();
  const std::string t = SecondsText(w.end_ms);
  const std::vector<std::pair<std::string, Params>> cases = {
      {"/api/v1/query", {{"query", "rate(up)"}, {"time", t}}},
      {"/api/v1/query", {{"query", "sum(up"}, {"time", t}}},
      {"/api/v1/query", {{"query", "up"}, {"time", "yesterday"}}},
      {"/api/v1/query",
       {{"query", "node_cpu_seconds_total * on(instance) node_cpu_seconds_total"}, {"time", t}}},
      {"/api/v1/query",
       {{"query", "up * on(instance) group_left node_cpu_seconds_total"}, {"time", t}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", t}, {"end", t}, {"step", "0"}}},
      {"/api/v1/query_range",
       {{"query", "up"}, {"start", t}, {"end", SecondsText(w.start_ms)}, {"step", "1"}}},
      {"/api/v1/query_range", {{"query", "\"text\""}, {"start", t}, {"end", t}, {"step", "1"}}},
      {"/api/v1/series", {}},
  };
  for (const auto& [path, params] : cases) {
    int s1 = 0, s2 = 0;
    std::string ours = Post(g_env->strata_prom, path, params, &s1);
    std::string theirs = Post(g_env->prometheus, path, params, &s2);
    auto error_type = [](const std::string& body) {
      simdjson::dom::parser parser;
      std::string_view type;
      if (parser.parse(body).at_key("errorType").get_string().get(type)) return std::string("?");
      return std::string(type);
    };
    EXPECT_EQ(s1, s2) << path << " " << FormEncode(params) << "\nours:   " << ours
                      << "\ntheirs: " << theirs;
    EXPECT_NE(s1, 200) << path << " " << FormEncode(params);
    EXPECT_EQ(error_type(ours), error_type(theirs))
        << path << " " << FormEncode(params) << "\nours:   " << ours << "\ntheirs: " << theirs;
  }
}

// Prometheus sends the scraped metadata along with the samples; Strata answers it as
// Prometheus does.
TEST_F(PrometheusE2e, MetadataAgrees) {
  for (const char* metric :
       {"node_cpu_seconds_total", "prometheus_http_requests_total", "go_gc_duration_seconds",
        "prometheus_http_request_duration_seconds", "node_load1"}) {
    std::string ours = Get(g_env->strata_prom, fmt::format("/api/v1/metadata?metric={}", metric));
    std::string theirs = Get(g_env->prometheus, fmt::format("/api/v1/metadata?metric={}", metric));
    // Compare the entries as sets of (type, help, unit).
    auto decode = [&](const std::string& body) {
      std::set<std::string> out;
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      if (parser.parse(body).get(doc) != simdjson::SUCCESS) return out;
      simdjson::dom::array arr;
      if (doc["data"][metric].get_array().get(arr) != simdjson::SUCCESS) return out;
      for (simdjson::dom::element e : arr) {
        std::string_view type, help, unit;
        if (e["type"].get_string().get(type) || e["help"].get_string().get(help) ||
            e["unit"].get_string().get(unit)) {
          out.insert("bad entry");
          continue;
        }
        out.insert(fmt::format("{}|{}|{}", type, help, unit));
      }
      return out;
    };
    std::set<std::string> a = decode(ours), b = decode(theirs);
    EXPECT_FALSE(b.empty()) << metric << ": " << theirs;
    EXPECT_EQ(a, b) << metric << "\nours:   " << Abbreviate(ours)
                    << "\ntheirs: " << Abbreviate(theirs);
  }
}

// ---- Grafana ----

// What Grafana's Prometheus data source asks and reads, against the real binary holding what
// Prometheus remote-wrote. Each check names the field Grafana reads and the type it needs.
class GrafanaReplay : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_PEERS_READY(); }

  // Grafana's headers on data source requests.
  static Params GrafanaHeaders() {
    return {{"X-Grafana-Org-Id", "1"},
            {"X-Dashboard-Uid", "e2e"},
            {"X-Panel-Id", "2"},
            {"User-Agent", "Grafana/10.4.0"},
            {"Accept", "application/json, text/plain, */*"}};
  }
  // A request as Grafana sends it; the parsed JSON envelope with status "success".
  simdjson::dom::element Call(const std::string& method, const std::string& path,
                              const Params& params, int want_status = 200) {
    testing::TestHttpClient client(g_env->strata_prom);
    EXPECT_TRUE(client.connected());
    Params headers = GrafanaHeaders();
    std::optional<testing::TestHttpResponse> r;
    if (method == "GET") {
      r = client.Request("GET", params.empty() ? path : path + "?" + FormEncode(params), headers);
    } else {
      headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
      r = client.Request("POST", path, headers, FormEncode(params));
    }
    EXPECT_TRUE(r.has_value()) << method << " " << path;
    if (!r) return {};
    last_body_ = r->body;
    EXPECT_EQ(r->status, want_status) << method << " " << path << " " << Abbreviate(r->body);
    EXPECT_THAT(r->Header("Content-Type"), ::testing::HasSubstr("application/json"));
    simdjson::dom::element doc;
    EXPECT_EQ(parser_.parse(last_body_).get(doc), simdjson::SUCCESS) << Abbreviate(last_body_);
    std::string_view status;
    EXPECT_EQ(doc["status"].get_string().get(status), simdjson::SUCCESS);
    EXPECT_EQ(status, want_status == 200 ? "success" : "error") << Abbreviate(last_body_);
    return doc;
  }
  static std::vector<std::string> Strings(simdjson::dom::element arr) {
    std::vector<std::string> out;
    simdjson::dom::array a;
    EXPECT_EQ(arr.get_array().get(a), simdjson::SUCCESS);
    for (simdjson::dom::element e : a) {
      std::string_view s;
      EXPECT_EQ(e.get_string().get(s), simdjson::SUCCESS) << "not a string: " << e;
      out.emplace_back(s);
    }
    return out;
  }
  // Grafana's time range: the last minute, in whole seconds.
  static std::string StartS() { return std::to_string(NowMs() / 1000 - 60); }
  static std::string EndS() { return std::to_string(NowMs() / 1000); }

  simdjson::dom::parser parser_;
  std::string last_body_;
};

TEST_F(GrafanaReplay, SaveAndTest) {
  for (const char* method : {"GET", "POST"}) {
    // Grafana checks the data source with 1+1 at time 4 and expects the scalar 2.
    simdjson::dom::element doc = Call(method, "/api/v1/query", {{"query", "1+1"}, {"time", "4"}});
    std::string_view type;
    ASSERT_EQ(doc["data"]["resultType"].get_string().get(type), simdjson::SUCCESS);
    EXPECT_EQ(type, "scalar");
    QueryResult r;
    std::string error;
    ASSERT_TRUE(ParseQueryResponse(last_body_, &r, &error)) << error;
    ASSERT_EQ(r.series.size(), 1u);
    EXPECT_EQ(r.series[0].samples[0].t_ms, 4000);
    EXPECT_EQ(r.series[0].samples[0].text, "2");
  }
  // Flavour detection: plain Prometheus (no "features") of a version with the fast label
  // endpoints (>= 2.53).
  simdjson::dom::element doc = Call("GET", "/api/v1/status/buildinfo", {});
  simdjson::dom::object data;
  ASSERT_EQ(doc["data"].get_object().get(data), simdjson::SUCCESS);
  EXPECT_EQ(data["features"].error(), simdjson::NO_SUCH_FIELD);
  for (const char* field :
       {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}) {
    std::string_view v;
    EXPECT_EQ(data[field].get_string().get(v), simdjson::SUCCESS) << field;
  }
  std::string_view version;
  ASSERT_EQ(data["version"].get_string().get(version), simdjson::SUCCESS);
  int major = 0, minor = 0;
  ASSERT_EQ(std::sscanf(std::string(version).c_str(), "%d.%d", &major, &minor), 2) << version;
  EXPECT_TRUE(major > 2 || (major == 2 && minor >= 53)) << version;
}

TEST_F(GrafanaReplay, LabelBrowserAndVariables) {
  // The label browser: every label name, then every metric name, in the time range.
  std::vector<std::string> labels =
      Strings(Call("GET", "/api/v1/labels", {{"start", StartS()}, {"end", EndS()}})["data"]);
  EXPECT_THAT(labels, ::testing::IsSupersetOf({"__name__", "job", "instance", "cpu", "mode",
                                               "handler", "le", "quantile"}));
  EXPECT_TRUE(std::is_sorted(labels.begin(), labels.end()));
  std::vector<std::string> names = Strings(
      Call("GET", "/api/v1/label/__name__/values", {{"start", StartS()}, {"end", EndS()}})["data"]);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"up", "node_cpu_seconds_total",
                                              "prometheus_http_request_duration_seconds_bucket",
                                              "scrape_duration_seconds"}));
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  // Picking a metric narrows the labels with match[].
  labels = Strings(
      Call("GET", "/api/v1/labels",
           {{"match[]", "node_cpu_seconds_total"}, {"start", StartS()}, {"end", EndS()}})["data"]);
  EXPECT_THAT(labels, ::testing::ElementsAre("__name__", "cpu", "instance", "job", "mode"));
  std::vector<std::string> modes = Strings(
      Call("GET", "/api/v1/label/mode/values",
           {{"match[]", "node_cpu_seconds_total"}, {"start", StartS()}, {"end", EndS()}})["data"]);
  EXPECT_THAT(modes, ::testing::IsSupersetOf({"idle", "system", "user"}));
  // A variable label_values(up{job="node"}, instance); the job variable from a series query.
  std::vector<std::string> instances = Strings(
      Call("GET", "/api/v1/label/instance/values",
           {{"match[]", R"(up{job="node"})"}, {"start", StartS()}, {"end", EndS()}})["data"]);
  EXPECT_THAT(instances, ::testing::ElementsAre(fmt::format("127.0.0.1:{}", g_env->node_exporter)));
  // Variables by query_result / the metrics browser: /api/v1/series, label values strings.
  simdjson::dom::element doc =
      Call("POST", "/api/v1/series",
           {{"match[]", "up"}, {"start", StartS()}, {"end", EndS()}, {"limit", "40000"}});
  simdjson::dom::array series;
  ASSERT_EQ(doc["data"].get_array().get(series), simdjson::SUCCESS);
  std::set<std::string> jobs;
  for (simdjson::dom::element s : series) {
    simdjson::dom::object obj;
    ASSERT_EQ(s.get_object().get(obj), simdjson::SUCCESS);
    for (auto field : obj) {
      std::string_view v;
      EXPECT_EQ(field.value.get_string().get(v), simdjson::SUCCESS) << field.key;
      if (field.key == "job") jobs.emplace(v);
    }
  }
  EXPECT_EQ(jobs, (std::set<std::string>{"node", "node-gone", "prometheus"}));
  // No match: an empty list, not null.
  EXPECT_TRUE(
      Strings(Call("GET", "/api/v1/label/mode/values", {{"match[]", "nonexistent_metric"}})["data"])
          .empty());
}

TEST_F(GrafanaReplay, DashboardRangeAndInstantQueries) {
  // A time series panel: POST query_range, start and end rounded down to the step.
  const int64_t step = 2;
  int64_t end = NowMs() / 1000 / step * step, start = end - 60;
  simdjson::dom::element doc = Call("POST", "/api/v1/query_range",
                                    {{"query", "sum by (mode) (rate(node_cpu_seconds_total[4s]))"},
                                     {"start", std::to_string(start)},
                                     {"end", std::to_string(end)},
                                     {"step", std::to_string(step)}});
  std::string_view type;
  ASSERT_EQ(doc["data"]["resultType"].get_string().get(type), simdjson::SUCCESS);
  EXPECT_EQ(type, "matrix");
  QueryResult r;
  std::string error;
  ASSERT_TRUE(ParseQueryResponse(last_body_, &r, &error)) << error;  // checks value types
  EXPECT_GE(r.series.size(), 3u);
  for (const Series& s : r.series) {
    ASSERT_EQ(s.labels.size(), 1u) << s.Key();
    EXPECT_TRUE(s.labels.contains("mode"));
    ASSERT_FALSE(s.samples.empty());
    for (size_t i = 0; i < s.samples.size(); ++i) {
      const Sample& smp = s.samples[i];
      EXPECT_GE(smp.t_ms, start * 1000);
      EXPECT_LE(smp.t_ms, end * 1000);
      EXPECT_EQ(smp.t_ms % (step * 1000), 0);
      if (i > 0) {
        EXPECT_EQ(smp.t_ms - s.samples[i - 1].t_ms, step * 1000) << s.Key();
      }
      EXPECT_TRUE(std::isfinite(smp.v) && smp.v >= 0) << smp.text;
    }
    // Data covers the whole minute (Prometheus has written for longer than that).
    EXPECT_GE(s.samples.size(), 25u) << s.Key();
  }
  // A heatmap panel over a classic histogram; a fractional step as Grafana computes it.
  Call("POST", "/api/v1/query_range",
       {{"query", "sum by (le) (increase(prometheus_http_request_duration_seconds_bucket[5s]))"},
        {"start", std::to_string(start)},
        {"end", std::to_string(end)},
        {"step", "1.5"}});
  ASSERT_TRUE(ParseQueryResponse(last_body_, &r, &error)) << error;
  EXPECT_GE(r.series.size(), 5u);
  for (const Series& s : r.series) EXPECT_TRUE(s.labels.contains("le")) << s.Key();
  // A stat / table panel: POST query with a float time.
  Call("POST", "/api/v1/query",
       {{"query", "up"}, {"time", fmt::format("{:.3f}", NowMs() / 1000.0 - 5)}});
  ASSERT_TRUE(ParseQueryResponse(last_body_, &r, &error)) << error;
  EXPECT_EQ(r.result_type, "vector");
  ASSERT_EQ(r.series.size(), 3u);
  for (const Series& s : r.series) {
    EXPECT_EQ(s.labels.at("__name__"), "up");
    EXPECT_EQ(s.samples[0].text, s.labels.at("job") == "node-gone" ? "0" : "1") << s.Key();
  }
  // A broken query: Grafana shows `error`; 400 with errorType bad_data.
  doc = Call("POST", "/api/v1/query_range",
             {{"query", "sum(rate(up[1m]"},
              {"start", std::to_string(start)},
              {"end", std::to_string(end)},
              {"step", "2"}},
             400);
  std::string_view error_type, message;
  EXPECT_EQ(doc["errorType"].get_string().get(error_type), simdjson::SUCCESS);
  EXPECT_EQ(error_type, "bad_data");
  EXPECT_EQ(doc["error"].get_string().get(message), simdjson::SUCCESS);
  EXPECT_THAT(std::string(message), ::testing::HasSubstr("parse error"));
}

TEST_F(GrafanaReplay, ExemplarsMetadataAndRules) {
  // The exemplar probe and an exemplar query of a panel: a list (empty: none are stored).
  for (const char* query :
       {"test",
        "histogram_quantile(0.9, rate(prometheus_http_request_duration_seconds_bucket"
        "[1m]))"}) {
    simdjson::dom::element doc = Call("POST", "/api/v1/query_exemplars",
                                      {{"query", query}, {"start", StartS()}, {"end", EndS()}});
    simdjson::dom::array arr;
    EXPECT_EQ(doc["data"].get_array().get(arr), simdjson::SUCCESS) << Abbreviate(last_body_);
  }
  // Metadata feeds the editor's hints: metric -> [{type, help, unit}], all strings.
  simdjson::dom::element doc = Call("GET", "/api/v1/metadata", {});
  simdjson::dom::object metadata;
  ASSERT_EQ(doc["data"].get_object().get(metadata), simdjson::SUCCESS);
  EXPECT_GT(metadata.size(), 50u);
  simdjson::dom::array entries;
  ASSERT_EQ(metadata["node_cpu_seconds_total"].get_array().get(entries), simdjson::SUCCESS);
  ASSERT_GE(entries.size(), 1u);
  for (simdjson::dom::element e : entries) {
    std::string_view type, help, unit;
    EXPECT_EQ(e["type"].get_string().get(type), simdjson::SUCCESS);
    EXPECT_EQ(e["help"].get_string().get(help), simdjson::SUCCESS);
    EXPECT_EQ(e["unit"].get_string().get(unit), simdjson::SUCCESS);
    EXPECT_EQ(type, "counter");
    EXPECT_THAT(std::string(help), ::testing::HasSubstr("CPU"));
  }
  doc = Call("GET", "/api/v1/metadata", {{"metric", "up"}});
  ASSERT_EQ(doc["data"].get_object().get(metadata), simdjson::SUCCESS);
  EXPECT_EQ(metadata.size(), 0u);
  // Alerting / recording rules: an empty group list.
  doc = Call("GET", "/api/v1/rules", {});
  simdjson::dom::array groups;
  EXPECT_EQ(doc["data"]["groups"].get_array().get(groups), simdjson::SUCCESS);
}

// ---- vmagent ----

class VmagentE2e : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_PEERS_READY(); }
};

TEST_F(VmagentE2e, RawSamplesAgreeWithVictoriaMetrics) {
  // The data arrived: vmagent's own up series and the exporter's.
  QueryResult r;
  std::string error;
  int64_t now = NowMs();
  ASSERT_TRUE(ParseQueryResponse(
      Post(g_env->strata_vm, "/api/v1/query",
           {{"query", R"(up{job="vmagent-node"}[30s])"}, {"time", SecondsText(now - 5000)}}),
      &r, &error))
      << error;
  ASSERT_EQ(r.series.size(), 1u) << g_env->Logs();
  EXPECT_GE(r.series[0].samples.size(), 20u);
  std::vector<int> phases;
  for (const Sample& s : r.series[0].samples) {
    EXPECT_EQ(s.text, "1");
    phases.push_back(static_cast<int>(s.t_ms % 1000));
  }
  // A time whose 40 s window has no sample on its left edge, well before now.
  const int64_t t = (now / 1000 - 15) * 1000 + FreePhase(phases);
  const std::string selector = R"({job="vmagent-node"})";
  // vmagent parses the exposition text with its own fast float parser, which is not always
  // correctly rounded (1.4326e-05 arrives as 1.4326000000000001e-05); Strata keeps the
  // float64 vmagent sent bit for bit (as it keeps Prometheus' in
  // PrometheusE2e.RawSamplesAgree), VictoriaMetrics stores values as decimals and gives back
  // 1.4326e-05. So values agree to about 1e-16, not always bit for bit.
  std::vector<Series> ours, theirs;
  std::string diff;
  // Both may still be taking in the last blocks: retry a while before reporting.
  for (int attempt = 0; attempt < 20; ++attempt) {
    ASSERT_TRUE(ParseQueryResponse(Post(g_env->strata_vm, "/api/v1/query",
                                        {{"query", selector + "[40s]"}, {"time", SecondsText(t)}}),
                                   &r, &error))
        << error;
    ours = r.series;
    std::string exported =
        Get(g_env->vm, "/api/v1/export?" + FormEncode({{"match[]", selector},
                                                       {"start", SecondsText(t - 40000)},
                                                       {"end", SecondsText(t)}}));
    theirs.clear();
    ASSERT_TRUE(ParseVmExport(exported, &theirs, &error)) << error;
    diff = CompareSeries(ours, theirs, CompareOptions{.rel_tol = 1e-12});
    if (diff.empty()) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  EXPECT_EQ(diff, "") << "at " << SecondsText(t);
  EXPECT_GT(ours.size(), 100u);
  size_t samples = 0;
  for (const Series& s : ours) samples += s.samples.size();
  EXPECT_GT(samples, ours.size() * 35);

  // Both list the same series.
  Params series = {
      {"match[]", selector}, {"start", SecondsText(t - 40000)}, {"end", SecondsText(t)}};
  std::string a = Post(g_env->strata_vm, "/api/v1/series", series);
  std::string b = Get(g_env->vm, "/api/v1/series?" + FormEncode(series));
  EXPECT_EQ(CompareSeriesResponses(a, b), "") << Abbreviate(a) << "\n" << Abbreviate(b);

  // Nothing vmagent sent was refused; say how much came late.
  std::string metrics = Get(g_env->strata_vm, "/metrics");
  auto value = [&](std::string_view name) -> std::string {
    size_t at = metrics.find(std::string("\n") + std::string(name) + " ");
    if (at == std::string::npos) return "absent";
    size_t start = at + name.size() + 2;
    return metrics.substr(start, metrics.find('\n', start) - start);
  };
  std::string rejected = value(R"(strata_head_samples_rejected_total{reason="out_of_order"})");
  EXPECT_TRUE(rejected == "0" || rejected == "absent") << rejected;
  std::cout << "vmagent: samples taken by the out-of-order window: "
            << value("strata_head_out_of_order_samples_appended_total") << "\n";
}

}  // namespace
}  // namespace strata::e2e
