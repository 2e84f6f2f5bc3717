#include "query/engine.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/parser.h"
#include "storage/db.h"
#include "storage/memory_store.h"
#include "tests/storage/test_util.h"

namespace strata::promql {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  // `series` series m{i="k", g="k%3"} with samples every 15 s over `minutes`, counters with
  // occasional resets and gaps.
  void Fill(int series, int minutes, uint32_t seed = 1) {
    std::mt19937 rng(seed);
    for (int k = 0; k < series; ++k) {
      std::vector<Sample> samples;
      double v = 0;
      for (int64_t t = 0; t <= minutes * 60'000; t += 15'000) {
        if (rng() % 10 == 0) continue;  // a missed scrape
        v = rng() % 50 == 0 ? 0 : v + static_cast<double>(rng() % 100);
        samples.push_back({t, v});
      }
      std::string i = std::to_string(k), g = std::to_string(k % 3);
      ASSERT_TRUE(store_.AppendMany({{"__name__", "m_total"}, {"i", i}, {"g", g}}, samples).ok());
    }
  }

  ExprPtr Parse(std::string_view q) {
    auto e = ParseExpr(q, ParserOptions::AllFeatures());
    EXPECT_TRUE(e.ok()) << q << ": " << e.status();
    return e.ok() ? std::move(*e) : nullptr;
  }

  MemoryStore store_;
};

// A range query must give at each step what an instant query gives at that time.
TEST_F(EngineTest, RangeQueryAgreesWithInstantQueriesAtEveryStep) {
  Fill(12, 60);
  Engine engine(EngineOptions::AllFeatures());
  EngineOptions opts = EngineOptions::AllFeatures();
  opts.max_samples = 1'000'000;
  engine = Engine(opts);
  const char* queries[] = {
      "sum by (g) (rate(m_total[5m]))",
      "m_total * 2 > on(i, g) m_total offset 1m",
      "topk(2, m_total) + ignoring(i) group_left sum by (g) (m_total)",
      "max_over_time(deriv(m_total[3m])[10m:1m])",
      "histogram_quantile(0.9, label_replace(m_total, \"le\", \"$1\", \"i\", \"(.*)\"))",
      "count_values(\"v\", floor(m_total / 1000)) or vector(1)",
      "quantile by (g) (0.3, increase(m_total[2m] anchored))",
      "absent(nope) + scalar(count(m_total))",
  };
  for (const char* q : queries) {
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr);
    const Timestamp start = 10 * 60'000, end = 40 * 60'000, step = 90'000;
    auto range = engine.RangeQuery(store_, *e, q, start, end, step);
    ASSERT_TRUE(range.ok()) << q << ": " << range.status();
    EXPECT_FALSE(range->value.matrix.empty()) << q;
    for (Timestamp t = start; t <= end; t += step) {
      auto inst = engine.InstantQuery(store_, *e, q, t);
      ASSERT_TRUE(inst.ok()) << q << ": " << inst.status();
      ASSERT_EQ(inst->value.type, ValueType::kVector) << q;
      size_t points_at_t = 0;
      for (const Series& s : range->value.matrix) {
        for (const Sample& p : s.samples) {
          if (p.t != t) continue;
          ++points_at_t;
          auto it = std::find_if(inst->value.vector.begin(), inst->value.vector.end(),
                                 [&](const VectorElement& el) { return el.labels == s.labels; });
          ASSERT_NE(it, inst->value.vector.end())
              << q << " at " << t << ": " << s.labels.ToString();
          if (std::isnan(p.v)) {
            EXPECT_TRUE(std::isnan(it->v));
          } else {
            EXPECT_DOUBLE_EQ(it->v, p.v) << q << " at " << t;
          }
        }
      }
      EXPECT_EQ(points_at_t, inst->value.vector.size()) << q << " at " << t;
    }
  }
}

