// strata-loadgen's library: node-exporter-like series, remote write 1.0 request bodies
// encoded ahead of time, and a sender over many keep-alive HTTP/1.1 connections.
//
// The load is built in full before anything is sent, so the generator does no encoding or
// compression while it is being timed. Series are split over connections (a series belongs
// to one connection), and each connection sends its requests one after another, waiting for
// each answer, so every series' samples arrive in time order.
#ifndef STRATA_TOOLS_LOADGEN_H_
#define STRATA_TOOLS_LOADGEN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::loadgen {

// How a series' value moves from one scrape to the next.
enum class ValueKind : uint8_t {
  kCounter,   // grows by about `rate` per second
  kGauge,     // random walk of step `rate`, kept within [lo, hi]
  kConstant,  // never changes
  kBucket,    // a classic histogram bucket: the observations at or below its bound
  kHistSum,   // a classic histogram's _sum
  kHistCount  // a classic histogram's _count (equals its +Inf bucket)
};

struct SeriesDef {
  // Sorted by name, __name__ included; no empty values.
  std::vector<std::pair<std::string, std::string>> labels;
  ValueKind kind = ValueKind::kGauge;
  double value = 0;  // the current value (the first sample's value before any step)
  double rate = 0;   // counter: mean increase per second; gauge: the walk's step
  double lo = 0, hi = 0;
  double quantum = 0;       // values are rounded to multiples of this when > 0
  double fraction = 1;      // bucket: share of a histogram's observations at or below its bound
  double mean = 0;          // histogram sum: mean observed value
  uint64_t seed = 0;        // per series; the histograms' series share their histogram's seed
  bool time_gauge = false;  // node_time_seconds: the sample's own timestamp in seconds

  // The value at scrape `step` (steps are taken in order, starting at 0; step 0 keeps the
  // initial value).
  double Advance(int64_t step, double interval_seconds, int64_t timestamp_ms);
};

// About 1,000 series as one node exporter on an 8-CPU host shows them (CPU, memory,
// filesystems, network, disks, load, vmstat/netstat, interrupts, Go runtime, scrape
// metadata, a few classic histograms), with `instance` and `job` set. Deterministic for a
// given host index and seed.
std::vector<SeriesDef> NodeExporterSeries(int host, std::string_view job, uint64_t seed);

struct LoadConfig {
  std::string job = "node";
  int hosts = 10;
  int64_t steps = 60;            // scrapes per series
  int64_t interval_ms = 15'000;  // scrape interval
  int64_t jitter_ms = 20;        // each scrape lands up to this much late (must be < interval)
  int64_t start_ms = 0;          // the first scrape's nominal time
  int connections = 8;
  int samples_per_request = 2000;
  uint64_t seed = 1;
};

// The scrape time of `host` at `step`: start + step * interval, a fixed per-host phase
// within the first tenth of the interval, plus up to `jitter_ms` of jitter.
int64_t ScrapeTime(const LoadConfig& config, int host, int64_t step);

struct EncodedRequest {
  std::string body;  // snappy-compressed WriteRequest
  uint32_t samples = 0;
  uint32_t series = 0;  // TimeSeries messages in the request
};

struct EncodedLoad {
  // requests[c]: what connection c sends, in order.
  std::vector<std::vector<EncodedRequest>> requests;
  size_t series = 0;
  uint64_t samples = 0;
  uint64_t raw_bytes = 0;  // protobuf bytes before compression
  uint64_t compressed_bytes = 0;
  int64_t min_time_ms = 0, max_time_ms = 0;
};

// Generates and encodes the whole load, on up to `threads` threads. `progress` (may be
// empty) is called now and then with the number of samples encoded so far.
EncodedLoad BuildLoad(const LoadConfig& config, int threads,
                      const std::function<void(uint64_t)>& progress = {});

// A minimal protobuf writer: what remote write 1.0 needs.
class ProtoWriter {
 public:
  explicit ProtoWriter(std::string* out) : out_(out) {}
  void Varint(uint64_t v);
  void Tag(uint32_t field, uint32_t wire_type) { Varint((uint64_t{field} << 3) | wire_type); }
  void Bytes(uint32_t field, std::string_view v);
  void Double(uint32_t field, double v);
  void Int64(uint32_t field, int64_t v);

 private:
  std::string* out_;
};

struct SendTarget {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string path = "/api/v1/write";
};

struct SendStats {
  uint64_t requests = 0;
  uint64_t samples_sent = 0;
  uint64_t samples_acked = 0;     // in requests answered 2xx
  uint64_t samples_rejected = 0;  // in requests answered otherwise
  uint64_t samples_failed = 0;    // in requests that got no answer (connection error)
  std::map<int, uint64_t> rejected_requests_by_code;
  std::string first_error;  // the first non-2xx answer or transport error, shortened
  double wall_seconds = 0;
};

// Live counters for progress output while SendLoad runs.
struct SendProgress {
  std::atomic<uint64_t> samples_sent{0};
  std::atomic<uint64_t> samples_acked{0};
  std::atomic<uint64_t> requests_failed{0};
};

// Sends `load` to `target`, one thread and one keep-alive connection per entry of
// load.requests. Timing starts once every connection is open.
SendStats SendLoad(const EncodedLoad& load, const SendTarget& target,
                   SendProgress* progress = nullptr);

}  // namespace strata::loadgen

#endif  // STRATA_TOOLS_LOADGEN_H_
