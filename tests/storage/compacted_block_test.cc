// The compacted block codec: bit-exact round trips over random series of many shapes, and
// garbled or truncated blocks that must fail cleanly (run under ASan in CI).
#include "storage/compacted_block.h"

#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "storage/coding.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

constexpr uint64_t kSpecialBits[] = {
    kStaleNaNBits,
    0x7ff8000000000000ULL,  // quiet NaN
    0xfff8000000000001ULL,  // negative NaN with payload
    0x7ff0000000000001ULL,  // signalling NaN
    0x7ff0000000000000ULL,  // +Inf
    0xfff0000000000000ULL,  // -Inf
    0x8000000000000000ULL,  // -0.0
    0x0000000000000000ULL,  // +0.0
    0x0000000000000001ULL,  // smallest subnormal
    0x800fffffffffffffULL,  // largest negative subnormal
    0x0010000000000000ULL,  // DBL_MIN
    0x7fefffffffffffffULL,  // DBL_MAX
    0xffefffffffffffffULL,  // -DBL_MAX
};

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  int64_t Int(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  double Real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  uint64_t Bits() { return rng_(); }

  std::vector<Timestamp> Timestamps() {
    int n = Int(0, 9) == 0 ? 1 : static_cast<int>(Int(2, Int(0, 3) == 0 ? 700 : 130));
    std::vector<Timestamp> ts;
    Timestamp t;
    switch (Int(0, 5)) {
      case 0:  // near the low end
        t = std::numeric_limits<Timestamp>::min() + Int(0, 1000);
        break;
      case 1:
        t = -Int(0, int64_t{1} << 50);
        break;
      default:
        t = 1700000000000 + Int(0, 1000000);
    }
    int mode = static_cast<int>(Int(0, 4));
    for (int i = 0; i < n; ++i) {
      ts.push_back(t);
      int64_t step;
      switch (mode) {
        case 0:
          step = 15000;
          break;
        case 1:
          step = 15000 + Int(-3, 3);
          break;
        case 2:
          step = Int(0, 9) == 0 ? 15000 + Int(-25, 25) : 15000;
          break;
        case 3:
          step = Int(1, Int(0, 1) ? 100 : int64_t{1} << 40);
          break;
        default:
          step = Int(1, 1000000);
      }
      if (Int(0, 500) == 0 || (mode == 3 && Int(0, 50) == 0)) {
        // A jump to the top of the range: ends the series.
        t = std::numeric_limits<Timestamp>::max() - Int(0, 2 * (n - i));
        if (t <= ts.back()) break;
        continue;
      }
      if (t > std::numeric_limits<Timestamp>::max() - step) break;
      t += step;
    }
    std::sort(ts.begin(), ts.end());
    ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
    return ts;
  }

  std::vector<double> Values(size_t n) {
    std::vector<double> v;
    int shape = static_cast<int>(Int(0, 11));
    double x = Int(0, 1) ? 0 : Real(-1e6, 1e6);
    double scale = std::pow(10.0, static_cast<double>(Int(-6, 6)));
    // Shape 10: a counter of units of 10^-digits with noisy increments of up to `spread`.
    int64_t units = Int(0, int64_t{1} << Int(0, 50));
    const double digits = static_cast<double>(Int(0, 9));
    const int64_t spread = int64_t{1} << Int(0, 40);
    for (size_t i = 0; i < n; ++i) {
      double y;
      switch (shape) {
        case 0:  // integer counter
          x += static_cast<double>(Int(0, 500));
          y = x;
          break;
        case 1:  // counter with few decimals
          x += static_cast<double>(Int(0, 5000)) / 100;
          y = std::round(x * 100) / 100;
          break;
        case 2:  // gauge with few significant digits at any scale
          y = static_cast<double>(Int(-999, 999)) * scale;
          break;
        case 3:  // full-precision noise
          y = Real(-1, 1) * scale;
          break;
        case 4:  // any bit pattern
          y = std::bit_cast<double>(Bits());
          break;
        case 5:  // specials only
          y = std::bit_cast<double>(kSpecialBits[Int(0, std::size(kSpecialBits) - 1)]);
          break;
        case 6:  // constant
          y = x;
          break;
        case 7:  // exponent changes: mixes of very different magnitudes
          y = static_cast<double>(Int(-99999, 99999)) *
              std::pow(10.0, static_cast<double>(Int(-30, 30)));
          break;
        case 8:  // big integers around 2^53 and beyond
          y = static_cast<double>(Int(0, 1) ? (int64_t{1} << 53) + Int(-1000, 1000)
                                            : Int(std::numeric_limits<int64_t>::min() / 2,
                                                  std::numeric_limits<int64_t>::max() / 2));
          break;
        case 9:  // a realistic gauge with stale markers and a reset
          if (Int(0, 20) == 0) {
            y = StaleNaN();
          } else {
            x = Int(0, 50) == 0 ? 0 : x + static_cast<double>(Int(-10, 10)) * 0.5;
            y = x;
          }
          break;
        case 10:  // a noisy counter at a fixed precision (seconds in ns), now and then stale
          if (Int(0, 100) == 0) {
            y = StaleNaN();
          } else {
            units += Int(0, spread);
            y = static_cast<double>(units) / std::pow(10.0, digits);
          }
          break;
        default:  // a mix of everything
          switch (Int(0, 3)) {
            case 0:
              y = std::bit_cast<double>(kSpecialBits[Int(0, std::size(kSpecialBits) - 1)]);
              break;
            case 1:
              y = std::bit_cast<double>(Bits());
              break;
            case 2:
              y = static_cast<double>(Int(-1000, 1000)) / 8;
              break;
            default:
              y = Real(-1e20, 1e20);
          }
      }
      v.push_back(y);
    }
    return v;
  }

 private:
  std::mt19937_64 rng_;
};

// Gives some series of the group a base with the same timestamps, before or after it in
// ref order (without cycles: a base has a lower random rank), and makes the values of some
// of those like histogram buckets over their base: the base plus a growing count, with
// the base's stale markers.
void AddBases(Gen& g, std::vector<CompactedSeries>& group) {
  for (CompactedSeries& s : group) s.base.reset();
  std::vector<int64_t> rank;
  for (size_t i = 0; i < group.size(); ++i) rank.push_back(g.Int(0, 1000000));
  for (size_t i = 0; i < group.size(); ++i) {
    if (g.Int(0, 2) == 0) continue;
    std::vector<size_t> candidates;
    for (size_t j = 0; j < group.size(); ++j) {
      if (rank[j] < rank[i] && group[j].samples.size() == group[i].samples.size() &&
          std::equal(group[j].samples.begin(), group[j].samples.end(), group[i].samples.begin(),
                     [](const Sample& a, const Sample& b) { return a.t == b.t; })) {
        candidates.push_back(j);
      }
    }
    if (candidates.empty()) continue;
    const size_t b = candidates[g.Int(0, static_cast<int64_t>(candidates.size()) - 1)];
    group[i].base = group[b].ref;
  }
  // Bucket-like values, assigned in rank order so that a base's values are final first.
  std::vector<size_t> order(group.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rank[a] < rank[b]; });
  for (size_t i : order) {
    if (!group[i].base || g.Int(0, 3) == 0) continue;
    const std::vector<Sample>* base = nullptr;
    for (const CompactedSeries& s : group) {
      if (s.ref == *group[i].base) base = &s.samples;
    }
    const double step = g.Int(0, 1) ? 1 : 0.25;
    double band = static_cast<double>(g.Int(0, 1000)) * step;
    for (size_t k = 0; k < base->size(); ++k) {
      band += static_cast<double>(g.Int(0, 5)) * step;
      const double b = (*base)[k].v;
      group[i].samples[k].v = std::isnan(b) || g.Int(0, 200) == 0 ? b : b + band;
    }
  }
}

