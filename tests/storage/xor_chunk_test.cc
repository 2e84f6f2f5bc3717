#include "storage/xor_chunk.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/chunk_encoding.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }
double FromBits(uint64_t b) { return std::bit_cast<double>(b); }

// The chunk XorChunkAppender builds, one sample at a time (Prometheus' window choice).
std::string Encode(const std::vector<Sample>& samples) {
  XorChunkAppender a;
  for (const Sample& s : samples) {
    absl::Status st = a.Append(s.t, s.v);
    EXPECT_TRUE(st.ok()) << st;
    if (!st.ok()) return std::string();
  }
  return std::string(a.bytes());
}

// The chunk EncodeXorChunk chooses windows for.
std::string Pack(const std::vector<Sample>& samples) {
  absl::StatusOr<std::string> chunk = EncodeXorChunk(samples);
  EXPECT_TRUE(chunk.ok()) << chunk.status();
  return chunk.ok() ? *chunk : std::string();
}

// Decodes with Next(); the error, if any, goes to *status.
std::vector<Sample> DecodeAll(std::string_view chunk, absl::Status* status) {
  XorChunkIterator it(chunk);
  std::vector<Sample> out;
  while (it.Next()) out.push_back(it.At());
  *status = it.status();
  return out;
}

// Compares timestamps and value bits; returns "" or the first difference.
std::string Diff(const std::vector<Sample>& want, const std::vector<Sample>& got) {
  if (want.size() != got.size()) {
    return fmt::format("{} samples, want {}", got.size(), want.size());
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i].t != got[i].t || Bits(want[i].v) != Bits(got[i].v)) {
      return fmt::format("sample {}: got ({}, {:#x}), want ({}, {:#x})", i, got[i].t,
                         Bits(got[i].v), want[i].t, Bits(want[i].v));
    }
  }
  return "";
}

// ---- Compatibility with Prometheus' documented layout ----

// Eight samples chosen to touch every delta-of-delta bucket and every value control code.
// Expected bytes derived by hand from the format (docs/format/chunks.md):
//
//   00 08                    num_samples = 8, uint16 big-endian
//   d0 0f                    ts_0 = 1000: zigzag 2000 = 0b1111_1010000 -> 0x80|0x50, 0x0f
//   3f f0 00 00 00 00 00 00  v_0 = 1.0 as raw big-endian float64 bits
//   98 75                    ts_1 - ts_0 = 15000 = 117*128 + 24 -> 0x80|0x18, 0x75
// then the bit stream, most significant bit first:
//   s1 value 2.0: xor 0x7ff0000000000000, 1 leading 0, 52 trailing 0s, 11 significant bits,
//      no window yet   -> '11' 00001 001011 11111111111                          (24 bits)
//   s2 t +15000 (dod 0), value 2.0 again         -> '0' '0'                        (2)
//   s3 t +14997 (dod -3): '10' + 14-bit two's complement of -3
//                                                -> '10' 11111111111101           (16)
//      value 3.0: xor 0x0008000000000000, 12 leading, 51 trailing; trailing < 52 of the
//      window, so a new window -> '11' 01100 000001 '1'                            (14)
//   s4 t +24997 (dod 10000 > 8192: 17-bit bucket)
//                                                -> '110' 00010011100010000       (20)
//      value 2.0: same xor as before, fits the window (12, 51) -> '10' '1'         (3)
//   s5 t +124997 (dod 100000 > 65536: 20-bit bucket)
//                                                -> '1110' 00011000011010100000   (24)
//      value -2.0: xor 0x8000000000000000, 0 leading < 12: new window
//                                                -> '11' 00000 000001 '1'          (14)
//   s6 t +1124997 (dod 1000000 > 524288)         -> '1111' + 64-bit 0xf4240        (68)
//      value stale NaN 0x7ff0000000000002: xor 0xbff0000000000002, 0 leading, 1 trailing
//      (< 63): new window, 63 significant bits 0x5ff8000000000001
//                                                -> '11' 00000 111111 + 63 bits    (76)
//   s7 t +1124997 (dod 0)                        -> '0'                            (1)
//      value 0xfff0000000000003 (a negative NaN): xor 0x8000000000000001, 0 leading and
//      0 trailing: 64 significant bits, written as 0 in the 6-bit field
//                                                -> '11' 00000 000000 + 64 bits    (77)
// 339 bits in all, padded with 5 zero bits to 43 bytes. Grouped by bytes:
//   11000010 01011111 11111111 00101111 11111111 01110110 00000011 11000010 01110001
//   c2       5f       ff       2f       ff       76       03       c2       71
//   00001011 11000011 00001101 01000001 10000000 00011111 10000000 00000000 00000000
//   0b       c3       0d       41       80       1f       80       00       00
//   00000000 00000000 00000111 10100001 00100000 01100000 11111110 11111111 11000000
//   00       00       07       a1       20       60       fe       ff       c0
//   (five 00 bytes) 00001011 00000000 00010000 (six 00 bytes) 00100000
//                   0b       00       10                      20
std::vector<Sample> HandSamples() {
  return {
      {1000, 1.0},  {16000, 2.0},   {31000, 2.0},          {45997, 3.0},
      {70994, 2.0}, {195991, -2.0}, {1320988, StaleNaN()}, {2445985, FromBits(0xfff0000000000003)}};
}

const std::vector<uint8_t> kHandBytes = {
    0x00, 0x08, 0xd0, 0x0f, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x98, 0x75, 0xc2,
    0x5f, 0xff, 0x2f, 0xff, 0x76, 0x03, 0xc2, 0x71, 0x0b, 0xc3, 0x0d, 0x41, 0x80, 0x1f, 0x80,
    0x00, 0x00, 0x00, 0x00, 0x07, 0xa1, 0x20, 0x60, 0xfe, 0xff, 0xc0, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x0b, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20};