TEST_F(EngineTest, RangeQueryDecodesEachSampleOnce) {
  Fill(5, 60);
  size_t total = 0;
  for (const auto& [l, s] : store_.All()) total += s.size();
  EngineOptions opts;
  Engine engine(opts);
  const char* q = "sum(rate(m_total[5m]))";
  ExprPtr e = Parse(q);
  auto r = engine.RangeQuery(store_, *e, q, 5 * 60'000, 60 * 60'000, 15'000);
  ASSERT_TRUE(r.ok()) << r.status();
  // 221 steps with 20 samples per window each would be ~22,000 decodes if every step
  // re-read its window; node-by-node evaluation reads each sample once.
  EXPECT_LE(r->samples_decoded, static_cast<int64_t>(total));
  EXPECT_GT(r->samples_decoded, 0);
  // The range selector streams: one series' raw samples are held at a time, plus the
  // per-step outputs (5 series x 221 steps before the sum).
  EXPECT_LT(r->peak_samples, r->samples_decoded / 5 + 5 * 221 + 221 + 10);
}

// rate, increase and delta over plain windows take their own loop: every step of a range
// query must be Prometheus' extrapolation written out per window, bit for bit, on
// irregular series with resets, negative values, NaN, windows of 0, 1 and many samples,
// and steps shorter and longer than the range.
TEST_F(EngineTest, RateIncreaseDeltaAreThePerWindowExtrapolationBitForBit) {
  std::mt19937 rng(11);
  std::vector<std::vector<Sample>> all(6);
  for (size_t k = 0; k < all.size(); ++k) {
    double v = k == 5 ? -50 : 0;
    for (int64_t t = static_cast<int64_t>(rng() % 20'000); t <= 3'600'000;
         t += 1 + static_cast<int64_t>(rng() % (k == 4 ? 200'000 : 40'000))) {
      if (rng() % 25 == 0) {
        v = static_cast<double>(rng() % 10);  // a reset
      } else {
        v += static_cast<double>(rng() % 1000) / 7;
      }
      all[k].push_back({t, k == 3 && rng() % 40 == 0 ? std::nan("") : v});
    }
    ASSERT_TRUE(
        store_.AppendMany({{"__name__", "c_total"}, {"i", std::to_string(k)}}, all[k]).ok());
  }
  // The window (T - range, T], as Prometheus' extrapolatedRate computes it for floats.
  auto expected = [](const std::vector<Sample>& pts, Timestamp T, int64_t range, bool counter,
                     bool rate) -> std::optional<double> {
    std::vector<Sample> w;
    for (const Sample& p : pts) {
      if (p.t > T - range && p.t <= T) w.push_back(p);
    }
    if (w.size() < 2) return std::nullopt;
    double result = w.back().v - w.front().v;
    if (counter) {
      for (size_t k = 1; k < w.size(); ++k) {
        if (w[k].v < w[k - 1].v) result += w[k - 1].v;
      }
    }
    double to_start = (static_cast<double>(w.front().t) - static_cast<double>(T - range)) / 1000;
    double to_end = static_cast<double>(T - w.back().t) / 1000;
    double sampled = static_cast<double>(w.back().t - w.front().t) / 1000;
    double avg = sampled / static_cast<double>(w.size() - 1);
    if (to_start >= avg * 1.1) to_start = avg / 2;
    if (counter && result > 0 && w.front().v >= 0) {
      to_start = std::min(to_start, sampled * (w.front().v / result));
    }
    if (to_end >= avg * 1.1) to_end = avg / 2;
    double factor = (sampled + to_start + to_end) / sampled;
    if (rate) factor /= static_cast<double>(range) / 1000;
    return result * factor;
  };
  EngineOptions opts = EngineOptions::AllFeatures();
  opts.max_samples = 10'000'000;
  Engine engine(opts);
  size_t compared = 0;
  for (int round = 0; round < 60; ++round) {
    const char* fn = round % 3 == 0 ? "rate" : round % 3 == 1 ? "increase" : "delta";
    const int64_t range = 1'000 * (5 + static_cast<int64_t>(rng() % 900));
    const int64_t step = 1'000 * (1 + static_cast<int64_t>(rng() % 120));
    const Timestamp start = static_cast<Timestamp>(rng() % 1'800'000);
    const Timestamp end = start + static_cast<Timestamp>(rng() % 1'800'000);
    const std::string q = fmt::format("{}(c_total[{}ms])", fn, range);
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr);
    auto got = engine.RangeQuery(store_, *e, q, start, end, step);
    ASSERT_TRUE(got.ok()) << q << ": " << got.status();
    size_t series_with_points = 0;
    for (size_t k = 0; k < all.size(); ++k) {
      std::vector<Sample> want;
      for (Timestamp T = start; T <= end; T += step) {
        auto v = expected(all[k], T, range, std::string_view(fn) != "delta",
                          std::string_view(fn) == "rate");
        if (v) want.push_back({T, *v});
      }
      const Labels l({{"i", std::to_string(k)}});
      auto it = std::find_if(got->value.matrix.begin(), got->value.matrix.end(),
                             [&](const Series& s) { return s.labels == l; });
      if (want.empty()) {
        EXPECT_EQ(it, got->value.matrix.end()) << q << " series " << k;
        continue;
      }
      ++series_with_points;
      ASSERT_NE(it, got->value.matrix.end()) << q << " series " << k;
      ASSERT_EQ(it->samples.size(), want.size()) << q << " series " << k;
      for (size_t j = 0; j < want.size(); ++j) {
        EXPECT_EQ(it->samples[j].t, want[j].t) << q;
        EXPECT_EQ(std::bit_cast<uint64_t>(it->samples[j].v), std::bit_cast<uint64_t>(want[j].v))
            << q << " series " << k << " at " << want[j].t << ": " << it->samples[j].v << " vs "
            << want[j].v;
        ++compared;
      }
    }
    EXPECT_EQ(got->value.matrix.size(), series_with_points) << q;
  }
  EXPECT_GT(compared, 10'000u);
}

// The window of each step is found from where the last step's was, guessing that its ends
// move by as many samples as last time: over bursts, gaps and irregular steps every window
// must still hold exactly the samples in (T - range, T], as an instant query (one step,
// no guess) finds them.
TEST_F(EngineTest, WindowsOverBurstsAndGapsHoldWhatInstantQueriesFind) {
  std::mt19937 rng(23);
  for (int k = 0; k < 4; ++k) {
    std::vector<Sample> samples;
    double v = 0;
    for (int64_t t = static_cast<int64_t>(rng() % 5'000); t <= 3'600'000;) {
      // Series 2 holds only NaNs and zeros of both signs: min/max_over_time must keep the
      // earliest of equal values and give NaN only for windows of NaNs alone.
      double x = v;
      if (k == 2) x = std::vector<double>{std::nan(""), 0.0, -0.0}[rng() % 3];
      samples.push_back({t, x});
      v += static_cast<double>(rng() % 100) - (k == 3 ? 50 : 0);
      switch (rng() % 8) {
        case 0:  // a burst
          t += 1 + static_cast<int64_t>(rng() % 50);
          break;
        case 1:  // a gap
          t += 60'000 + static_cast<int64_t>(rng() % 600'000);
          break;
        default:  // a scrape, jittered
          t += 14'000 + static_cast<int64_t>(rng() % 2'000);
      }
    }
    ASSERT_TRUE(store_.AppendMany({{"__name__", "g"}, {"i", std::to_string(k)}}, samples).ok());
  }
  EngineOptions opts = EngineOptions::AllFeatures();
  opts.max_samples = 10'000'000;
  Engine engine(opts);
  const char* functions[] = {"count_over_time", "sum_over_time",  "max_over_time",
                             "min_over_time",   "last_over_time", "irate",
                             "changes",         "rate",           "deriv"};
  size_t compared = 0;
  for (int round = 0; round < 54; ++round) {
    const std::string fn = functions[round % std::size(functions)];
    const int64_t range = 1'000 * (1 + static_cast<int64_t>(rng() % 3'600));
    const int64_t step = 1'000 * (1 + static_cast<int64_t>(rng() % 300));
    const Timestamp start = static_cast<Timestamp>(rng() % 1'800'000);
    const Timestamp end = start + static_cast<Timestamp>(rng() % 1'800'000);
    const std::string q = fmt::format("{}(g[{}ms])", fn, range);
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr);
    auto got = engine.RangeQuery(store_, *e, q, start, end, step);
    ASSERT_TRUE(got.ok()) << q << ": " << got.status();
    for (Timestamp t = start; t <= end; t += step) {
      auto inst = engine.InstantQuery(store_, *e, q, t);
      ASSERT_TRUE(inst.ok()) << q << ": " << inst.status();
      size_t points_at_t = 0;
      for (const Series& s : got->value.matrix) {
        for (const Sample& p : s.samples) {
          if (p.t != t) continue;
          ++points_at_t;
          ++compared;
          auto it = std::find_if(inst->value.vector.begin(), inst->value.vector.end(),
                                 [&](const VectorElement& el) { return el.labels == s.labels; });
          ASSERT_NE(it, inst->value.vector.end()) << q << " at " << t;
          EXPECT_EQ(std::bit_cast<uint64_t>(it->v), std::bit_cast<uint64_t>(p.v))
              << q << " at " << t << ": " << p.v << " vs " << it->v;
        }
      }
      ASSERT_EQ(points_at_t, inst->value.vector.size()) << q << " at " << t;
    }
  }
  EXPECT_GT(compared, 2'000u);
}