// A random group: some series share the timestamps of an earlier one.
std::vector<CompactedSeries> RandomGroup(Gen& g, SeriesRef* next_ref, int max_series) {
  std::vector<CompactedSeries> group;
  int n = static_cast<int>(g.Int(1, max_series));
  std::vector<std::vector<Timestamp>> seen;
  for (int i = 0; i < n; ++i) {
    std::vector<Timestamp> ts;
    if (!seen.empty() && g.Int(0, 1) == 0) {
      ts = seen[g.Int(0, seen.size() - 1)];
    } else {
      ts = g.Timestamps();
      seen.push_back(ts);
    }
    std::vector<double> vs = g.Values(ts.size());
    CompactedSeries s;
    *next_ref += g.Int(0, 3) == 0 ? g.Int(1, int64_t{1} << 40) : 1;
    s.ref = *next_ref;
    for (size_t j = 0; j < ts.size(); ++j) s.samples.push_back({ts[j], vs[j]});
    group.push_back(std::move(s));
  }
  if (g.Int(0, 1) == 0) AddBases(g, group);
  return group;
}

void ExpectRoundTrip(const std::vector<CompactedSeries>& group, int max_base_depth = 3,
                     uint32_t restart_interval = 7) {
  auto block = EncodeCompactedBlock(
      group,
      {.zstd_level = 1, .max_base_depth = max_base_depth, .restart_interval = restart_interval});
  ASSERT_TRUE(block.ok()) << block.status();
  auto b = CompactedBlock::Open(*block);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->num_series(), group.size());
  for (size_t i = 0; i < group.size(); ++i) {
    ASSERT_EQ(b->ref(i), group[i].ref);
    ASSERT_EQ(b->Find(group[i].ref), i);
    ASSERT_EQ(b->num_samples(i), group[i].samples.size());
    ASSERT_EQ(b->mint(i), group[i].samples.front().t);
    ASSERT_EQ(b->maxt(i), group[i].samples.back().t);
    std::vector<Sample> got;
    ASSERT_TRUE(b->Decode(i, &got).ok());
    ASSERT_TRUE(testing::SameSamples(got, group[i].samples))
        << "series " << i << "\n got  " << testing::Describe(got) << "\n want "
        << testing::Describe(group[i].samples);
    // A range gives exactly the samples in it, appended after what `out` held: bounds on,
    // between and outside samples, and ranges with none.
    const std::vector<Sample>& all = group[i].samples;
    const size_t n = all.size();
    const Timestamp ta = all[n / 3].t, tb = all[2 * n / 3].t;
    auto up = [](Timestamp t) { return t == INT64_MAX ? t : t + 1; };  // no overflow
    auto down = [](Timestamp t) { return t == INT64_MIN ? t : t - 1; };
    const std::pair<Timestamp, Timestamp> ranges[] = {{ta, tb},
                                                      {up(ta), down(tb)},
                                                      {down(ta), up(tb)},
                                                      {all.front().t, all.back().t},
                                                      {ta, ta},
                                                      {up(tb), tb},
                                                      {up(all.back().t), INT64_MAX},
                                                      {INT64_MIN, down(all.front().t)},
                                                      {INT64_MIN, ta},
                                                      {tb, INT64_MAX}};
    for (const auto& [lo, hi] : ranges) {
      std::vector<Sample> want = {{-1, 0.5}};
      for (const Sample& x : all) {
        if (x.t >= lo && x.t <= hi) want.push_back(x);
      }
      std::vector<Sample> ranged = {{-1, 0.5}};
      ASSERT_TRUE(b->Decode(i, &ranged, lo, hi).ok());
      ASSERT_TRUE(testing::SameSamples(ranged, want))
          << "series " << i << " in [" << lo << ", " << hi << "]\n got  "
          << testing::Describe(ranged) << "\n want " << testing::Describe(want);
    }
  }
  EXPECT_FALSE(b->Find(group.back().ref + 1).has_value());
}

TEST(CompactedBlock, RoundTripsRandomSeriesBitForBit) {
  Gen g(42);
  SeriesRef ref = 0;
  int sequences = 0;
  while (sequences < 100000) {
    std::vector<CompactedSeries> group = RandomGroup(g, &ref, 40);
    sequences += static_cast<int>(group.size());
    constexpr uint32_t kIntervals[] = {0, 1, 2, 3, 16, 100, 1024};
    ExpectRoundTrip(group, static_cast<int>(g.Int(0, kCompactedMaxBaseDepth + 1)),
                    kIntervals[g.Int(0, std::size(kIntervals) - 1)]);
    if (HasFatalFailure()) return;
  }
}

TEST(CompactedBlock, EverySpecialValueAfterEveryOther) {
  CompactedSeries s{.ref = 7, .samples = {}, .base = {}};
  Timestamp t = 0;
  std::vector<double> values;
  for (uint64_t b : kSpecialBits) values.push_back(std::bit_cast<double>(b));
  for (double v : {1.0, 0.1, 1e22, 1e23, 123456.789, -2.5, 9007199254740993.0}) {
    values.push_back(v);
  }
  for (double a : values) {
    for (double b : values) {
      s.samples.push_back({t++, a});
      s.samples.push_back({t++, b});
    }
  }
  ExpectRoundTrip({s});
}

TEST(CompactedBlock, SharesTimestampColumns) {
  std::vector<CompactedSeries> group;
  for (int i = 0; i < 10; ++i) {
    CompactedSeries s{.ref = static_cast<SeriesRef>(i + 1), .samples = {}, .base = {}};
    for (int j = 0; j < 100; ++j) s.samples.push_back({1000 + j * 15000 + (j % 3), j * 1.5 + i});
    group.push_back(std::move(s));
  }
  group[3].samples.back().t += 1;  // one series differs
  auto block = EncodeCompactedBlock(group);
  ASSERT_TRUE(block.ok());
  auto b = CompactedBlock::Open(*block);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->num_timestamp_columns(), 2u);
  ExpectRoundTrip(group);
}