std::string HandChunk() { return std::string(kHandBytes.begin(), kHandBytes.end()); }

TEST(XorChunkFormat, EncodingByteMatchesPrometheus) {
  EXPECT_EQ(static_cast<uint8_t>(ChunkEncoding::kXor), 1);
  EXPECT_EQ(ChunkEncodingName(ChunkEncoding::kXor), "XOR");
  EXPECT_EQ(DecodableChunkEncoding(1), ChunkEncoding::kXor);
  EXPECT_EQ(DecodableChunkEncoding(2), std::nullopt);
}

TEST(XorChunkFormat, EncodesHandDerivedBytes) { EXPECT_EQ(Encode(HandSamples()), HandChunk()); }

TEST(XorChunkFormat, DecodesHandDerivedBytes) {
  absl::Status st;
  std::vector<Sample> got = DecodeAll(HandChunk(), &st);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Diff(HandSamples(), got), "");
}

// The worked example in docs/format/chunks.md.
TEST(XorChunkFormat, DocumentedExample) {
  const std::string want(
      "\x00\x03\xd0\x0f\x3f\xf0\x00\x00\x00\x00\x00\x00\x98\x75"
      "\xc2\x5f\xff\x00",
      18);
  EXPECT_EQ(Encode({{1000, 1.0}, {16000, 2.0}, {31000, 2.0}}), want);
}

TEST(XorChunkFormat, EmptyChunkIsTwoZeroBytes) {
  XorChunkAppender a;
  EXPECT_EQ(a.bytes(), std::string_view("\0\0", 2));
  EXPECT_EQ(a.num_samples(), 0);
  absl::Status st;
  EXPECT_TRUE(DecodeAll(a.bytes(), &st).empty());
  EXPECT_TRUE(st.ok());
}

TEST(XorChunkFormat, OneSampleIsHeaderVarintAndRawValue) {
  XorChunkAppender a;
  ASSERT_TRUE(a.Append(-1, -0.0).ok());
  // zigzag(-1) = 1; -0.0 is the sign bit alone.
  EXPECT_EQ(a.bytes(), std::string_view("\x00\x01\x01\x80\x00\x00\x00\x00\x00\x00\x00", 11));
}

// A 14-bit bucket holds [-8191, 8192]; -8192 needs the 17-bit bucket (Prometheus' bitRange).
TEST(XorChunkFormat, BucketEdgesFollowPrometheusRanges) {
  // The bit stream of a chunk, from byte `from` on, as '0'/'1' characters.
  auto bit_string = [](std::string_view c, size_t from) {
    std::string s;
    for (size_t i = from; i < c.size(); ++i) {
      for (int b = 7; b >= 0; --b) s += (uint8_t(c[i]) >> b & 1) ? '1' : '0';
    }
    return s;
  };
  // The low n bits of x, most significant first.
  auto field = [](int64_t x, int n) {
    std::string s;
    for (int b = n - 1; b >= 0; --b) s += (uint64_t(x) >> b & 1) ? '1' : '0';
    return s;
  };
  struct Case {
    int64_t dod;
    std::string code;  // bucket prefix
    int width;         // payload bits
  };
  for (const Case& c : std::vector<Case>{{8192, "10", 14},
                                         {-8191, "10", 14},
                                         {-8192, "110", 17},
                                         {8193, "110", 17},
                                         {65536, "110", 17},
                                         {-65535, "110", 17},
                                         {-65536, "1110", 20},
                                         {524288, "1110", 20},
                                         {-524287, "1110", 20},
                                         {-524288, "1111", 64},
                                         {524289, "1111", 64}}) {
    // The third sample carries `dod`; equal values cost one '0' bit each. Bytes before the
    // bit stream: header 2 + ts_0 1 + v_0 8 + uvarint(1000000) 3 = 14.
    const std::string chunk = Encode({{0, 1}, {1000000, 1}, {2000000 + c.dod, 1}});
    const std::string want = "0" + c.code + field(c.dod, c.width) + "0";
    EXPECT_EQ(bit_string(chunk, 14).substr(0, want.size()), want) << "dod " << c.dod;
    absl::Status st;
    EXPECT_EQ(DecodeAll(chunk, &st).back().t, 2000000 + c.dod);
  }
}

// ---- Exact round trips of special values and times ----

TEST(XorChunkRoundTrip, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> values = {0.0,
                                -0.0,
                                inf,
                                -inf,
                                StaleNaN(),
                                std::numeric_limits<double>::quiet_NaN(),
                                FromBits(0x7ff0000000000001),  // signalling NaN
                                FromBits(0xfff8000000000000),  // negative quiet NaN
                                FromBits(0x7fffffffffffffff),
                                FromBits(0xffffffffffffffff),
                                std::numeric_limits<double>::denorm_min(),
                                -std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::max(),
                                1.0,
                                StaleNaN(),
                                StaleNaN(),
                                -0.0,
                                0.0};
  std::vector<Sample> samples;
  for (size_t i = 0; i < values.size(); ++i) samples.push_back({int64_t(i) * 15000, values[i]});
  absl::Status st;
  EXPECT_EQ(Diff(samples, DecodeAll(Encode(samples), &st)), "");
  EXPECT_TRUE(st.ok()) << st;
}

