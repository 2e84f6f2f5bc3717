// The compacted block codec: bit-exact round trips over random series of many shapes, and
// garbled or truncated blocks that must fail cleanly (run under ASan in CI).
#include "storage/compacted_block.h"

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "gtest/gtest.h"
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
    int shape = static_cast<int>(Int(0, 10));
    double x = Int(0, 1) ? 0 : Real(-1e6, 1e6);
    double scale = std::pow(10.0, static_cast<double>(Int(-6, 6)));
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
  return group;
}

void ExpectRoundTrip(const std::vector<CompactedSeries>& group) {
  auto block = EncodeCompactedBlock(group, {.zstd_level = 1});
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
    ExpectRoundTrip(group);
    if (HasFatalFailure()) return;
  }
}

TEST(CompactedBlock, EverySpecialValueAfterEveryOther) {
  CompactedSeries s{.ref = 7, .samples = {}};
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
    CompactedSeries s{.ref = static_cast<SeriesRef>(i + 1), .samples = {}};
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
  CompactedSeries a{.ref = 2, .samples = {{1, 1}}}, b{.ref = 1, .samples = {{1, 1}}};
  EXPECT_EQ(EncodeCompactedBlock(std::vector{a, b}).status().code(),
            absl::StatusCode::kInvalidArgument);
  CompactedSeries c{.ref = 3, .samples = {{5, 1}, {5, 2}}};
  EXPECT_EQ(EncodeCompactedBlock(std::vector{c}).status().code(),
            absl::StatusCode::kInvalidArgument);
  CompactedSeries d{.ref = 4, .samples = {}};
  EXPECT_EQ(EncodeCompactedBlock(std::vector{d}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Opens and decodes everything; must not crash or read out of bounds.
void Exercise(std::string_view value) {
  auto b = CompactedBlock::Open(value);
  if (!b.ok()) {
    EXPECT_EQ(b.status().code(), absl::StatusCode::kDataLoss) << b.status();
    return;
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
    auto block = EncodeCompactedBlock(group, {.zstd_level = 1});
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
