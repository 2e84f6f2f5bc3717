#include "storage/compacted_block.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "src/status.h"
#include "src/strings.h"
#include "storage/coding.h"
#include "zstd.h"

namespace strata {
namespace {

// Exact powers of ten as doubles: 10^22 is the largest one a double holds exactly.
constexpr int kMaxExponent = 22;
constexpr double kPow10[kMaxExponent + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
// Mantissas up to 2^53 in magnitude convert to double exactly.
constexpr int64_t kMaxMantissa = int64_t{1} << 53;

// m * 10^e with one correctly rounded operation on exact operands, so the result is the
// double nearest to the decimal m * 10^e. REQUIRES: |m| <= 2^53, |e| <= 22.
inline double Decimal(int64_t m, int e) {
  return e >= 0 ? static_cast<double>(m) * kPow10[e] : static_cast<double>(m) / kPow10[-e];
}

// Value tokens (uvarint c):
//   c & 1 == 0   mantissa += unzigzag(c >> 1), value = Decimal(mantissa, exponent)
//   c & 3 == 1   exponent = unzigzag(c >> 2); then varint mantissa (absolute)
//   c & 3 == 3   raw: lz = (c >> 2) & 7 leading zero bytes, n = c >> 5 payload bytes (big
//                endian) of x = bits XOR previous bits, shifted left by 8 * (8 - lz - n)
//                (lz + n <= 8); or, from format 4, with lz = 7 and n = 8 + w (1 <= w <= 8),
//                a run: uvarint r, then r values of w bytes each (little endian): the
//                zigzagged difference of each value's bits from the previous value's;
//                or, from format 5, with lz = 6 and n = 3 + b (0 <= b <= 56), a mantissa
//                run: uvarint r, varint d, then r values of b bits each (packed from the
//                lowest bit of the first byte on): mantissa += d + x, value as for a delta.
// In a column with a base, the mantissa state is the difference from BaseMantissa of the
// base's value at the same index: value = Decimal(BaseMantissa + state, exponent).
constexpr int kRaiseRun = 32;  // values whose mantissa ends in 0 before the exponent rises

// The token of a run of w-byte deltas (1 <= w <= 8).
constexpr uint64_t RunToken(int w) { return static_cast<uint64_t>(3 | 7 << 2 | (8 + w) << 5); }

// The token of a mantissa run of b-bit values (0 <= b <= kMaxRunBits).
constexpr uint64_t MantissaRunToken(int b) {
  return static_cast<uint64_t>(3 | 6 << 2 | (3 + b) << 5);
}
// A value of a mantissa run fits one unaligned 8-byte load at any bit offset.
constexpr int kMaxRunBits = 56;
// From format 5 on, a value segment's length is coded as its excess over this (its first
// token's least), not over one byte per value: a mantissa run may take less.
constexpr uint64_t kLeastSegmentBytes = 1;

// Bytes of the uvarint v.
inline size_t UvarintSize(uint64_t v) { return static_cast<size_t>(std::bit_width(v | 1) + 6) / 7; }

// A segment's last values, coded as delta tokens from byte `offset` of *out to its end
// with the mantissa differences `deltas`: if one mantissa run codes them in fewer bytes,
// it replaces their tokens. It leaves the decoder in the state the tokens would, so every
// value reads back as the tokens did (the writer checked each of those).
void MaybeMantissaRun(std::span<const int64_t> deltas, size_t offset, std::string* out) {
  if (deltas.empty()) return;
  const auto [lo, hi] = std::minmax_element(deltas.begin(), deltas.end());
  const int b = std::bit_width(static_cast<uint64_t>(*hi) - static_cast<uint64_t>(*lo));
  const size_t r = deltas.size();
  if (b > kMaxRunBits || UvarintSize(MantissaRunToken(b)) + UvarintSize(r) +
                                 UvarintSize(coding::Zigzag(*lo)) + (r * b + 7) / 8 >=
                             out->size() - offset) {
    return;
  }
  out->resize(offset);
  coding::PutUvarint(out, MantissaRunToken(b));
  coding::PutUvarint(out, r);
  coding::PutVarint(out, *lo);
  uint64_t pending = 0;  // bits not yet written, from the lowest
  int bits = 0;
  for (int64_t d : deltas) {
    pending |= (static_cast<uint64_t>(d) - static_cast<uint64_t>(*lo)) << bits;
    for (bits += b; bits >= 8; bits -= 8, pending >>= 8) out->push_back(static_cast<char>(pending));
  }
  if (bits > 0) out->push_back(static_cast<char>(pending));
}

// Values [a, b) of a segment whose first value a is coded in (*out)[first_end - first
// token's length, first_end) and the others as tokens in [first_end, out->size()): if one
// run of fixed-width deltas codes the others in fewer bytes, it replaces their tokens. The
// decimal and raw state after a run is not needed: a run ends its segment.
void MaybeRun(const std::vector<Sample>& samples, size_t a, size_t b, size_t first_end,
              std::string* out) {
  if (b - a < 2) return;
  uint64_t widest = 1;  // zigzagged deltas OR-ed: a run has at least one byte per value
  for (size_t k = a + 1; k < b; ++k) {
    widest |= coding::Zigzag(static_cast<int64_t>(std::bit_cast<uint64_t>(samples[k].v) -
                                                  std::bit_cast<uint64_t>(samples[k - 1].v)));
  }
  const int w = (std::bit_width(widest) + 7) / 8;
  const size_t r = b - a - 1;
  if (UvarintSize(RunToken(w)) + UvarintSize(r) + r * static_cast<size_t>(w) >=
      out->size() - first_end) {
    return;
  }
  out->resize(first_end);
  coding::PutUvarint(out, RunToken(w));
  coding::PutUvarint(out, r);
  for (size_t k = a + 1; k < b; ++k) {
    const uint64_t z = coding::Zigzag(static_cast<int64_t>(
        std::bit_cast<uint64_t>(samples[k].v) - std::bit_cast<uint64_t>(samples[k - 1].v)));
    for (int j = 0; j < w; ++j) out->push_back(static_cast<char>(z >> (8 * j)));
  }
}

// 10^-e for e in [-22, 22] (index e + 22): exact for e <= 0, otherwise the double nearest
// to it.
constexpr double kMantissaScale[2 * kMaxExponent + 1] = {
    1e22,  1e21,  1e20,  1e19,  1e18,  1e17,  1e16,  1e15,  1e14,  1e13,  1e12,  1e11,
    1e10,  1e9,   1e8,   1e7,   1e6,   1e5,   1e4,   1e3,   1e2,   1e1,   1e0,   1e-1,
    1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,  1e-8,  1e-9,  1e-10, 1e-11, 1e-12, 1e-13,
    1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22};

// The base's value as a mantissa in exponent e, roughly: any deterministic function of the
// base's bits and e would do (the writer checks every value by computing it as the reader
// will), and this one is the base's own mantissa when the base is a decimal in exponent e,
// so that a bucket's mantissa minus its base's is the count between the two bounds. False
// when the value is not finite or too large for a mantissa. REQUIRES: |e| <= 22.
//
// Writers and readers built apart must agree bit for bit, so the product is only compared
// and converted, never added to: a compiler may not fuse it into a multiply-add (one
// rounding instead of two), which it may do with `scaled + 0.5` on an FMA target.
inline bool BaseMantissa(double base, int e, int64_t* m) {
  const double scaled = base * kMantissaScale[e + kMaxExponent];
  const double magnitude = std::fabs(scaled);
  if (!(magnitude <= static_cast<double>(kMaxMantissa))) return false;  // NaN too
  const int64_t t = static_cast<int64_t>(scaled);                       // toward zero
  // The nearest integer, halves away from zero; t +- 0.5 is exact below 2^52, and from
  // there on every double is an integer.
  if (magnitude >= 0x1p52) {
    *m = t;
  } else if (scaled >= 0) {
    *m = t + (scaled >= static_cast<double>(t) + 0.5);
  } else {
    *m = t - (scaled <= static_cast<double>(t) - 0.5);
  }
  return true;
}

class ValueEncoder {
 public:
  // `base`: the base series' values, one per value added, or null.
  ValueEncoder(std::string* out, const std::vector<Sample>* base)
      : out_(out), base_(base), tail_offset_(out->size()) {}

  void Add(double v) {
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    const size_t deltas = tail_deltas_.size();
    if (!TryDecimal(v, bits)) Raw(bits);
    if (tail_deltas_.size() == deltas) {
      tail_deltas_.clear();
      tail_offset_ = out_->size();
    }
    prev_bits_ = bits;
    ++index_;
  }

  // The next value starts a segment: coded as the first of a column is.
  void Restart() {
    prev_bits_ = 0;
    has_exp_ = false;
    exp_ = 0;
    mantissa_ = 0;
    raise_run_ = 0;
    tail_deltas_.clear();
    tail_offset_ = out_->size();
  }

  // The segment's last values that were coded as delta tokens: their mantissa differences
  // and the offset in *out of the first one's token.
  std::span<const int64_t> tail_deltas() const { return tail_deltas_; }
  size_t tail_offset() const { return tail_offset_; }

 private:
  // The mantissa offset of the current value in exponent e: 0 without a base.
  bool Offset(int e, int64_t* off) const {
    if (base_ == nullptr) {
      *off = 0;
      return true;
    }
    return BaseMantissa((*base_)[index_].v, e, off);
  }

  bool TryDecimal(double v, uint64_t bits) {
    if (!std::isfinite(v) || bits == (uint64_t{1} << 63)) return false;  // NaN, Inf, -0.0
    if (has_exp_) {
      // Fast path: the value in the current exponent.
      double scaled = exp_ >= 0 ? v / kPow10[exp_] : v * kPow10[-exp_];
      if (std::fabs(scaled) <= static_cast<double>(kMaxMantissa)) {
        int64_t m = std::llround(scaled);
        if (std::bit_cast<uint64_t>(Decimal(m, exp_)) == bits) {
          if (m % 10 == 0 && m != 0 && exp_ < kMaxExponent) {
            if (++raise_run_ >= kRaiseRun) {
              raise_run_ = 0;
              if (std::bit_cast<uint64_t>(Decimal(m / 10, exp_ + 1)) == bits &&
                  SetExponent(exp_ + 1, m / 10)) {
                return true;
              }
            }
          } else {
            raise_run_ = 0;
          }
          if (Delta(m)) return true;
        }
      }
    }
    // The shortest decimal that reads back as v.
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
    if (res.ec != std::errc()) return false;
    const char* p = buf;
    bool neg = *p == '-';
    if (neg) ++p;
    int64_t m = 0;
    int digits = 0;
    for (; p < res.ptr && *p != 'e'; ++p) {
      if (*p == '.') continue;
      m = m * 10 + (*p - '0');
      ++digits;
    }
    if (p >= res.ptr) return false;
    int e10 = 0;
    std::from_chars(p + 1 + (p[1] == '+'), res.ptr, e10);
    int e = e10 - (digits - 1);
    while (m != 0 && m % 10 == 0) {
      m /= 10;
      ++e;
    }
    if (m == 0) e = 0;
    if (neg) m = -m;
    if (m > kMaxMantissa || m < -kMaxMantissa) return false;
    // Keep the current exponent when the value fits it (mantissas stay comparable).
    if (has_exp_ && e > exp_ && e - exp_ <= kMaxExponent) {
      int64_t scale = static_cast<int64_t>(kPow10[e - exp_]);
      if (m <= kMaxMantissa / scale && m >= -kMaxMantissa / scale &&
          std::bit_cast<uint64_t>(Decimal(m * scale, exp_)) == bits && Delta(m * scale)) {
        return true;
      }
    }
    if (e < -kMaxExponent || e > kMaxExponent) return false;
    if (std::bit_cast<uint64_t>(Decimal(m, e)) != bits) return false;
    return SetExponent(e, m);
  }

  // False (nothing written) when the base gives no mantissa in the current exponent.
  bool Delta(int64_t m) {
    int64_t off;
    if (!Offset(exp_, &off)) return false;
    coding::PutUvarint(out_, coding::Zigzag(m - off - mantissa_) << 1);
    tail_deltas_.push_back(m - off - mantissa_);
    mantissa_ = m - off;
    return true;
  }

  bool SetExponent(int e, int64_t m) {
    int64_t off;
    if (!Offset(e, &off)) return false;
    coding::PutUvarint(out_, coding::Zigzag(e) << 2 | 1);
    coding::PutVarint(out_, m - off);
    has_exp_ = true;
    exp_ = e;
    mantissa_ = m - off;
    raise_run_ = 0;
    return true;
  }

  void Raw(uint64_t bits) {
    uint64_t x = bits ^ prev_bits_;
    int lz = 0, n = 0;
    if (x != 0) {
      lz = std::countl_zero(x) / 8;
      int tz = std::countr_zero(x) / 8;
      n = 8 - lz - tz;
      x >>= 8 * tz;
    }
    coding::PutUvarint(out_, static_cast<uint64_t>(3 | lz << 2 | n << 5));
    for (int i = n - 1; i >= 0; --i) out_->push_back(static_cast<char>(x >> (8 * i)));
  }

  std::string* out_;
  const std::vector<Sample>* base_;
  size_t index_ = 0;
  uint64_t prev_bits_ = 0;
  bool has_exp_ = false;
  int exp_ = 0;
  int64_t mantissa_ = 0;
  int raise_run_ = 0;
  std::vector<int64_t> tail_deltas_;
  size_t tail_offset_;
};

// Appends the timestamp column of `s` with a segment starting every `interval` samples to
// `out`, and the header fields of the segments after the first to `restarts`: each one's
// first timestamp minus the previous one's, and the previous one's byte length minus
// interval - 1 (its fewest). A segment's first timestamp is not in the column: the column
// holds the segment's first difference, then its deltas of deltas.
void EncodeTimestamps(const std::vector<Sample>& s, uint64_t interval, std::string* out,
                      std::string* restarts) {
  uint64_t prev_delta = 0;
  size_t segment = 0, segment_bytes = out->size();
  for (size_t i = 1; i < s.size(); ++i) {
    uint64_t delta = static_cast<uint64_t>(s[i].t) - static_cast<uint64_t>(s[i - 1].t);
    if (i % interval == 0) {
      coding::PutUvarint(restarts,
                         static_cast<uint64_t>(s[i].t) - static_cast<uint64_t>(s[segment].t));
      coding::PutUvarint(restarts, out->size() - segment_bytes - (interval - 1));
      segment = i;
      segment_bytes = out->size();
      continue;
    }
    if (i == segment + 1) {
      coding::PutVarint(out, static_cast<int64_t>(delta));
    } else {
      coding::PutVarint(out, static_cast<int64_t>(delta - prev_delta));
    }
    prev_delta = delta;
  }
}

// Samples per segment for a restart interval (0: none, one segment per column).
uint64_t SegmentSamples(uint64_t restart_interval) {
  return restart_interval == 0 ? uint64_t{1} << 32 : restart_interval;
}

// Bounds-checked LEB128 reading over raw pointers (the decoder's hot path).
inline bool ReadUvarint(const uint8_t*& p, const uint8_t* end, uint64_t* v) {
  if (p < end && *p < 0x80) [[likely]] {
    *v = *p++;
    return true;
  }
  if (end - p >= 2 && p[1] < 0x80) {
    *v = (p[0] & 0x7fu) | uint64_t{p[1]} << 7;
    p += 2;
    return true;
  }
  uint64_t r = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (p >= end) return false;
    uint64_t b = *p++;
    r |= (b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

absl::Status Malformed(std::string_view what) {
  return absl::DataLossError(fmt::format("malformed compacted block: {}", what));
}

// The index of every series' base after cutting chains deeper than max_depth (kUnbased:
// none). InvalidArgument on a base that is not another series with the same timestamp
// column, or on a cycle.
constexpr uint32_t kUnbased = UINT32_MAX;

absl::StatusOr<std::vector<uint32_t>> ResolveBases(std::span<const CompactedSeries> series,
                                                   std::span<const uint32_t> ts_column,
                                                   int max_depth) {
  const size_t n = series.size();
  std::vector<uint32_t> base(n, kUnbased);
  for (size_t i = 0; i < n; ++i) {
    if (!series[i].base) continue;
    auto it = std::lower_bound(series.begin(), series.end(), *series[i].base,
                               [](const CompactedSeries& s, SeriesRef r) { return s.ref < r; });
    if (it == series.end() || it->ref != *series[i].base || it == series.begin() + i) {
      return absl::InvalidArgumentError(
          fmt::format("compacted block: series {} has base {}, not another series of the block",
                      series[i].ref, *series[i].base));
    }
    const size_t b = static_cast<size_t>(it - series.begin());
    if (ts_column[b] != ts_column[i]) {
      return absl::InvalidArgumentError(
          fmt::format("compacted block: series {} and its base {} have different timestamps",
                      series[i].ref, series[b].ref));
    }
    if (max_depth > 0) base[i] = static_cast<uint32_t>(b);
  }
  // Depths along each chain from its root; a link that would be too deep is cut.
  constexpr int kUnknown = -1, kOnPath = -2;
  std::vector<int> depth(n, kUnknown);
  std::vector<uint32_t> path;
  for (size_t i = 0; i < n; ++i) {
    path.clear();
    uint32_t j = static_cast<uint32_t>(i);
    while (j != kUnbased && depth[j] == kUnknown) {
      depth[j] = kOnPath;
      path.push_back(j);
      j = base[j];
    }
    if (j != kUnbased && depth[j] == kOnPath) {
      return absl::InvalidArgumentError(
          fmt::format("compacted block: the bases of series {} form a cycle", series[j].ref));
    }
    for (auto k = path.rbegin(); k != path.rend(); ++k) {
      const uint32_t b = base[*k];
      if (b == kUnbased || depth[b] >= max_depth) {
        base[*k] = kUnbased;
        depth[*k] = 0;
      } else {
        depth[*k] = depth[b] + 1;
      }
    }
  }
  return base;
}

}  // namespace

absl::StatusOr<std::string> EncodeCompactedBlock(std::span<const CompactedSeries> series,
                                                 CompactedEncodeOptions options) {
  std::string ts_bytes, value_bytes, header;
  const uint64_t interval = SegmentSamples(options.restart_interval);
  struct TsInfo {
    uint32_t count;
    Timestamp first, last;
    size_t size;
    std::string restarts;  // the header fields of its segments after the first
  };
  std::vector<TsInfo> ts;
  std::unordered_map<std::string, uint32_t> ts_index;
  std::vector<uint32_t> ts_column;
  std::vector<size_t> value_size;
  // Per series: its segments' byte lengths but the last, minus their sample count.
  std::vector<std::string> value_restarts;
  std::string column, restarts;
  for (size_t i = 0; i < series.size(); ++i) {
    const CompactedSeries& s = series[i];
    if (i > 0 && s.ref <= series[i - 1].ref) {
      return absl::InvalidArgumentError("compacted block: series not sorted by ref");
    }
    if (s.samples.empty() || s.samples.size() > UINT32_MAX) {
      return absl::InvalidArgumentError(
          fmt::format("compacted block: series {} has {} samples", s.ref, s.samples.size()));
    }
    for (size_t j = 1; j < s.samples.size(); ++j) {
      if (s.samples[j].t <= s.samples[j - 1].t) {
        return absl::InvalidArgumentError(
            fmt::format("compacted block: series {} has timestamps out of order", s.ref));
      }
    }
    // Equal keys (first timestamp, count, restarts, column) are equal timestamps.
    column.clear();
    restarts.clear();
    EncodeTimestamps(s.samples, interval, &column, &restarts);
    std::string key;
    coding::PutVarint(&key, s.samples.front().t);
    coding::PutUvarint(&key, s.samples.size());
    key.append(restarts);
    key.append(column);
    auto [it, inserted] = ts_index.try_emplace(std::move(key), static_cast<uint32_t>(ts.size()));
    if (inserted) {
      ts.push_back({static_cast<uint32_t>(s.samples.size()), s.samples.front().t,
                    s.samples.back().t, column.size(), restarts});
      ts_bytes.append(column);
    }
    ts_column.push_back(it->second);
  }
  STRATA_ASSIGN_OR_RETURN(
      std::vector<uint32_t> base,
      ResolveBases(series, ts_column,
                   std::clamp(options.max_base_depth, 0, kCompactedMaxBaseDepth)));
  for (size_t i = 0; i < series.size(); ++i) {
    const size_t before = value_bytes.size();
    size_t segment_bytes = before;
    std::string& lengths = value_restarts.emplace_back();
    ValueEncoder enc(&value_bytes, base[i] == kUnbased ? nullptr : &series[base[i]].samples);
    const std::vector<Sample>& samples = series[i].samples;
    for (size_t a = 0; a < samples.size(); a += interval) {
      if (a > 0) {
        coding::PutUvarint(&lengths, value_bytes.size() - segment_bytes - kLeastSegmentBytes);
        segment_bytes = value_bytes.size();
        enc.Restart();
      }
      const size_t b = std::min<size_t>(samples.size(), a + interval);
      enc.Add(samples[a].v);
      const size_t first_end = value_bytes.size();
      for (size_t k = a + 1; k < b; ++k) enc.Add(samples[k].v);
      MaybeMantissaRun(enc.tail_deltas(), enc.tail_offset(), &value_bytes);
      MaybeRun(samples, a, b, first_end, &value_bytes);
    }
    value_size.push_back(value_bytes.size() - before);
  }
  coding::PutUvarint(&header, series.size());
  coding::PutUvarint(&header, ts.size());
  coding::PutUvarint(&header, options.restart_interval);
  for (const TsInfo& c : ts) {
    coding::PutUvarint(&header, c.count);
    coding::PutUvarint(&header, c.size);
    coding::PutVarint(&header, c.first);
    coding::PutUvarint(&header, static_cast<uint64_t>(c.last) - static_cast<uint64_t>(c.first));
    header.append(c.restarts);
  }
  SeriesRef prev = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    coding::PutUvarint(&header, series[i].ref - prev);
    prev = series[i].ref;
    coding::PutUvarint(&header, ts_column[i]);
    coding::PutUvarint(
        &header, base[i] == kUnbased
                     ? 0
                     : coding::Zigzag(static_cast<int64_t>(i) - static_cast<int64_t>(base[i])));
    coding::PutUvarint(&header, value_size[i]);
    header.append(value_restarts[i]);
  }
  std::string raw = std::move(header);
  raw.append(ts_bytes);
  raw.append(value_bytes);
  if (raw.size() > kCompactedBlockMaxRawBytes) {
    return absl::InvalidArgumentError(
        fmt::format("compacted block of {} bytes is too large", raw.size()));
  }
  std::string out;
  out.push_back(static_cast<char>(kCompactedBlockFormat));
  coding::PutUvarint(&out, raw.size());
  size_t head = out.size();
  out.resize(head + ZSTD_compressBound(raw.size()));
  size_t n = ZSTD_compress(out.data() + head, out.size() - head, raw.data(), raw.size(),
                           options.zstd_level);
  if (ZSTD_isError(n)) {
    return absl::InternalError(fmt::format("zstd: {}", ZSTD_getErrorName(n)));
  }
  out.resize(head + n);
  return out;
}

absl::StatusOr<CompactedBlock> CompactedBlock::Open(std::string_view value) {
  const int format = value.empty() ? -1 : static_cast<uint8_t>(value[0]);
  if (format < 1 || format > kCompactedBlockFormat) {
    return absl::DataLossError(
        fmt::format("compacted block has format {}, this build reads 1 to {}", format,
                    static_cast<int>(kCompactedBlockFormat)));
  }
  value.remove_prefix(1);
  uint64_t raw_len;
  if (!coding::GetUvarint(&value, &raw_len) || raw_len > kCompactedBlockMaxRawBytes) {
    return Malformed("length");
  }
  // The frame header repeats the length: garbage is refused before allocating.
  if (ZSTD_getFrameContentSize(value.data(), value.size()) != raw_len) {
    return Malformed("zstd frame header");
  }
  CompactedBlock b;
  b.raw_.resize(raw_len);
  size_t n = ZSTD_decompress(b.raw_.data(), b.raw_.size(), value.data(), value.size());
  if (ZSTD_isError(n) || n != raw_len) return Malformed("zstd frame");

  const uint8_t* p = reinterpret_cast<const uint8_t*>(b.raw_.data());
  const uint8_t* const begin = p;
  const uint8_t* const end = p + b.raw_.size();
  uint64_t num_series, num_ts, restart_interval = 0;
  if (!ReadUvarint(p, end, &num_series) || !ReadUvarint(p, end, &num_ts) ||
      (format >= 3 && !ReadUvarint(p, end, &restart_interval)) || num_ts > num_series ||
      num_series > raw_len || restart_interval > UINT32_MAX) {
    return Malformed("counts");
  }
  const uint64_t interval = SegmentSamples(restart_interval);
  b.interval_ = interval;
  b.format_ = format;
  // Reads the byte length of one segment of a column of `size` bytes whose earlier segments
  // take `used`, coded as its excess over `least` (the fewest bytes its samples take).
  auto segment_length = [&](uint64_t least, uint64_t size, uint64_t* used) {
    uint64_t excess;
    if (!ReadUvarint(p, end, &excess) || least > size - *used || excess > size - *used - least) {
      return false;
    }
    *used += least + excess;
    b.bounds_.push_back(static_cast<uint32_t>(*used));
    return true;
  };
  b.ts_.reserve(num_ts);
  b.series_.reserve(num_series);
  uint64_t total = 0;
  for (uint64_t i = 0; i < num_ts; ++i) {
    uint64_t count, size, first, span;
    if (!ReadUvarint(p, end, &count) || !ReadUvarint(p, end, &size) ||
        !ReadUvarint(p, end, &first) || !ReadUvarint(p, end, &span)) {
      return Malformed("timestamp column header");
    }
    if (count == 0 || count > UINT32_MAX || size > raw_len) {
      return Malformed("timestamp column size");
    }
    const uint64_t segments = (count + interval - 1) / interval;
    // Each segment after the first takes at least two bytes of the header.
    if (segments - 1 > static_cast<uint64_t>(end - p) / 2) return Malformed("restarts");
    const Timestamp t0 = coding::Unzigzag(first);
    const Timestamp last = static_cast<Timestamp>(static_cast<uint64_t>(t0) + span);
    b.ts_.push_back({static_cast<uint32_t>(count), t0, last, total, size,
                     static_cast<uint32_t>(segments), b.bounds_.size(), b.restart_t_.size()});
    b.restart_t_.push_back(t0);
    // A segment's first timestamp is in the header: its column bytes hold one varint for
    // each of its other timestamps.
    uint64_t used = 0;
    b.bounds_.push_back(0);
    for (uint64_t s = 1; s < segments; ++s) {
      uint64_t dt;
      if (!ReadUvarint(p, end, &dt)) return Malformed("restarts");
      const Timestamp prev = b.restart_t_.back();
      const Timestamp t = static_cast<Timestamp>(static_cast<uint64_t>(prev) + dt);
      // Segments start in increasing order, within the column's span.
      if (t <= prev || t > last || !segment_length(interval - 1, size, &used)) {
        return Malformed("timestamp column restart");
      }
      b.restart_t_.push_back(t);
    }
    b.bounds_.push_back(static_cast<uint32_t>(size));
    // Every timestamp but a segment's first takes at least one byte (so count is bounded
    // by the payload).
    if (size - used < count - (segments - 1) * interval - 1) {
      return Malformed("timestamp column size");
    }
    total += size;
  }
  SeriesRef ref = 0;
  for (uint64_t i = 0; i < num_series; ++i) {
    uint64_t delta, ts, base = 0, size;
    if (!ReadUvarint(p, end, &delta) || !ReadUvarint(p, end, &ts) ||
        (format >= 2 && !ReadUvarint(p, end, &base)) || !ReadUvarint(p, end, &size)) {
      return Malformed("series header");
    }
    if ((i > 0 && delta == 0) || delta > UINT64_MAX - ref || ts >= num_ts || size > raw_len ||
        (format >= 5 ? b.ts_[ts].segments : b.ts_[ts].count) > size) {
      return Malformed("series entry");
    }
    uint32_t base_index = kNoBase;
    if (base != 0) {
      // i - base_index, zigzagged; the base must be another series of this block.
      const uint64_t back = static_cast<uint64_t>(coding::Unzigzag(base));
      const uint64_t index = i - back;
      if (index >= num_series) return Malformed("base of a series outside the block");
      base_index = static_cast<uint32_t>(index);
    }
    ref += delta;
    // Every value takes at least one byte; from format 5 on (where a mantissa run may code
    // many in one), every segment does.
    const TsColumn& c = b.ts_[ts];
    if (c.segments - 1 > static_cast<uint64_t>(end - p)) return Malformed("restarts");
    const size_t at = b.bounds_.size();
    uint64_t used = 0;
    b.bounds_.push_back(0);
    for (uint64_t s = 1; s < c.segments; ++s) {
      if (!segment_length(format >= 5 ? kLeastSegmentBytes : interval, size, &used)) {
        return Malformed("value column restart");
      }
    }
    b.bounds_.push_back(static_cast<uint32_t>(size));
    const uint64_t last_least =
        format >= 5 ? kLeastSegmentBytes : c.count - (c.segments - 1) * interval;
    if (size - used < last_least) return Malformed("value column size");
    b.series_.push_back({ref, static_cast<uint32_t>(ts), base_index, false, total, size, at});
    total += size;
  }
  for (Entry& e : b.series_) {
    if (e.base != kNoBase) b.series_[e.base].is_base = true;
  }
  for (size_t i = 0; i < b.series_.size(); ++i) {
    // Every chain of bases ends within kCompactedMaxBaseDepth steps (so no cycles), and a
    // base shares its dependent's timestamp column.
    size_t j = i;
    for (int depth = 0; b.series_[j].base != kNoBase; ++depth) {
      const size_t next = b.series_[j].base;
      if (depth == kCompactedMaxBaseDepth) return Malformed("chain of bases too long or cyclic");
      if (b.series_[next].ts != b.series_[j].ts) {
        return Malformed("a series and its base have different timestamp columns");
      }
      j = next;
    }
  }
  size_t header = static_cast<size_t>(p - begin);
  if (total != raw_len - header) return Malformed("column sizes");
  size_t bases = 0, longest = 0;
  for (TsColumn& c : b.ts_) {
    c.offset += header;
    b.decoded_bytes_ += c.count * sizeof(Timestamp);
    longest = std::max<size_t>(longest, c.count);
  }
  for (Entry& e : b.series_) {
    e.offset += header;
    bases += e.is_base;
  }
  b.decoded_bytes_ += std::min(bases, kBaseColumns) * longest * sizeof(double);
  b.ts_decoded_ = std::make_unique<DecodedColumn[]>(b.ts_.size());
  return b;
}

absl::StatusOr<std::string> CompactedPayloadForTesting(std::string_view value) {
  if (value.empty()) return Malformed("empty");
  value.remove_prefix(1);
  uint64_t raw_len;
  if (!coding::GetUvarint(&value, &raw_len) || raw_len > kCompactedBlockMaxRawBytes) {
    return Malformed("length");
  }
  std::string raw(raw_len, '\0');
  size_t n = ZSTD_decompress(raw.data(), raw.size(), value.data(), value.size());
  if (ZSTD_isError(n) || n != raw_len) return Malformed("zstd frame");
  return raw;
}

std::string CompactedBlockFromPayloadForTesting(std::string_view payload) {
  std::string out;
  out.push_back(static_cast<char>(kCompactedBlockFormat));
  coding::PutUvarint(&out, payload.size());
  size_t head = out.size();
  out.resize(head + ZSTD_compressBound(payload.size()));
  size_t n = ZSTD_compress(out.data() + head, out.size() - head, payload.data(), payload.size(), 1);
  out.resize(ZSTD_isError(n) ? head : head + n);
  return out;
}

std::optional<size_t> CompactedBlock::Find(SeriesRef ref) const {
  auto it = std::lower_bound(series_.begin(), series_.end(), ref,
                             [](const Entry& e, SeriesRef r) { return e.ref < r; });
  if (it == series_.end() || it->ref != ref) return std::nullopt;
  return static_cast<size_t>(it - series_.begin());
}

namespace {

// Decodes the first n values of a value column into out[0, n).v; with kBased, the column's
// mantissas are relative to base[0, n).v. `whole`: n is the column's count, so no bytes may
// be left.
inline void Put(Sample* s, uint32_t k, double v) { s[k].v = v; }
inline void Put(double* s, uint32_t k, double v) { s[k] = v; }

// Values [k0, stop) of a mantissa run (value k0 its first) whose b-bit fields are the
// `size` bytes at `fields`: with the mantissa state *m, the run's smallest difference d,
// the exponent and 10^|exponent| (`scale`, divided by when kDivide), values k >= lo go to
// s[k - lo] and the last one's bits to *prev. False on a base value with no mantissa in
// the exponent. Apart from the token loop, so that its few variables stay in registers.
template <bool kBased, bool kDivide, typename Out>
[[gnu::noinline]] bool DecodeMantissaRun(const uint8_t* fields, uint64_t size, uint64_t b,
                                         uint64_t d, uint32_t k0, uint32_t stop, uint32_t lo,
                                         int exponent, double scale, const double* base,
                                         uint64_t* m, uint64_t* prev, Out* s) {
  const uint64_t mask = (uint64_t{1} << b) - 1;
  uint64_t mantissa = *m, at = 0;  // `at`: the bit offset of the next field
  auto next = [&] {
    const uint64_t byte = at >> 3;
    uint64_t word = 0;
    if (size - byte >= 8) [[likely]] {
      std::memcpy(&word, fields + byte, 8);  // one load, where the bytes one by one are not
      if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
    } else {
      for (uint64_t j = byte; j < size; ++j) word |= uint64_t{fields[j]} << (8 * (j - byte));
    }
    const uint64_t x = (word >> (at & 7)) & mask;
    at += b;
    mantissa += d + x;
  };
  auto value = [&](uint32_t k, double* v) {
    uint64_t full = mantissa;
    if constexpr (kBased) {
      int64_t off;
      if (!BaseMantissa(base[k], exponent, &off)) return false;
      full += static_cast<uint64_t>(off);
    }
    const double x = static_cast<double>(static_cast<int64_t>(full));
    *v = kDivide ? x / scale : x * scale;
    return true;
  };
  uint32_t k = k0;
  for (; k < stop && k < lo; ++k) next();
  double v = 0;
  if (k == stop) {
    // Nothing stored: the last value only for its bits.
    if (!value(stop - 1, &v)) return false;
  }
  for (; k < stop; ++k) {
    next();
    if (!value(k, &v)) return false;
    Put(s, k - lo, v);
  }
  *m = mantissa;
  *prev = std::bit_cast<uint64_t>(v);
  return true;
}

// Values before `lo` are decoded (the ones after depend on them) but not stored: value k
// goes to s[k - lo]. `count`: the values of the segment (n or more); `format`: the block's
// (runs from 4 on, mantissa runs from 5 on).
template <bool kBased, typename Out>
absl::Status DecodeValueColumn(const uint8_t* p, const uint8_t* end, uint32_t lo, uint32_t n,
                               uint32_t count, bool whole, int format, const double* base, Out* s) {
  uint64_t prev = 0, m = 0;
  double scale = 1;  // 10^|exponent|, an exact double
  bool divide = false;
  int exponent = 0;
  for (uint32_t k = 0; k < n; ++k) {
    uint64_t tok;
    if (!ReadUvarint(p, end, &tok)) return Malformed("value column ends early");
    if ((tok & 1) == 0) {
      // A writer keeps |m| <= 2^53 and sets the exponent first. Garbled bytes that break
      // this decode to wrong values (undetectable anyway: there is no checksum here),
      // never to undefined behaviour, so the hot path does not check.
      m += static_cast<uint64_t>(coding::Unzigzag(tok >> 1));
    } else if ((tok & 3) == 1) {
      int64_t ex = coding::Unzigzag(tok >> 2);
      uint64_t z;
      if (ex < -kMaxExponent || ex > kMaxExponent || !ReadUvarint(p, end, &z)) {
        return Malformed("exponent");
      }
      int64_t sm = coding::Unzigzag(z);
      // With a base, the state is the difference of two mantissas.
      constexpr int64_t kLimit = kBased ? 2 * kMaxMantissa : kMaxMantissa;
      if (sm > kLimit || sm < -kLimit) return Malformed("mantissa");
      divide = ex < 0;
      scale = kPow10[ex < 0 ? -ex : ex];
      exponent = static_cast<int>(ex);
      m = static_cast<uint64_t>(sm);
    } else {
      uint64_t lz = (tok >> 2) & 7, nb = tok >> 5;
      if (lz == 6 && nb > 2) {
        // A mantissa run of r values of b bits each after the smallest difference d: within
        // the segment and its bytes. Like delta tokens, its differences are not checked.
        uint64_t r, zd;
        const uint32_t k0 = k;
        const uint64_t b = nb - 3;
        if (format < 5 || b > kMaxRunBits || !ReadUvarint(p, end, &r) ||
            !ReadUvarint(p, end, &zd) || r == 0 || r > count - k ||
            (r * b + 7) / 8 > static_cast<uint64_t>(end - p)) {
          return Malformed("mantissa run");
        }
        const uint64_t d = static_cast<uint64_t>(coding::Unzigzag(zd));
        const uint64_t size = (r * b + 7) / 8;
        // Values past the n wanted are skipped (a range read stops there).
        const uint32_t stop = static_cast<uint32_t>(std::min<uint64_t>(k + r, n));
        if (!(divide ? DecodeMantissaRun<kBased, true>(p, size, b, d, k, stop, lo, exponent, scale,
                                                       base, &m, &prev, s)
                     : DecodeMantissaRun<kBased, false>(p, size, b, d, k, stop, lo, exponent, scale,
                                                        base, &m, &prev, s))) {
          return Malformed("base value");
        }
        p += size;
        k = static_cast<uint32_t>(k0 + r - 1);  // the loop's increment follows
        continue;
      }
      if (lz + nb > 8) {
        // A run of r values of w bytes each: within the segment and its bytes.
        uint64_t r;
        const uint32_t k0 = k;
        if (format < 4 || lz != 7 || nb < 9 || nb > 16 || !ReadUvarint(p, end, &r) || r == 0 ||
            r > count - k || r > static_cast<uint64_t>(end - p) / (nb - 8)) {
          return Malformed("run");
        }
        const uint64_t w = nb - 8;
        // Values past the n wanted are skipped (a range read stops there).
        const uint32_t stop = static_cast<uint32_t>(std::min<uint64_t>(k + r, n));
        for (; k < stop; ++k) {
          uint64_t z = 0;
          for (uint64_t b = 0; b < w; ++b) z |= uint64_t{p[b]} << (8 * b);
          p += w;
          prev += static_cast<uint64_t>(coding::Unzigzag(z));
          if (k >= lo) Put(s, k - lo, std::bit_cast<double>(prev));
        }
        p += (r - (stop - k0)) * w;
        k = static_cast<uint32_t>(k0 + r - 1);  // the loop's increment follows
        continue;
      }
      if (static_cast<uint64_t>(end - p) < nb) return Malformed("raw value");
      uint64_t x = 0;
      for (uint64_t j = 0; j < nb; ++j) x = x << 8 | *p++;
      if (nb > 0) x <<= 8 * (8 - lz - nb);
      prev ^= x;
      if (k >= lo) Put(s, k - lo, std::bit_cast<double>(prev));
      continue;
    }
    uint64_t full = m;
    if constexpr (kBased) {
      int64_t off;
      if (!BaseMantissa(base[k], exponent, &off)) return Malformed("base value");
      full += static_cast<uint64_t>(off);
    }
    const double d = static_cast<double>(static_cast<int64_t>(full));
    const double v = divide ? d / scale : d * scale;
    prev = std::bit_cast<uint64_t>(v);
    if (k >= lo) Put(s, k - lo, v);
  }
  if (whole && p != end) return Malformed("value column has trailing bytes");
  return absl::OkStatus();
}

// Decodes values [from, n) of a value column (`from`: a segment's first) and stores values
// [keep, n) into dst[0, n - keep); with `base` (the base's values [from, n)), the column is
// based. Segment s holds values [s * interval, min((s + 1) * interval, count)) in bytes
// [bounds[s], bounds[s + 1]) of `column`, and each starts with a fresh decoder state.
template <typename Out>
absl::Status DecodeSegments(const uint8_t* column, const uint32_t* bounds, uint64_t interval,
                            uint32_t count, uint32_t from, uint32_t keep, uint32_t n, int format,
                            const double* base, Out* dst) {
  for (uint64_t a = from; a < n; a += interval) {
    const uint64_t s = a / interval;
    const uint64_t segment_end = std::min<uint64_t>(a + interval, count);
    const auto m = static_cast<uint32_t>(std::min<uint64_t>(segment_end, n) - a);
    const auto skip = static_cast<uint32_t>(keep > a ? keep - a : 0);
    Out* d = dst + (a + skip - keep);
    const uint8_t* p = column + bounds[s];
    const uint8_t* end = column + bounds[s + 1];
    const bool whole = segment_end <= n;
    const auto values = static_cast<uint32_t>(segment_end - a);
    STRATA_RETURN_IF_ERROR(base == nullptr ? DecodeValueColumn<false>(p, end, skip, m, values,
                                                                      whole, format, nullptr, d)
                                           : DecodeValueColumn<true>(p, end, skip, m, values, whole,
                                                                     format, base + (a - from), d));
  }
  return absl::OkStatus();
}

// Decodes one segment of a timestamp column, its first timestamp t0 and n - 1 varints in
// [p, end), into t[0, n). `next`: the first timestamp of the next segment, which the
// segment's must be below; or, for the column's last segment, its last timestamp.
absl::Status DecodeTimestampSegment(const uint8_t* p, const uint8_t* end, Timestamp t0, uint64_t n,
                                    bool last_segment, Timestamp next, Timestamp* t) {
  uint64_t cur = static_cast<uint64_t>(t0), delta = 0;
  t[0] = t0;
  bool decreasing = false;
  for (uint64_t k = 1; k < n; ++k) {
    uint64_t z;
    if (!ReadUvarint(p, end, &z)) return Malformed("timestamp column ends early");
    // The first difference is coded like a delta of delta from 0.
    delta += static_cast<uint64_t>(coding::Unzigzag(z));
    const uint64_t following = cur + delta;
    decreasing |= static_cast<int64_t>(following) <= static_cast<int64_t>(cur);
    cur = following;
    t[k] = static_cast<Timestamp>(cur);
  }
  if (decreasing || (!last_segment && static_cast<Timestamp>(cur) >= next)) {
    return Malformed("timestamps not increasing");
  }
  if (p != end || (last_segment && static_cast<Timestamp>(cur) != next)) {
    return Malformed("timestamp column");
  }
  return absl::OkStatus();
}

}  // namespace

void CompactedBlock::KeepBase(size_t i, uint32_t from,
                              std::shared_ptr<const std::vector<double>> values) const {
  std::lock_guard<std::mutex> lock(bases_->mu);
  std::vector<BaseColumns::Column>& columns = bases_->columns;
  const uint64_t used = ++bases_->clock;
  for (BaseColumns::Column& c : columns) {
    if (c.series == i) {
      // The values kept stay unless these reach beyond them.
      if (from < c.from || from + values->size() > c.from + c.values->size()) {
        c.from = from;
        c.values = std::move(values);
      }
      c.used = used;
      return;
    }
  }
  if (columns.size() < kBaseColumns) {
    columns.push_back({i, used, from, std::move(values)});
    return;
  }
  auto oldest = std::min_element(columns.begin(), columns.end(),
                                 [](const auto& a, const auto& b) { return a.used < b.used; });
  *oldest = {i, used, from, std::move(values)};
}

absl::Status CompactedBlock::DecodeValues(size_t i, uint32_t lo, uint32_t n, Sample* out) const {
  const uint8_t* raw = reinterpret_cast<const uint8_t*>(raw_.data());
  // Every column of the chain is decoded from the same restart: bases share the
  // dependent's timestamp column, so their segments line up.
  const uint32_t from = SegmentStart(lo);
  auto column = [&](size_t j, uint32_t keep, const double* base, auto* dst) {
    const Entry& c = series_[j];
    return DecodeSegments(raw + c.offset, bounds_.data() + c.at, interval_, ts_[c.ts].count, from,
                          keep, n, format_, base, dst);
  };
  // Series i itself when its values are kept (a base read again, or after a series based
  // on it), else the chain below i, down to its root or to a base whose values are kept.
  // Open bounded it.
  size_t chain[kCompactedMaxBaseDepth];
  int len = 0;
  std::shared_ptr<const std::vector<double>> below;
  const double* below_from = nullptr;  // the base's value `from`
  if (series_[i].base != kNoBase || series_[i].is_base) {
    std::lock_guard<std::mutex> lock(bases_->mu);
    auto kept = [&](size_t j) -> const BaseColumns::Column* {
      for (BaseColumns::Column& c : bases_->columns) {
        if (c.series == j && c.from <= from && c.from + c.values->size() >= n) {
          c.used = ++bases_->clock;
          return &c;
        }
      }
      return nullptr;
    };
    if (series_[i].is_base) {
      if (const BaseColumns::Column* own = kept(i)) {
        const std::vector<double>& v = *own->values;
        for (uint32_t k = lo; k < n; ++k) out[k - lo].v = v[k - own->from];
        return absl::OkStatus();
      }
    }
    for (size_t j = series_[i].base; j != kNoBase && below == nullptr; j = series_[j].base) {
      if (const BaseColumns::Column* c = kept(j)) {
        below = c->values;
        below_from = below->data() + (from - c->from);
      } else {
        chain[len++] = j;
      }
    }
  }
  for (int k = len - 1; k >= 0; --k) {
    auto values = std::make_shared<std::vector<double>>(n - from);
    STRATA_RETURN_IF_ERROR(column(chain[k], from, below_from, values->data()));
    below = values;
    below_from = values->data();
    KeepBase(chain[k], from, std::move(values));
  }
  if (!series_[i].is_base) return column(i, lo, below_from, out);
  // A base: its values are kept for the series based on it.
  auto values = std::make_shared<std::vector<double>>(n - from);
  STRATA_RETURN_IF_ERROR(column(i, from, below_from, values->data()));
  for (uint32_t k = lo; k < n; ++k) out[k - lo].v = (*values)[k - from];
  KeepBase(i, from, std::move(values));
  return absl::OkStatus();
}

absl::StatusOr<std::span<const Timestamp>> CompactedBlock::DecodedTimestamps(size_t col,
                                                                             uint32_t first,
                                                                             uint32_t last) const {
  const TsColumn& c = ts_[col];
  DecodedColumn& d = ts_decoded_[col];
  std::call_once(d.once, [&] {
    d.t = std::make_unique_for_overwrite<Timestamp[]>(c.count);
    d.segments = std::make_unique<DecodedColumn::Segment[]>(c.segments);
  });
  const uint8_t* column = reinterpret_cast<const uint8_t*>(raw_.data()) + c.offset;
  const uint32_t* bounds = bounds_.data() + c.at;
  const Timestamp* starts = restart_t_.data() + c.t_at;
  for (uint32_t s = first; s <= last; ++s) {
    DecodedColumn::Segment& segment = d.segments[s];
    std::call_once(segment.once, [&] {
      const uint64_t begin = s * interval_;
      const bool last_segment = s + 1 == c.segments;
      segment.status =
          DecodeTimestampSegment(column + bounds[s], column + bounds[s + 1], starts[s],
                                 std::min<uint64_t>(interval_, c.count - begin), last_segment,
                                 last_segment ? c.last : starts[s + 1], d.t.get() + begin);
    });
    STRATA_RETURN_IF_ERROR(segment.status);
  }
  const uint64_t begin = first * interval_;
  const uint64_t stop = std::min<uint64_t>((uint64_t{last} + 1) * interval_, c.count);
  return std::span<const Timestamp>(d.t.get() + begin, stop - begin);
}

absl::StatusOr<std::span<const Timestamp>> CompactedBlock::Timestamps(size_t i) const {
  const size_t col = series_[i].ts;
  return DecodedTimestamps(col, 0, ts_[col].segments - 1);
}

absl::StatusOr<std::span<const Timestamp>> CompactedBlock::Timestamps(size_t i, Timestamp mint,
                                                                      Timestamp maxt) const {
  const size_t col = series_[i].ts;
  const TsColumn& c = ts_[col];
  if (mint > maxt || maxt < c.first || mint > c.last) return std::span<const Timestamp>();
  // The segments that may hold samples in [mint, maxt]: from the last one starting at or
  // before mint (or the first) to the last one starting at or before maxt.
  const Timestamp* starts = restart_t_.data() + c.t_at;
  const Timestamp* starts_end = starts + c.segments;
  const auto first = static_cast<uint32_t>(
      std::max<std::ptrdiff_t>(std::upper_bound(starts, starts_end, mint) - starts, 1) - 1);
  const auto last = static_cast<uint32_t>(std::upper_bound(starts, starts_end, maxt) - starts - 1);
  STRATA_ASSIGN_OR_RETURN(std::span<const Timestamp> ts, DecodedTimestamps(col, first, last));
  const auto lo = std::lower_bound(ts.begin(), ts.end(), mint);
  return std::span<const Timestamp>(lo, std::upper_bound(lo, ts.end(), maxt));
}

absl::Status CompactedBlock::Decode(size_t i, std::vector<Sample>* out, Timestamp mint,
                                    Timestamp maxt) const {
  STRATA_ASSIGN_OR_RETURN(std::span<const Timestamp> ts, Timestamps(i, mint, maxt));
  if (ts.empty()) return absl::OkStatus();
  // The span lies in the column's decoded timestamps: its offset there is its first index.
  const auto lo = static_cast<uint32_t>(ts.data() - ts_decoded_[series_[i].ts].t.get());
  const size_t base = out->size();
  // Timestamps are appended, values filled in by DecodeValues: no separate zeroing pass.
  out->reserve(base + ts.size());
  for (const Timestamp t : ts) out->push_back({t, 0});
  absl::Status st = DecodeValues(i, lo, lo + static_cast<uint32_t>(ts.size()), out->data() + base);
  if (!st.ok()) out->resize(base);
  return st;
}

}  // namespace strata