// Aggregations over few steps and groups go series by series (sum with a cell of its own),
// over many they go step by step: both must give the same bits, names, and errors.
TEST_F(EngineTest, AggregationsAgreeSeriesBySeriesAndStepByStep) {
  std::mt19937 rng(5);
  const double specials[] = {std::nan(""),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             1e308,
                             -1e308,
                             1e-300};
  for (int k = 0; k < 40; ++k) {
    std::vector<Sample> samples;
    for (int64_t t = 0; t <= 3'000'000; t += 1'000 + static_cast<int64_t>(rng() % 9'000)) {
      double v = static_cast<double>(static_cast<int>(rng() % 2'000) - 1'000) / 3;
      if (rng() % 200 == 0) v = specials[rng() % std::size(specials)];
      samples.push_back({t, v});
    }
    const std::string name = k % 4 == 0 ? "other" : "g_total";
    ASSERT_TRUE(store_
                    .AppendMany({{"__name__", name},
                                 {"i", std::to_string(k)},
                                 {"g", std::to_string(k % 7)},
                                 {"h", std::to_string(k % 2)}},
                                samples)
                    .ok());
  }
  EngineOptions opts = EngineOptions::AllFeatures();
  opts.max_samples = 50'000'000;
  Engine engine(opts);
  // 10,000 steps x 7 groups is over the series-by-series table's 65,536 cells; the same
  // steps asked for in pieces of 500 are under it.
  const Timestamp start = 100'000, step = 250;
  const size_t steps = 10'000, piece = 500;
  const char* queries[] = {
      "sum by (g) ({__name__=~\"g_total|other\"})",
      "sum by (g, __name__) ({__name__=~\"g_total|other\"})",
      "sum without (i) (rate({__name__=~\"g_total|other\"}[20s]))",
      "avg by (g) (g_total)",
      "max by (g) (g_total)",
      "stddev by (g) (g_total)",
      "count by (g) (other)",
  };
  for (const char* q : queries) {
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr);
    auto whole = engine.RangeQuery(store_, *e, q, start, start + (steps - 1) * step, step);
    ASSERT_TRUE(whole.ok()) << q << ": " << whole.status();
    std::map<std::string, std::vector<Sample>> pieces;
    for (size_t p = 0; p < steps; p += piece) {
      const Timestamp from = start + static_cast<Timestamp>(p) * step;
      auto part = engine.RangeQuery(store_, *e, q, from, from + (piece - 1) * step, step);
      ASSERT_TRUE(part.ok()) << q << ": " << part.status();
      for (const Series& s : part->value.matrix) {
        auto& to = pieces[s.labels.ToString()];
        to.insert(to.end(), s.samples.begin(), s.samples.end());
      }
    }
    ASSERT_EQ(whole->value.matrix.size(), pieces.size()) << q;
    size_t points = 0;
    for (const Series& s : whole->value.matrix) {
      const auto it = pieces.find(s.labels.ToString());
      ASSERT_NE(it, pieces.end()) << q << " " << s.labels.ToString();
      ASSERT_EQ(s.samples.size(), it->second.size()) << q << " " << s.labels.ToString();
      for (size_t j = 0; j < s.samples.size(); ++j) {
        EXPECT_EQ(s.samples[j].t, it->second[j].t) << q;
        EXPECT_EQ(std::bit_cast<uint64_t>(s.samples[j].v), std::bit_cast<uint64_t>(it->second[j].v))
            << q << " " << s.labels.ToString() << " at " << s.samples[j].t << ": " << s.samples[j].v
            << " vs " << it->second[j].v;
      }
      points += s.samples.size();
    }
    EXPECT_GT(points, 10'000u) << q;
  }
}

