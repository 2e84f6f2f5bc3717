// Seeded random PromQL differential test: the real `strata` binary against a real Prometheus
// 2.42 (`--web.enable-remote-write-receiver`, no scrape jobs), both fed the same synthetic
// data by remote write, then asked the same generated queries (instant and range). Every
// answer must agree: the same series and values (relative tolerance 1e-9), or both an error.
//
// The data (SyntheticData) spans one hour ending a few minutes before now, aligned to 10
// minutes: counters with resets, gauges with negative values, a classic histogram, integer
// gauges, series that stop and start again after gaps longer than the 5m lookback, series that
// end with stale markers, and a gauge with NaN and +Inf samples.
//
// Run more locally: STRATA_QDIFF_SEED=<n> (default 1), STRATA_QDIFF_QUERIES=<instant
// queries> (default 400; range queries are 3/8 of that) and STRATA_QDIFF_DEPTH=<nesting of
// instant vector expressions> (default 3). STRATA_QDIFF_GEN=1 draws queries as the
// generator did before 2026-12-03 (the seeds this header names are of that generator; 2,
// the default, adds tan and the inverse trigonometric and hyperbolic functions). STRATA_QDIFF_QUERY
// asks both one query; STRATA_QDIFF_HOLD=<seconds> keeps both peers running with the data, for
// asking by hand.
//
// STRATA_QDIFF_DAYS=<n> (CTest's e2e/promql_days_diff_test sets 3) makes the data n days long
// instead, ending at 18:00 UTC yesterday: the same series stretched (60 units of n×24
// minutes, intervals 4 times as long: 40 s to 2 min), so that series live across midnights
// (UTC days are Strata's partitions), stop with stale markers and come back hours later;
// plus series about midnights (AroundMidnights): one only on an old day, one away for a
// day, counters reset by each day's first sample, samples at and a millisecond around each
// midnight, raw extreme values, series idle for hours that come back after a restart.
// Queries then take windows, offsets and subquery ranges up to days (DayQueryTimes), `@`
// times anywhere in the data, and range queries up to 72 steps of up to 2 h; fixed requests
// (DaysHttpCases, CompareRemoteReads) ask for series, label names and values on old days and
// across midnights, queries to the millisecond around midnights, every sample of every
// series (query API and remote read, bit for bit). PromqlDays checks that Strata holds the
// data compacted, as flushed chunks and in its head (self-metrics and status/tsdb), and
// compares again after deletes (admin API) and a clean restart, after clean_tombstones, after
// SIGKILL and after more data written to the replayed head. Both are written in time order,
// in bodies of n×24 minutes: Prometheus 2.42 takes a sample no older than its head's newest
// minus an hour and no older than the end of its newest block (appendableMinValidTime); it
// cuts its head into 2 h blocks once the head spans 3 h, and merges blocks into 6 h and 18 h
// ones as it goes. Strata takes samples up to 24 h older than its newest. Default: 80
// instant and 30 range queries at each of four points (running, after the deletes, SIGTERM
// and clean_tombstones, after SIGKILL, after more data), the fixed requests at eight.
//
// The queries of a seed are the same in every run of one build (some generator calls are
// function arguments, whose order of evaluation is the compiler's: another compiler may draw
// other queries from the same seed).
//
// The peer is Prometheus 2.42 while Strata implements 3.x. Known 2.42-vs-3.x differences and
// 2.42 inconsistencies, and how this test keeps clear of them (nothing else is excused):
// - Left-open windows (3.0): the lookback, range selectors and subquery ranges are
//   `(t-d, t]` in 3.x and `[t-d, t]` in 2.42. Every sample timestamp has a millisecond phase
//   (SamplePhase) that is neither 0 nor 500; queries are evaluated at phase 500 (instant
//   times, range starts, `@` times), every duration is whole seconds, and subquery steps put
//   inner evaluations at phase 0. So a window edge (phase 0 or 500) never meets a sample. A
//   subquery nested in a subquery would have both its edge and its inner steps at phase 0:
//   the generator gives it `offset 500ms` (phase 500 again).
// - holt_winters became double_exponential_smoothing behind a feature flag; atan2 keeps the
//   metric name in 2.42 (prometheus#12595); functions new in 3.x (sort_by_label, mad_over_time,
//   ts_of_*, limitk, info, ...): not generated.
// - 3.x sums with Kahan compensation (sum, avg, *_over_time) and averages differently, and
//   Go's math library may be an ulp off glibc's: values are compared with a relative
//   tolerance of 1e-9; values that cancel to almost 0 also pass with an absolute difference
//   of at most kAbsTol (far below the data's resolution of 0.001). Where floor, round, %,
//   a comparison ... turn an ulp of an average into a different answer, both are asked
//   again with every avg/avg_over_time written as a sum over a count (AveragesAsSums),
//   which must agree. A sum's own ulp can do the same and has no rewrite: seed 1339 at
//   depth 4 takes `min(...) / (quantile(0.9, sum(node_cpu_seconds_total)) % (1e3 > bool
//   s))`, the fractional part of a sum of 12 counters; Strata's sum, 761129.062, is the
//   exact one (as 3.x's compensated sum), 2.42's plain sum an ulp below it. Seed 1630 takes
//   the cos of a sum of timestamps (about 1e11), seed 1859 `(avg(...) ^ 2) % 1` (the sum of
//   the rewrite is an ulp apart too), seed 1955 the delta of averages of timestamps (two
//   values near 1.8e9 an ulp apart, 2e-7, against a difference of 120).
// - 2.42's compensated sums (deriv, predict_linear's regression) turn an infinite term into
//   NaN (the compensation becomes Inf - Inf); 3.x keeps the compensation at 0 then, so a
//   window with +Inf among finite values can give ±Inf where 2.42 gives NaN: seed 1939,
//   `predict_linear(odd_values{kind="inf"}[5m] offset -2m, -1)`. Strata follows 3.x.
// - rate/increase extrapolation towards the window's start when the first sample lies more
//   than 1.1 average intervals after it (a series starts, a subquery's points have a gap,
//   or just jitter between samples): 3.x first cuts the extrapolation to half an average
//   interval and then to the counter's zero point, 2.42 the other way round, so they
//   differ when the zero point is nearer than the start. rate and increase are generated
//   only over range selectors of counters, which start far above 0 and whose resets keep
//   them far above 0 (zero points long before the window).
// - Floating-point differences also reach count_values' "value" label: it is compared as a
//   number with the same tolerance (CountValuesAgree), and "-0" and "0" count as one value
//   (seed 1730: 2.42 sums a lone -0 to -0, 3.x and Strata to 0).
// - In a range query, 2.42 answers predict_linear of a range selector with @ differently
//   from its own instant queries at the same times (Strata agrees with those): such range
//   results are compared with 2.42's instant answers at every step instead (where ours is
//   an error, one of those must be an error too), and inside a subquery (a range
//   evaluation too) predict_linear's argument carries no @.
// - 2.42 answers timestamp() of a selector with both @ and an offset longer than the
//   lookback with nothing, although `x @ t offset d` alone has samples: timestamp()'s
//   selector gets no offset when it has an @.
// - Go's math.Exp and Log may be an ulp off glibc's, and `%` or a trigonometric function of
//   a huge result turns that ulp into any value: `^` is generated only with an exponent of
//   0.5, an integer (Strata raises to those as Go's math.Pow does, query/go_math.h) or
//   -0.5, exp not at all. For the same reason `time() % v` (a remainder ill-conditioned in
//   v, where v may be an average or Go's tanh) is generated as `v % time()`. sinh and cosh
//   (Exp inside) are not generated either: with them (a trial of generator version 2,
//   seeds 5001-6100) 8 seeds in 1,100 differed, each a cos, sin, tan, `%` or cosh of a
//   result of exp, sinh or cosh of tens (seeds 5127, 5172, 5336, 5472, 5723, 6026, 6072 and
//   6081 of that trial). Three more were stdvar's own (below): 5435 (count_values of a
//   stdvar), 5724 (its cos), 6093 (`% 100`).
// - stddev/stdvar of values far from 0 relative to their spread is ill-conditioned (the
//   rounding error grows with (mean/stddev)^2) and the order in which a group's values are
//   visited is unspecified: relative tolerance 1e-5 for queries with stddev/stdvar, 1e-3
//   where they may see times (timestamp(), time()). No tolerance survives such a result
//   taken `% 0.001` or into cos: seeds 104 and 150, 229 at depth 5, 258 at depths 4-5, 1732
//   (stddev of values 1.8e9 from 0 and 1e-5 apart) and 1810 (`x % stdvar(deriv(up[7m]))`)
//   can differ there (depending on the data's start), with stddev/stdvar arguments that
//   agree to about 1e-15.
// - The stddev/stdvar aggregation of a group whose first value is NaN or ±Inf: 3.x NaN,
//   2.42 0 (KnownDifference).
// - One-to-one matching with a comparison that filters out all but one (or none) of several
//   left elements matching one right element: 3.x reports the many-to-one error
//   (operators.test, "track many-to-one vector matching errors even when all but 0 or 1
//   series on the "many" side are filtered away"), 2.42 answers with what the filter kept
//   (KnownDifference).
// - topk/bottomk/sort order equal values arbitrarily: a result order is compared only for a
//   top-level sort/sort_desc over distinct values; topk/bottomk are generated only as the
//   outermost expression, and when they picked different series among equal values, the
//   values at every timestamp must still agree (KnownDifference).
// - UTF-8 names (3.0): any valid UTF-8 string is a label name, so label_replace,
//   label_join and count_values accept destinations like "1x" (2.42: "invalid destination
//   label name"; functions.test now takes "\xff" as its invalid name where 2.42's took
//   "invalid-label-name"), and `{"up"}` selects a metric by a quoted name (2.42: a parse
//   error). The generator writes only names valid in both.
// - Deleted samples (admin delete_series) that a query's range ends among: 2.42 still answers
//   those of the chunk that starts inside the deleted range when that range covers the end
//   of one chunk and the start of the next inside one block. Seen with midnight_marks,
//   whose block chunks start at midnight: after deleting [m - 1 ms, m + 1 ms] for a midnight
//   m inside an 18 h block, `midnight_marks` at m and at m + 1 ms answers the deleted
//   samples at m and m + 1 ms, at m + 2 ms nothing (Strata: nothing at all three); for a
//   midnight where a block starts, and for a point deleted alone off a chunk boundary, both
//   agree. The multi-day test deletes only ranges no fixed query ends in, and asks its
//   random queries only after clean_tombstones (which rewrites the blocks without them).
// - The two series a many-to-many error names: 3.x lists them in label order, 2.42 the later
//   one first. Both take the first duplicates they meet going through the "one" side: a
//   selector's series in label order, a computed operand's in Go map order (any order).
//   Only whether both fail is compared.
// - A query_range whose query does not parse: 3.x answers `invalid parameter "query": ...`
//   as for an instant query (web/api/v1 invalidParamError), 2.42 without the prefix. Only
//   whether both fail is compared.
// Not a 2.42-vs-3.x difference but one between Strata and every Prometheus:
// - -0 in remote read's sampled responses: Prometheus' generated prompb marshaller writes a
//   Sample's value only when `m.Value != 0`, so a stored -0 reaches the client as 0 (and
//   the query API's "-0" as well as Strata's remote read keep the sign). Remote read
//   compares -0 as 0.
// - /api/v1/series, labels and label values with start/end: Prometheus answers from whole
//   chunks (series) and whole blocks or its head (label names and values, with or without
//   match[]; prometheus#7288 "allow for false positives when the time doesn't exactly align
//   with a block", and 3.x's docs, prometheus#17217), Strata from samples (series, and label
//   names and values with match[]) or from its head and partitions (without match[]). So
//   `labels?match[]=legacy_gauge` over hours of the 18 h block that holds legacy_gauge's 6 h
//   but not those hours answers __name__ and job for Prometheus, nothing for Strata; and
//   right after a backfill, before Strata's first flush, its head still holds
//   days-old series (Prometheus' the last 1-3 h), which Strata then lists for windows on the
//   last hours without match[]. Prometheus' label names and values also list a series whose
//   samples are all deleted (until clean_tombstones rewrites its blocks); Strata does not,
//   and once any tombstone exists it answers them without match[] from samples too. So
//   label requests without match[] ask for all of the data, those with match[] for windows
//   that hold all of legacy_gauge's samples and meet no block or partition without the
//   other series selected (DaysHttpCases), none select a wholly deleted series where that
//   matters, and the comparison waits for Strata's first flush (PromqlDays).
// - Date functions (hour, minute, month, ...) of NaN or ±Inf: Prometheus converts the value
//   with Go's int64(float64), whose result for those is implementation-specific (on amd64
//   the minimum int64, a date billions of years ago); Strata answers NaN. Date functions
//   are generated over sample times and the data's finite values only.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "snappy.h"
#include "tests/e2e/peers.h"
#include "tests/e2e/result_compare.h"
#include "tests/server/remote_write_sender.h"