TEST(CompactedBlock, RefusesBadInput) {
  CompactedSeries a{.ref = 2, .samples = {{1, 1}}, .base = {}},
      b{.ref = 1, .samples = {{1, 1}}, .base = {}};
  EXPECT_EQ(EncodeCompactedBlock(std::vector{a, b}).status().code(),
            absl::StatusCode::kInvalidArgument);
  CompactedSeries c{.ref = 3, .samples = {{5, 1}, {5, 2}}, .base = {}};
  EXPECT_EQ(EncodeCompactedBlock(std::vector{c}).status().code(),
            absl::StatusCode::kInvalidArgument);
  CompactedSeries d{.ref = 4, .samples = {}, .base = {}};
  EXPECT_EQ(EncodeCompactedBlock(std::vector{d}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A classic histogram scraped 200 times: 12 cumulative buckets (most observations in the
// middle ones, the last one is +Inf), each bucket based on the one below.
std::vector<CompactedSeries> Histogram(SeriesRef first_ref) {
  std::mt19937_64 rng(3);
  std::vector<CompactedSeries> group;
  std::vector<double> counts(12, 0);
  for (int b = 0; b < 12; ++b) {
    group.push_back({.ref = first_ref + static_cast<SeriesRef>(b),
                     .samples = {},
                     .base = b == 0 ? std::nullopt : std::optional<SeriesRef>(first_ref + b - 1)});
  }
  for (int k = 0; k < 200; ++k) {
    double cumulative = 0;
    for (int b = 0; b < 12; ++b) {
      const int weight = 6 - std::abs(b - 6);
      counts[b] += static_cast<double>(rng() % (1 + 20 * weight));
      cumulative += counts[b];
      group[b].samples.push_back({1700000000000 + k * 15000, cumulative});
    }
  }
  return group;
}

TEST(CompactedBlock, HistogramBucketsAgainstTheBucketBelowAreSmaller) {
  std::vector<CompactedSeries> group = Histogram(10);
  std::vector<CompactedSeries> alone = group;
  for (CompactedSeries& s : alone) s.base.reset();
  auto with = EncodeCompactedBlock(group);
  auto without = EncodeCompactedBlock(alone);
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_LT(with->size() * 10, without->size() * 9) << with->size() << " vs " << without->size();
  ExpectRoundTrip(group);
  // The chain is cut every max_base_depth links: 0 1 2 3 0 1 2 3 ...
  for (int depth : {0, 1, 3, kCompactedMaxBaseDepth}) {
    auto b = CompactedBlock::Open(*EncodeCompactedBlock(group, {.max_base_depth = depth}));
    ASSERT_TRUE(b.ok());
    for (size_t i = 0; i < group.size(); ++i) {
      const bool based = depth > 0 && i % static_cast<size_t>(depth + 1) != 0;
      EXPECT_EQ(b->base(i), based ? std::optional<size_t>(i - 1) : std::nullopt)
          << "series " << i << " depth " << depth;
    }
    ExpectRoundTrip(group, depth);
  }
}

// Decoding reuses the last base decoded: any order of reads, any ranges, any threads give
// the same samples.
// Any range of any series, in any order (so bases are found kept or decoded again),
// appended after what `out` holds; and each series' timestamps.
TEST(CompactedBlock, DecodesAnyRangeOfBasedSeriesInAnyOrderAndFromManyThreads) {
  Gen g(5);
  SeriesRef ref = 1000;
  std::vector<CompactedSeries> group = Histogram(1);
  std::vector<CompactedSeries> more = RandomGroup(g, &ref, 30);
  AddBases(g, more);
  group.insert(group.end(), more.begin(), more.end());
  // Restarts every 16 samples: threads decode a column's segments on first use.
  auto block = EncodeCompactedBlock(group, {.restart_interval = 16});
  ASSERT_TRUE(block.ok()) << block.status();
  auto b = CompactedBlock::Open(*block);
  ASSERT_TRUE(b.ok());
  auto check = [&](uint64_t seed, int reads) {
    std::mt19937_64 rng(seed);
    for (int r = 0; r < reads; ++r) {
      const size_t i = rng() % group.size();
      const std::vector<Sample>& all = group[i].samples;
      const Timestamp hi = rng() % 3 == 0 ? INT64_MAX : all[rng() % all.size()].t;
      // Half the ranges start at a sample or just before or after one.
      const Timestamp lo = rng() % 2 == 0
                               ? INT64_MIN
                               : all[rng() % all.size()].t + static_cast<Timestamp>(rng() % 3) - 1;
      std::vector<Sample> want = {{-1, 7}};
      for (const Sample& x : all) {
        if (x.t >= lo && x.t <= hi) want.push_back(x);
      }
      std::vector<Sample> got = {{-1, 7}};
      if (!b->Decode(i, &got, lo, hi).ok() || !testing::SameSamples(got, want)) {
        return false;
      }
      auto ts = b->Timestamps(i);
      if (!ts.ok() || ts->size() != all.size()) return false;
      for (size_t k = 0; k < all.size(); ++k) {
        if ((*ts)[k] != all[k].t) return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(check(1, 2000));
  b = CompactedBlock::Open(*block);  // the threads start with nothing decoded
  ASSERT_TRUE(b.ok());
  std::vector<std::thread> threads;
  bool ok[4] = {};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { ok[t] = check(10 + t, 500); });
  }
  for (std::thread& t : threads) t.join();
  for (bool x : ok) EXPECT_TRUE(x);
}

TEST(CompactedBlock, BasesAfterTheSeriesAndAcrossSpecialValues) {
  // The +Inf bucket first in ref order, based on a later series; the base holds stale
  // markers, NaNs, infinities and -0.0 where the dependent holds ordinary values, and back.
  std::vector<CompactedSeries> group(3);
  for (size_t i = 0; i < group.size(); ++i) group[i].ref = 100 + i;
  group[0].base = 102;
  group[2].base = 101;
  Timestamp t = 5;
  for (uint64_t a : kSpecialBits) {
    for (double v : {1.0, 3.5, 1e300, 0.1}) {
      const double special = std::bit_cast<double>(a);
      group[1].samples.push_back({t, special});
      group[2].samples.push_back({t, v});
      group[0].samples.push_back({t, t % 3 == 0 ? special : v + 7});
      ++t;
    }
  }
  ExpectRoundTrip(group);
  auto b = CompactedBlock::Open(*EncodeCompactedBlock(group));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->base(0), 2u);
  EXPECT_EQ(b->base(2), 1u);
  EXPECT_EQ(b->base(1), std::nullopt);
}

TEST(CompactedBlock, RefusesBasesThatAreNotAnotherSeriesWithTheSameTimestamps) {
  auto series = [](SeriesRef ref, std::optional<SeriesRef> base, Timestamp last) {
    return CompactedSeries{.ref = ref, .samples = {{1, 1}, {last, 2}}, .base = base};
  };
  const std::vector<std::vector<CompactedSeries>> bad = {
      {series(1, 1, 2)},                                    // itself
      {series(1, std::nullopt, 2), series(2, 3, 2)},        // not in the block
      {series(1, std::nullopt, 2), series(2, 1, 3)},        // other timestamps
      {series(1, 3, 2), series(2, 1, 2), series(3, 2, 2)},  // a cycle
  };
  for (const auto& group : bad) {
    EXPECT_EQ(EncodeCompactedBlock(group).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(EncodeCompactedBlock(std::vector{series(1, 2, 2), series(2, std::nullopt, 2)}).ok());
}

// A payload of n one-sample series (value 0) on one timestamp column, or on two when
// `second_ts_from` < n (the series from it on use the second), with the given zigzagged
// `i - base` fields (0: none).
std::string PayloadWithBases(const std::vector<uint64_t>& bases, size_t second_ts_from) {
  const size_t n = bases.size();
  const size_t columns = second_ts_from < n ? 2 : 1;
  std::string p;
  p.push_back(static_cast<char>(n));
  p.push_back(static_cast<char>(columns));
  p.push_back(0);  // no restarts
  for (size_t c = 0; c < columns; ++c) p.append({1, 0, static_cast<char>(2 * c), 0});
  for (size_t i = 0; i < n; ++i) {
    p.append({1, static_cast<char>(i >= second_ts_from ? 1 : 0), static_cast<char>(bases[i]), 1});
  }
  p.append(n, '\x03');  // raw, no bytes: the value 0.0
  return p;
}

TEST(CompactedBlock, RefusesBaseCyclesLongChainsAndOtherTimestampColumns) {
  auto open = [](const std::vector<uint64_t>& bases, size_t second_ts_from = 100) {
    return CompactedBlock::Open(
        CompactedBlockFromPayloadForTesting(PayloadWithBases(bases, second_ts_from)));
  };
  // i - base zigzagged: 2 is "the series before", 1 "the series after".
  ASSERT_TRUE(open({0, 2, 2}).ok());
  auto fine = open({1, 0, 2});
  ASSERT_TRUE(fine.ok());
  EXPECT_EQ(fine->base(0), 1u);
  EXPECT_EQ(fine->base(2), 1u);
  std::vector<Sample> out;
  ASSERT_TRUE(fine->Decode(2, &out).ok());
  EXPECT_EQ(out.size(), 1u);
  for (auto bad : std::vector<std::vector<uint64_t>>{{1, 2},     // 0 -> 1 -> 0
                                                     {1, 1, 4},  // 0 -> 1 -> 2 -> 0
                                                     {0, 4},     // before the first series
                                                     {0, 1},     // after the last
                                                     {0, 2, 100}}) {
    EXPECT_EQ(open(bad).status().code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_EQ(open({0, 2, 2}, 2).status().code(), absl::StatusCode::kDataLoss);
  // Chains of kCompactedMaxBaseDepth links are read, one more is refused.
  std::vector<uint64_t> chain(kCompactedMaxBaseDepth + 1, 2);
  chain[0] = 0;
  auto deepest = open(chain);
  ASSERT_TRUE(deepest.ok()) << deepest.status();
  out.clear();
  ASSERT_TRUE(deepest->Decode(chain.size() - 1, &out).ok());
  chain.push_back(2);
  EXPECT_EQ(open(chain).status().code(), absl::StatusCode::kDataLoss);
}

TEST(CompactedBlock, ReadsFormatOneBlocks) {
  // Written by the format-1 writer: series 3 (1.5, 2.25, stale, -0.0), 7 (10, 12, +Inf, 0.1)
  // on the same timestamps, and 9 (a NaN with payload, 1e300) on others.
  using namespace std::string_literals;
  const std::string v1 =
      "\x01\x56\x28\xb5\x2f\xfd\x20\x56\x85\x02\x00\x34\x04\x03\x02\x04\x05\xd0\x0f\xc8\xdf\x02\x02\x03\xa0\x1f\x9b\x75\x03\x00\x19\x04\x00\x09\x02\x01\x14\xb0\xea\x01\x00\x00\xb6\xea\x01\x05\x1e\x0d\xc2\x03\x83\x02\x3f\xf2\x00\x02\x83\x02\xff\xf0\x09\x02\x01\x18\x43\x3f\xd8\x05\xf8\x01\x83\x02\x81\xcf\xe4\x3c\x88\x00\x75\x9d\x04\x00\x40\x84\xcd\xc0\x5b\x46\x2b\x00\x65"s;
  ASSERT_EQ(v1[0], 1);
  auto b = CompactedBlock::Open(v1);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->num_series(), 3u);
  EXPECT_EQ(b->num_timestamp_columns(), 2u);
  const std::vector<std::vector<Sample>> want = {
      {{1000, 1.5}, {16000, 2.25}, {31000, StaleNaN()}, {46000, -0.0}},
      {{1000, 10}, {16000, 12}, {31000, std::numeric_limits<double>::infinity()}, {46000, 0.1}},
      {{2000, std::bit_cast<double>(0xfff8000000000001ULL)}, {17003, 1e300}}};
  const SeriesRef refs[] = {3, 7, 9};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(b->ref(i), refs[i]);
    EXPECT_EQ(b->base(i), std::nullopt);
    std::vector<Sample> got;
    ASSERT_TRUE(b->Decode(i, &got).ok());
    EXPECT_TRUE(testing::SameSamples(got, want[i])) << testing::Describe(got);
  }
}

TEST(CompactedBlock, ReadsAFormatTwoBlockWithBases) {
  // Written when bases came in: any later change to how a based value is computed (the
  // base's mantissa B, its rounding) must still read these values back.
  using namespace std::string_literals;
  const std::string v2 =
      "\x02\x89\x01\x28\xb5\x2f\xfd\x20\x89\x49\x04\x00\x03\x01\x0c\x0d\xd0\x0f\x88\x89\x0a\x05\x00\x00\x2b\x01\x00\x02\x22\x02\x00\x02\x1a\xb0\xea\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x11\x18\x05\x9a\xcb\x01\x06\x8e\x97\x03\x0d\x32\xa1\x01\x02\x83\x02\x3b\xe5\xaf\x1d\x78\xb5\x8c\x42\x01\x0e\x05\x06\x3d\x32\x9c\x9f\xf1\xc2\xb1\x34\x80\xa0\xbe\x81\x95\x01\x09\x0a\x01\x00\x08\x00\x0d\x64\x99\x01\x0a\x83\x02\x04\x28\x43\x56\x1a\x88\x29\x30\x05\x32\x0d\x0a\x45\x32\x9c\xbf\xee\x8e\xd2\x0b\x00\x01\x02\x00\x00\x00\x0d\xc8\x01\x99\x01\x00\x01\x02\x05\x14\x0d\xc8\x01\x45\x80\xa8\xd6\xb9\x07\x00\x00"s;
  ASSERT_EQ(v2[0], 2);
  // At the dependent's exponent 0, 1300.5 gives B = 1301, 1300.3 gives 1300 and -2.5 gives
  // -3 (the nearest integer, halves away from zero).
  const std::vector<double> base = {1200,       1300.5, 1300.3, -2.5,   0.25, 1e20,
                                    StaleNaN(), 7,      0.3,    2.5e-7, 4500, 4600};
  const std::vector<double> mid = {1250, 1301, 1302, -1,      0.75, 1.5e20,
                                   3,    9.5,  0.35, 2.75e-7, 4600, 4700};
  std::vector<std::vector<Sample>> want(3);
  for (size_t k = 0; k < base.size(); ++k) {
    const Timestamp t = 1000 + static_cast<Timestamp>(k) * 15000;
    want[0].push_back({t, base[k]});
    want[1].push_back({t, mid[k]});
    want[2].push_back({t, mid[k] + 1});
  }
  auto b = CompactedBlock::Open(v2);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->num_series(), 3u);
  EXPECT_EQ(b->base(0), std::nullopt);
  EXPECT_EQ(b->base(1), 0u);
  EXPECT_EQ(b->base(2), 1u);
  for (size_t i : {2, 0, 1, 2}) {  // a chain decoded, then each series after its base
    std::vector<Sample> got;
    ASSERT_TRUE(b->Decode(i, &got).ok());
    EXPECT_TRUE(testing::SameSamples(got, want[i])) << i << ": " << testing::Describe(got);
  }
  // Windows of a block without restarts, each on a block opened again (no values kept).
  for (size_t i : {2, 1, 0}) {
    for (size_t a = 0; a < base.size(); ++a) {
      for (size_t z = a; z < base.size(); ++z) {
        auto fresh = CompactedBlock::Open(v2);
        ASSERT_TRUE(fresh.ok());
        std::vector<Sample> got;
        ASSERT_TRUE(fresh->Decode(i, &got, want[i][a].t - 1, want[i][z].t).ok());
        const std::vector<Sample> part(want[i].begin() + a, want[i].begin() + z + 1);
        EXPECT_TRUE(testing::SameSamples(got, part)) << i << " " << a << " " << z;
      }
    }
  }
}

// The samples of `all` in [lo, hi].
std::vector<Sample> Window(const std::vector<Sample>& all, Timestamp lo, Timestamp hi) {
  std::vector<Sample> out;
  for (const Sample& x : all) {
    if (x.t >= lo && x.t <= hi) out.push_back(x);
  }
  return out;
}

// Series i of `block` (opened from `value`), in the given order, decodes to want[i]; and
// its samples in [lo, hi], from the value opened afresh, to those of want[i].
void ExpectDecodes(const std::string& value, const CompactedBlock& block,
                   std::initializer_list<size_t> order,
                   const std::vector<std::vector<Sample>>& want, Timestamp lo, Timestamp hi) {
  for (size_t i : order) {
    std::vector<Sample> got;
    ASSERT_TRUE(block.Decode(i, &got).ok());
    EXPECT_TRUE(testing::SameSamples(got, want[i])) << i << ": " << testing::Describe(got);
    got.clear();
    ASSERT_TRUE(CompactedBlock::Open(value)->Decode(i, &got, lo, hi).ok());
    EXPECT_TRUE(testing::SameSamples(got, Window(want[i], lo, hi)))
        << i << ": " << testing::Describe(got);
  }
}

TEST(CompactedBlock, ReadsAFormatThreeBlockWithRestarts) {
  // Written before runs: series 3 (full-precision values), 4 and 5 (decimals, 5 based on
  // 4) on the timestamps 1000 + 15000 k, and 9 (big values and a stale marker) 7 ms later;
  // restarts every 4 samples.
  using namespace std::string_literals;
  const std::string v3 =
      "\x03\xdb\x01\x28\xb5\x2f\xfd\x20\xdb\x25\x06\x00\x14\x0b\x04\x02\x04\x08\x0a\xd0\x0f"
      "\xa8\xb4\x06\xe0\xd4\x03\x02\x08\x0a\xde\x03\x00\x00\x3d\x1a\x01\x00\x00\x0c\x02\x01"
      "\x00\x02\x0c\x02\x04\x01\x00\x45\x1a\xb0\xea\x01\x00\x00\x7d\xea\xc0\x85\x87\x8a\xa7"
      "\xff\x19\xba\xcc\xfa\xc2\xbd\xab\x11\xc0\xc0\x89\xe9\xfd\xcf\x2f\xe0\x8e\xe9\xc2\xcb"
      "\xb9\x37\x6d\x92\xb8\xe7\xf8\xae\xd2\x21\x7d\xae\xbf\xae\x9f\x9b\xed\xbc\x1a\xca\xeb"
      "\xf1\xc6\xe6\xa1\x1d\xa4\xfa\xef\xf7\xa5\x87\x3d\x05\xda\x0f\x28\x28\x28\x05\xaa\x10"
      "\xc8\x01\x98\x02\x28\x28\x28\x83\x02\x7e\x37\xe4\x3c\x88\x00\x75\x9c\x27\x70\xe7\x01"
      "\x16\x0f\x11\xee\x00\x2d\xa9\xe7\x01\x06\x83\x02\x7e\x5d\xdd\x4b\xaa\x00\x93\x03\x83"
      "\x02\x01\xad\x01\x83\x02\x01\x94\xe7\xb4\xf7\x00\x66\xea\xe7\x01\x03\x03\x88\x7f\x00"
      "\x13\x74\x06\x20\x70\xa2\x0f\x15\x2a\x36\x6e\xa0\x91\xe0\x84\x8e\x9b\xa0\x60"s;
  ASSERT_EQ(v3[0], 3);
  const uint64_t bits[4][8] = {
      {0x3fe769f0bbd15543, 0x3fe75a527907a50b, 0x3fe7853804f9c31e, 0x3fe7b729e6a3c5ef,
       0x3fe7acac227d4c53, 0x3fe7d8d0b42ce445, 0x3fe7be74de45b9f7, 0x3fe7f573a79394de},
      {0x4059200000000000, 0x4059600000000000, 0x4059a00000000000, 0x4059e00000000000,
       0x405a200000000000, 0x405a600000000000, 0x405aa00000000000, 0x405ae00000000000},
      {0x405ba00000000000, 0x405c200000000000, 0x405ca00000000000, 0x405d200000000000,
       0x405da00000000000, 0x405e200000000000, 0x405ea00000000000, 0x405f200000000000},
      {0x7e37e43c8800759c, 0x7e47e43c8800759c, 0x7e51eb2d66005835, 0x7e57e43c8800759c,
       0x7e5ddd4baa009303, 0x7ff0000000000002, 0x7e64e7b4f70066e8, 0x7e67e43c8800759c}};
  std::vector<std::vector<Sample>> want(4);
  for (size_t i = 0; i < 4; ++i) {
    for (int k = 0; k < 8; ++k) {
      want[i].push_back({1000 + k * 15000 + (i == 3 ? 7 : 0), std::bit_cast<double>(bits[i][k])});
    }
  }
  auto b = CompactedBlock::Open(v3);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->num_series(), 4u);
  EXPECT_EQ(b->base(2), 1u);
  ExpectDecodes(v3, *b, {2, 0, 1, 3}, want, 46000, 61010);
}

TEST(CompactedBlock, ReadsAFormatFourBlockWithRuns) {
  // Written before mantissa runs, restarting every 4 samples, 10 samples every 15 s from
  // t = 1000: series 3 (seconds in nanoseconds), 4 (full-precision values, runs, and a NaN
  // with a payload), 5 and 6 (hundredths; 6 based on 5).
  using namespace std::string_literals;
  const std::string v4 =
      "\x04\xf1\x01\x28\xb5\x2f\xfd\x20\xf1\x89\x07\x00\x04\x01\x04\x0a\x0d\xd0\x0f\xd8"
      "\x9e\x08\xe0\xd4\x03\x02\xe0\xd4\x03\x02\x03\x00\x00\x3d\x13\x13\x01\x00\x00\x55"
      "\x1b\x21\x01\x00\x00\x17\x05\x05\x01\x00\x02\x11\x03\x02\xb0\xea\x01\x00\x00\xb0"
      "\xea\x01\x00\x00\xb0\xea\x01\x45\xe4\xbf\xf1\xbc\xce\xce\x05\xdc\xb2\xb9\xb5\x03"
      "\xb8\xcd\xd8\xae\x02\x94\xe8\xf7\xa7\x01\x45\xb0\xf5\xc1\x93\xd2\xce\x05\xcc\xb5"
      "\xd0\xd6\x03\xa8\xd0\xef\xcf\x02\x84\xeb\x8e\xc9\x01\x3d\xd6\xd1\xb9\x84\xef\x47"
      "\x45\xfa\x8c\xb4\xa8\xd8\xce\x05\x83\x02\x40\x58\xdf\xe7\x59\x9c\xe2\xfc\xdf\x03"
      "\x03\x1d\x10\x5f\x2d\xc6\x0c\x00\x8d\x0f\xb1\x48\x26\x5b\xae\xda\xe8\x32\x33\x83"
      "\x02\x40\x58\xd3\x0f\x27\x07\xca\x3f\x9f\x04\x03\xde\x43\xfe\x52\xfe\x32\x00\x00"
      "\xa8\x27\xf2\x5e\xe3\x26\x2e\x7f\xbf\x35\x6d\x94\x86\x40\x2e\x7f\x65\xc2\xfb\xd4"
      "\xaa\xd6\xdc\xc6\x03\xcb\x01\x0d\x7e\x82\xd7\xb5\xe5\x01\x16\x0d\xfc\x12\xbc\x03"
      "\xb0\x03\x0d\x84\x18\x98\x03\xd0\x03\xc4\x03\x0d\xf6\x1e\xac\x03\x01\x28\x0d\xa6"
      "\x1f\x04\x10\x0d\xb4\x1f\x00\x0c\x04\x0d\xc4\x1f\x08"s;
  ASSERT_EQ(v4[0], 4);
  const uint64_t bits[4][10] = {
      {0x40c81cd6e63c529f, 0x40c81cf4418ac495, 0x40c81d0891c14219, 0x40c81d13d6dfcb2c,
       0x40c81d1610e65fce, 0x40c81d35a63b6666, 0x40c81d4c3078788d, 0x40c81d59af9d9642,
       0x40c81d5e23aabf87, 0x40c81d7ff3065ac1},
      {0x4058dfe7599ce2fc, 0x4058d98442ed5aed, 0x4058eca89b75216d, 0x4058d30f2707ca3f,
       0x4058d30f2707ca3f, 0x4058ec8e5086ec2e, 0x7ff0000000000002, 0x4058dfbcb5c96522,
       0x4058ffabf078c08a, 0x4058f2d572af756f},
      {0x4026000000000000, 0x402847ae147ae148, 0x402a800000000000, 0x402ca8f5c28f5c29,
       0x402ec28f5c28f5c3, 0x4030666666666666, 0x40318f5c28f5c28f, 0x4032b0a3d70a3d71,
       0x4033ca3d70a3d70a, 0x4034dc28f5c28f5c},
      {0x403f000000000000, 0x404015c28f5c28f6, 0x4040a51eb851eb85, 0x4041347ae147ae14,
       0x4041bd70a3d70a3d, 0x4042400000000000, 0x4042d851eb851eb8, 0x40436a3d70a3d70a,
       0x4043fc28f5c28f5c, 0x404487ae147ae148}};
  std::vector<CompactedSeries> group;
  for (size_t i = 0; i < 4; ++i) {
    group.push_back({.ref = 3 + i, .samples = {}, .base = {}});
    for (int k = 0; k < 10; ++k) {
      group[i].samples.push_back({1000 + k * 15000, std::bit_cast<double>(bits[i][k])});
    }
  }
  auto b = CompactedBlock::Open(v4);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->num_series(), 4u);
  EXPECT_EQ(b->base(3), 2u);
  std::vector<std::vector<Sample>> want;
  for (const CompactedSeries& s : group) want.push_back(s.samples);
  ExpectDecodes(v4, *b, {3, 0, 1, 2}, want, 46000, 91010);
  // This build writes the same values as format 5.
  group[3].base = 5;
  ExpectRoundTrip(group, kCompactedMaxBaseDepth, 4);
}

// A block of one series (ref 1) of `samples` samples (at least 2) every 15 s from
// t = 1000, without restarts, whose value column is `column`, with format byte `format`.
std::string OneSeriesBlock(const std::string& column, int format = kCompactedBlockFormat,
                           int samples = 6) {
  std::string p("\x01\x01\x00", 3);  // 1 series, 1 timestamp column, no restarts
  // The timestamps: count, bytes (15000 after the first, then deltas of deltas of 0), first
  // 1000, last - first.
  coding::PutUvarint(&p, samples);
  coding::PutUvarint(&p, samples + 1);
  coding::PutVarint(&p, 1000);
  coding::PutUvarint(&p, 15000 * (samples - 1));
  p += std::string("\x01\x00\x00", 3);  // ref 1, column 0, no base
  coding::PutUvarint(&p, column.size());
  p += "\xb0\xea\x01" + std::string(samples - 2, '\0');
  p += column;
  std::string value = CompactedBlockFromPayloadForTesting(p);
  value[0] = static_cast<char>(format);
  return value;
}

// The block this build writes for `s` (no restarts) has the payload of `value`, and
// windows of `value` decode to the samples of `s` in them.
void ExpectWrittenAs(const CompactedSeries& s, const std::string& value) {
  auto written = EncodeCompactedBlock(std::vector<CompactedSeries>{s}, {.restart_interval = 0});
  ASSERT_TRUE(written.ok());
  ASSERT_EQ((*written)[0], kCompactedBlockFormat);
  auto payload = CompactedPayloadForTesting(*written);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(*payload, *CompactedPayloadForTesting(value));
  for (const auto& [lo, hi] : std::vector<std::pair<Timestamp, Timestamp>>{{INT64_MIN, INT64_MAX},
                                                                           {16000, 46000},
                                                                           {31000, 31000},
                                                                           {46000, INT64_MAX},
                                                                           {61000, INT64_MAX}}) {
    std::vector<Sample> got;
    ASSERT_TRUE(CompactedBlock::Open(value)->Decode(0, &got, lo, hi).ok());
    EXPECT_TRUE(testing::SameSamples(got, Window(s.samples, lo, hi))) << testing::Describe(got);
  }
}

// Whether Open, or else decoding series 0, refuses `value` with DataLoss.
bool Refused(const std::string& value) {
  auto b = CompactedBlock::Open(value);
  if (!b.ok()) return b.status().code() == absl::StatusCode::kDataLoss;
  std::vector<Sample> out;
  return b->Decode(0, &out).code() == absl::StatusCode::kDataLoss;
}

// Full-precision values are coded as one run of fixed-width differences of their bits
// per segment when that is shorter (format 4), byte for byte as documented; runs that
// leave their segment or their bytes, have no values or an unknown width, or come in a
// format-3 block, are refused.
TEST(CompactedBlock, WritesRunsOfBitDifferencesAsDocumented) {
  CompactedSeries s{.ref = 1, .samples = {}, .base = {}};
  const uint64_t first = std::bit_cast<uint64_t>(0.1);
  const int64_t offsets[] = {0, 1, 4, 3, 3, 100};  // differences +1, +3, -1, 0, +97
  for (int k = 0; k < 6; ++k) {
    s.samples.push_back({1000 + k * 15000, std::bit_cast<double>(first + offsets[k])});
  }
  // 0.1: exponent -1, mantissa 1; then a run (lz 7, n 8 + 1: 319) of 5 values of 1 byte:
  // zigzagged differences 2, 6, 1, 0, 194. As raw tokens they would take 2 bytes each.
  const std::string column("\x05\x02\xbf\x02\x05\x02\x06\x01\x00\xc2", 10);
  ExpectWrittenAs(s, OneSeriesBlock(column));
  EXPECT_FALSE(Refused(OneSeriesBlock(column)));
  EXPECT_FALSE(Refused(OneSeriesBlock(column, 4)));
  EXPECT_TRUE(Refused(OneSeriesBlock(column, 3)));  // no runs before format 4
  // No values; more values than the segment has left; a width of 9 bytes; lz 7 with n 2.
  EXPECT_TRUE(Refused(OneSeriesBlock(std::string("\x05\x02\xbf\x02\x00\x02\x06\x01\x00\xc2", 10))));
  EXPECT_TRUE(
      Refused(OneSeriesBlock(std::string("\x05\x02\xbf\x02\x06\x02\x06\x01\x00\xc2\x00", 11))));
  EXPECT_TRUE(Refused(OneSeriesBlock(std::string("\x05\x02\xbf\x04\x05\x02\x06\x01\x00\xc2", 10))));
  EXPECT_TRUE(Refused(OneSeriesBlock(std::string("\x05\x02\x5f\x05\x02\x06\x01\x00\xc2", 9))));
  // The run's bytes end early; bytes left after it.
  EXPECT_TRUE(Refused(OneSeriesBlock(std::string("\x05\x02\xbf\x02\x05\x02\x06\x01\x00", 9))));
  EXPECT_TRUE(
      Refused(OneSeriesBlock(std::string("\x05\x02\xbf\x02\x05\x02\x06\x01\x00\xc2\x00", 11))));
  // A run may be followed by tokens: here a raw token (lz 7, n 1) XOR-ing 0x01 into the last.
  auto mixed = CompactedBlock::Open(
      OneSeriesBlock(std::string("\x05\x02\xbf\x02\x04\x02\x06\x01\x00\x3f\x01", 11)));
  ASSERT_TRUE(mixed.ok());
  std::vector<Sample> got;
  ASSERT_TRUE(mixed->Decode(0, &got).ok());
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(std::bit_cast<uint64_t>(got[5].v), (first + 3) ^ 1);
}

// A counter in thousandths with noisy increments: its deltas after the first value are one
// mantissa run (format 5), byte for byte as documented; mantissa runs that have no values,
// leave their segment or their bytes, have too wide a field or come in a format-4 block are
// refused.
TEST(CompactedBlock, WritesMantissaRunsAsDocumented) {
  CompactedSeries s{.ref = 1, .samples = {}, .base = {}};
  // Increments of 100000 + x thousandths; as delta tokens, 3 bytes each.
  const int64_t x[] = {7, 200, 0, 31, 255, 64, 1, 128, 90, 13};
  std::vector<int64_t> m = {1001};
  for (int64_t dx : x) m.push_back(m.back() + 100000 + dx);
  for (int k = 0; k < 11; ++k) {
    s.samples.push_back({1000 + k * 15000, static_cast<double>(m[k]) / 1000});
  }
  // 1.001: exponent -3 (0x15), mantissa 1001 (zigzag 2002); then a mantissa run (lz 6,
  // n 3 + 8: 379) of 10 values after the smallest increment 100000 (zigzag 200000), one
  // 8-bit field each: x.
  const std::string column(
      "\x15\xd2\x0f\xfb\x02\x0a\xc0\x9a\x0c"
      "\x07\xc8\x00\x1f\xff\x40\x01\x80\x5a\x0d",
      19);
  auto block = [&](const std::string& c, int format = 5) { return OneSeriesBlock(c, format, 11); };
  ExpectWrittenAs(s, block(column));
  // Fields of 3 bits (n = 6: 219): 7, 0, 5, 2 in bits 0-2, 3-5, 6-8, 9-11 of 0x47 0x05
  // (0b01000111, 0b00000101).
  const std::string narrow("\x15\xd2\x0f\xdb\x01\x04\xc0\x9a\x0c\x47\x05", 11);
  auto four = CompactedBlock::Open(OneSeriesBlock(narrow, 5, 5));
  ASSERT_TRUE(four.ok());
  std::vector<Sample> got;
  ASSERT_TRUE(four->Decode(0, &got).ok());
  ASSERT_EQ(got.size(), 5u);
  int64_t want = 1001;
  for (int k = 0; k < 4; ++k) {
    want += 100000 + std::array{7, 0, 5, 2}[k];
    EXPECT_EQ(got[k + 1].v, static_cast<double>(want) / 1000) << k;
  }
  EXPECT_FALSE(Refused(block(column)));
  EXPECT_TRUE(Refused(block(column, 4)));  // no mantissa runs before format 5
  const std::string head("\x15\xd2\x0f", 3), fields = column.substr(9);
  // No values; more values than the segment has left (with a field for each).
  EXPECT_TRUE(Refused(block(head + std::string("\xfb\x02\x00\xc0\x9a\x0c", 6) + fields)));
  EXPECT_TRUE(Refused(block(head + std::string("\xfb\x02\x0b\xc0\x9a\x0c", 6) + fields + "\x01")));
  // Fields of 57 bits (n = 60: 1947) with enough bytes for them.
  EXPECT_TRUE(Refused(block(head + "\x9b\x0f\x0a\xc0\x9a\x0c" + std::string(72, '\x01'))));
  // The fields end early; the smallest increment is cut; bytes are left after the run.
  EXPECT_TRUE(Refused(block(column.substr(0, 18))));
  EXPECT_TRUE(Refused(block(column.substr(0, 8))));
  EXPECT_TRUE(Refused(block(column + '\x00')));
  // A mantissa run may be followed by tokens: here 9 values, then a delta of +1 (4).
  auto mixed = CompactedBlock::Open(
      block(head + std::string("\xfb\x02\x09\xc0\x9a\x0c", 6) + fields.substr(0, 9) + "\x04"));
  ASSERT_TRUE(mixed.ok());
  got.clear();
  ASSERT_TRUE(mixed->Decode(0, &got).ok());
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got[10].v, static_cast<double>(m[9] + 1) / 1000);
}

// A full-precision random walk (every mantissa bit noise, steps of 1%): runs of 6-byte
// differences instead of raw tokens of 8 or 9 bytes.
TEST(CompactedBlock, FullPrecisionRandomWalksTakeRuns) {
  std::mt19937_64 rng(5);
  CompactedSeries s{.ref = 1, .samples = {}, .base = {}};
  double v = 500;
  for (int k = 0; k < 2000; ++k) {
    v = std::fabs(v + std::uniform_real_distribution<double>(-1, 1)(rng) * v * 0.01);
    s.samples.push_back({k * 15000, v});
  }
  for (uint32_t interval : {0u, 512u}) {
    auto value =
        EncodeCompactedBlock(std::vector<CompactedSeries>{s}, {.restart_interval = interval});
    ASSERT_TRUE(value.ok());
    auto payload = CompactedPayloadForTesting(*value);
    ASSERT_TRUE(payload.ok());
    // A byte per timestamp (a delta of delta of 0) and 6 per value, as raw tokens 8 or 9.
    EXPECT_LT(payload->size(), (1 + 6.05) * 2000) << interval;
    ExpectRoundTrip({s}, 0, interval);
  }
}

// Counters whose increments are noise at a fixed precision (seconds in nanoseconds, CPU
// seconds in hundredths, and a bucket-like series against one of them) take mantissa runs:
// a nanosecond counter's increments of up to 3e8 need 29 bits, where a delta token takes 5
// bytes. Every value reads back bit for bit.
TEST(CompactedBlock, NoisyCountersTakeMantissaRuns) {
  std::mt19937_64 rng(8);
  std::vector<CompactedSeries> group = {{.ref = 1, .samples = {}, .base = {}},
                                        {.ref = 2, .samples = {}, .base = {}},
                                        {.ref = 3, .samples = {}, .base = 2}};
  int64_t ns = int64_t{1} << 42, centi = 123456789, band = 0;
  for (int k = 0; k < 2000; ++k) {
    const Timestamp t = 1700000000000 + k * 15000;
    ns += static_cast<int64_t>(rng() % 300000001);
    centi += 100 + static_cast<int64_t>(rng() % 50);
    band += static_cast<int64_t>(rng() % 1000);
    group[0].samples.push_back({t, static_cast<double>(ns) / 1e9});
    group[1].samples.push_back({t, static_cast<double>(centi) / 100});
    group[2].samples.push_back({t, static_cast<double>(centi + band) / 100});
  }
  for (uint32_t interval : {0u, 16u, 512u}) {
    auto value = EncodeCompactedBlock(std::vector<CompactedSeries>{group[0]},
                                      {.restart_interval = interval});
    ASSERT_TRUE(value.ok());
    auto payload = CompactedPayloadForTesting(*value);
    ASSERT_TRUE(payload.ok());
    // A byte per timestamp, 29 bits per value and the runs' headers; tokens take 5 bytes.
    // (With a restart every 16 values, each segment's first value and header weigh more.)
    EXPECT_LT(payload->size(), (1 + (interval == 16 ? 4.9 : 3.7)) * 2000) << interval;
    ExpectRoundTrip(group, kCompactedMaxBaseDepth, interval);
    if (HasFatalFailure()) return;
  }
}

// Windows that start and end at, just before and just after restarts, the ends and
// elsewhere, of based and unbased series, decoded on blocks opened afresh and on one
// block whose kept base values then come from other windows: always the samples of the
// whole column in the window, bit for bit.
TEST(CompactedBlock, DecodesWindowsAtAndAcrossRestarts) {
  Gen g(11);
  SeriesRef ref = 1000;
  std::vector<CompactedSeries> group = Histogram(1);
  for (int k = 0; k < 3; ++k) {
    std::vector<CompactedSeries> more = RandomGroup(g, &ref, 8);
    AddBases(g, more);
    group.insert(group.end(), more.begin(), more.end());
  }
  std::mt19937_64 rng(4);
  for (uint32_t interval : {1u, 5u, 16u, 64u}) {
    auto value = EncodeCompactedBlock(group, {.zstd_level = 1, .restart_interval = interval});
    ASSERT_TRUE(value.ok()) << value.status();
    auto shared = CompactedBlock::Open(*value);
    ASSERT_TRUE(shared.ok()) << shared.status();
    for (size_t i = 0; i < group.size(); ++i) {
      const std::vector<Sample>& all = group[i].samples;
      std::vector<Sample> whole;
      ASSERT_TRUE(CompactedBlock::Open(*value)->Decode(i, &whole).ok());
      ASSERT_TRUE(testing::SameSamples(whole, all)) << "series " << i;
      // Times at, around and between restarts and the ends, and past both ends.
      std::vector<Timestamp> times = {INT64_MIN, INT64_MAX};
      auto add = [&](size_t k) {
        const Timestamp t = all[k].t;
        times.push_back(t);
        if (t > INT64_MIN) times.push_back(t - 1);
        if (t < INT64_MAX) times.push_back(t + 1);
      };
      for (size_t r = 0; r < all.size(); r += interval) {
        add(r);
        if (r > 0) add(r - 1);
        if (r + 1 < all.size()) add(r + 1);
      }
      add(all.size() - 1);
      for (int w = 0; w < 150; ++w) {
        const Timestamp lo = times[rng() % times.size()], hi = times[rng() % times.size()];
        const std::vector<Sample> want = Window(whole, lo, hi);
        std::vector<Sample> fresh, kept = {{-1, 2}};
        ASSERT_TRUE(CompactedBlock::Open(*value)->Decode(i, &fresh, lo, hi).ok());
        ASSERT_TRUE(shared->Decode(i, &kept, lo, hi).ok());
        ASSERT_TRUE(testing::SameSamples(fresh, want))
            << "series " << i << " interval " << interval << " [" << lo << ", " << hi << "]\n got  "
            << testing::Describe(fresh) << "\n want " << testing::Describe(want);
        kept.erase(kept.begin());
        ASSERT_TRUE(testing::SameSamples(kept, want))
            << "series " << i << " interval " << interval << " [" << lo << ", " << hi << "]";
        // A series based on this one reads next, from another restart.
        const size_t other = rng() % group.size();
        std::vector<Sample> next;
        const Timestamp t = group[other].samples[rng() % group[other].samples.size()].t;
        ASSERT_TRUE(shared->Decode(other, &next, t, INT64_MAX).ok());
        ASSERT_TRUE(testing::SameSamples(next, Window(group[other].samples, t, INT64_MAX)));
      }
    }
  }
}

// The layout of docs/format/compacted.md, byte for byte: series 5 (1, 2, 3, 4, 5)
// and series 6 (11 ... 15, based on 5), every 15 s from t = 1000, restarting every 2
// samples; and the restart fields that Open or Decode refuse.
TEST(CompactedBlock, WritesRestartsAsDocumented) {
  std::vector<CompactedSeries> group = {{.ref = 5, .samples = {}, .base = {}},
                                        {.ref = 6, .samples = {}, .base = 5}};
  for (int k = 0; k < 5; ++k) {
    group[0].samples.push_back({1000 + k * 15000, 1.0 + k});
    group[1].samples.push_back({1000 + k * 15000, 11.0 + k});
  }
  auto value = EncodeCompactedBlock(group, {.restart_interval = 2});
  ASSERT_TRUE(value.ok());
  ASSERT_EQ((*value)[0], 5);
  // Pieces of the payload, in order.
  std::vector<std::string> want = {
      "\x02\x01\x02",                  // 2 series, 1 timestamp column, restart every 2 samples
      "\x05\x06\xd0\x0f\xe0\xd4\x03",  // 5 timestamps in 6 bytes, first 1000, last - first
      "\xb0\xea\x01\x02",              // segment 1 starts 30000 later; segment 0 has 1 + 2 bytes
      "\xb0\xea\x01\x02",              // segment 2 starts 30000 later; segment 1 has 1 + 2 bytes
      // ref 5, column 0, no base, 8 bytes; segments of 1 + 2 and 1 + 2 bytes (and 2)
      std::string("\x05\x00\x00\x08\x02\x02", 6),
      // ref 6, column 0, based on the series before, the same lengths
      std::string("\x01\x00\x02\x08\x02\x02", 6),
      "\xb0\xea\x01\xb0\xea\x01",          // 15000 after each segment's first; segment 2: none
      "\x01\x02\x04\x01\x06\x04\x01\x0a",  // exponent 0 and 1, +1 | 3, +1 | 5
      std::string("\x01\x14\x00\x01\x14\x00\x01\x14", 8)};  // 11 - 1 = 10, +0 | ...
  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& p : parts) out += p;
    return out;
  };
  auto payload = CompactedPayloadForTesting(*value);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(*payload, join(want));
  auto b = CompactedBlock::Open(CompactedBlockFromPayloadForTesting(join(want)));
  ASSERT_TRUE(b.ok()) << b.status();
  for (size_t i = 0; i < 2; ++i) {
    std::vector<Sample> got;
    ASSERT_TRUE(b->Decode(i, &got, 31000, 46000).ok());
    EXPECT_TRUE(testing::SameSamples(got, Window(group[i].samples, 31000, 46000)));
  }
  auto refused = [&](size_t piece, std::string bytes) {
    std::vector<std::string> bad = want;
    bad[piece] = std::move(bytes);
    return CompactedBlock::Open(CompactedBlockFromPayloadForTesting(join(bad))).status().code() ==
           absl::StatusCode::kDataLoss;
  };
  // A segment starting at the previous one's time, or after the column's last.
  EXPECT_TRUE(refused(2, std::string("\x00\x02", 2)));
  EXPECT_TRUE(refused(3, "\xe1\xd4\x03\x02"));
  // Timestamp segments beyond the column, or leaving too few bytes for the last one.
  EXPECT_TRUE(refused(3, "\xb0\xea\x01\x03"));
  EXPECT_TRUE(refused(2, "\xb0\xea\x01\x03"));
  // Value segments beyond the column, or leaving too few bytes for the last one.
  EXPECT_TRUE(refused(4, std::string("\x05\x00\x00\x08\x04\x03", 6)));
  EXPECT_TRUE(refused(4, std::string("\x05\x00\x00\x08\x03\x03", 6)));
  EXPECT_TRUE(refused(0, "\x02\x01\x80\x80\x80\x80\x10"));  // an interval of 2^32
  // Segment 0 ends at segment 1's first timestamp: found when decoding it.
  std::vector<std::string> bad = want;
  bad[6] = "\xe0\xd4\x03\xb0\xea\x01";
  auto opened = CompactedBlock::Open(CompactedBlockFromPayloadForTesting(join(bad)));
  ASSERT_TRUE(opened.ok());
  std::vector<Sample> out;
  EXPECT_EQ(opened->Decode(0, &out, 1000, 16000).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(opened->Decode(1, &out, 31000, 46000).code(), absl::StatusCode::kOk);
}

// Opens and decodes a window of every series, then everything; must not crash or read out
// of bounds.
void Exercise(std::string_view value) {
  auto b = CompactedBlock::Open(value);
  if (!b.ok()) {
    EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss) << b.status();
    return;
  }
  for (size_t i = 0; i < b->num_series(); ++i) {
    const Timestamp mid = static_cast<Timestamp>(static_cast<uint64_t>(b->mint(i)) / 2 +
                                                 static_cast<uint64_t>(b->maxt(i)) / 2);
    std::vector<Sample> out;
    absl::Status st = b->Decode(i, &out, mid, b->maxt(i));
    if (!st.ok()) {
      EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
    }
  }
  for (size_t i = 0; i < b->num_series(); ++i) {
    std::vector<Sample> out;
    absl::Status st = b->Decode(i, &out);
    if (!st.ok()) {
      EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
    } else {
      EXPECT_EQ(out.size(), b->num_samples(i));
      for (size_t j = 1; j < out.size(); ++j) EXPECT_LT(out[j - 1].t, out[j].t);
    }
  }
}