// An aggregation (sum, avg, ...) of a range function over one metric takes each series'
// outputs as they come; `* 1` (exact for every float, and it drops the name as the function
// does) sends the same query down the general path: the answers must be the same bits.
// Series with __type__, and more groups than the path holds cells for, go the general way.
TEST_F(EngineTest, AggregationOfARangeFunctionAnswersAsTheGeneralPath) {
  Fill(40, 60, 9);
  std::vector<Sample> nan_and_inf;
  for (int64_t t = 0; t <= 3'600'000; t += 15'000) {
    double v = static_cast<double>(t / 15'000);
    if (t % 900'000 == 0) v = std::nan("");
    if (t % 1'200'000 == 0) v = std::numeric_limits<double>::infinity();
    nan_and_inf.push_back({t, v});
  }
  ASSERT_TRUE(
      store_.AppendMany({{"__name__", "m_total"}, {"i", "x"}, {"g", "0"}}, nan_and_inf).ok());
  ASSERT_TRUE(
      store_.AppendMany({{"__name__", "t_total"}, {"a", "1"}}, {{60'000, 1}, {90'000, 2}}).ok());
  ASSERT_TRUE(store_
                  .AppendMany({{"__name__", "t_total"}, {"__type__", "counter"}, {"a", "1"}},
                              {{60'000, 1}, {90'000, 3}})
                  .ok());
  const std::vector<std::pair<std::string, std::string>> forms = {
      {"sum(rate(m_total[5m]))", "sum(rate(m_total[5m]) * 1)"},
      {"sum by (g) (increase(m_total[2m]))", "sum by (g) (increase(m_total[2m]) * 1)"},
      {"sum without (i) (delta(m_total[10m] offset 3m))",
       "sum without (i) (delta(m_total[10m] offset 3m) * 1)"},
      {"sum by (g, i) (max_over_time(m_total[1m]))",
       "sum by (g, i) (max_over_time(m_total[1m]) * 1)"},
      {"sum(quantile_over_time(0.3, m_total{g!=\"1\"}[4m]))",
       "sum(quantile_over_time(0.3, m_total{g!=\"1\"}[4m]) * 1)"},
      {"sum by (g) (rate(m_total[5m] @ 1800))", "sum by (g) (rate(m_total[5m] @ 1800) * 1)"},
      {"sum(rate(t_total[5m]))", "sum(rate(t_total[5m]) * 1)"},
      {"avg by (g) (rate(m_total[5m]))", "avg by (g) (rate(m_total[5m]) * 1)"},
      {"max without (i) (irate(m_total[2m]))", "max without (i) (irate(m_total[2m]) * 1)"},
      {"min(deriv(m_total[10m]))", "min(deriv(m_total[10m]) * 1)"},
      {"count by (g) (changes(m_total[3m]))", "count by (g) (changes(m_total[3m]) * 1)"},
      {"stddev by (g) (rate(m_total[5m]))", "stddev by (g) (rate(m_total[5m]) * 1)"},
      {"stdvar(increase(m_total[5m]))", "stdvar(increase(m_total[5m]) * 1)"},
      {"group by (g) (resets(m_total[20m]))", "group by (g) (resets(m_total[20m]) * 1)"},
      {"avg(rate(t_total[5m]))", "avg(rate(t_total[5m]) * 1)"},
  };
  struct Range {
    Timestamp start, end, step;
  };
  // The last: 11,000 steps x 40 groups is over the cells the path holds.
  const Range ranges[] = {{600'000, 3'000'000, 60'000},
                          {0, 3'600'000, 15'000},
                          {1'234'000, 1'234'000, 1'000},
                          {1'000, 1'000 + 10'999 * 300, 300}};
  size_t points = 0;
  for (const bool delayed : {false, true}) {
    EngineOptions opts = EngineOptions::AllFeatures();
    opts.max_samples = 50'000'000;
    opts.delayed_name_removal = delayed;
    Engine engine(opts);
    for (const auto& [fused, general] : forms) {
      for (const Range& rg : ranges) {
        ExprPtr a = Parse(fused), b = Parse(general);
        ASSERT_NE(a, nullptr);
        ASSERT_NE(b, nullptr);
        auto x = engine.RangeQuery(store_, *a, fused, rg.start, rg.end, rg.step);
        auto y = engine.RangeQuery(store_, *b, general, rg.start, rg.end, rg.step);
        ASSERT_EQ(x.ok(), y.ok()) << fused << ": " << x.status() << " vs " << y.status();
        if (!x.ok()) {
          EXPECT_EQ(x.status().message(), y.status().message()) << fused;
          continue;
        }
        ASSERT_EQ(x->value.matrix.size(), y->value.matrix.size()) << fused;
        for (size_t k = 0; k < x->value.matrix.size(); ++k) {
          const Series &p = x->value.matrix[k], &q = y->value.matrix[k];
          EXPECT_EQ(p.labels, q.labels) << fused;
          ASSERT_EQ(p.samples.size(), q.samples.size()) << fused << " " << p.labels.ToString();
          for (size_t j = 0; j < p.samples.size(); ++j) {
            EXPECT_EQ(p.samples[j].t, q.samples[j].t) << fused;
            EXPECT_EQ(std::bit_cast<uint64_t>(p.samples[j].v),
                      std::bit_cast<uint64_t>(q.samples[j].v))
                << fused << " " << p.labels.ToString() << " at " << p.samples[j].t;
          }
          points += p.samples.size();
        }
        EXPECT_EQ(x->infos, y->infos) << fused;
        EXPECT_EQ(x->warnings, y->warnings) << fused;
      }
    }
  }
  EXPECT_GT(points, 100'000u);
  // The two t_total series collide once the name and __type__ are dropped at once.
  EngineOptions opts = EngineOptions::AllFeatures();
  opts.delayed_name_removal = false;
  Engine engine(opts);
  auto typed = engine.InstantQuery(store_, *Parse("sum(rate(t_total[5m]))"),
                                   "sum(rate(t_total[5m]))", 120'000);
  ASSERT_FALSE(typed.ok());
  EXPECT_THAT(std::string(typed.status().message()), ::testing::HasSubstr("same labelset"));
}

// Same type, same series in the same order, the same timestamps and the same value bits.
void ExpectIdentical(const QueryResult& a, const QueryResult& b, const std::string& what) {
  ASSERT_EQ(a.value.type, b.value.type) << what;
  auto same = [](double x, double y) {
    return std::bit_cast<uint64_t>(x) == std::bit_cast<uint64_t>(y);
  };
  ASSERT_EQ(a.value.vector.size(), b.value.vector.size()) << what;
  for (size_t i = 0; i < a.value.vector.size(); ++i) {
    const VectorElement &x = a.value.vector[i], &y = b.value.vector[i];
    EXPECT_EQ(x.labels, y.labels) << what << " element " << i;
    EXPECT_EQ(x.t, y.t) << what;
    EXPECT_TRUE(same(x.v, y.v)) << what << " " << x.labels.ToString() << ": " << x.v << " vs "
                                << y.v;
  }
  ASSERT_EQ(a.value.matrix.size(), b.value.matrix.size()) << what;
  for (size_t i = 0; i < a.value.matrix.size(); ++i) {
    const Series &x = a.value.matrix[i], &y = b.value.matrix[i];
    EXPECT_EQ(x.labels, y.labels) << what << " series " << i;
    ASSERT_EQ(x.samples.size(), y.samples.size()) << what << " " << x.labels.ToString();
    for (size_t k = 0; k < x.samples.size(); ++k) {
      EXPECT_EQ(x.samples[k].t, y.samples[k].t) << what;
      EXPECT_TRUE(same(x.samples[k].v, y.samples[k].v)) << what << " " << x.labels.ToString();
    }
  }
  EXPECT_EQ(a.warnings, b.warnings) << what;
  EXPECT_EQ(a.infos, b.infos) << what;
  EXPECT_EQ(a.peak_samples, b.peak_samples) << what;
  EXPECT_EQ(a.samples_decoded, b.samples_decoded) << what;
}

// Range functions over many series run on several workers: the answers (and errors and
// annotations) must be those of one thread, in the same order, bit for bit.
TEST_F(EngineTest, ParallelRangeFunctionsAnswerAsOneThread) {
  Fill(300, 60, 7);
  std::mt19937 rng(3);
  for (int k = 0; k < 300; ++k) {
    std::vector<Sample> samples;
    double v = 0;
    for (int64_t t = 0; t <= 60 * 60'000; t += 15'000) {
      v += static_cast<double>(static_cast<int>(rng() % 200) - 100) / 8;
      samples.push_back({t, k % 50 == 0 && t == 30 * 60'000 ? std::nan("") : v});
    }
    ASSERT_TRUE(store_.AppendMany({{"__name__", "gauge"}, {"i", std::to_string(k)}}, samples).ok());
    if (k % 3 == 0) {
      ASSERT_TRUE(
          store_.AppendMany({{"__name__", "a_gauge"}, {"i", std::to_string(k)}}, samples).ok());
    }
  }
  EngineOptions one = EngineOptions::AllFeatures();
  one.max_samples = 10'000'000;
  one.parallelism = 1;
  EngineOptions many = one;
  many.parallelism = 4;
  many.parallel_min_series = 1;
  Engine e1(one), e4(many);
  const char* queries[] = {
      "rate(m_total[5m])",
      "sum by (g) (rate(m_total[5m]))",
      "rate(gauge[5m])",                                      // an info, once
      "rate({__name__=~\"gauge|a_gauge\", i=~\".*0\"}[5m])",  // two infos, in series order
      "increase(m_total[3m] anchored)",
      "delta(gauge[4m] smoothed)",
      "irate(m_total[2m]) / idelta(gauge[2m])",
      "max_over_time(gauge[7m]) - min_over_time(gauge[7m])",
      "quantile_over_time(0.3, gauge[10m])",
      "quantile_over_time(1.5, gauge[10m])",  // a warning
      "stddev_over_time(gauge[10m]) + avg_over_time(gauge[10m]) + sum_over_time(gauge[10m])",
      "last_over_time(m_total[5m]) + count_over_time(m_total[5m])",
      "resets(m_total[20m]) + changes(m_total[20m])",
      "deriv(gauge[5m]) + predict_linear(gauge[10m], 60)",
      "absent_over_time(m_total[1m])",
      "absent_over_time(nope[1m])",
      "rate(m_total[5m:30s])",
      "count_over_time({__name__=~\"m_total|gauge\"}[5m])",  // same label sets: an error
      "topk(5, rate(m_total[10m]))",
  };
  for (const char* q : queries) {
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr);
    for (Timestamp t : {0L, 7 * 60'000L, 30 * 60'000L + 500, 60 * 60'000L}) {
      auto a = e1.InstantQuery(store_, *e, q, t);
      auto b = e4.InstantQuery(store_, *e, q, t);
      ASSERT_EQ(a.ok(), b.ok()) << q << " at " << t << ": " << a.status() << " / " << b.status();
      if (!a.ok()) {
        EXPECT_EQ(a.status(), b.status()) << q;
        continue;
      }
      ExpectIdentical(*a, *b, std::string(q) + " at " + std::to_string(t));
    }
    auto a = e1.RangeQuery(store_, *e, q, 0, 60 * 60'000, 60'000);
    auto b = e4.RangeQuery(store_, *e, q, 0, 60 * 60'000, 60'000);
    ASSERT_EQ(a.ok(), b.ok()) << q << ": " << a.status() << " / " << b.status();
    if (!a.ok()) {
      EXPECT_EQ(a.status(), b.status()) << q;
      continue;
    }
    ExpectIdentical(*a, *b, std::string(q) + " over the hour");
  }
  // The sample budget is counted as one thread counts it, whatever the number of workers:
  // a budget between the answer's size and what one thread peaks at fails on both, one
  // just above the peak passes on both.
  ExprPtr e = Parse("rate(gauge[30m])");
  auto full = e1.InstantQuery(store_, *e, "rate(gauge[30m])", 60 * 60'000);
  ASSERT_TRUE(full.ok());
  for (int64_t budget : {full->peak_samples - 1, full->peak_samples}) {
    one.max_samples = many.max_samples = budget;
    Engine s1(one), s4(many);
    auto a = s1.InstantQuery(store_, *e, "rate(gauge[30m])", 60 * 60'000);
    auto b = s4.InstantQuery(store_, *e, "rate(gauge[30m])", 60 * 60'000);
    ASSERT_EQ(a.ok(), budget >= full->peak_samples) << budget << ": " << a.status();
    ASSERT_EQ(b.ok(), a.ok()) << budget << ": " << b.status();
    if (!a.ok()) {
      EXPECT_EQ(a.status(), b.status());
      EXPECT_EQ(a.status().code(), absl::StatusCode::kResourceExhausted);
    } else {
      ExpectIdentical(*a, *b, "rate(gauge[30m]) with a budget of " + std::to_string(budget));
    }
  }
  // Far over the budget: the same error, whether the workers stop early or not.
  one.max_samples = many.max_samples = 3'000;
  Engine s1(one), s4(many);
  auto a = s1.RangeQuery(store_, *e, "rate(gauge[30m])", 0, 60 * 60'000, 60'000);
  auto b = s4.RangeQuery(store_, *e, "rate(gauge[30m])", 0, 60 * 60'000, 60'000);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status(), b.status());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kResourceExhausted);
}

// The same over the real store, whose selection hands labels over (TakeLabels) and whose
// series are partly flushed to RocksDB and partly in the head.
TEST(EngineParallel, WorkersOverTheDatabaseAnswerAsOneThread) {
  testing::TempDir dir;
  StorageOptions so;
  so.dir = dir.path();
  so.flush_interval_ms = 0;
  auto db = Storage::Open(so);
  ASSERT_TRUE(db.ok()) << db.status();
  std::mt19937 rng(5);
  for (int half = 0; half < 2; ++half) {
    std::vector<SeriesBatch> batch;
    for (int k = 0; k < 600; ++k) {
      std::vector<Sample> samples;
      double v = 1000.0 * k;
      for (int64_t t = half * 30 * 60'000; t < (half + 1) * 30 * 60'000; t += 15'000) {
        v += static_cast<double>(rng() % 1000) / 100;
        samples.push_back({t, v});
      }
      batch.push_back({Labels{{"__name__", k % 2 ? "c_total" : "d_total"},
                              {"i", std::to_string(k)},
                              {"g", std::to_string(k % 7)}},
                       std::move(samples)});
    }
    ASSERT_TRUE((*db)->Append(batch).ok());
    if (half == 0) {
      ASSERT_TRUE((*db)->Flush(true).ok());  // the first half in RocksDB
    }
  }
  EngineOptions one;
  one.parallelism = 1;
  EngineOptions many = one;
  many.parallelism = 3;
  many.parallel_min_series = 1;
  Engine e1(one), e3(many);
  for (const char* q :
       {"rate(c_total[5m])", "sum by (g) (rate({__name__=~\"c_total|d_total\"}[5m]))",
        "max_over_time(d_total[40m])", "c_total"}) {
    auto e = ParseExpr(q, ParserOptions());
    ASSERT_TRUE(e.ok()) << q;
    auto a = e1.RangeQuery(**db, **e, q, 10 * 60'000, 60 * 60'000, 60'000);
    auto b = e3.RangeQuery(**db, **e, q, 10 * 60'000, 60 * 60'000, 60'000);
    ASSERT_TRUE(a.ok() && b.ok()) << q << ": " << a.status() << " / " << b.status();
    EXPECT_FALSE(a->value.matrix.empty()) << q;
    ExpectIdentical(*a, *b, std::string(q) + " over the database");
    auto c = e1.InstantQuery(**db, **e, q, 45 * 60'000);
    auto d = e3.InstantQuery(**db, **e, q, 45 * 60'000);
    ASSERT_TRUE(c.ok() && d.ok()) << q;
    ExpectIdentical(*c, *d, std::string(q) + " at 45m over the database");
  }
}

TEST_F(EngineTest, SampleLimitFailsWithExecutionError) {
  Fill(20, 120);
  EngineOptions opts;
  opts.max_samples = 1000;
  Engine engine(opts);
  const char* q = "sum(m_total)";
  ExprPtr e = Parse(q);
  auto r = engine.RangeQuery(store_, *e, q, 0, 120 * 60'000, 15'000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("too many samples"), absl::string_view::npos);
  opts.max_samples = 1'000'000;
  EXPECT_TRUE(Engine(opts).RangeQuery(store_, *e, q, 0, 120 * 60'000, 15'000).ok());
}

TEST_F(EngineTest, ExtremeNumbersDoNotCrashFunctions) {
  Engine engine(EngineOptions::AllFeatures());
  for (const char* q :
       {"year(vector(1e300))", "topk(9.2e18, vector(1))", "limitk(-9.2e18, vector(1))",
        "round(vector(1e308), 1e-308)", "day_of_week(vector(-Inf))", "quantile(2, vector(1))",
        "clamp(vector(1), NaN, 1)", "rate(m[5m] @ 9000000000000 offset -100y)",
        "m smoothed @ -9000000000000", "max_over_time(m[1y:1d] offset 100y)",
        "histogram_quantile(0.5, label_replace(vector(1), \"le\", \"NaN\", \"\", \"\"))"}) {
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr) << q;
    auto r = engine.InstantQuery(store_, *e, q, 0);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
  }
}

// topk, bottomk and limitk take k as Prometheus' convertibleToInt64 does: a k that no int64
// holds is an error naming it as Go's %v prints it (2.42 and 3.x alike).
TEST_F(EngineTest, KBeyondInt64IsAnError) {
  Engine engine(EngineOptions::AllFeatures());
  for (auto [q, msg] : std::vector<std::pair<const char*, const char*>>{
           {"topk(1e20, vector(1))", "Scalar value 1e+20 overflows int64"},
           {"bottomk(-1e300, vector(1))", "Scalar value -1e+300 overflows int64"},
           {"limitk(Inf, vector(1))", "Scalar value +Inf overflows int64"},
           {"topk(9223372036854775807, vector(1))",
            "Scalar value 9.223372036854776e+18 overflows int64"},
           {"topk(NaN, vector(1))", "Parameter value is NaN"}}) {
    auto r = engine.InstantQuery(store_, *Parse(q), q, 0);
    ASSERT_FALSE(r.ok()) << q;
    EXPECT_EQ(r.status().message(), msg) << q;
  }
}

TEST_F(EngineTest, HugeSubqueryIsRefusedBeforeAllocating) {
  Engine engine;
  const char* q = "sum_over_time(vector(1)[100d:1ms])";
  ExprPtr e = Parse(q);
  auto r = engine.InstantQuery(store_, *e, q, 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(EngineTest, DeadlineStopsAQuery) {
  Fill(50, 240);
  EngineOptions opts;
  opts.max_samples = 100'000'000;
  opts.timeout = absl::ZeroDuration();
  Engine engine(opts);
  const char* q = "sum by (g) (rate(m_total[5m]))";
  ExprPtr e = Parse(q);
  auto r = engine.RangeQuery(store_, *e, q, 0, 240 * 60'000, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
}

// Go's regexp (and so Prometheus) rejects RE2's \C (any byte); label_replace refuses it as
// it refuses any regex it cannot compile, and accepts it quoted.
TEST_F(EngineTest, LabelReplaceRefusesTheAnyByteEscape) {
  Engine engine;
  const char* q = R"(label_replace(vector(1), "a", "$1", "b", "x\\C"))";
  auto r = engine.InstantQuery(store_, *Parse(q), q, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), R"(invalid regular expression in label_replace(): x\C)");
  const char* quoted = R"(label_replace(vector(1), "a", "$1", "b", "\\Qx\\C\\E|"))";
  EXPECT_TRUE(engine.InstantQuery(store_, *Parse(quoted), quoted, 0).ok());
}

// group_left(__name__) copies the one side's name into an arithmetic result (the many
// side's was dropped before), but a bool comparison drops the name after the copy: its
// results have none. Both as Prometheus 2.42 and 3.x without delayed name removal answer.
TEST_F(EngineTest, GroupLeftNameSurvivesArithmeticButNotABoolComparison) {
  ASSERT_TRUE(store_.AppendMany({{"__name__", "a"}, {"job", "x"}, {"i", "1"}}, {{0, 1}}).ok());
  ASSERT_TRUE(store_.AppendMany({{"__name__", "b"}, {"job", "x"}}, {{0, 2}}).ok());
  EngineOptions opts;
  opts.delayed_name_removal = false;
  Engine engine(opts);
  auto labels_of = [&](const char* q) {
    auto r = engine.InstantQuery(store_, *Parse(q), q, 0);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
    std::vector<std::string> out;
    if (r.ok()) {
      for (const VectorElement& el : r->value.vector) out.push_back(el.labels.ToString());
    }
    return out;
  };
  EXPECT_THAT(labels_of("a + ignoring(i) group_left(__name__) b"),
              ::testing::ElementsAre(R"({__name__="b", i="1", job="x"})"));
  EXPECT_THAT(labels_of("a < bool ignoring(i) group_left(__name__) b"),
              ::testing::ElementsAre(R"({i="1", job="x"})"));
  EXPECT_THAT(labels_of("a < ignoring(i) group_left(__name__) b"),
              ::testing::ElementsAre(R"({__name__="b", i="1", job="x"})"));
}

// Input series that get one label set from label_replace are one output series as long as
// no two have a point at the same step, whichever comes first in the input (`x or y` lists
// x, which has the later points, first).
TEST_F(EngineTest, LabelReplaceJoinsSeriesThatTakeTurns) {
  ASSERT_TRUE(store_.AppendMany({{"__name__", "x"}, {"k", "1"}}, {{900'000, 2}}).ok());
  ASSERT_TRUE(store_.AppendMany({{"__name__", "y"}, {"k", "1"}}, {{10'000, 1}}).ok());
  Engine engine;
  auto run = [&](const std::string& q) {
    return engine.RangeQuery(store_, *Parse(q), q, 0, 1'200'000, 100'000);
  };
  auto both = run(R"(label_replace(x or y, "__name__", "z", "", ""))");
  ASSERT_TRUE(both.ok()) << both.status();
  auto x = run(R"(label_replace(x, "__name__", "z", "", ""))");
  auto y = run(R"(label_replace(y, "__name__", "z", "", ""))");
  ASSERT_TRUE(x.ok() && y.ok());
  ASSERT_EQ(both->value.matrix.size(), 1u);
  ASSERT_EQ(x->value.matrix.size(), 1u);
  ASSERT_EQ(y->value.matrix.size(), 1u);
  std::vector<Sample> want = y->value.matrix[0].samples;
  want.insert(want.end(), x->value.matrix[0].samples.begin(), x->value.matrix[0].samples.end());
  const std::vector<Sample>& got = both->value.matrix[0].samples;
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].t, want[i].t);
    EXPECT_EQ(got[i].v, want[i].v);
  }
  EXPECT_EQ(both->value.matrix[0].labels.ToString(), R"({__name__="z", k="1"})");
  EXPECT_TRUE(run(R"(label_replace({__name__=~"x|y"}, "__name__", "z", "", ""))").ok());
  // At a step where two have a point, the label sets collide.
  ASSERT_TRUE(store_.AppendMany({{"__name__", "w"}, {"k", "1"}}, {{900'000, 3}}).ok());
  auto overlap = run(R"(label_replace({__name__=~"x|w"}, "__name__", "z", "", ""))");
  ASSERT_FALSE(overlap.ok());
  EXPECT_EQ(overlap.status().message(), "vector cannot contain metrics with the same labelset");
}

TEST_F(EngineTest, CancelFlagStopsAQuery) {
  Fill(50, 240);
  std::atomic<bool> canceled{true};
  EngineOptions opts;
  opts.max_samples = 100'000'000;
  opts.canceled = &canceled;
  const char* q = "sum by (g) (rate(m_total[5m]))";
  ExprPtr e = Parse(q);
  auto r = Engine(opts).RangeQuery(store_, *e, q, 0, 240 * 60'000, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(r.status().message(), "query was canceled in expression evaluation");
  canceled = false;
  EXPECT_TRUE(Engine(opts).RangeQuery(store_, *e, q, 0, 240 * 60'000, 1000).ok());
}

// The poll that looks for the client having gone away: not called by a query that ends
// within the poll interval, called now and then by one that runs on, and what it sets
// stops the query.
TEST_F(EngineTest, CancelPollIsCalledNowAndThenAndItsFlagStopsAQuery) {
  Fill(50, 240);
  std::atomic<bool> canceled{false};
  std::atomic<int> polls{0};
  EngineOptions opts;
  opts.max_samples = 100'000'000;
  opts.canceled = &canceled;
  opts.poll_canceled = [&] { ++polls; };
  const char* light = "1 + 1";
  EXPECT_TRUE(Engine(opts).InstantQuery(store_, *Parse(light), light, 0).ok());
  EXPECT_EQ(polls.load(), 0);
  // Runs for seconds unless stopped: every deadline check may poll.
  const char* q = "quantile_over_time(0.5, vector(1)[1d:1s])";
  opts.timeout = absl::Minutes(1);
  opts.poll_canceled = [&] {
    if (++polls == 3) canceled = true;
  };
  auto r = Engine(opts).RangeQuery(store_, *Parse(q), q, 0, 10'000'000, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_EQ(polls.load(), 3);
}

TEST_F(EngineTest, ScalarRangeQueryIsOneSeriesWithoutLabels) {
  Engine engine;
  const char* q = "time() * 2";
  ExprPtr e = Parse(q);
  auto r = engine.RangeQuery(store_, *e, q, 0, 120'000, 60'000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->value.type, ValueType::kMatrix);
  ASSERT_EQ(r->value.matrix.size(), 1u);
  EXPECT_TRUE(r->value.matrix[0].labels.empty());
  ASSERT_EQ(r->value.matrix[0].samples.size(), 3u);
  EXPECT_EQ(r->value.matrix[0].samples[2].v, 240);
}

TEST_F(EngineTest, StringAndScalarResultsCarryTheEvaluationTime) {
  Engine engine;
  for (const char* q : {"\"hello\"", "42"}) {
    ExprPtr e = Parse(q);
    auto r = engine.InstantQuery(store_, *e, q, 1'234'567);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->value.scalar_t, 1'234'567) << q;
  }
}

TEST_F(EngineTest, WithoutDelayedNameRemovalNamesDropAtOnce) {
  ASSERT_TRUE(store_.AppendMany({{"__name__", "a"}, {"x", "1"}}, {{0, 1}}).ok());
  ASSERT_TRUE(store_.AppendMany({{"__name__", "b"}, {"x", "2"}}, {{0, 2}}).ok());
  const char* q = "sum by (__name__) (abs({x=~\"1|2\"}))";
  ExprPtr e = Parse(q);
  EngineOptions opts;
  opts.delayed_name_removal = false;
  auto r = Engine(opts).InstantQuery(store_, *e, q, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->value.vector.size(), 1u);
  EXPECT_EQ(r->value.vector[0].v, 3);
  opts.delayed_name_removal = true;
  EXPECT_FALSE(Engine(opts).InstantQuery(store_, *e, q, 0).ok());  // same labelset twice
}

// `sum(a) or vector(0)` is sum(a) while `a` has samples and vector(0) after: one series
// {} over the whole range, as Prometheus keys every step's output by label set. Unary minus
// and a range function over a subquery must take it as one series, not fail with "vector
// cannot contain metrics with the same labelset" or see two windows.
TEST_F(EngineTest, SeriesThatAnOrJoinsAcrossStepsAreOneSeries) {
  std::vector<Sample> samples;
  for (Timestamp t = 0; t <= 10 * 60'000; t += 15'000) samples.push_back({t, 5});
  ASSERT_TRUE(store_.AppendMany({{"__name__", "a"}, {"x", "1"}}, samples).ok());
  for (bool delayed : {false, true}) {
    EngineOptions opts = EngineOptions::AllFeatures();
    opts.delayed_name_removal = delayed;
    Engine engine(opts);
    const char* negated = "-(sum(a) or vector(0))";
    auto r = engine.RangeQuery(store_, *Parse(negated), negated, 0, 30 * 60'000, 60'000);
    ASSERT_TRUE(r.ok()) << negated << ": " << r.status();
    ASSERT_EQ(r->value.matrix.size(), 1u);
    EXPECT_EQ(r->value.matrix[0].samples.size(), 31u);
    // At 17m the window (12m, 17m] holds 5 (13m to 15m, within the lookback of a's last
    // sample) and 0 (16m, 17m).
    const char* windowed = "max_over_time((sum(a) or vector(0))[5m:1m])";
    auto at = engine.InstantQuery(store_, *Parse(windowed), windowed, 17 * 60'000);
    ASSERT_TRUE(at.ok()) << windowed << ": " << at.status();
    ASSERT_EQ(at->value.vector.size(), 1u);
    EXPECT_EQ(at->value.vector[0].v, 5);
    const char* counted = "count_over_time((sum(a) or vector(0))[5m:1m])";
    at = engine.InstantQuery(store_, *Parse(counted), counted, 17 * 60'000);
    ASSERT_TRUE(at.ok()) << counted << ": " << at.status();
    ASSERT_EQ(at->value.vector.size(), 1u);
    EXPECT_EQ(at->value.vector[0].v, 5);
  }
}

// A subquery's inner steps run up to the end of the range it is evaluated over, not only up
// to its last step (as in Prometheus): here the range query's end (150 s) lies after its last
// step (120 s), and at inner step 150 s the many-to-many match fails, although no window
// reads that step.
TEST_F(EngineTest, SubqueryEvaluatesUpToTheEndOfItsRangeNotItsLastStep) {
  ASSERT_TRUE(store_.AppendMany({{"__name__", "m"}}, {{125'000, 1}}).ok());
  ASSERT_TRUE(store_.AppendMany({{"__name__", "b"}, {"y", "1"}}, {{0, 1}}).ok());
  ASSERT_TRUE(store_.AppendMany({{"__name__", "b"}, {"y", "2"}}, {{0, 1}}).ok());
  Engine engine(EngineOptions::AllFeatures());
  const char* q = "count_over_time((m > on() b)[1m:30s])";
  auto r = engine.RangeQuery(store_, *Parse(q), q, 0, 150'000, 60'000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("found duplicate series for the match group"),
            std::string::npos)
      << r.status();
  // Ending on a step, the query never evaluates the match after 125 s.
  EXPECT_TRUE(engine.RangeQuery(store_, *Parse(q), q, 0, 120'000, 60'000).ok());
}

// Unary minus and functions that drop or set labels keep distinct series apart (with
// and without delayed name removal).
TEST_F(EngineTest, NegatingDistinctSeriesKeepsThemApart) {
  Fill(6, 30);
  for (const char* q : {"-(label_join(increase(m_total[10m]), \"job\", \",\", \"i\", \"g\"))",
                        "-increase(m_total[10m])", "max_over_time((-m_total)[5m:1m])"}) {
    for (bool delayed : {false, true}) {
      EngineOptions opts = EngineOptions::AllFeatures();
      opts.delayed_name_removal = delayed;
      auto r = Engine(opts).InstantQuery(store_, *Parse(q), q, 20 * 60'000);
      ASSERT_TRUE(r.ok()) << q << " (delayed name removal " << delayed << "): " << r.status();
      EXPECT_EQ(r->value.vector.size(), 6u) << q;
    }
  }
}

TEST_F(EngineTest, FeatureFlagsGateExperimentalConstructs) {
  ASSERT_TRUE(store_.AppendMany({{"__name__", "a"}}, {{0, 1}}).ok());
  EngineOptions off;
  for (const char* q :
       {"mad_over_time(a[1m])", "limitk(1, a)", "rate(a[1m] anchored)", "a + fill(0) a"}) {
    ExprPtr e = Parse(q);
    ASSERT_NE(e, nullptr);
    auto r = Engine(off).InstantQuery(store_, *e, q, 0);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << q;
    EXPECT_TRUE(Engine(EngineOptions::AllFeatures()).InstantQuery(store_, *e, q, 0).ok()) << q;
  }
}

}  // namespace
}  // namespace strata::promql