namespace strata::e2e {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;
using Params = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr double kAbsTol = 1e-9;
constexpr int64_t kMinute = 60'000;

// splitmix64: the same sequence on every platform for a seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int Uniform(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Uniform(100) < percent; }
  double Real() { return static_cast<double>(Next() >> 11) / 9007199254740992.0; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(static_cast<int>(v.size()))];
  }

 private:
  uint64_t state_;
};

// ---- The data ----

struct SynthSeries {
  Labels labels;  // sorted by name
  std::vector<std::pair<int64_t, double>> samples;
};

double StaleNaN() {
  uint64_t bits = 0x7ff0000000000002ULL;
  double v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

// A sample time's millisecond phase: never 0 or 500 (the phases of window edges, see above).
int64_t SamplePhase(Rng& rng) {
  int64_t p = 20 + rng.Uniform(460);
  return rng.Chance(50) ? p : p + 500;
}

// Three decimals: the data's resolution.
double Round3(double v) { return std::round(v * 1000) / 1000; }

constexpr int64_t kDay = 24 * 60 * kMinute;

// The data's time scale. The one-hour data: 60 units of a minute, samples 10 to 30 s apart.
// The multi-day data: 60 units of `days` * 24 minutes, every interval 4 times as long.
struct DataSpan {
  int64_t t0 = 0;  // the first sample's whole unit
  int64_t unit = kMinute;
  int64_t interval_scale = 1;
  bool days() const { return unit > kMinute; }
  int64_t end() const { return t0 + 60 * unit; }
};

class SyntheticData {
 public:
  // The data covers [span.t0, span.end()).
  explicit SyntheticData(const DataSpan& span)
      : t0_(span.t0), unit_(span.unit), interval_scale_(span.interval_scale) {
    Rng rng(42);
    for (std::string job : {"api", "web"}) {
      for (std::string inst : {"10.0.0.1:80", "10.0.0.2:80"}) {
        for (auto [code, method] : std::vector<std::pair<std::string, std::string>>{
                 {"200", "get"}, {"200", "post"}, {"404", "get"}, {"500", "post"}}) {
          Counter(rng,
                  {{"__name__", "http_requests_total"},
                   {"code", code},
                   {"instance", inst},
                   {"job", job},
                   {"method", method}},
                  15'000, 0, 60, code == "200" ? 20 : 2);
        }
        Gauge(rng, {{"__name__", "queue_length"}, {"instance", inst}, {"job", job}}, 15'000, 0, 60,
              true);
        Up(rng, job, inst);
      }
      Histogram(rng, job);
    }
    for (std::string inst : {"a:9100", "b:9100"}) {
      for (std::string cpu : {"0", "1"}) {
        for (std::string mode : {"idle", "user", "system"}) {
          Counter(rng,
                  {{"__name__", "node_cpu_seconds_total"},
                   {"cpu", cpu},
                   {"instance", inst},
                   {"job", "node"},
                   {"mode", mode}},
                  10'000, 0, 60, mode == "idle" ? 10 : 3);
        }
      }
      for (std::string sensor : {"inlet", "outlet", "cpu"}) {
        Gauge(rng,
              {{"__name__", "temperature_celsius"},
               {"instance", inst},
               {"job", "env"},
               {"sensor", sensor}},
              15'000, 0, 60, false);
      }
    }
    // Series with gaps longer than the lookback, one that ends with a stale marker, one that
    // starts late.
    Labels batch = {{"__name__", "batch_duration_seconds"}, {"instance", "x"}, {"job", "batch"}};
    Gauge(rng, batch, 30'000, 0, 20, false);
    Gauge(rng, batch, 30'000, 32, 45, false, /*append=*/true);
    batch[1].second = "y";
    Gauge(rng, batch, 30'000, 5, 50, false);
    series_.back().samples.emplace_back(t0_ + 50 * unit_ + SamplePhase(rng), StaleNaN());
    batch[1].second = "z";
    Gauge(rng, batch, 30'000, 40, 60, false);
    // NaN and +Inf values (stored alike by both).
    for (std::string kind : {"nan", "inf"}) {
      Gauge(rng, {{"__name__", "odd_values"}, {"job", "odd"}, {"kind", kind}}, 15'000, 0, 60,
            false);
      auto& s = series_.back().samples;
      for (size_t i = 3; i < s.size(); i += kind == "nan" ? 7 : 11) {
        s[i].second = kind == "nan" ? std::nan("") : HUGE_VAL;
      }
    }
    if (span.days()) AroundMidnights(rng);
  }

  const std::vector<SynthSeries>& series() const { return series_; }

  // Remote-write bodies for the samples in [from, to), each of `length` (5 minutes, or one
  // unit of the multi-day data), in time order: Prometheus' head accepts samples at most an
  // hour older than its newest, so all series advance together.
  std::vector<std::string> Bodies(int64_t from_ms, int64_t to_ms, int64_t length) const {
    std::vector<std::string> bodies;
    for (int64_t from = from_ms; from < to_ms; from += length) {
      test::WriteRequest req;
      for (const SynthSeries& s : series_) {
        std::vector<std::pair<int64_t, double>> part;
        for (const auto& smp : s.samples) {
          if (smp.first >= from && smp.first < std::min(from + length, to_ms)) {
            part.push_back(smp);
          }
        }
        if (!part.empty()) testing::AddSeries(&req, s.labels, part);
      }
      if (req.timeseries_size() > 0) bodies.push_back(testing::EncodeRemoteWriteBody(req));
    }
    return bodies;
  }

  // Label names and values per metric name, for the query generator.
  std::map<std::string, std::map<std::string, std::set<std::string>>> Catalog() const {
    std::map<std::string, std::map<std::string, std::set<std::string>>> c;
    for (const SynthSeries& s : series_) {
      // Fixed queries only (DaysHttpCases).
      if (s.labels[0].second == "midnight_marks" || s.labels[0].second == "raw_values") continue;
      for (const auto& [k, v] : s.labels) {
        if (k != "__name__") c[s.labels[0].second][k].insert(v);
      }
      c[s.labels[0].second];
    }
    return c;
  }

 private:
  // Sample times from unit `from` to unit `to` of the data, `interval` (of the one-hour data)
  // apart, each with its own millisecond phase.
  std::vector<int64_t> Times(Rng& rng, int64_t interval, int from, int to) {
    return TimesIn(rng, interval * interval_scale_, t0_ + from * unit_, t0_ + to * unit_);
  }
  static std::vector<int64_t> TimesIn(Rng& rng, int64_t interval, int64_t from, int64_t to) {
    std::vector<int64_t> ts;
    for (int64_t t = from; t < to; t += interval) ts.push_back(t + SamplePhase(rng));
    return ts;
  }
  void Counter(Rng& rng, Labels labels, int64_t interval, int from, int to, double rate) {
    SynthSeries s{std::move(labels), {}};
    double v = Round3(1e4 + rng.Real() * 1e5);  // high: see rate/increase in the header
    for (int64_t t : Times(rng, interval, from, to)) {
      if (rng.Chance(2)) {
        v = Round3(v * (0.5 + 0.3 * rng.Real()));  // a reset, to far above 0 still
      } else {
        v = Round3(v + rng.Real() * rate);
      }
      s.samples.emplace_back(t, v);
    }
    series_.push_back(std::move(s));
  }
  void Gauge(Rng& rng, Labels labels, int64_t interval, int from, int to, bool integer,
             bool append = false) {
    if (!append) series_.push_back(SynthSeries{std::move(labels), {}});
    SynthSeries& s = series_.back();
    double v = integer ? rng.Uniform(20) : Round3(rng.Real() * 40 - 20);
    for (int64_t t : Times(rng, interval, from, to)) {
      v = integer ? std::max(0.0, v + rng.Uniform(7) - 3) : Round3(v + rng.Real() * 6 - 3);
      s.samples.emplace_back(t, v);
    }
  }
  // 1 while up, 0 for a while, and instance 2 of web is gone (stale marker) from minute 30 to
  // minute 40.
  void Up(Rng& rng, const std::string& job, const std::string& inst) {
    SynthSeries s{{{"__name__", "up"}, {"instance", inst}, {"job", job}}, {}};
    bool gone_one = job == "web" && inst == "10.0.0.2:80";
    for (int64_t t : Times(rng, 15'000, 0, 60)) {
      int64_t minute = (t - t0_) / unit_;
      if (gone_one && minute >= 30 && minute < 40) {
        if (s.samples.empty() || !std::isnan(s.samples.back().second)) {
          s.samples.emplace_back(t, StaleNaN());
        }
        continue;
      }
      s.samples.emplace_back(t, rng.Chance(5) ? 0 : 1);
    }
    series_.push_back(std::move(s));
  }
  void Histogram(Rng& rng, const std::string& job) {
    const std::vector<std::string> les = {"0.05", "0.1", "0.5", "1", "5", "+Inf"};
    const std::vector<double> bounds = {0.05, 0.1, 0.5, 1, 5, HUGE_VAL};
    std::vector<SynthSeries> buckets;
    for (const std::string& le : les) {
      buckets.push_back(
          {{{"__name__", "request_duration_seconds_bucket"}, {"job", job}, {"le", le}}, {}});
    }
    SynthSeries sum{{{"__name__", "request_duration_seconds_sum"}, {"job", job}}, {}};
    SynthSeries count{{{"__name__", "request_duration_seconds_count"}, {"job", job}}, {}};
    // Counted since long before the data starts (see rate/increase in the header).
    std::vector<double> cum(les.size());
    for (size_t b = 0; b < les.size(); ++b) cum[b] = 20000 + 3000.0 * static_cast<double>(b);
    double total = 40000;
    for (int64_t t : Times(rng, 15'000, 0, 60)) {
      int n = rng.Uniform(30);
      for (int i = 0; i < n; ++i) {
        double obs = Round3(std::pow(rng.Real(), 3) * 8);
        total += obs;
        for (size_t b = 0; b < bounds.size(); ++b) {
          if (obs <= bounds[b]) cum[b] += 1;
        }
      }
      for (size_t b = 0; b < les.size(); ++b) buckets[b].samples.emplace_back(t, cum[b]);
      sum.samples.emplace_back(t, Round3(total));
      count.samples.emplace_back(t, cum.back());
    }
    for (auto& b : buckets) series_.push_back(std::move(b));
    series_.push_back(std::move(sum));
    series_.push_back(std::move(count));
  }

  // The multi-day data's series about partition (UTC day) edges. Day 1 is the first whole
  // day of the data, a compacted partition (see DaysEnvironment); day 2 is flushed only.
  void AroundMidnights(Rng& rng) {
    const int64_t day1 = (t0_ / kDay + 1) * kDay, day2 = day1 + kDay, end = t0_ + 60 * unit_;
    // Only on day 1.
    SynthSeries legacy{{{"__name__", "legacy_gauge"}, {"job", "legacy"}}, {}};
    for (int64_t t : TimesIn(rng, kMinute, day1 + 6 * 60 * kMinute, day1 + 12 * 60 * kMinute)) {
      legacy.samples.emplace_back(t, Round3(rng.Real() * 10));
    }
    series_.push_back(std::move(legacy));
    // Ends with a stale marker on day 1, back on day 2 until the end.
    SynthSeries session{{{"__name__", "session_active"}, {"job", "batch"}}, {}};
    for (int64_t t : TimesIn(rng, kMinute, day1 + 12 * 60 * kMinute, day1 + 20 * 60 * kMinute)) {
      session.samples.emplace_back(t, rng.Uniform(5));
    }
    session.samples.emplace_back(day1 + 20 * 60 * kMinute + SamplePhase(rng), StaleNaN());
    for (int64_t t : TimesIn(rng, kMinute, day2 + 20 * 60 * kMinute, t0_ + 60 * unit_)) {
      session.samples.emplace_back(t, rng.Uniform(5));
    }
    series_.push_back(std::move(session));
    // Away from 3 hours before the end (idle: flushed and out of Strata's head before the
    // first restart), back for the last 30 minutes (written before the SIGKILL) or 15
    // (after it).
    for (int64_t back : {30, 15}) {
      SynthSeries s{{{"__name__", "session_active"},
                     {"instance", fmt::format("back_{}m", back)},
                     {"job", "batch"}},
                    {}};
      for (int64_t t : TimesIn(rng, kMinute, end - 9 * 60 * kMinute, end - 3 * 60 * kMinute)) {
        s.samples.emplace_back(t, rng.Uniform(5));
      }
      for (int64_t t : TimesIn(rng, kMinute, end - back * kMinute, end)) {
        s.samples.emplace_back(t, rng.Uniform(5));
      }
      series_.push_back(std::move(s));
    }
    // Samples at every midnight (phase 0) and a millisecond either side, and every 10 minutes
    // around them: for the fixed queries of DaysHttpCases only (the generator's subqueries put
    // window edges at phase 0).
    SynthSeries marks{{{"__name__", "midnight_marks"}, {"job", "edge"}}, {}};
    for (int64_t midnight = day1; midnight < end; midnight += kDay) {
      for (int64_t t = midnight - 20 * kMinute + 300; t < midnight; t += 10 * kMinute) {
        marks.samples.emplace_back(t, Round3(rng.Real() * 10));
      }
      for (int64_t t : {midnight - 1, midnight, midnight + 1}) {
        marks.samples.emplace_back(t, Round3(rng.Real() * 10));
      }
      for (int64_t t = midnight + 10 * kMinute + 300; t < midnight + 30 * kMinute;
           t += 10 * kMinute) {
        marks.samples.emplace_back(t, Round3(rng.Real() * 10));
      }
    }
    series_.push_back(std::move(marks));
    // Values that the stored encodings (XOR chunks, compacted blocks) must keep bit for bit:
    // extremes, subnormals, -0, integers beyond 2^53, NaN and ±Inf, runs of one value and of
    // integers with huge steps. Fixed queries ask for them raw (their sums depend on the
    // order of addition, which 2.42 and 3.x do differently).
    const std::vector<double> specials = {0.0,
                                          -0.0,
                                          5e-324,
                                          -5e-324,
                                          2.2250738585072014e-308,
                                          1.7976931348623157e308,
                                          -1.7976931348623157e308,
                                          9007199254740993.0,
                                          -9007199254740991.0,
                                          1e15 + 0.3,
                                          0.1 + 0.2,
                                          -1e-300,
                                          123456789.123456789,
                                          4503599627370495.5,
                                          std::nan(""),
                                          HUGE_VAL,
                                          -HUGE_VAL};
    SynthSeries raw{{{"__name__", "raw_values"}, {"job", "odd"}}, {}};
    double v = 0;
    for (int64_t t : TimesIn(rng, kMinute, t0_, end)) {
      int r = rng.Uniform(10);
      if (r < 4) {
        v = rng.Pick(specials);
      } else if (r < 7) {
        v = static_cast<double>(static_cast<int64_t>(rng.Next() >> rng.Uniform(64))) *
            (rng.Chance(50) ? 1 : -1);
      }  // else the same value again
      raw.samples.emplace_back(t, v);
    }
    series_.push_back(std::move(raw));
    // A counter reset by the first sample of every day, to far above 0 still (see rate and
    // increase in the header).
    for (std::string job : {"api", "web"}) {
      SynthSeries s{{{"__name__", "midnight_resets_total"}, {"job", job}}, {}};
      double v = Round3(1e4 + rng.Real() * 1e5);
      for (int64_t t : TimesIn(rng, kMinute, t0_, t0_ + 60 * unit_)) {
        bool new_day = !s.samples.empty() && t / kDay != s.samples.back().first / kDay;
        v = new_day ? Round3(v * 0.6) : Round3(v + rng.Real() * 5);
        s.samples.emplace_back(t, v);
      }
      series_.push_back(std::move(s));
    }
  }

  int64_t t0_, unit_, interval_scale_;
  std::vector<SynthSeries> series_;
};

// ---- The query generator ----

using Catalog = std::map<std::string, std::map<std::string, std::set<std::string>>>;

// The times and durations that queries over some data use (all whole seconds, see the
// header).
struct QueryTimes {
  int64_t t0 = 0;      // the data's start
  int64_t span_s = 0;  // the data's length
  std::vector<std::string> durations;
  std::vector<std::string> inner_durations;  // of range selectors inside a subquery
  std::vector<std::string> offsets;
  std::vector<std::string> subquery_ranges, subquery_steps;
  std::vector<int64_t> range_steps_s;  // of range queries
  int max_range_steps = 0;
};

// The one-hour data's: windows and offsets of minutes.
QueryTimes HourQueryTimes(int64_t t0) {
  std::vector<std::string> durations = {"30s", "1m", "2m", "90s", "5m", "10m", "7m"};
  return {.t0 = t0,
          .span_s = 3600,
          .durations = durations,
          .inner_durations = durations,
          .offsets = {"30s", "1m", "5m", "7m30s", "-1m", "-2m"},
          .subquery_ranges = {"2m", "5m", "10m", "4m"},
          .subquery_steps = {"", "15s", "30s", "1m", "2m"},
          .range_steps_s = {15, 30, 60, 97, 300},
          .max_range_steps = 60};
}

// The multi-day data's: windows, offsets, subqueries and range queries up to days, across
// midnights (partition edges); short windows inside subqueries, whose steps repeat them.
QueryTimes DayQueryTimes(const DataSpan& span) {
  return {.t0 = span.t0,
          .span_s = (span.end() - span.t0) / 1000,
          .durations = {"5m", "10m", "1h", "90m", "6h", "1d", "25h"},
          .inner_durations = {"2m", "5m", "10m", "1h"},
          .offsets = {"5m", "1h", "-1h", "12h", "1d", "-1d", "36h"},
          .subquery_ranges = {"1h", "6h", "1d", "3h"},
          .subquery_steps = {"5m", "15m", "1h", "37m"},
          .range_steps_s = {60, 300, 900, 3600, 97, 7200},
          .max_range_steps = 72};
}

// Random PromQL over the catalog's metrics. Instant vector expressions nest at most
// `max_depth` deep. All durations are whole seconds; see the header for the phases.
class QueryGen {
 public:
  QueryGen(uint64_t seed, const Catalog& catalog, const QueryTimes& times, int max_depth,
           int version)
      : rng_(seed), catalog_(catalog), times_(times), max_depth_(max_depth), version_(version) {
    for (const auto& [name, labels] : catalog_) metrics_.push_back(name);
    if (catalog_.contains("midnight_resets_total")) counters_.push_back("midnight_resets_total");
  }

  std::string Query() {
    phase_zero_ = false;
    family_.clear();
    int r = rng_.Uniform(100);
    if (r < 4) return Scalar(max_depth_ - 1);
    return Vector(max_depth_);
  }

 private:
  std::string Vector(int depth) {
    if (depth <= 0) return Selector();
    int r = rng_.Uniform(100);
    if (r < 14) return Selector();
    if (r < 34) return RangeFunction(depth);
    if (r < 50) return InstantFunction(depth);
    if (r < 68) return Aggregation(depth);
    if (r < 84) return VectorBinary(depth);
    if (r < 94) return ScalarBinary(depth);
    if (r < 96) return fmt::format("vector({})", Scalar(depth - 1));
    if (r < 98) return fmt::format("-{}", Paren(Vector(depth - 1)));
    return fmt::format("({})", Vector(depth - 1));
  }

  // Wraps anything but a selector or call in parentheses.
  std::string Paren(const std::string& e) {
    bool simple = std::all_of(e.begin(), e.end(), [](char c) { return c != ' '; });
    return simple ? e : "(" + e + ")";
  }

  // Inside a binary operator both sides mostly use the same metric, so that they match.
  std::string Metric() {
    if (!family_.empty() && rng_.Chance(70)) return family_;
    return rng_.Pick(metrics_);
  }
  std::string Label(const std::string& metric) {
    std::vector<std::string> names;
    for (const auto& [k, v] : catalog_.at(metric)) names.push_back(k);
    if (names.empty() || rng_.Chance(5)) return rng_.Pick(std::vector<std::string>{"job", "nope"});
    return rng_.Pick(names);
  }
  std::string Value(const std::string& metric, const std::string& label) {
    auto it = catalog_.at(metric).find(label);
    if (it == catalog_.at(metric).end() || rng_.Chance(4)) return "none";
    std::vector<std::string> values(it->second.begin(), it->second.end());
    return rng_.Pick(values);
  }
  std::string Regex(const std::string& metric, const std::string& label) {
    switch (rng_.Uniform(5)) {
      case 0:
        return Value(metric, label) + "|" + Value(metric, label);
      case 1: {
        std::string v = Value(metric, label);
        return v.substr(0, 1 + rng_.Uniform(static_cast<int>(v.size()))) + ".*";
      }
      case 2:
        return ".+";
      case 3:
        return "";
      default:
        return Value(metric, label);
    }
  }
  std::string Matchers(const std::string& metric) {
    int n = rng_.Chance(40) ? 0 : 1 + rng_.Uniform(2);
    std::vector<std::string> ms;
    for (int i = 0; i < n; ++i) {
      std::string label = Label(metric);
      switch (rng_.Uniform(4)) {
        case 0:
          ms.push_back(fmt::format("{}=\"{}\"", label, Value(metric, label)));
          break;
        case 1:
          ms.push_back(fmt::format("{}!=\"{}\"", label, Value(metric, label)));
          break;
        case 2:
          ms.push_back(fmt::format("{}=~\"{}\"", label, Regex(metric, label)));
          break;
        default:
          ms.push_back(fmt::format("{}!~\"{}\"", label, Regex(metric, label)));
          break;
      }
    }
    std::string out;
    for (const std::string& m : ms) out += (out.empty() ? "" : ", ") + m;
    return out;
  }
  // A time with phase 500 (see the header), inside or around the data.
  std::string AtTime() {
    const int span = static_cast<int>(times_.span_s);
    int64_t ms = times_.t0 + (rng_.Uniform(span * 66 / 60) - span / 60) * 1000 + 500;
    return fmt::format("{}.{:03}", ms / 1000, ms % 1000);
  }
  // offset and @ modifiers of a selector or subquery. `subquery_at_phase_zero`: for a
  // subquery evaluated at subquery steps, whose edges must leave phase 0 (see the header):
  // without an @ (phase 500) it gets `offset 500ms`.
  std::string Modifiers(bool subquery_at_phase_zero = false) {
    std::string out;
    bool at = rng_.Chance(12) && !no_at_;
    if (at) {
      int r = rng_.Uniform(4);
      out += r == 0 ? " @ start()" : r == 1 ? " @ end()" : " @ " + AtTime();
    }
    if (subquery_at_phase_zero && !at) {
      out += " offset 500ms";
    } else if (rng_.Chance(12)) {
      out += fmt::format(" offset {}", rng_.Pick(times_.offsets));
    }
    return out;
  }
  // `odd`: odd_values (NaN and +Inf samples) may be chosen.
  std::string Selector(bool odd = true) {
    std::string metric = Metric();
    while (!odd && metric == "odd_values") metric = Metric();
    std::string m = Matchers(metric);
    std::string sel;
    if (odd && rng_.Chance(6)) {
      sel = fmt::format("{{__name__=~\"{}\"{}{}}}",
                        rng_.Pick(std::vector<std::string>{"http.*", "request_duration.*",
                                                           "up|queue_length", ".*temp.*"}),
                        m.empty() ? "" : ", ", m);
    } else {
      sel = m.empty() ? metric : fmt::format("{}{{{}}}", metric, m);
    }
    return sel + Modifiers();
  }
  std::string Duration() {
    return rng_.Pick(phase_zero_ ? times_.inner_durations : times_.durations);
  }
  // A range vector: a selector with a range, or a subquery.
  std::string RangeArg(int depth) {
    if (depth <= 1 || rng_.Chance(75)) {
      std::string metric = Metric();
      std::string m = Matchers(metric);
      std::string mods = Modifiers();
      return fmt::format("{}{}[{}]{}", metric, m.empty() ? "" : "{" + m + "}", Duration(), mods);
    }
    bool outer_phase_zero = phase_zero_;
    std::string mods = Modifiers(phase_zero_);
    phase_zero_ = true;
    std::string inner = Vector(depth - 1);
    phase_zero_ = outer_phase_zero;
    std::string step = rng_.Pick(times_.subquery_steps);
    return fmt::format("{}[{}:{}]{}", Paren(inner), rng_.Pick(times_.subquery_ranges), step, mods);
  }
  std::string RangeFunction(int depth) {
    static const std::vector<std::string> plain = {"irate",
                                                   "delta",
                                                   "idelta",
                                                   "deriv",
                                                   "resets",
                                                   "changes",
                                                   "avg_over_time",
                                                   "min_over_time",
                                                   "max_over_time",
                                                   "sum_over_time",
                                                   "count_over_time",
                                                   "last_over_time",
                                                   "present_over_time",
                                                   "stddev_over_time",
                                                   "stdvar_over_time",
                                                   "absent_over_time"};
    int r = rng_.Uniform(100);
    if (r < 10) {
      // Counter rates only over counters read directly (see the header).
      std::string metric = rng_.Pick(counters_);
      std::string m = Matchers(metric);
      return fmt::format("{}({}{}[{}]{})", rng_.Chance(50) ? "rate" : "increase", metric,
                         m.empty() ? "" : "{" + m + "}", Duration(), Modifiers());
    }
    if (r < 16) {
      // Inside a subquery 2.42's predict_linear of an argument with @ is off (see the
      // header): no @ there.
      bool outer_no_at = no_at_;
      no_at_ = phase_zero_;
      std::string arg = RangeArg(depth);
      no_at_ = outer_no_at;
      return fmt::format("predict_linear({}, {})", arg, Number());
    }
    if (r < 22) return fmt::format("quantile_over_time({}, {})", Quantile(), RangeArg(depth));
    return fmt::format("{}({})", rng_.Pick(plain), RangeArg(depth));
  }
  std::string Number() {
    return rng_.Pick(std::vector<std::string>{"0", "1", "2", "-1", "0.5", "3", "10", "100", "-2.5",
                                              "60", "1e3", "0.001"});
  }
  std::string Quantile() {
    return rng_.Pick(
        std::vector<std::string>{"0", "0.5", "0.9", "0.99", "1", "0.25", "-0.5", "1.5"});
  }
  std::string AnyLabel() {
    return rng_.Pick(std::vector<std::string>{"job", "instance", "code", "method", "mode", "cpu",
                                              "sensor", "le", "kind", "__name__"});
  }
  std::string LabelList() {
    int n = rng_.Uniform(3);
    std::string out;
    for (int i = 0; i < n; ++i) out += (i ? ", " : "") + AnyLabel();
    return out;
  }
  std::string InstantFunction(int depth) {
    static const std::vector<std::string> math_v1 = {
        "abs", "ceil", "floor", "ln",   "log2", "log10",     "sqrt",   "sgn",  "round",    "deg",
        "rad", "sin",  "cos",   "atan", "tanh", "timestamp", "absent", "sort", "sort_desc"};
    static const std::vector<std::string> math_v2 = [] {
      std::vector<std::string> m = math_v1;
      // Not exp, sinh or cosh: they grow a last-bit difference between Go's Exp and
      // glibc's (see the header) into any answer through cos, sin or %.
      for (const char* f : {"tan", "asin", "acos", "asinh", "acosh", "atanh"}) {
        m.push_back(f);
      }
      return m;
    }();
    const std::vector<std::string>& math = version_ >= 2 ? math_v2 : math_v1;
    static const std::vector<std::string> date = {
        "hour", "minute", "month", "day_of_week", "day_of_month", "year", "days_in_month"};
    std::string v = Vector(depth - 1);
    switch (rng_.Uniform(13)) {
      case 0:
        return fmt::format("clamp({}, {}, {})", v, Number(), Number());
      case 1:
        return fmt::format("{}({}, {})", rng_.Chance(50) ? "clamp_min" : "clamp_max", v, Number());
      case 2:
        return fmt::format("round({}, {})", v,
                           rng_.Pick(std::vector<std::string>{"0.1", "5", "0.25", "2"}));
      case 3:
        return fmt::format("label_replace({}, \"{}\", \"$1{}\", \"{}\", \"{}\")", v,
                           rng_.Pick(std::vector<std::string>{"dst", "job", "instance"}),
                           rng_.Chance(50) ? "" : "-x", AnyLabel(),
                           rng_.Pick(std::vector<std::string>{"(.*)", "([a-z]+).*", "(.*):.*",
                                                              "1(.)", "nomatch(.*)"}));
      case 4:
        return fmt::format("label_join({}, \"{}\", \"{}\", \"{}\", \"{}\")", v,
                           rng_.Pick(std::vector<std::string>{"joined", "job"}),
                           rng_.Pick(std::vector<std::string>{"-", "", ","}), AnyLabel(),
                           AnyLabel());
      case 5: {
        std::string by = rng_.Chance(70) ? "le" : "le, job";
        return fmt::format(
            "histogram_quantile({}, sum by ({}) (rate(request_duration_seconds_bucket{}[{}])))",
            Quantile(), by, rng_.Chance(30) ? "{job=\"api\"}" : "", Duration());
      }
      case 6:
        return fmt::format("{}()", rng_.Pick(date));
      case 7:
        // Date functions of times only: see the header (NaN and ±Inf arguments).
        return fmt::format(
            "{}({})", rng_.Pick(date),
            rng_.Chance(50) ? "timestamp(" + TimestampArg(Selector(false)) + ")" : Selector(false));
      default: {
        std::string f = rng_.Pick(math);
        if (f == "timestamp") v = Paren(TimestampArg(v));
        return fmt::format("{}({})", f, v);
      }
    }
  }
  // 2.42 answers timestamp() of a selector with both @ and an offset longer than the
  // lookback with nothing (its own `x @ t offset d` has the samples): no offset then.
  std::string TimestampArg(std::string e) {
    std::string shape = e;  // without start(), end() and parentheses around all of it
    for (std::string_view f : {"start()", "end()"}) {
      for (size_t at; (at = shape.find(f)) != std::string::npos;) shape.erase(at, f.size());
    }
    while (shape.starts_with('(') && shape.ends_with(')'))
      shape = shape.substr(1, shape.size() - 2);
    size_t offset = e.find(" offset ");
    if (shape.find('(') == std::string::npos && e.find(" @ ") != std::string::npos &&
        offset != std::string::npos) {
      size_t close = e.find(')', offset);
      e.erase(offset, close == std::string::npos ? std::string::npos : close - offset);
    }
    return e;
  }
  std::string Aggregation(int depth) {
    static const std::vector<std::string> simple = {"sum",   "avg",    "min",    "max",
                                                    "count", "stddev", "stdvar", "group"};
    std::string v = Vector(depth - 1);
    std::string grouping;
    if (rng_.Chance(60)) {
      grouping = fmt::format(" {} ({})", rng_.Chance(70) ? "by" : "without", LabelList());
    }
    int r = rng_.Uniform(100);
    // topk/bottomk only outermost, where a tie is recognised (see the header).
    if (r < 12 && depth == max_depth_) {
      return fmt::format("{}{}({}, {})", rng_.Chance(50) ? "topk" : "bottomk", grouping,
                         1 + rng_.Uniform(3), v);
    }
    if (r < 20) return fmt::format("quantile{}({}, {})", grouping, Quantile(), v);
    if (r < 26) return fmt::format("count_values{}(\"value\", {})", grouping, v);
    return fmt::format("{}{}({})", rng_.Pick(simple), grouping, v);
  }
  std::string VectorBinary(int depth) {
    static const std::vector<std::string> arith = {"+", "-", "*", "/", "%"};
    static const std::vector<std::string> cmp = {"==", "!=", ">", "<", ">=", "<="};
    static const std::vector<std::string> set = {"and", "or", "unless"};
    std::string outer_family = family_;
    if (family_.empty() && rng_.Chance(60)) family_ = rng_.Pick(metrics_);
    std::string lhs = Vector(depth - 1), rhs = Vector(depth - 1);
    family_ = outer_family;
    int kind = rng_.Uniform(10);
    std::string op = kind < 4 ? rng_.Pick(arith) : kind < 7 ? rng_.Pick(cmp) : rng_.Pick(set);
    if (kind >= 4 && kind < 7 && rng_.Chance(40)) op += " bool";
    std::string matching;
    int m = rng_.Uniform(10);
    if (m < 3) {
      matching = fmt::format(" on({})", LabelList());
    } else if (m < 5) {
      matching = fmt::format(" ignoring({})", LabelList());
    }
    if (!matching.empty() && kind < 7 && rng_.Chance(35)) {
      matching += fmt::format(" {}", rng_.Chance(50) ? "group_left" : "group_right");
      if (rng_.Chance(40)) matching += fmt::format("({})", AnyLabel());
    }
    return fmt::format("{} {}{} {}", Paren(lhs), op, matching, Paren(rhs));
  }
  // Exponents that Go's math.Pow takes without its Exp and Log: integers and ±0.5.
  inline static const std::vector<std::string> kExponents = {"0.5", "-0.5", "2",  "3",
                                                             "-1",  "-2",   "-3", "4"};
  std::string ScalarBinary(int depth) {
    static const std::vector<std::string> ops = {"+",  "-",  "*",      "/",       "%",
                                                 "^",  "==", "!=",     ">",       "<",
                                                 ">=", "<=", "> bool", "== bool", "< bool"};
    std::string v = Paren(Vector(depth - 1)), s = Scalar(depth - 1), op = rng_.Pick(ops);
    if (s.find(' ') != std::string::npos) s = "(" + s + ")";
    // Powers only as vector ^ an exponent that Go's math.Pow takes without its Exp and Log
    // (see the header).
    if (op == "^") {
      return fmt::format("{} ^ {}", v, rng_.Pick(kExponents));
    }
    // `time() % v` divides a huge number by a small one: the remainder is ill-conditioned
    // in v, so an ulp of an average or of Go's tanh turns into any value. The vector
    // goes left then.
    if (op == "%" && s.find("time()") != std::string::npos) return fmt::format("{} % {}", v, s);
    return rng_.Chance(50) ? fmt::format("{} {} {}", v, op, s) : fmt::format("{} {} {}", s, op, v);
  }
  std::string Scalar(int depth) {
    int r = rng_.Uniform(100);
    if (depth <= 0 || r < 50) return Number();
    if (r < 62) return "time()";
    if (r < 66) return "pi()";
    if (r < 86) return fmt::format("scalar({})", Vector(depth - 1));
    std::string op = rng_.Pick(std::vector<std::string>{"+", "*", "-", "/", "^", "> bool"});
    // Powers as in ScalarBinary (`100 ^ -2.5` and `1e3 ^ pi()` go through Go's own Exp and
    // Log, an ulp off glibc's, which `%` shows).
    if (op == "^") return fmt::format("{} ^ {}", Number(), rng_.Pick(kExponents));
    return fmt::format("{} {} {}", Number(), op, Scalar(depth - 1));
  }

  Rng rng_;
  Catalog catalog_;
  QueryTimes times_;
  int max_depth_;
  int version_;  // STRATA_QDIFF_GEN
  std::vector<std::string> metrics_;
  std::vector<std::string> counters_ = {
      "http_requests_total", "node_cpu_seconds_total", "request_duration_seconds_bucket",
      "request_duration_seconds_sum", "request_duration_seconds_count"};
  bool phase_zero_ = false;  // evaluated at subquery steps (phase 0 times)
  std::string family_;       // the metric both sides of a binary operator prefer
  bool no_at_ = false;       // generate no @ modifiers
};

// ---- The peers ----

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// STRATA_QDIFF_DAYS=<n>: the multi-day data of n days (0: the one-hour data).
int DataDays() { return EnvInt("STRATA_QDIFF_DAYS", 0); }

class QdiffEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override {
    for (auto& p : peers_) p->Stop();
    if (strata_ && strata_->exit_status() != 0) {
      ADD_FAILURE() << "strata did not exit with 0 on SIGTERM\n" << strata_->LogTail();
    }
    if (::testing::UnitTest::GetInstance()->Passed()) {
      std::filesystem::remove_all(dir_);
    } else {
      std::printf("peer logs and data kept in %s\n", dir_.c_str());
    }
  }
  const std::string& error() const { return error_; }
  // Remote-writes the data's samples in [from, to) to both, in time order; false (with the
  // reason in error()) when one of them refuses.
  bool Feed(int64_t from, int64_t to);
  // Stops Strata (SIGTERM, or SIGKILL when `kill`) and starts it again on the same data
  // directory; false (with the reason in error()) when it does not come back ready.
  bool RestartStrata(bool kill);
  uint16_t strata = 0, prometheus = 0;
  int64_t t0 = 0;
  DataSpan span;
  QueryTimes times;
  int64_t fed_until = 0;  // the data before this time is in both
  std::unique_ptr<SyntheticData> data;

 private:
  PeerProcess* Add(const std::string& name, std::string binary, std::vector<std::string> args) {
    peers_.push_back(std::make_unique<PeerProcess>(name, std::move(binary), std::move(args),
                                                   dir_ / (name + ".log")));
    return peers_.back().get();
  }
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<PeerProcess>> peers_;
  PeerProcess* strata_ = nullptr;
  std::string error_;
};

QdiffEnvironment* const g_env = [] {
  auto* env = new QdiffEnvironment();
  ::testing::AddGlobalTestEnvironment(env);
  return env;
}();

void QdiffEnvironment::SetUp() {
  dir_ = std::filesystem::temp_directory_path() / fmt::format("strata_qdiff_{}", ::getpid());
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  strata = FreePort();
  prometheus = FreePort();
  strata_ = Add("strata", STRATA_BINARY,
                {fmt::format("--web.listen-address=127.0.0.1:{}", strata),
                 "--storage.tsdb.path=" + (dir_ / "strata").string(), "--self-scrape.interval=0",
                 "--web.enable-admin-api"});
  std::filesystem::path yml = dir_ / "prometheus.yml";
  std::ofstream(yml) << "global:\n  evaluation_interval: 1m\n";
  PeerProcess* prom =
      Add("prometheus", kPrometheus,
          {"--config.file=" + yml.string(), "--storage.tsdb.path=" + (dir_ / "prometheus").string(),
           "--web.enable-remote-write-receiver", "--web.enable-admin-api",
           fmt::format("--web.listen-address=127.0.0.1:{}", prometheus)});
  for (auto [p, port] : {std::pair{strata_, strata}, std::pair{prom, prometheus}}) {
    if (!p->Start(&error_) || !WaitForHttpOk(port, "/-/ready", *p, 60, &error_)) return;
  }
  if (const int days = DataDays(); days > 0) {
    // Ends at 18:00 UTC yesterday, so that the partitions are laid out alike at any time of
    // day: the first ones compacted, the one before the last flushed only (DaysEnvironment).
    // The last 40 minutes come later (PromqlDays).
    span = {.t0 = (NowMs() / kDay - 1) * kDay + 18 * 60 * kMinute - days * kDay,
            .unit = days * 24 * kMinute,
            .interval_scale = 4};
    times = DayQueryTimes(span);
  } else {
    // The data's hour ends 2 to 12 minutes before now.
    span = {.t0 = (NowMs() - 62 * kMinute) / (10 * kMinute) * (10 * kMinute)};
    times = HourQueryTimes(span.t0);
  }
  t0 = span.t0;
  data = std::make_unique<SyntheticData>(span);
  Feed(t0, span.days() ? span.end() - 40 * kMinute : span.end() + 5 * kMinute);
}

bool QdiffEnvironment::Feed(int64_t from, int64_t to) {
  for (const std::string& body : data->Bodies(from, to, span.days() ? span.unit : 5 * kMinute)) {
    for (uint16_t port : {strata, prometheus}) {
      testing::TestHttpClient client(port);
      auto r = testing::PostRemoteWrite(client, body);
      if (!r || r->status / 100 != 2) {
        error_ = fmt::format("remote write to port {} answered {}: {}", port, r ? r->status : 0,
                             r ? r->body : "(no answer)");
        return false;
      }
    }
  }
  fed_until = to;
  return true;
}

bool QdiffEnvironment::RestartStrata(bool kill) {
  if (kill) {
    strata_->Kill();
  } else {
    strata_->Stop();
    if (strata_->exit_status() != 0) {
      error_ = "strata did not exit with 0 on SIGTERM\n" + strata_->LogTail();
      return false;
    }
  }
  return strata_->Start(&error_) && WaitForHttpOk(strata, "/-/ready", *strata_, 120, &error_);
}

// ---- Comparison ----

struct Answer {
  int http = 0;
  std::string body;
  bool ok = false;  // "status":"success"
};

Answer Ask(uint16_t port, const std::string& path, const Params& params) {
  Answer a;
  auto r = HttpPostForm(port, path, params);
  if (!r) return a;
  a.http = r->status;
  a.body = r->body;
  a.ok = a.body.find("\"status\":\"success\"") != std::string::npos;
  return a;
}

std::string SecondsText(int64_t ms) { return fmt::format("{}.{:03}", ms / 1000, ms % 1000); }

// The values at each timestamp, sorted (NaN as a string, so they compare).
std::map<int64_t, std::vector<std::string>> ValuesByTime(const QueryResult& r) {
  std::map<int64_t, std::vector<std::string>> out;
  for (const Series& s : r.series) {
    for (const Sample& smp : s.samples) {
      out[smp.t_ms].push_back(fmt::format("{:.9g}", smp.v == 0 ? 0.0 : smp.v));  // -0 too
    }
  }
  for (auto& [t, v] : out) std::sort(v.begin(), v.end());
  return out;
}

// A documented 2.42-vs-3.x difference that explains `diff` (see the header), or "".
// `query` with every call that `call` matches (up to its opening parenthesis) replaced by
// `rewrite(call text, argument text)`, or "" when there is none. Calls nested in a rewritten
// argument are `rewrite`'s to handle.
std::string RewriteCalls(
    const std::string& query, const std::regex& call,
    const std::function<std::string(const std::string&, const std::string&)>& rewrite) {
  std::string out;
  size_t pos = 0;
  bool any = false;
  for (std::sregex_iterator it(query.begin(), query.end(), call), end; it != end; ++it) {
    size_t start = static_cast<size_t>(it->position());
    size_t open = start + static_cast<size_t>(it->length()) - 1;
    int depth = 0;
    size_t close = open;
    for (; close < query.size(); ++close) {
      if (query[close] == '(') ++depth;
      if (query[close] == ')' && --depth == 0) break;
    }
    if (start < pos) continue;  // inside an argument already rewritten
    if (close >= query.size()) return "";
    out += query.substr(pos, start - pos) +
           rewrite(it->str(), query.substr(open + 1, close - open - 1));
    pos = close + 1;
    any = true;
  }
  return any ? out + query.substr(pos) : "";
}

// `query` with the input of every stddev/stdvar aggregation restricted to finite values.
std::string FiniteStddevInputs(const std::string& query) {
  static const std::regex aggregation(R"(\b(stddev|stdvar)( (by|without) \([^)]*\))?\()");
  return RewriteCalls(query, aggregation, [](const std::string& call, const std::string& arg) {
    std::string inner = FiniteStddevInputs(arg);
    return call + "(" + (inner.empty() ? arg : inner) + ") < +Inf > -Inf)";
  });
}

// `query` with every average computed as a sum divided by a count, which 2.42 and 3.x do
// alike (3.x averages with Kahan summation, 2.42 with an incremental mean).
std::string AveragesAsSums(const std::string& query) {
  static const std::regex avg(R"(\bavg( (by|without) \([^)]*\))?\()");
  static const std::regex avg_over_time(R"(\bavg_over_time\()");
  auto inner = [](const std::string& arg) {
    std::string r = AveragesAsSums(arg);
    return r.empty() ? arg : r;
  };
  std::string q = RewriteCalls(query, avg, [&](const std::string& call, const std::string& arg) {
    std::string grouping = call.substr(3, call.size() - 4), a = inner(arg);
    return fmt::format("(sum{}({}) / count{}({}))", grouping, a, grouping, a);
  });
  std::string r = RewriteCalls(
      q.empty() ? query : q, avg_over_time, [&](const std::string&, const std::string& arg) {
        std::string a = inner(arg);
        return fmt::format("(sum_over_time({}) / count_over_time({}))", a, a);
      });
  return r.empty() ? q : r;
}

// Only Strata failed: 3.x's many-to-one error where a comparison filtered the pairs (see
// the header).
bool KnownErrorDifference(const std::string& query, const std::string& ours_body) {
  static const std::regex comparison(R"((==|!=|>=|<=|>|<) (?!bool))");
  return ours_body.find("many-to-one matching must be explicit") != std::string::npos &&
         std::regex_search(query, comparison);
}

// Whether both answers agree when count_values' "value" label is taken as a number, compared
// with the tolerance like sample values: at each time and for each other label set, the
// sorted (label, value) pairs must agree. (Rounding the labels to some digits is not
// enough: 21824.92775 and 21824.927750000003 round apart, and one series' label may be an
// ulp from another's at another time.)
bool CountValuesAgree(const QueryResult& ours, const QueryResult& theirs,
                      const CompareOptions& options) {
  using Points = std::map<std::pair<std::string, int64_t>, std::vector<std::pair<double, double>>>;
  auto points = [](const QueryResult& r) {
    Points out;
    for (const Series& s : r.series) {
      Series rest = s;
      double label = std::nan("");
      if (auto it = rest.labels.find("value"); it != rest.labels.end()) {
        label = std::strtod(it->second.c_str(), nullptr);
        rest.labels.erase(it);
      }
      for (const Sample& smp : s.samples) {
        out[{rest.Key(), smp.t_ms}].emplace_back(label, smp.v);
      }
    }
    // NaN (a "NaN" label) sorts first: std::sort needs an order that NaN does not spoil.
    auto before = [](const std::pair<double, double>& x, const std::pair<double, double>& y) {
      if (std::isnan(x.first) != std::isnan(y.first)) return std::isnan(x.first);
      if (x.first != y.first) return x.first < y.first;
      return x.second < y.second;
    };
    // Labels that are one number ("-0" and "0") are one group: 2.42's sum of a lone -0 is
    // -0, 3.x's (and Strata's) is 0, as 3.x adds its compensation, +0, at the end.
    for (auto& [key, pairs] : out) {
      std::sort(pairs.begin(), pairs.end(), before);
      std::vector<std::pair<double, double>> merged;
      for (const auto& p : pairs) {
        if (!merged.empty() && merged.back().first == p.first) {
          merged.back().second += p.second;
        } else {
          merged.push_back(p);
        }
      }
      pairs = std::move(merged);
    }
    return out;
  };
  auto close = [&](double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    double d = std::fabs(a - b);
    return a == b || d <= options.abs_tol ||
           d <= options.rel_tol * std::max(std::fabs(a), std::fabs(b));
  };
  Points a = points(ours), b = points(theirs);
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second.size() != ib->second.size()) return false;
    for (size_t k = 0; k < ia->second.size(); ++k) {
      if (!close(ia->second[k].first, ib->second[k].first) ||
          !close(ia->second[k].second, ib->second[k].second)) {
        return false;
      }
    }
  }
  return true;
}

std::string KnownDifference(const std::string& query, const QueryResult& ours,
                            const QueryResult& theirs, const CompareOptions& options) {
  auto has = [&](const char* s) { return query.find(s) != std::string::npos; };
  if (has("topk") || has("bottomk")) {
    if (ValuesByTime(ours) == ValuesByTime(theirs)) return "topk/bottomk tie";
  }
  if (has("count_values") && CountValuesAgree(ours, theirs, options)) {
    return "count_values label rounding";
  }
  // The stddev/stdvar aggregation of a group whose first value is NaN or ±Inf: 3.x NaN, 2.42
  // 0, which later operators may turn into anything. Where ours is NaN and theirs 0 the
  // answers agree; else the caller asks both again with NaN and ±Inf filtered out of every
  // stddev/stdvar input (FiniteStddevInputs).
  if (has("stddev ") || has("stddev(") || has("stdvar ") || has("stdvar(")) {
    std::map<std::string, const Series*> by_key;
    for (const Series& s : theirs.series) by_key[s.Key()] = &s;
    std::vector<Series> fixed = ours.series;
    for (Series& s : fixed) {
      auto it = by_key.find(s.Key());
      if (it == by_key.end()) continue;
      for (Sample& smp : s.samples) {
        for (const Sample& other : it->second->samples) {
          if (other.t_ms == smp.t_ms && std::isnan(smp.v) && other.v == 0) {
            smp = other;
          }
        }
      }
    }
    if (CompareSeries(fixed, theirs.series, options).empty()) return "stddev/stdvar of NaN";
  }
  return "";
}

// `query` with `@ start()` and `@ end()` replaced by the range's times, for instant queries
// at the range's steps.
std::string PinStartEnd(std::string query, int64_t start, int64_t end) {
  for (auto [from, t] : {std::pair{std::string("@ start()"), start}, {"@ end()", end}}) {
    for (size_t at; (at = query.find(from)) != std::string::npos;) {
      query.replace(at, from.size(), "@ " + SecondsText(t));
    }
  }
  return query;
}

// Whether all of `query` is one sort(...) or sort_desc(...) call (and not, say,
// `sort(a) or b`, whose order is not sort's).
bool IsOneSortCall(const std::string& query) {
  if (!query.starts_with("sort(") && !query.starts_with("sort_desc(")) return false;
  int depth = 0;
  for (size_t i = query.find('('); i < query.size(); ++i) {
    if (query[i] == '(') ++depth;
    if (query[i] == ')' && --depth == 0) return i + 1 == query.size();
  }
  return false;
}

bool DistinctValues(const QueryResult& r) {
  std::set<std::string> seen;
  for (const Series& s : r.series) {
    for (const Sample& smp : s.samples) {
      if (std::isnan(smp.v) || !seen.insert(smp.text).second) return false;
    }
  }
  return true;
}

// Whether Strata's range answer `ours` to the range query `params` equals Prometheus' own
// instant answers at every step (2.42's predict_linear with @, see the header).
bool AgreesWithInstantAnswers(const Params& params, const QueryResult& ours,
                              const CompareOptions& options) {
  std::vector<Series> instants;
  std::map<std::string, size_t> index;
  int64_t start = std::llround(std::stod(params[1].second) * 1000);
  int64_t end = std::llround(std::stod(params[2].second) * 1000);
  int64_t step = std::stoll(params[3].second) * 1000;
  std::string query = PinStartEnd(params[0].second, start, end);
  for (int64_t t = start; t <= end; t += step) {
    QueryResult at;
    std::string error;
    Answer one =
        Ask(g_env->prometheus, "/api/v1/query", {{"query", query}, {"time", SecondsText(t)}});
    if (!ParseQueryResponse(one.body, &at, &error)) return false;
    for (Series& s : at.series) {
      auto [it, fresh] = index.emplace(s.Key(), instants.size());
      if (fresh) instants.push_back(Series{s.labels, {}});
      instants[it->second].samples.push_back(s.samples[0]);
    }
  }
  if (CompareSeries(ours.series, instants, options).empty()) return true;
  // The other known differences may meet this one (topk/bottomk ties, stddev/stdvar of a
  // group starting with NaN or ±Inf; see the header).
  return !KnownDifference(params[0].second, ours,
                          QueryResult{.result_type = "matrix", .series = std::move(instants)},
                          options)
              .empty();
}

// Whether our successful range answer agrees with Prometheus' instant answers at its steps.
bool OursAgreesWithInstants(const Params& params, const Answer& ours) {
  QueryResult a;
  std::string error;
  return ParseQueryResponse(ours.body, &a, &error) &&
         AgreesWithInstantAnswers(params, a, CompareOptions{.rel_tol = 1e-9, .abs_tol = kAbsTol});
}

// Whether Prometheus' own instant answer at some step of the range query `params` is an
// error, as ours is (2.42's range answers to predict_linear with @ are off, see the header;
// the error texts may differ, as the first step that fails may differ).
bool InstantAnswersFail(const Params& params) {
  int64_t start = std::llround(std::stod(params[1].second) * 1000);
  int64_t end = std::llround(std::stod(params[2].second) * 1000);
  int64_t step = std::stoll(params[3].second) * 1000;
  std::string query = PinStartEnd(params[0].second, start, end);
  for (int64_t t = start; t <= end; t += step) {
    Answer one =
        Ask(g_env->prometheus, "/api/v1/query", {{"query", query}, {"time", SecondsText(t)}});
    if (one.http != 0 && !one.ok) return true;
  }
  return false;
}

// STRATA_QDIFF_QUERY=<expr> [STRATA_QDIFF_AT=<seconds after the data's start>]
// [STRATA_QDIFF_RANGE=<steps>,<step>]: prints both answers to one query, for looking into a
// difference.
TEST(PromqlDiff, OneQueryFromTheEnvironment) {
  const char* query = std::getenv("STRATA_QDIFF_QUERY");
  if (query == nullptr) GTEST_SKIP() << "STRATA_QDIFF_QUERY is not set";
  ASSERT_EQ(g_env->error(), "");
  const char* at = std::getenv("STRATA_QDIFF_AT");
  int64_t t = g_env->t0 + static_cast<int64_t>((at ? std::atof(at) : 1800.5) * 1000);
  Params params = {{"query", query}, {"time", SecondsText(t)}};
  std::string path = "/api/v1/query";
  // STRATA_QDIFF_RANGE=<steps>,<step seconds>: a range query of that many steps ending at t.
  if (const char* range = std::getenv("STRATA_QDIFF_RANGE")) {
    int steps = std::atoi(range);
    int64_t step = std::atoi(std::strchr(range, ',') ? std::strchr(range, ',') + 1 : "60");
    path = "/api/v1/query_range";
    params = {{"query", query},
              {"start", SecondsText(t - steps * step * 1000)},
              {"end", SecondsText(t)},
              {"step", std::to_string(step)}};
  }
  std::printf("time=%s\nours:   %s\ntheirs: %s\n", SecondsText(t).c_str(),
              Ask(g_env->strata, path, params).body.c_str(),
              Ask(g_env->prometheus, path, params).body.c_str());
}

// STRATA_QDIFF_HOLD=<seconds>: prints both peers' ports and the data's start, then keeps
// them running that long, for asking them by hand.
TEST(PromqlDiff, HoldPeersForManualRequests) {
  const int seconds = EnvInt("STRATA_QDIFF_HOLD", 0);
  if (seconds <= 0) GTEST_SKIP() << "STRATA_QDIFF_HOLD is not set";
  ASSERT_EQ(g_env->error(), "");
  std::printf("strata 127.0.0.1:%u prometheus 127.0.0.1:%u data from %s\n", g_env->strata,
              g_env->prometheus, SecondsText(g_env->t0).c_str());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
}

// One GET of `path` with `params` from both, by the same target.
struct BothAnswers {
  std::string target;
  std::optional<testing::TestHttpResponse> ours, theirs;
};
BothAnswers GetFromBoth(const std::string& path, const Params& params) {
  BothAnswers a{params.empty() ? path : path + "?" + FormEncode(params), {}, {}};
  a.ours = HttpGet(g_env->strata, a.target);
  a.theirs = HttpGet(g_env->prometheus, a.target);
  return a;
}

// RFC 3339 text of `ms` with milliseconds, in UTC ("Z") or at `offset_minutes` east of it.
std::string Rfc3339(int64_t ms, int offset_minutes = 0) {
  std::time_t secs = static_cast<std::time_t>((ms + offset_minutes * kMinute) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::string zone =
      offset_minutes == 0
          ? "Z"
          : fmt::format("{}{:02}:{:02}", offset_minutes < 0 ? '-' : '+',
                        std::abs(offset_minutes) / 60, std::abs(offset_minutes) % 60);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000, zone);
}

// The HTTP API besides PromQL evaluation, as Grafana and scripts use it: series, label names
// and values with match[], start and end; times as RFC 3339 and as floats; values that print
// specially (NaN, ±Inf, huge, tiny) in vectors and scalars; stats; errors for bad
// parameters. All by GET (2.42 serves label values by GET only). Every answer must be the
// same bytes, or, for PromQL answers with several series, the same series in any order.
// Prometheus 2.42 and 3.x answer all of these alike; where 3.x differs from 2.42 (limit,
// lookback_delta, the wording of a bad optional time, the order of the two series a
// many-to-many error names) tests/server/api_test.cc and the upstream test scripts hold the
// 3.x answer. Series and label windows cover all of a series' samples or none: Prometheus
// selects by head chunk (and 2.42 answers label names and values from its head index),
// Strata by sample.
TEST(PromqlDiff, HttpApiAgreesWithPrometheus) {
  if (std::getenv("STRATA_QDIFF_QUERY") != nullptr) GTEST_SKIP() << "STRATA_QDIFF_QUERY is set";
  if (DataDays() > 0) GTEST_SKIP() << "the multi-day data: see PromqlDays";
  ASSERT_EQ(g_env->error(), "");
  const int64_t t0 = g_env->t0;
  const int64_t mid = t0 + 30 * kMinute + 500;  // phase 500, as the random queries
  const std::string all_start = SecondsText(t0 - kMinute), all_end = SecondsText(t0 + 70 * kMinute);
  const std::vector<std::pair<std::string, Params>> cases = {
      // Series.
      {"/api/v1/series", {{"match[]", "up"}}},
      {"/api/v1/series",
       {{"match[]", "up"},
        {"match[]", "queue_length{job=\"api\"}"},
        {"start", all_start},
        {"end", all_end}}},
      {"/api/v1/series",
       {{"match[]", "{__name__=~\"batch.*\", instance!=\"z\"}"},
        {"start", Rfc3339(t0 - kMinute)},
        {"end", Rfc3339(t0 + 70 * kMinute, 120)}}},
      {"/api/v1/series",
       {{"match[]", "up"},
        {"start", SecondsText(t0 - 120 * kMinute)},
        {"end", SecondsText(t0 - 60 * kMinute)}}},
      {"/api/v1/series", {{"match[]", "node_cpu_seconds_total{mode=~\"i.*\", cpu!=\"1\"}"}}},
      {"/api/v1/series", {}},
      {"/api/v1/series", {{"match[]", "up{"}}},
      {"/api/v1/series", {{"match[]", "{job=~\".*\"}"}}},
      {"/api/v1/series", {{"match[]", "up[5m]"}}},
      {"/api/v1/series", {{"match[]", "up offset 5m"}}},
      {"/api/v1/series", {{"match[]", "sum by (job) (up)"}}},
      {"/api/v1/series", {{"match[]", "up"}, {"match[]", "rate(up[5m])"}}},
      // Label names and values.
      {"/api/v1/labels", {}},
      {"/api/v1/labels", {{"match[]", "up"}}},
      {"/api/v1/labels",
       {{"match[]", "up"},
        {"match[]", "node_cpu_seconds_total"},
        {"start", all_start},
        {"end", all_end}}},
      {"/api/v1/labels", {{"match[]", "up or queue_length"}}},
      {"/api/v1/label/job/values", {}},
      {"/api/v1/label/__name__/values", {{"match[]", "{job=\"node\"}"}}},
      {"/api/v1/label/instance/values",
       {{"match[]", "up"}, {"match[]", "temperature_celsius"}, {"start", Rfc3339(t0 - kMinute)}}},
      {"/api/v1/label/le/values", {{"match[]", "request_duration_seconds_bucket"}}},
      {"/api/v1/label/nope/values", {}},
      // Times as floats and RFC 3339 (milliseconds rounded or truncated as Prometheus does).
      {"/api/v1/query", {{"query", "sum by (job) (up)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "sum by (job) (up)"}, {"time", Rfc3339(mid)}}},
      {"/api/v1/query", {{"query", "sum by (job) (up)"}, {"time", Rfc3339(mid, -150)}}},
      {"/api/v1/query", {{"query", "time()"}, {"time", SecondsText(mid) + "4"}}},
      {"/api/v1/query", {{"query", "time()"}, {"time", SecondsText(mid) + "6"}}},
      {"/api/v1/query", {{"query", "time()"}, {"time", Rfc3339(mid).substr(0, 23) + "999999Z"}}},
      {"/api/v1/query", {{"query", "time()"}, {"time", fmt::format("{:e}", mid / 1000.0)}}},
      {"/api/v1/query_range",
       {{"query", "max by (job) (up)"},
        {"start", Rfc3339(mid - 10 * kMinute)},
        {"end", Rfc3339(mid)},
        {"step", "90s"}}},
      {"/api/v1/query_range",
       {{"query", "odd_values"}, {"start", all_start}, {"end", all_end}, {"step", "60"}}},
      // Steps as Go durations (nanoseconds): below a millisecond, and a fraction of one that
      // the 11,000-points limit sees unrounded; numbers and times as Go parses them.
      {"/api/v1/query_range",
       {{"query", "time()"},
        {"start", SecondsText(mid)},
        {"end", SecondsText(mid + 600'000)},
        {"step", "0.0005"}}},
      {"/api/v1/query_range",
       {{"query", "time()"},
        {"start", SecondsText(mid)},
        {"end", SecondsText(mid + 10'995'000)},
        {"step", "0.9999"}}},
      {"/api/v1/query", {{"query", "time()"}, {"time", "1_000.5"}}},
      {"/api/v1/query", {{"query", "time()"}, {"time", "0x1p4"}}},
      {"/api/v1/query_range",
       {{"query", "time()"},
        {"start", "2026-12-02T1:00:00,5Z"},
        {"end", "2026-12-02T01:02:00Z"},
        {"step", "1m"}}},
      {"/api/v1/query_range",
       {{"query", "time()"},
        {"start", "2026-12-02T10:00:60Z"},
        {"end", "2026-12-02T10:02:00Z"},
        {"step", "1m"}}},
      {"/api/v1/query_range",
       {{"query", "time()"},
        {"start", "2026-12-02T10:00:00+0100"},
        {"end", "2026-12-02T10:02:00Z"},
        {"step", "1m"}}},
      // Values that print specially, in vectors and as scalars.
      {"/api/v1/query",
       {{"query", "vector(1/0) or label_replace(-vector(1/0), \"a\", \"b\", \"\", \"\")"},
        {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(0/0)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(1e21)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(123456789012345680000)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(1e15 + 0.3)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(-1.5e-7)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(0.000001)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(5e-324)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(1.7976931348623157e308)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "vector(-0)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "1e21"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "-1.5e-7"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "2^70"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "1.7976931348623157e308"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "-Inf"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "NaN"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "\"a string\""}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "1"}, {"time", SecondsText(mid - 500)}}},
      // Errors for bad parameters and queries.
      {"/api/v1/query", {{"query", "sum("}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "rate(up)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "topk(1e20, up)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "bottomk(-Inf, up)"}, {"time", SecondsText(mid)}}},
      {"/api/v1/query", {{"query", "up"}, {"timeout", "abc"}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", "x"}, {"end", "2"}, {"step", "1"}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", "1"}, {"step", "1"}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", "10"}, {"end", "2"}, {"step", "1"}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", "1"}, {"end", "2"}, {"step", "0"}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", "1"}, {"end", "2"}, {"step", "1x"}}},
      {"/api/v1/query_range", {{"query", "up"}, {"start", "0"}, {"end", "11001"}, {"step", "1"}}},
  };
  int failures = 0;
  for (const auto& [path, params] : cases) {
    auto [target, ours, theirs] = GetFromBoth(path, params);
    ASSERT_TRUE(ours && theirs) << target;
    bool same = ours->status == theirs->status && ours->body == theirs->body;
    // Several series: the same ones in any order (Prometheus sorts a selector's series,
    // Strata's order is its own; an instant query's order is unspecified).
    if (!same && ours->status == 200 && theirs->status == 200 &&
        path.starts_with("/api/v1/query")) {
      same = CompareQueryResponses(ours->body, theirs->body, {.exact = true}).empty();
    }
    if (!same) {
      ++failures;
      ADD_FAILURE() << fmt::format("GET {}\nours (HTTP {}):   {}\ntheirs (HTTP {}): {}\n", target,
                                   ours->status, Abbreviate(ours->body, 1500), theirs->status,
                                   Abbreviate(theirs->body, 1500));
    }
  }
  // stats: the same statistics fields (the figures are each one's own).
  std::string target =
      "/api/v1/query?" +
      FormEncode({{"query", "sum(rate(up[5m]))"}, {"time", SecondsText(mid)}, {"stats", "all"}});
  for (uint16_t port : {g_env->strata, g_env->prometheus}) {
    auto r = HttpGet(port, target);
    ASSERT_TRUE(r);
    for (const char* field :
         {"\"stats\":{\"timings\":{\"evalTotalTime\":", "\"resultSortTime\":",
          "\"queryPreparationTime\":", "\"innerEvalTime\":", "\"execQueueTime\":",
          "\"execTotalTime\":", "\"samples\":{\"totalQueryableSamples\":", "\"peakSamples\":"}) {
      EXPECT_NE(r->body.find(field), std::string::npos)
          << (port == g_env->strata ? "ours" : "theirs") << " lacks " << field << ": " << r->body;
    }
  }
  std::printf("HTTP API: %zu requests, %d differ\n", cases.size(), failures);
}

// Asks both `instant` random instant queries and `range` random range queries of `seed`,
// over the data's span; every difference not documented in the header is a test failure
// naming `when`.
void CompareRandomQueries(int seed, int instant, int range, const std::string& when) {
  const QueryTimes& span = g_env->times;
  const int64_t t0 = span.t0;
  const int span_s = static_cast<int>(span.span_s);
  QueryGen gen(static_cast<uint64_t>(seed), g_env->data->Catalog(), span,
               EnvInt("STRATA_QDIFF_DEPTH", 3), EnvInt("STRATA_QDIFF_GEN", 2));
  Rng times(static_cast<uint64_t>(seed) * 7919 + 1);

  int failures = 0, both_error = 0, empty = 0, excused = 0;
  for (int i = 0; i < instant + range; ++i) {
    std::string query = gen.Query();
    Params params = {{"query", query}};
    std::string path;
    if (i < instant) {
      path = "/api/v1/query";
      params.emplace_back(
          "time", SecondsText(t0 + (times.Uniform(span_s * 63 / 60) - span_s / 120) * 1000 + 500));
    } else {
      path = "/api/v1/query_range";
      int64_t step = times.Pick(span.range_steps_s) * 1000;
      int64_t start = t0 + (times.Uniform(span_s) - span_s / 30) * 1000 + 500;
      // Whole steps from start, so that end (and `@ end()`) keep phase 500 too.
      int64_t steps = std::min<int64_t>(1 + times.Uniform(span.max_range_steps),
                                        (t0 + span_s * 7000 / 6 - start) / step);
      int64_t end = start + steps * step;
      params.emplace_back("start", SecondsText(start));
      params.emplace_back("end", SecondsText(end));
      params.emplace_back("step", fmt::format("{}", step / 1000));
    }
    Answer ours = Ask(g_env->strata, path, params);
    Answer theirs = Ask(g_env->prometheus, path, params);
    std::string diff;
    if (ours.http == 0 || theirs.http == 0) {
      diff = fmt::format("no answer (ours HTTP {}, theirs HTTP {})", ours.http, theirs.http);
    } else if (!ours.ok || !theirs.ok) {
      if (ours.ok == theirs.ok) {
        ++both_error;
      } else if (theirs.ok && KnownErrorDifference(query, ours.body)) {
        ++excused;
      } else if (theirs.ok && i >= instant && query.find("predict_linear") != std::string::npos &&
                 query.find(" @ ") != std::string::npos && InstantAnswersFail(params)) {
        ++excused;
      } else if (ours.ok && i >= instant && query.find("predict_linear") != std::string::npos &&
                 query.find(" @ ") != std::string::npos && OursAgreesWithInstants(params, ours)) {
        // The other way round (seed 1924): 2.42's range answer fails where its instant
        // answers at every step do not, and ours agrees with those.
        ++excused;
      } else {
        diff = "only one of them answered with an error\n";
      }
    } else {
      QueryResult a, b;
      std::string error;
      ParseQueryResponse(ours.body, &a, &error);
      ParseQueryResponse(theirs.body, &b, &error);
      if (b.series.empty()) ++empty;
      bool sorted = i < instant && IsOneSortCall(query);
      CompareOptions options{
          .rel_tol = 1e-9, .abs_tol = kAbsTol, .ordered = sorted && DistinctValues(b)};
      // See the header: the variance of values far from 0 is ill-conditioned.
      if (query.find("stddev") != std::string::npos || query.find("stdvar") != std::string::npos) {
        options.rel_tol = 1e-5;
        // Times (about 1.8e9) spread by seconds are the worst case of that.
        if (query.find("time") != std::string::npos) options.rel_tol = 1e-3;
      }
      diff = CompareQueryResponses(ours.body, theirs.body, options);
      // A range query with 2.42's predict_linear with @: Prometheus' instant answers at every
      // step decide (see the header).
      const bool by_instants = i >= instant && query.find("predict_linear") != std::string::npos &&
                               query.find(" @ ") != std::string::npos;
      if (!diff.empty() && by_instants && AgreesWithInstantAnswers(params, a, options)) {
        diff.clear();
        ++excused;
      }
      if (!diff.empty() && !KnownDifference(query, a, b, options).empty()) {
        diff.clear();
        ++excused;
      }
      // Documented differences that a rewritten query takes out (see the header): both must
      // agree on it.
      for (const std::string& rewritten : {FiniteStddevInputs(query), AveragesAsSums(query)}) {
        if (diff.empty() || rewritten.empty()) continue;
        Params again = params;
        again[0].second = rewritten;
        Answer ours2 = Ask(g_env->strata, path, again);
        Answer theirs2 = Ask(g_env->prometheus, path, again);
        if (!ours2.ok || !theirs2.ok) continue;
        QueryResult a2;
        bool agree = CompareQueryResponses(ours2.body, theirs2.body, options).empty() ||
                     (by_instants && ParseQueryResponse(ours2.body, &a2, &error) &&
                      AgreesWithInstantAnswers(again, a2, options));
        if (agree) {
          diff.clear();
          ++excused;
        }
      }
    }
    if (!diff.empty()) {
      ++failures;
      ADD_FAILURE() << fmt::format(
          "{}: seed {} query #{}: {}\n{} {}\n{}ours (HTTP {}):   {}\ntheirs (HTTP {}): {}\n", when,
          seed, i, query, path, FormEncode(params), diff, ours.http, Abbreviate(ours.body, 1500),
          theirs.http, Abbreviate(theirs.body, 1500));
    }
  }
  std::printf(
      "%s: seed %d: %d queries, %d differ, %d known differences, %d errors on both sides, %d "
      "empty answers\n",
      when.c_str(), seed, instant + range, failures, excused, both_error, empty);
}

TEST(PromqlDiff, RandomQueriesAgreeWithPrometheus) {
  if (std::getenv("STRATA_QDIFF_QUERY") != nullptr) GTEST_SKIP() << "STRATA_QDIFF_QUERY is set";
  if (DataDays() > 0) GTEST_SKIP() << "the multi-day data: see PromqlDays";
  ASSERT_EQ(g_env->error(), "");
  const int instant = EnvInt("STRATA_QDIFF_QUERIES", 400);
  CompareRandomQueries(EnvInt("STRATA_QDIFF_SEED", 1), instant, instant * 3 / 8, "one hour");
}

// ---- The multi-day data (STRATA_QDIFF_DAYS) ----

// A sample of Strata's /metrics without labels (`strata_head_chunks`), or NaN.
double StrataMetric(const std::string& name) {
  auto r = HttpGet(g_env->strata, "/metrics");
  if (!r || r->status != 200) return std::nan("");
  for (size_t at = 0; (at = r->body.find(name + " ", at)) != std::string::npos; ++at) {
    if (at == 0 || r->body[at - 1] == '\n') {
      return std::strtod(r->body.c_str() + at + name.size() + 1, nullptr);
    }
  }
  return std::nan("");
}

// Strata's headStats (status/tsdb): {numSeries, chunkCount, minTime, maxTime}.
std::vector<int64_t> StrataHeadStats() {
  auto r = HttpGet(g_env->strata, "/api/v1/status/tsdb");
  if (!r || r->status != 200) return {};
  simdjson::dom::parser parser;
  simdjson::dom::element head;
  if (parser.parse(r->body)["data"]["headStats"].get(head) != simdjson::SUCCESS) return {};
  std::vector<int64_t> out;
  for (const char* key : {"numSeries", "chunkCount", "minTime", "maxTime"}) {
    int64_t v = 0;
    if (head[key].get_int64().get(v) != simdjson::SUCCESS) return {};
    out.push_back(v);
  }
  return out;
}

// The multi-day data's samples before `end`.
int64_t SamplesBefore(int64_t end) {
  int64_t n = 0;
  for (const SynthSeries& s : g_env->data->series()) {
    for (const auto& smp : s.samples) n += smp.first < end;
  }
  return n;
}

// The series and label endpoints over the days: match[] and windows on old days, across
// midnights, and where a series lives only on an old day (legacy_gauge, day 1) or is away for
// a day (session_active). Every window of a label request covers all of the selected
// series' samples on a day or none (see the header: Prometheus answers those per block).
std::vector<std::pair<std::string, Params>> DaysHttpCases() {
  const int64_t day1 = (g_env->t0 / kDay + 1) * kDay, day2 = day1 + kDay, day3 = day2 + kDay;
  const int64_t hour = 60 * kMinute;
  auto at = [](int64_t ms) { return SecondsText(ms); };
  auto window = [&](int64_t from, int64_t to) {
    return Params{{"start", at(from)}, {"end", at(to)}};
  };
  auto with = [](Params params, const Params& more) {
    params.insert(params.end(), more.begin(), more.end());
    return params;
  };
  const Params all = window(g_env->t0 - hour, g_env->span.end() + hour);
  std::vector<std::pair<std::string, Params>> cases;
  for (const std::string& match :
       {std::string("legacy_gauge"), std::string("session_active"), std::string("{job=\"batch\"}"),
        std::string("up"), std::string("{__name__=~\"midnight.*|legacy.*\"}")}) {
    for (const Params& w :
         {Params{}, all, window(day1, day2 - 1), window(day1 + 5 * hour, day1 + 13 * hour),
          window(day1 + 8 * hour, day1 + 9 * hour), window(day1 + 22 * hour, day2 + 18 * hour),
          window(day2 - hour, day2 + hour), window(day2 + 12 * hour, day3 + 2 * hour),
          window(day3, g_env->span.end() + hour), window(day1 - 2 * hour, day1 - 2 * hour)}) {
      cases.push_back({"/api/v1/series", with({{"match[]", match}}, w)});
    }
  }
  // Label names and values: with match[], windows that hold all of legacy_gauge's samples
  // (and, for the other series selected, samples in every block and partition the window
  // meets); without, all of the data (see the header: Prometheus answers per block, Strata
  // per partition, or per sample for a series with tombstones).
  for (const Params& w :
       {Params{}, all, window(day1, day2 - 1), window(day1 + 5 * hour, day1 + 13 * hour)}) {
    cases.push_back({"/api/v1/labels", with({{"match[]", "legacy_gauge"}}, w)});
    cases.push_back({"/api/v1/labels", with({{"match[]", "{job=~\"legacy|batch\"}"}}, w)});
    cases.push_back(
        {"/api/v1/label/job/values", with({{"match[]", "{__name__=~\"legacy.*|up\"}"}}, w)});
    cases.push_back({"/api/v1/label/instance/values", with({{"match[]", "up"}}, w)});
  }
  for (const Params& w : {Params{}, all}) {
    cases.push_back({"/api/v1/labels", w});
    cases.push_back({"/api/v1/label/__name__/values", w});
    cases.push_back({"/api/v1/label/job/values", w});
  }
  // Every sample of every series, as stored (compacted, flushed, in the head, replayed): the
  // days up to 2 hours before each midnight (no deleted range holds those ends), and the
  // last day.
  const std::string every_sample = "{__name__=~\".+\"}[1d]";
  cases.push_back(
      {"/api/v1/query", {{"query", every_sample}, {"time", at(g_env->span.end() + 500)}}});
  // Midnights to the millisecond: midnight_marks has samples 1 ms before, at and 1 ms after
  // each. Windows of 1s and the 5m lookback never start at a sample; series windows start
  // and end at samples (Prometheus answers by chunk, see the header).
  for (int64_t midnight : {day1, day2, day3}) {
    for (int64_t t : {midnight - 1, midnight, midnight + 1, midnight + 2, midnight + 250}) {
      for (const char* query :
           {"midnight_marks", "timestamp(midnight_marks)", "count_over_time(midnight_marks[1s])",
            "sum_over_time(midnight_marks[1s])", "idelta(midnight_marks[1s])",
            "changes(midnight_marks[1s])", "max_over_time(midnight_marks[5m])",
            "last_over_time(midnight_marks[1s] offset 1d)", "midnight_marks offset -1d"}) {
        cases.push_back({"/api/v1/query", {{"query", query}, {"time", at(t)}}});
      }
    }
    cases.push_back({"/api/v1/query_range",
                     {{"query", "sum_over_time(midnight_marks[1s])"},
                      {"start", at(midnight - 3)},
                      {"end", at(midnight + 3)},
                      {"step", "0.001"}}});
    cases.push_back({"/api/v1/query_range",
                     {{"query", "timestamp(midnight_marks)"},
                      {"start", at(midnight - 10 * kMinute - 500)},
                      {"end", at(midnight + 10 * kMinute - 500)},
                      {"step", "0.5"}}});
    cases.push_back(
        {"/api/v1/query", {{"query", every_sample}, {"time", at(midnight - 2 * hour + 500)}}});
    for (auto [from, to] : {std::pair{midnight - 1, midnight - 1},
                            {midnight, midnight},
                            {midnight + 1, midnight + 1},
                            {midnight - 1, midnight},
                            {midnight, midnight + 1}}) {
      cases.push_back({"/api/v1/series", with({{"match[]", "midnight_marks"}}, window(from, to))});
    }
  }
  return cases;
}

// Asks both every request of `cases` by GET; a difference is a test failure naming `when`.
void CompareHttpCases(const std::vector<std::pair<std::string, Params>>& cases,
                      const std::string& when) {
  int failures = 0;
  for (const auto& [path, params] : cases) {
    auto [target, ours, theirs] = GetFromBoth(path, params);
    ASSERT_TRUE(ours && theirs) << target;
    std::string diff;
    if (ours->status != theirs->status) {
      diff = "HTTP status differs";
    } else if (ours->status == 200 && path.starts_with("/api/v1/query")) {
      // Samples as stored, without arithmetic: the same text.
      bool raw = params[0].second.find('(') == std::string::npos;
      diff = CompareQueryResponses(ours->body, theirs->body,
                                   {.exact = raw, .rel_tol = 1e-9, .abs_tol = kAbsTol});
    } else if (ours->status == 200) {
      diff = path == "/api/v1/series" ? CompareSeriesResponses(ours->body, theirs->body)
                                      : CompareStringListResponses(ours->body, theirs->body);
    }
    if (!diff.empty()) {
      ++failures;
      ADD_FAILURE() << fmt::format("{}: GET {}\n{}\nours (HTTP {}):   {}\ntheirs (HTTP {}): {}\n",
                                   when, target, diff, ours->status, Abbreviate(ours->body, 1500),
                                   theirs->status, Abbreviate(theirs->body, 1500));
    }
  }
  std::printf("%s: %zu series and label requests, %d differ\n", when.c_str(), cases.size(),
              failures);
}

// Remote read (sampled responses) from both: every sample of every series over each day up
// to 2 hours before its midnight and over the last day (as the every-sample queries), and
// of a few metrics across midnights. A difference is a test failure naming `when`.
void CompareRemoteReads(const std::string& when) {
  const int64_t day1 = (g_env->t0 / kDay + 1) * kDay, hour = 60 * kMinute;
  const int64_t end = g_env->span.end();
  test::ReadRequest req;
  auto add = [&](int64_t start, int64_t stop, const std::string& name, const std::string& re) {
    test::Query* q = req.add_queries();
    q->set_start_timestamp_ms(start);
    q->set_end_timestamp_ms(stop);
    test::LabelMatcher* m = q->add_matchers();
    m->set_type(test::LabelMatcher::RE);
    m->set_name(name);
    m->set_value(re);
  };
  for (int64_t midnight = day1; midnight < end; midnight += kDay) {
    add(midnight - kDay - 2 * hour, midnight - 2 * hour, "__name__", ".+");
  }
  add(end - kDay, end + 1000, "__name__", ".+");
  add(day1 + kDay - 3 * hour, day1 + kDay - 2 * hour, "job", "legacy|batch|edge");
  add(g_env->t0, end, "__name__", "legacy_gauge|session_active");
  std::string raw = req.SerializeAsString(), body;
  snappy::Compress(raw.data(), raw.size(), &body);
  // Each query's series as text: labels, then every sample's time and value bits.
  auto decode = [&](uint16_t port, std::vector<std::map<std::string, std::string>>* out) {
    testing::TestHttpClient client(port);
    auto r = client.Request("POST", "/api/v1/read",
                            {{"Content-Encoding", "snappy"},
                             {"Content-Type", "application/x-protobuf"},
                             {"X-Prometheus-Remote-Read-Version", "0.1.0"}},
                            body);
    std::string plain;
    test::ReadResponse resp;
    if (!r || r->status != 200 || !snappy::Uncompress(r->body.data(), r->body.size(), &plain) ||
        !resp.ParseFromString(plain)) {
      return fmt::format("port {}: HTTP {} {}", port, r ? r->status : 0,
                         r ? Abbreviate(r->body) : "");
    }
    for (const test::QueryResult& result : resp.results()) {
      auto& series = out->emplace_back();
      for (const test::TimeSeries& ts : result.timeseries()) {
        std::string key;
        for (const test::Label& l : ts.labels()) key += l.name() + "=" + l.value() + ",";
        std::string& samples = series[key];
        for (const test::Sample& smp : ts.samples()) {
          // -0 as 0: Prometheus' Sample marshaller leaves out a value that equals 0 (see
          // the header).
          const double v = smp.value() == 0 ? 0.0 : smp.value();
          samples += fmt::format("{}:{:x} ", smp.timestamp(), std::bit_cast<uint64_t>(v));
        }
      }
    }
    return std::string();
  };
  std::vector<std::map<std::string, std::string>> ours, theirs;
  ASSERT_EQ(decode(g_env->strata, &ours), "") << when;
  ASSERT_EQ(decode(g_env->prometheus, &theirs), "") << when;
  ASSERT_EQ(ours.size(), static_cast<size_t>(req.queries_size())) << when;
  ASSERT_EQ(theirs.size(), ours.size()) << when;
  for (size_t i = 0; i < ours.size(); ++i) {
    for (const auto& [key, samples] : theirs[i]) {
      auto it = ours[i].find(key);
      if (it != ours[i].end() && it->second == samples) continue;
      // From the first sample that differs.
      size_t from = 0;
      if (it != ours[i].end()) {
        auto [a, b] =
            std::mismatch(it->second.begin(), it->second.end(), samples.begin(), samples.end());
        from = it->second.rfind(' ', static_cast<size_t>(a - it->second.begin()));
        from = from == std::string::npos ? 0 : from + 1;
      }
      ADD_FAILURE() << when << ": remote read query " << i << ", " << key
                    << ", from sample time and value bits " << from << "\nours:   "
                    << (it == ours[i].end() ? "(none)" : Abbreviate(it->second.substr(from)))
                    << "\ntheirs: " << Abbreviate(samples.substr(std::min(from, samples.size())));
    }
    for (const auto& [key, samples] : ours[i]) {
      EXPECT_TRUE(theirs[i].contains(key))
          << when << ": remote read query " << i << ", only ours has " << key;
    }
  }
}

// Deletes samples from both by the admin API (delete_series): in a compacted partition, across
// the midnight between the compacted and the flushed partitions, from flushed chunks into
// the head, all of a series, and a sample of midnight_marks. No window of a series request
// lies inside a deleted range, and no fixed query ends in one (see the header: 2.42 may
// still answer deleted samples there). The range near the end holds no 2 h boundary, where
// Prometheus' head cuts chunks: clean_tombstones leaves the head's tombstones, and the
// random queries that follow may end anywhere. "" or what failed.
std::string DeleteSomeSamples() {
  const int64_t day1 = (g_env->t0 / kDay + 1) * kDay, day2 = day1 + kDay, day3 = day2 + kDay;
  const int64_t hour = 60 * kMinute, end = g_env->span.end();
  const std::vector<Params> deletes = {
      {{"match[]", "legacy_gauge"},
       {"start", SecondsText(day1 + 9 * hour + hour / 2)},
       {"end", SecondsText(day1 + 10 * hour + hour / 2)}},
      {{"match[]", "up{instance=\"10.0.0.1:80\"}"},
       {"match[]", "raw_values"},
       {"start", SecondsText(day2 - hour / 2)},
       {"end", SecondsText(day2 + hour / 2)}},
      {{"match[]", "queue_length{job=\"web\"}"},
       {"match[]", "midnight_resets_total"},
       {"start", SecondsText(end - 3 * hour + 10 * kMinute)},
       {"end", SecondsText(end - 2 * hour - 10 * kMinute)}},
      {{"match[]", "session_active{instance=\"back_30m\"}"}},
      {{"match[]", "midnight_marks"},
       {"start", SecondsText(day3 + 10 * kMinute)},
       {"end", SecondsText(day3 + 20 * kMinute)}},
  };
  for (const Params& d : deletes) {
    for (uint16_t port : {g_env->strata, g_env->prometheus}) {
      auto r = HttpPostForm(port, "/api/v1/admin/tsdb/delete_series", d);
      if (!r || r->status / 100 != 2) {
        return fmt::format("delete_series {} on port {}: HTTP {} {}", FormEncode(d), port,
                           r ? r->status : 0, r ? r->body : "");
      }
    }
  }
  return "";
}

std::string CleanTombstones() {
  for (uint16_t port : {g_env->strata, g_env->prometheus}) {
    auto r = HttpPostForm(port, "/api/v1/admin/tsdb/clean_tombstones", {});
    if (!r || r->status / 100 != 2) {
      return fmt::format("clean_tombstones on port {}: HTTP {} {}", port, r ? r->status : 0,
                         r ? r->body : "");
    }
  }
  return "";
}

// Over the multi-day data, while Strata holds it compacted (the partitions that end a day
// before the newest sample), as flushed chunks (the partition before the newest) and in its
// head (the last hours); then after deleting some samples (DeleteSomeSamples), after a clean
// restart (the head flushed on close) and after clean_tombstones; then, with 20 more
// minutes written, after SIGKILL (the head replayed from the WAL); then with the last 20
// minutes written to the replayed head. The same queries each time.
TEST(PromqlDays, AnswersAgreeOverCompactedFlushedAndHeadDataAndAfterRestarts) {
  if (DataDays() == 0) GTEST_SKIP() << "STRATA_QDIFF_DAYS is not set";
  if (std::getenv("STRATA_QDIFF_QUERY") != nullptr) GTEST_SKIP() << "STRATA_QDIFF_QUERY is set";
  ASSERT_EQ(g_env->error(), "");
  const int seed = EnvInt("STRATA_QDIFF_SEED", 1);
  const int instant = EnvInt("STRATA_QDIFF_QUERIES", 80), range = instant * 3 / 8;
  const int64_t newest = g_env->fed_until;  // the end minus 40 minutes
  // Partitions that end at least max_sample_age (24 h) before the newest sample are compacted
  // after a background flush (every minute).
  const int64_t compacted_end = (newest - kDay) / kDay * kDay;
  const int64_t flushed_end = compacted_end + kDay;
  const double compacted = static_cast<double>(SamplesBefore(compacted_end));
  std::vector<int64_t> head;
  for (int i = 0; i < 180; ++i) {
    head = StrataHeadStats();
    if (StrataMetric("strata_compaction_samples_total") >= compacted && head.size() == 4 &&
        head[2] >= flushed_end) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  ASSERT_GT(compacted, 0);
  EXPECT_EQ(StrataMetric("strata_compaction_samples_total"), compacted)
      << "every sample of the partitions before " << Rfc3339(compacted_end) << " compacted";
  ASSERT_EQ(head.size(), 4u);
  EXPECT_GT(head[0], 0) << "series in the head";
  EXPECT_GT(head[1], 0) << "chunks in the head";
  EXPECT_GE(head[2], flushed_end) << "the partition before " << Rfc3339(flushed_end)
                                  << " only in flushed chunks, not in the head";
  EXPECT_GT(SamplesBefore(flushed_end), static_cast<int64_t>(compacted));

  const auto http_cases = DaysHttpCases();
  auto compare_fixed = [&](const std::string& when) {
    CompareHttpCases(http_cases, when);
    CompareRemoteReads(when);
  };
  compare_fixed("running");
  CompareRandomQueries(seed, instant, range, "running");

  // Random queries only once the tombstones are cleaned (see the header: 2.42 may answer
  // deleted samples at a query's end).
  ASSERT_EQ(DeleteSomeSamples(), "");
  compare_fixed("after deletes");
  ASSERT_TRUE(g_env->RestartStrata(/*kill=*/false)) << g_env->error();
  compare_fixed("after deletes, SIGTERM and a restart");
  ASSERT_EQ(CleanTombstones(), "");
  compare_fixed("after clean_tombstones");
  CompareRandomQueries(seed, instant, range,
                       "after deletes, SIGTERM, a restart and clean_tombstones");

  const int64_t killed_at = g_env->span.end() - 20 * kMinute;
  ASSERT_TRUE(g_env->Feed(g_env->fed_until, killed_at)) << g_env->error();
  ASSERT_TRUE(g_env->RestartStrata(/*kill=*/true)) << g_env->error();
  head = StrataHeadStats();
  ASSERT_EQ(head.size(), 4u);
  // The head held nothing after the clean restart: all it holds now is what came after it,
  // replayed from the WAL.
  EXPECT_GE(head[2], newest);
  EXPECT_LT(head[2], newest + 2 * kMinute) << "the 20 minutes before the kill replayed";
  EXPECT_GE(head[3], killed_at - 2 * kMinute) << "the 20 minutes before the kill replayed";
  compare_fixed("after SIGKILL and a restart");
  CompareRandomQueries(seed, instant, range, "after SIGKILL and a restart");

  // Appends after the replay, to series whose open chunks came back from the WAL and to one
  // that was only in the store.
  ASSERT_TRUE(g_env->Feed(g_env->fed_until, g_env->span.end())) << g_env->error();
  compare_fixed("after SIGKILL, a restart and more data");
  CompareRandomQueries(seed, instant, range, "after SIGKILL, a restart and more data");
}

}  // namespace
}  // namespace strata::e2e