TEST(XorChunkRoundTrip, ExtremeTimestamps) {
  const int64_t lo = std::numeric_limits<int64_t>::min();
  const int64_t hi = std::numeric_limits<int64_t>::max();
  const std::vector<std::vector<int64_t>> cases = {
      {lo, hi},     {lo, lo + 1, hi - 1, hi},       {lo, 0, hi},
      {-5, -4, hi}, {lo, lo + 1, lo + 3, 0, 1, hi}, {hi - 2, hi - 1, hi},
      {-1, 0, 1},
  };
  for (const auto& ts : cases) {
    std::vector<Sample> samples;
    for (int64_t t : ts) samples.push_back({t, double(t)});
    absl::Status st;
    EXPECT_EQ(Diff(samples, DecodeAll(Encode(samples), &st)), "") << ts.front();
    EXPECT_TRUE(st.ok()) << st;
  }
}

TEST(XorChunkAppend, RejectsOutOfOrderAndDuplicateTimesLeavingChunkUnchanged) {
  XorChunkAppender a;
  ASSERT_TRUE(a.Append(1000, 1).ok());
  ASSERT_TRUE(a.Append(2000, 2).ok());
  ASSERT_TRUE(a.Append(3000, 3).ok());
  const std::string before(a.bytes());
  absl::Status st = a.Append(2999, 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("2999"));
  EXPECT_EQ(a.Append(3000, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.bytes(), before);
  EXPECT_EQ(a.num_samples(), 3);
  EXPECT_EQ(a.last_timestamp(), 3000);
  EXPECT_EQ(a.last_value(), 3.0);
  ASSERT_TRUE(a.Append(4000, 4).ok());
  absl::Status dst;
  EXPECT_EQ(Diff({{1000, 1}, {2000, 2}, {3000, 3}, {4000, 4}}, DecodeAll(a.bytes(), &dst)), "");
}

TEST(XorChunkAppend, RejectsSecondSampleAtOrBeforeFirst) {
  XorChunkAppender a;
  ASSERT_TRUE(a.Append(5, 1).ok());
  EXPECT_EQ(a.Append(5, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.Append(std::numeric_limits<int64_t>::min(), 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.num_samples(), 1);
}

TEST(XorChunkAppend, FullChunkRejectsMoreSamples) {
  XorChunkAppender a;
  for (int i = 0; i < kXorChunkMaxSamples; ++i) {
    ASSERT_TRUE(a.Append(int64_t(i) * 15000 + (i % 7), i % 3).ok()) << i;
  }
  EXPECT_EQ(a.num_samples(), kXorChunkMaxSamples);
  EXPECT_EQ(a.Append(int64_t{1} << 40, 1).code(), absl::StatusCode::kFailedPrecondition);
  XorChunkIterator it(a.bytes());
  int n = 0;
  while (it.Next()) ++n;
  EXPECT_TRUE(it.status().ok());
  EXPECT_EQ(n, kXorChunkMaxSamples);
}

TEST(XorChunkAppend, StateIsSmall) {
  // One appender per series in the head: keep it to five words.
  EXPECT_LE(sizeof(XorChunkAppender), 40u);
  XorChunkAppender a;
  EXPECT_EQ(a.allocated_bytes(), 0u);
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(a.Append(int64_t(i) * 15000, 42).ok());
  // 120 samples of a constant at a regular interval: ~2 bits each.
  EXPECT_LT(a.bytes().size(), 60u);
  EXPECT_LE(a.allocated_bytes(), 128u);
}

TEST(XorChunkAppend, MoveKeepsChunk) {
  XorChunkAppender a;
  ASSERT_TRUE(a.Append(1, 1).ok());
  ASSERT_TRUE(a.Append(2, 2).ok());
  const std::string bytes(a.bytes());
  XorChunkAppender b(std::move(a));
  EXPECT_EQ(b.bytes(), bytes);
  XorChunkAppender c;
  c = std::move(b);
  ASSERT_TRUE(c.Append(3, 3).ok());
  EXPECT_EQ(c.bytes(), Encode({{1, 1}, {2, 2}, {3, 3}}));
}

// ---- Random sequences against a naive model ----

// Sample sequences of varied shapes. The model is the input itself: decoding must give it
// back bit for bit, and Seek/AppendRange must agree with a search over it.
class SequenceGenerator {
 public:
  explicit SequenceGenerator(uint64_t seed) : rng_(seed) {}

  std::vector<Sample> Next() {
    const int n = 1 + int(rng_() % 200);
    std::vector<int64_t> ts = Times(n);
    std::vector<Sample> out(ts.size());
    std::vector<double> vs = Values(int(ts.size()));
    for (size_t i = 0; i < ts.size(); ++i) out[i] = {ts[i], vs[i]};
    return out;
  }

  uint64_t Uniform(uint64_t n) { return rng_() % n; }

 private:
  int64_t Start() {
    switch (rng_() % 4) {
      case 0:
        return 1700000000000 + int64_t(rng_() % 100000000);
      case 1:
        return -int64_t(rng_() % 1000000000000);
      case 2:
        return int64_t(rng_());  // anywhere
      default:
        return std::numeric_limits<int64_t>::min() + int64_t(rng_() % 1000);
    }
  }

  // Strictly increasing times; sequences that would pass INT64_MAX are cut short.
  std::vector<int64_t> Times(int n) {
    std::vector<int64_t> ts;
    ts.reserve(n);
    const int shape = int(rng_() % 7);
    if (shape == 6) {
      // Sorted distinct random int64s: huge, arbitrary gaps (64-bit dods).
      while (int(ts.size()) < n) ts.push_back(int64_t(rng_()));
      std::sort(ts.begin(), ts.end());
      ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
      return ts;
    }
    int64_t t = Start();
    const int64_t step = std::vector<int64_t>{1, 1000, 15000, 60000}[rng_() % 4];
    for (int i = 0; i < n; ++i) {
      ts.push_back(t);
      uint64_t gap;
      switch (shape) {
        case 0:  // regular
          gap = step;
          break;
        case 1:  // regular with millisecond jitter
          gap = step + rng_() % 50;
          break;
        case 2:  // irregular, across all dod buckets
          gap = 1 + (rng_() % (uint64_t{1} << (rng_() % 40)));
          break;
        case 3:  // regular with missed scrapes and bursts
          gap = (rng_() % 10 == 0) ? step * (1 + rng_() % 20) : step;
          break;
        case 4:  // dods right at the bucket edges
          gap =
              600000 + std::vector<int64_t>{0,      8192,   -8191,  -8192,   8193,   65536,
                                            -65535, -65536, 524288, -524287, -524288}[rng_() % 11];
          break;
        default:  // huge steps
          gap = rng_() >> (1 + rng_() % 8);
          break;
      }
      if (gap == 0) gap = 1;
      if (uint64_t(std::numeric_limits<int64_t>::max()) - uint64_t(t) < gap) break;
      t = int64_t(uint64_t(t) + gap);
    }
    return ts;
  }

  double Special() {
    static const uint64_t kSpecials[] = {kStaleNaNBits,      0x7ff8000000000000, 0xfff8000000000000,
                                         0x7ff0000000000001, 0x7ff0000000000000, 0xfff0000000000000,
                                         0x8000000000000000, 0x0000000000000000, 0x0000000000000001,
                                         0x7fefffffffffffff, 0xffffffffffffffff, 0x7fffffffffffffff,
                                         0x3ff0000000000000};
    return FromBits(kSpecials[rng_() % std::size(kSpecials)]);
  }

  std::vector<double> Values(int n) {
    std::vector<double> vs(n);
    const int shape = int(rng_() % 8);
    double x = double(int64_t(rng_() % 1000000)) / double(1 + rng_() % 1000);
    for (int i = 0; i < n; ++i) {
      switch (shape) {
        case 0:  // constant
          break;
        case 1:  // counter with occasional reset
          x += double(rng_() % 1000);
          if (rng_() % 100 == 0) x = 0;
          break;
        case 2:  // random-walk gauge
          x += (double(rng_() % 2001) - 1000.0) / 64.0;
          break;
        case 3:  // random bit patterns (NaNs and all)
          x = FromBits(rng_());
          break;
        case 4:  // special values
          x = Special();
          break;
        case 5:  // runs of equal values, changing now and then
          if (rng_() % 16 == 0) x = double(rng_() % 100) / 8.0;
          break;
        case 6:  // float noise around a level
          x = 0.5 + double(rng_() % 1000000) * 1e-9;
          break;
        default:  // a mix
          if (rng_() % 3 == 0)
            x = rng_() % 2 ? Special() : FromBits(rng_());
          else
            x = double(rng_() % 4096);
          break;
      }
      vs[i] = x;
    }
    return vs;
  }

  std::mt19937_64 rng_;
};

// A second encoder, as plain as it gets: one bit at a time, each step of Prometheus'
// appender (tsdb/chunkenc/xor.go) written out in order. The optimized appender must produce
// the same bytes for every sequence.
class ReferenceEncoder {
 public:
  std::string Encode(const std::vector<Sample>& samples) {
    bytes_.assign(2, '\0');
    nbits_ = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t t = samples[i].t;
      const uint64_t v = Bits(samples[i].v);
      if (i == 0) {
        int64_t x = t;
        uint64_t zz = (uint64_t(x) << 1) ^ uint64_t(x >> 63);
        PutUvarint(zz);
        Write(v, 64);
      } else if (i == 1) {
        delta_ = uint64_t(t) - uint64_t(t_);
        PutUvarint(delta_);
        WriteValue(v ^ v_);
      } else {
        const uint64_t delta = uint64_t(t) - uint64_t(t_);
        const int64_t dod = int64_t(delta - delta_);
        if (dod == 0) {
          Write(0, 1);
        } else if (InBucket(dod, 14)) {
          Write(0b10, 2);
          Write(uint64_t(dod), 14);
        } else if (InBucket(dod, 17)) {
          Write(0b110, 3);
          Write(uint64_t(dod), 17);
        } else if (InBucket(dod, 20)) {
          Write(0b1110, 4);
          Write(uint64_t(dod), 20);
        } else {
          Write(0b1111, 4);
          Write(uint64_t(dod), 64);
        }
        delta_ = delta;
        WriteValue(v ^ v_);
      }
      t_ = t;
      v_ = v;
    }
    bytes_[0] = char(samples.size() >> 8);
    bytes_[1] = char(samples.size() & 0xff);
    return bytes_;
  }

 private:
  static bool InBucket(int64_t dod, int n) {
    return dod >= -((int64_t{1} << (n - 1)) - 1) && dod <= (int64_t{1} << (n - 1));
  }
  // The low n bits of x, most significant first.
  void Write(uint64_t x, int n) {
    for (int i = n - 1; i >= 0; --i, ++nbits_) {
      if (nbits_ % 8 == 0) bytes_.push_back(0);
      if ((x >> i) & 1) bytes_.back() = char(uint8_t(bytes_.back()) | (0x80 >> (nbits_ % 8)));
    }
  }
  void PutUvarint(uint64_t x) {
    while (x >= 0x80) {
      Write((x & 0x7f) | 0x80, 8);
      x >>= 7;
    }
    Write(x, 8);
  }
  void WriteValue(uint64_t x) {
    if (x == 0) {
      Write(0, 1);
      return;
    }
    Write(1, 1);
    int lead = std::countl_zero(x);
    const int trail = std::countr_zero(x);
    if (lead >= 32) lead = 31;
    if (leading_ != 0xff && lead >= leading_ && trail >= trailing_) {
      Write(0, 1);
      Write(x >> trailing_, 64 - leading_ - trailing_);
      return;
    }
    leading_ = lead;
    trailing_ = trail;
    Write(1, 1);
    Write(uint64_t(lead), 5);
    const int sig = 64 - lead - trail;
    Write(uint64_t(sig), 6);  // 64 wraps to 0 in six bits
    Write(x >> trail, sig);
  }

  std::string bytes_;  // the header, then the bits written
  size_t nbits_ = 0;
  int64_t t_ = 0;
  uint64_t delta_ = 0;
  uint64_t v_ = 0;
  int leading_ = 0xff;
  int trailing_ = 0;
};

TEST(XorChunkFormat, ReferenceEncoderGivesHandDerivedBytes) {
  EXPECT_EQ(ReferenceEncoder().Encode(HandSamples()), HandChunk());
}

size_t LowerBound(const std::vector<Sample>& s, int64_t t) {
  return std::lower_bound(s.begin(), s.end(), t,
                          [](const Sample& a, int64_t v) { return a.t < v; }) -
         s.begin();
}

int64_t RandomTarget(SequenceGenerator& g, const std::vector<Sample>& s) {
  const Sample& pick = s[g.Uniform(s.size())];
  switch (g.Uniform(4)) {
    case 0:
      return pick.t;
    case 1:
      return pick.t == std::numeric_limits<int64_t>::min() ? pick.t : pick.t - 1;
    case 2:
      return pick.t == std::numeric_limits<int64_t>::max() ? pick.t : pick.t + 1;
    default:
      return int64_t(g.Uniform(2) ? uint64_t(s.front().t) + g.Uniform(1000)
                                  : uint64_t(s.back().t) - g.Uniform(1000));
  }
}

TEST(XorChunkProperty, RandomSequencesRoundTripWithSeekAndAppendRange) {
  SequenceGenerator g(20261122);
  constexpr int kSequences = 100000;
  int64_t total_samples = 0;
  for (int iter = 0; iter < kSequences; ++iter) {
    const std::vector<Sample> want = g.Next();
    total_samples += int64_t(want.size());
    XorChunkAppender a;
    for (const Sample& s : want) ASSERT_TRUE(a.Append(s.t, s.v).ok()) << "seq " << iter;
    ASSERT_EQ(a.num_samples(), int(want.size()));
    const std::string chunk(a.bytes());
    // Bit-exact against the reference on every fourth sequence (it is slow under the
    // sanitizers).
    if (iter % 4 == 0) {
      ASSERT_EQ(chunk, ReferenceEncoder().Encode(want)) << "seq " << iter;
    }

    // Every sample, by Next().
    absl::Status st;
    const std::vector<Sample> got = DecodeAll(chunk, &st);
    ASSERT_TRUE(st.ok()) << "seq " << iter << ": " << st;
    ASSERT_EQ(Diff(want, got), "") << "seq " << iter;

    // The same samples with windows chosen over the whole chunk: never longer, the same
    // samples back, and an appender resumed on them goes on as on any chunk.
    {
      const std::string packed = Pack(want);
      ASSERT_LE(packed.size(), chunk.size()) << "seq " << iter;
      ASSERT_EQ(Diff(want, DecodeAll(packed, &st)), "") << "seq " << iter;
      ASSERT_TRUE(st.ok()) << "seq " << iter << ": " << st;
      if (iter % 8 == 0 && want.back().t < std::numeric_limits<int64_t>::max() - 40000) {
        absl::StatusOr<XorChunkAppender> resumed = XorChunkAppender::FromBytes(packed);
        ASSERT_TRUE(resumed.ok()) << "seq " << iter << ": " << resumed.status();
        std::vector<Sample> more = want;
        for (int k = 1; k <= 3; ++k) {
          more.push_back({want.back().t + 10000 * k, want[g.Uniform(want.size())].v});
          ASSERT_TRUE(resumed->Append(more.back().t, more.back().v).ok());
        }
        ASSERT_EQ(Diff(more, DecodeAll(resumed->bytes(), &st)), "") << "seq " << iter;
        ASSERT_TRUE(st.ok()) << "seq " << iter << ": " << st;
      }
    }

    // AppendRange over a random window, appended after existing contents.
    {
      int64_t mint = RandomTarget(g, want), maxt = RandomTarget(g, want);
      if (mint > maxt) std::swap(mint, maxt);
      if (g.Uniform(8) == 0) {
        mint = std::numeric_limits<int64_t>::min();
        maxt = std::numeric_limits<int64_t>::max();
      }
      std::vector<Sample> model = {{7, 7}};
      for (const Sample& s : want)
        if (s.t >= mint && s.t <= maxt) model.push_back(s);
      std::vector<Sample> out = {{7, 7}};
      XorChunkIterator it(chunk);
      ASSERT_TRUE(it.AppendRange(mint, maxt, &out).ok());
      ASSERT_EQ(Diff(model, out), "") << "seq " << iter << " range " << mint << ".." << maxt;
    }

    // A run of seeks, some backwards (which must not move the iterator).
    {
      XorChunkIterator it(chunk);
      size_t pos = 0;  // index of the model's current sample; valid once seeked
      bool started = false;
      const int seeks = 1 + int(g.Uniform(4));
      for (int k = 0; k < seeks; ++k) {
        const int64_t target = RandomTarget(g, want);
        size_t want_pos = LowerBound(want, target);
        if (started) want_pos = std::max(want_pos, pos);
        const bool ok = it.Seek(target);
        ASSERT_EQ(ok, want_pos < want.size()) << "seq " << iter << " seek " << target;
        if (!ok) break;
        started = true;
        pos = want_pos;
        ASSERT_EQ(it.At().t, want[pos].t);
        ASSERT_EQ(Bits(it.At().v), Bits(want[pos].v));
        if (g.Uniform(2)) {
          const bool more = it.Next();
          ASSERT_EQ(more, pos + 1 < want.size());
          if (!more) break;
          ++pos;
          ASSERT_EQ(it.At().t, want[pos].t);
        }
      }
      ASSERT_TRUE(it.status().ok());
    }
  }
  // Lengths are uniform in 1..200; the huge-times shape may cut some short.
  EXPECT_GT(total_samples, int64_t{kSequences} * 80);
}

// ---- Windows chosen over the whole chunk (EncodeXorChunk) ----

// Four values whose changes need windows (L, T) of (12, 51), (12, 50) and (14, 49).
// Prometheus' appender opens a window for each, as the first does not hold the second nor
// the second the third: 14 + 15 + 14 value bits. One window (12, 49) of 3 bits holds all
// three: 16 + 5 + 5. Expected bytes derived by hand (docs/format/chunks.md):
//   00 04                    count 4
//   00                       t0 = 0
//   3f f0 00 00 00 00 00 00  v0 = 1.0
//   98 75                    t1 - t0 = 15000
//   v1 = 1.5: xor 0x0008000000000000   -> '11' 01100 000011 100   (window 12, 49: 3 bits)
//   t2 dod 0, v2 = 1.25: xor 0x000c... -> '0' '10' 110
//   t3 dod 0, v3 = 1.375: xor 0x0002... -> '0' '10' 001
//   11011000 00011100 01011001 0001(0000) = d8 1c 59 10
TEST(XorChunkPack, OneWiderWindowForThreeChangesByHand) {
  const std::vector<Sample> samples = {{0, 1.0}, {15000, 1.5}, {30000, 1.25}, {45000, 1.375}};
  const std::vector<uint8_t> want = {0x00, 0x04, 0x00, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x98, 0x75, 0xd8, 0x1c, 0x59, 0x10};
  EXPECT_EQ(Pack(samples), std::string(want.begin(), want.end()));
  // The appender's 43 value bits and 2 dod bits after the 13 bytes: 6 bytes more.
  EXPECT_EQ(Encode(samples).size(), 13u + 6u);
  absl::Status st;
  EXPECT_EQ(Diff(samples, DecodeAll(std::string(want.begin(), want.end()), &st)), "");
  EXPECT_TRUE(st.ok()) << st;
}

TEST(XorChunkPack, SameBytesAsTheAppenderWhereItsChoiceIsBest) {
  // One change, or changes that all fit the first one's window: nothing to choose.
  for (const std::vector<Sample>& samples :
       std::vector<std::vector<Sample>>{{},
                                        {{5, 5}},
                                        {{1000, 1.0}, {16000, 2.0}, {31000, 2.0}},
                                        {{0, 1.0}, {15000, 1.5}, {30000, 1.0}, {45000, 1.5}}}) {
    EXPECT_EQ(Pack(samples), Encode(samples)) << samples.size();
  }
}

TEST(XorChunkPack, RefusesWhatTheAppenderRefuses) {
  EXPECT_EQ(EncodeXorChunk(std::vector<Sample>{{5, 1}, {5, 2}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(EncodeXorChunk(std::vector<Sample>{{1, 1}, {9, 2}, {3, 2}}).status().message(),
              HasSubstr("not after"));
  std::vector<Sample> many(kXorChunkMaxSamples + 1);
  for (size_t i = 0; i < many.size(); ++i) many[i] = {int64_t(i), 1.0};
  EXPECT_EQ(EncodeXorChunk(many).status().code(), absl::StatusCode::kFailedPrecondition);
  many.pop_back();
  absl::StatusOr<std::string> full = EncodeXorChunk(many);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(*full, Encode(many));
}

// The length of a chunk in bits, counted from the format: header, first time and value,
// first delta, the dods' buckets, and the values' bits as `value_bits` says.
int64_t ChunkBits(const std::vector<Sample>& s, int64_t value_bits) {
  auto varint_bytes = [](uint64_t x) {
    int64_t n = 1;
    while (x >= 0x80) x >>= 7, ++n;
    return n;
  };
  int64_t bits = 16;
  if (s.empty()) return bits;
  const auto t0 = uint64_t(s[0].t);
  bits += 8 * varint_bytes((t0 << 1) ^ uint64_t(s[0].t >> 63)) + 64;
  if (s.size() > 1) bits += 8 * varint_bytes(uint64_t(s[1].t) - t0);
  for (size_t i = 2; i < s.size(); ++i) {
    const int64_t dod = int64_t((uint64_t(s[i].t) - uint64_t(s[i - 1].t)) -
                                (uint64_t(s[i - 1].t) - uint64_t(s[i - 2].t)));
    auto in = [dod](int n) {
      return dod >= -((int64_t{1} << (n - 1)) - 1) && dod <= (int64_t{1} << (n - 1));
    };
    bits += dod == 0 ? 1 : in(14) ? 16 : in(17) ? 20 : in(20) ? 24 : 68;
  }
  return bits + value_bits;
}

// The fewest value bits any choice of windows gives: dynamic programming over every window
// (L <= 31 leading, T trailing zeros) that may be in force after each value. Independent of
// the encoder's own search, which splits the changes into runs and prunes.
int64_t FewestValueBits(const std::vector<Sample>& s) {
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max() / 4;
  // cost[L][T]: fewest bits so far with window (L, T) in force; `bare`: with no window yet.
  std::vector<std::array<int64_t, 64>> cost(32), next(32);
  for (auto& row : cost) row.fill(kNone);
  int64_t bare = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const uint64_t x = Bits(s[i].v) ^ Bits(s[i - 1].v);
    if (x == 0) {
      ++bare;
      for (auto& row : cost)
        for (int64_t& c : row)
          if (c < kNone) ++c;
      continue;
    }
    const int lead = std::min(std::countl_zero(x), 31);
    const int trail = std::countr_zero(x);
    int64_t cheapest = bare;
    for (const auto& row : cost)
      for (int64_t c : row) cheapest = std::min(cheapest, c);
    for (int l = 0; l < 32; ++l) {
      for (int t = 0; t < 64; ++t) {
        next[l][t] = kNone;
        if (l > lead || t > trail) continue;  // x does not fit (l, t)
        const int width = 64 - l - t;
        const int64_t keep = cost[l][t] < kNone ? cost[l][t] + 2 + width : kNone;
        next[l][t] = std::min(keep, cheapest + 13 + width);
      }
    }
    bare = kNone;
    cost.swap(next);
  }
  int64_t best = bare;
  for (const auto& row : cost)
    for (int64_t c : row) best = std::min(best, c);
  return best;
}

// Prometheus' choice, counted the same way.
int64_t AppenderValueBits(const std::vector<Sample>& s) {
  int64_t bits = 0;
  int leading = 0xff, trailing = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const uint64_t x = Bits(s[i].v) ^ Bits(s[i - 1].v);
    if (x == 0) {
      ++bits;
      continue;
    }
    const int lead = std::min(std::countl_zero(x), 31);
    const int trail = std::countr_zero(x);
    if (leading != 0xff && lead >= leading && trail >= trailing) {
      bits += 2 + 64 - leading - trailing;
    } else {
      leading = lead;
      trailing = trail;
      bits += 13 + 64 - lead - trail;
    }
  }
  return bits;
}

TEST(XorChunkPack, FewestBytesOnRandomSequences) {
  SequenceGenerator g(20261203);
  int64_t appender_bytes = 0, packed_bytes = 0;
  for (int iter = 0; iter < 600; ++iter) {
    std::vector<Sample> want = g.Next();
    if (want.size() > 48) want.resize(48);
    const std::string chunk = Encode(want);
    const std::string packed = Pack(want);
    // The model counts the appender's chunk right, so that it can judge the other.
    ASSERT_EQ(int64_t(chunk.size()), (ChunkBits(want, AppenderValueBits(want)) + 7) / 8)
        << "seq " << iter;
    ASSERT_EQ(int64_t(packed.size()), (ChunkBits(want, FewestValueBits(want)) + 7) / 8)
        << "seq " << iter;
    absl::Status st;
    ASSERT_EQ(Diff(want, DecodeAll(packed, &st)), "") << "seq " << iter;
    appender_bytes += int64_t(chunk.size());
    packed_bytes += int64_t(packed.size());
  }
  // The generator's shapes leave something to choose (not a figure for real data).
  EXPECT_LT(packed_bytes, appender_bytes);
}

// ---- Corrupt input ----

// Decodes `chunk` from an exactly sized heap copy so that the sanitizers see any read past
// its end. Returns the decode status; checks what must hold even on corrupt input.
absl::Status DecodeCorrupt(std::string_view chunk, size_t* decoded) {
  auto copy = std::make_unique<char[]>(std::max<size_t>(chunk.size(), 1));
  std::memcpy(copy.get(), chunk.data(), chunk.size());
  const std::string_view view(copy.get(), chunk.size());

  XorChunkIterator it(view);
  size_t n = 0;
  bool first = true;
  int64_t last = 0;
  while (it.Next()) {
    if (!first) {
      EXPECT_GT(it.At().t, last);
    }
    last = it.At().t;
    first = false;
    ++n;
  }
  EXPECT_LE(n, size_t(it.num_samples()));
  if (it.status().ok()) {
    EXPECT_EQ(n, size_t(it.num_samples()));
  }

  std::vector<Sample> range;
  XorChunkIterator it2(view);
  absl::Status range_status = it2.AppendRange(std::numeric_limits<int64_t>::min(),
                                              std::numeric_limits<int64_t>::max(), &range);
  EXPECT_EQ(range_status.ok(), it.status().ok());
  EXPECT_EQ(range.size(), n);

  XorChunkIterator it3(view);
  it3.Seek(last);
  (void)XorChunkAppender::FromBytes(view);
  *decoded = n;
  return it.status();
}

TEST(XorChunkCorruption, TruncationsFail) {
  SequenceGenerator g(7);
  for (int iter = 0; iter < 1000; ++iter) {
    const std::string chunk = Encode(g.Next());
    // The edges, then random cut points.
    std::vector<size_t> cuts = {0, 1, 2, chunk.size() - 1};
    for (int k = 0; k < 8; ++k) cuts.push_back(g.Uniform(chunk.size()));
    for (size_t len : cuts) {
      size_t n;
      absl::Status st = DecodeCorrupt(std::string_view(chunk).substr(0, len), &n);
      ASSERT_FALSE(st.ok()) << "seq " << iter << " cut at " << len << " of " << chunk.size();
      EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
      EXPECT_FALSE(XorChunkAppender::FromBytes(chunk.substr(0, len)).ok());
    }
  }
}

// AppendRange decodes ahead of maxt in batches; damage after the first sample past maxt
// is outside the range and must not turn a good answer into an error.
TEST(XorChunkCorruption, AppendRangeIgnoresDamageAfterMaxt) {
  SequenceGenerator g(17);
  for (int iter = 0; iter < 300; ++iter) {
    const std::string chunk = Encode(g.Next());
    const std::string cut = chunk.substr(0, g.Uniform(chunk.size()));
    absl::Status status;
    const std::vector<Sample> good = DecodeAll(cut, &status);
    // Every maxt whose next sample still decodes: the answer is the samples up to maxt.
    for (size_t k = 0; k + 1 < good.size(); ++k) {
      std::vector<Sample> out;
      XorChunkIterator it(cut);
      ASSERT_TRUE(it.AppendRange(std::numeric_limits<int64_t>::min(), good[k].t, &out).ok())
          << "seq " << iter << " maxt at sample " << k << " of " << good.size();
      ASSERT_EQ(Diff(std::vector<Sample>(good.begin(), good.begin() + k + 1), out), "");
      // As after Next() past the range: the current sample is the first after maxt.
      EXPECT_EQ(it.At().t, good[k + 1].t);
    }
  }
}

TEST(XorChunkCorruption, BitFlipsAndGarbageNeverCrash) {
  SequenceGenerator g(8);
  std::mt19937_64 rng(9);
  int errors = 0, cases = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string chunk = Encode(g.Next());
    const int flips = 1 + int(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t bit = rng() % (chunk.size() * 8);
      chunk[bit / 8] ^= char(1 << (bit % 8));
    }
    if (rng() % 4 == 0) chunk.resize(rng() % (chunk.size() + 1));
    if (rng() % 8 == 0) chunk += std::string(1 + rng() % 8, char(rng()));
    size_t n;
    errors += !DecodeCorrupt(chunk, &n).ok();
    ++cases;
  }
  for (int iter = 0; iter < 3000; ++iter) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = char(rng());
    size_t n;
    errors += !DecodeCorrupt(junk, &n).ok();
    ++cases;
  }
  // Most damaged chunks are caught (a flipped bit in a value's payload cannot be).
  EXPECT_GT(errors, cases / 4);
}

TEST(XorChunkCorruption, ImpossibleWindowIsAnError) {
  // Two samples; the second value claims 31 leading zeros and 40 significant bits.
  std::string chunk("\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 12);
  // '11' 11111 101000 then 40 bits.
  chunk += std::string("\xff\x40\x00\x00\x00\x00\x00\x00", 8);
  absl::Status st;
  DecodeAll(chunk, &st);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(st.message()), HasSubstr("exceed 64"));
}

TEST(XorChunkIteratorTest, DefaultConstructedIsEmptyAndOk) {
  XorChunkIterator it;
  EXPECT_FALSE(it.Next());
  EXPECT_FALSE(it.Seek(0));
  EXPECT_TRUE(it.status().ok());
  const std::string chunk = HandChunk();  // the iterator keeps a view
  it.Reset(chunk);
  std::vector<Sample> out;
  ASSERT_TRUE(it.AppendRange(16000, 70994, &out).ok());
  const std::vector<Sample> all = HandSamples();
  EXPECT_EQ(Diff({all.begin() + 1, all.begin() + 5}, out), "");
}

TEST(XorChunkCorruption, EmptyInputIsAnError) {
  absl::Status st;
  DecodeAll("", &st);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  DecodeAll(std::string_view("\x00", 1), &st);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
}

// ---- Resuming from bytes ----

TEST(XorChunkResume, ContinuesExactlyAsTheOriginalAppender) {
  SequenceGenerator g(11);
  for (int iter = 0; iter < 3000; ++iter) {
    const std::vector<Sample> all = g.Next();
    const std::string whole = Encode(all);
    const size_t split = g.Uniform(all.size() + 1);
    XorChunkAppender first;
    for (size_t i = 0; i < split; ++i) ASSERT_TRUE(first.Append(all[i].t, all[i].v).ok());
    std::string saved(first.bytes());
    if (g.Uniform(4) == 0) saved.push_back('\0');  // padding byte older Prometheus left
    absl::StatusOr<XorChunkAppender> resumed = XorChunkAppender::FromBytes(saved);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    ASSERT_EQ(resumed->num_samples(), int(split));
    for (size_t i = split; i < all.size(); ++i) {
      ASSERT_TRUE(resumed->Append(all[i].t, all[i].v).ok());
    }
    ASSERT_EQ(resumed->bytes(), whole) << "seq " << iter << " split " << split;
  }
}

TEST(XorChunkResume, ResumedAppenderRejectsOutOfOrder) {
  absl::StatusOr<XorChunkAppender> a = XorChunkAppender::FromBytes(HandChunk());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->num_samples(), 8);
  EXPECT_EQ(a->last_timestamp(), 2445985);
  EXPECT_EQ(Bits(a->last_value()), 0xfff0000000000003u);
  EXPECT_EQ(a->Append(2445985, 1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(a->Append(2445986, 1).ok());
  std::vector<Sample> want = HandSamples();
  want.push_back({2445986, 1});
  EXPECT_EQ(a->bytes(), Encode(want));
}

TEST(XorChunkResume, RejectsNonzeroBitsAfterLastSample) {
  std::string chunk = HandChunk();
  chunk.back() |= 0x01;  // a padding bit
  EXPECT_EQ(XorChunkAppender::FromBytes(chunk).status().code(), absl::StatusCode::kDataLoss);
  chunk = HandChunk() + "\x01";
  EXPECT_EQ(XorChunkAppender::FromBytes(chunk).status().code(), absl::StatusCode::kDataLoss);
  // The iterator ignores what follows the last sample.
  absl::Status st;
  EXPECT_EQ(Diff(HandSamples(), DecodeAll(chunk, &st)), "");
  EXPECT_TRUE(st.ok());
}

TEST(XorChunkResume, FromEmptyChunk) {
  absl::StatusOr<XorChunkAppender> a = XorChunkAppender::FromBytes(std::string("\0\0", 2));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->num_samples(), 0);
  ASSERT_TRUE(a->Append(5, 5).ok());
  EXPECT_EQ(a->bytes(), Encode({{5, 5}}));
}

}  // namespace
}  // namespace strata