TEST(CompactedBlock, GarbledAndTruncatedBlocksFailCleanly) {
  Gen g(7);
  SeriesRef ref = 0;
  std::mt19937 rng(9);
  int failures = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<CompactedSeries> group = RandomGroup(g, &ref, 6);
    auto block = EncodeCompactedBlock(
        group, {.zstd_level = 1,
                .max_base_depth = 3,
                .restart_interval = static_cast<uint32_t>(rng() % 3 == 0 ? 0 : 1 + rng() % 9)});
    ASSERT_TRUE(block.ok());
    auto payload = CompactedPayloadForTesting(*block);
    ASSERT_TRUE(payload.ok());
    for (int k = 0; k < 20; ++k) {
      // Garble the payload (then recompress, so that the decoder proper sees it) or the
      // stored bytes; or truncate either.
      std::string p = *payload;
      bool inner = k % 2 == 0;
      std::string s = inner ? p : *block;
      int kind = static_cast<int>(rng() % 3);
      if (kind == 0 && !s.empty()) {
        s.resize(rng() % s.size());
      } else {
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips && !s.empty(); ++f) {
          s[rng() % s.size()] ^= static_cast<char>(1 + rng() % 255);
        }
        if (kind == 2 && !s.empty()) s.insert(rng() % s.size(), 1, static_cast<char>(rng()));
      }
      std::string value = inner ? CompactedBlockFromPayloadForTesting(s) : s;
      Exercise(value);
      if (!CompactedBlock::Open(value).ok()) ++failures;
    }
  }
  EXPECT_GT(failures, 0);
  // Pure garbage.
  for (int k = 0; k < 2000; ++k) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    if (!s.empty() && k % 2 == 0) s[0] = static_cast<char>(kCompactedBlockFormat);
    Exercise(s);
    Exercise(CompactedBlockFromPayloadForTesting(s));
  }
}

}  // namespace
}  // namespace strata
