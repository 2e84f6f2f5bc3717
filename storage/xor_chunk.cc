#include "storage/xor_chunk.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>
#include <vector>

#include "fmt/format.h"

namespace strata {
namespace {

// Zeroed room kept after the chunk's last byte, so that an append never checks bounds: the
// second sample takes at most a 10-byte uvarint and 77 bits, any later one 145 bits (19
// bytes), and PutBits reads and writes the 8 bytes from the byte where a field starts.
// XorChunkAppender::kSlackBytes (for the inline Append) is the same number.
constexpr size_t kSlack = 32;

// The buffer size for a chunk of `len` bytes: the appender's growth policy, all of it. A pure
// function of the length, so the appender need not store its capacity: it reallocates
// whenever the result changes. REQUIRES (Append checks only there): the result changes only
// where len + kSlack crosses a multiple of 64.
size_t CapacityFor(size_t len) {
  const size_t need = len + kSlack;
  if (need <= 512) return (need + 63) & ~size_t{63};
  return std::bit_ceil(need);
}

size_t ByteLength(uint64_t bit_len) { return static_cast<size_t>((bit_len + 7) / 8); }

void PutHeaderCount(uint8_t* buf, uint16_t n) {
  buf[0] = static_cast<uint8_t>(n >> 8);
  buf[1] = static_cast<uint8_t>(n);
}

// Go's encoding/binary varints: 7 bits per byte, least significant group first, high bit set
// on every byte but the last. Signed values are zigzag-encoded.
size_t PutUvarint(uint8_t* p, uint64_t x) {
  size_t i = 0;
  while (x >= 0x80) {
    p[i++] = static_cast<uint8_t>(x) | 0x80;
    x >>= 7;
  }
  p[i++] = static_cast<uint8_t>(x);
  return i;
}

size_t PutVarint(uint8_t* p, int64_t x) {
  uint64_t ux = static_cast<uint64_t>(x) << 1;
  if (x < 0) ux = ~ux;
  return PutUvarint(p, ux);
}

// Reads a uvarint at *pos, advancing it. False if the bytes end first or the value overflows
// 64 bits (the checks of Go's binary.Uvarint).
bool ReadUvarint(const uint8_t* data, size_t size, size_t* pos, uint64_t* out) {
  uint64_t x = 0;
  int shift = 0;
  for (int i = 0; i < 10; ++i) {
    if (*pos >= size) return false;
    const uint8_t b = data[(*pos)++];
    if (b < 0x80) {
      if (i == 9 && b > 1) return false;
      *out = x | static_cast<uint64_t>(b) << shift;
      return true;
    }
    x |= static_cast<uint64_t>(b & 0x7f) << shift;
    shift += 7;
  }
  return false;
}

bool ReadVarint(const uint8_t* data, size_t size, size_t* pos, int64_t* out) {
  uint64_t ux;
  if (!ReadUvarint(data, size, pos, &ux)) return false;
  uint64_t x = ux >> 1;
  if (ux & 1) x = ~x;
  *out = static_cast<int64_t>(x);
  return true;
}

// Prometheus' bitRange: does dod fit the n-bit bucket, whose range is
// [-(2^(n-1) - 1), 2^(n-1)]?
template <int kBits>
bool FitsBucket(int64_t dod) {
  constexpr uint64_t kHalf = uint64_t{1} << (kBits - 1);
  return static_cast<uint64_t>(dod) + (kHalf - 1) <= 2 * kHalf - 1;
}

// Writes `code` (the low `len` bits, 0 <= len <= 57; the pending part of a sample) and then
// a value x != 0 in the window (L, T) at bit `pos` of `buf`; returns the position after it.
// With `open`, the window is written first ('11', L, the significant-bit count); else x
// fits the current window ('10'). Fields are merged into as few 8-byte stores as fit.
// REQUIRES: x has at least L (<= 31) leading and T trailing zeros; PutBits' conditions for
// the 20 bytes from buf + pos / 8.
inline __attribute__((always_inline)) uint64_t PutWindowed(uint8_t* buf, uint64_t pos,
                                                           uint64_t code, int len, uint64_t x,
                                                           int lead, int trail, bool open) {
  const int sig = 64 - lead - trail;
  const uint64_t bits = x >> trail;
  // '10', or '11', 5 bits of leading zeros, 6 bits of significant-bit count (64 as 0).
  const uint64_t head = open ? uint64_t{0b11} << 11 | static_cast<uint64_t>(lead) << 6 |
                                   static_cast<uint64_t>(sig & 63)
                             : uint64_t{0b10};
  const int head_len = open ? 13 : 2;
  if (len + head_len + sig <= 57) [[likely]] {
    PutBits(buf, pos, (code << head_len | head) << sig | bits, len + head_len + sig);
    return pos + len + head_len + sig;
  }
  PutBits(buf, pos, code << head_len | head, len + head_len);
  pos += len + head_len;
  PutBitsWide(buf, pos, bits, sig);
  return pos + sig;
}

// Writes `code` (as above) and then the value as Prometheus' xorWrite writes it, at bit
// `pos` of `buf`; returns the position after the value. `leading` is 0xff until the first
// window. REQUIRES: PutBits' conditions for the 20 bytes from buf + pos / 8.
inline __attribute__((always_inline)) uint64_t WriteValue(uint8_t* buf, uint64_t pos, uint64_t code,
                                                          int len, uint64_t x, uint8_t* leading,
                                                          uint8_t* trailing) {
  if (x == 0) {
    PutBits(buf, pos, code << 1, len + 1);
    return pos + len + 1;
  }
  int lead = __builtin_clzll(x);
  const int trail = __builtin_ctzll(x);
  if (lead >= 32) lead = 31;  // the field has 5 bits
  // With no window yet, *leading is 0xff and no lead reaches it.
  if (lead >= *leading && trail >= *trailing) {
    // The significant bits fit the previous window.
    return PutWindowed(buf, pos, code, len, x, *leading, *trailing, false);
  }
  *leading = static_cast<uint8_t>(lead);
  *trailing = static_cast<uint8_t>(trail);
  return PutWindowed(buf, pos, code, len, x, lead, trail, true);
}

// The code of a sample's dod (after the second sample): returned in the low *len bits
// (*len <= 24). A dod that fits no bucket ('1111' and 64 bits) is written at *pos at once,
// moving *pos past it, and leaves an empty code.
inline __attribute__((always_inline)) uint64_t DodCode(uint8_t* buf, uint64_t* pos, int64_t dod,
                                                       int* len) {
  const uint64_t u = static_cast<uint64_t>(dod);
  if (dod == 0) {
    *len = 1;
    return 0;
  }
  if (FitsBucket<14>(dod)) {
    *len = 16;
    return uint64_t{0b10} << 14 | (u & 0x3fff);
  }
  if (FitsBucket<17>(dod)) {
    *len = 20;
    return uint64_t{0b110} << 17 | (u & 0x1ffff);
  }
  if (FitsBucket<20>(dod)) {
    *len = 24;
    return uint64_t{0b1110} << 20 | (u & 0xfffff);
  }
  PutBits(buf, *pos, 0b1111, 4);
  PutBitsWide(buf, *pos + 4, u, 64);
  *pos += 68;
  *len = 0;
  return 0;
}

// Writes a sample after the second: its dod and its value XORed with the previous one.
inline __attribute__((always_inline)) uint64_t WriteSample(uint8_t* buf, uint64_t pos, int64_t dod,
                                                           uint64_t x, uint8_t* leading,
                                                           uint8_t* trailing) {
  int len;
  const uint64_t code = DodCode(buf, &pos, dod, &len);
  return WriteValue(buf, pos, code, len, x, leading, trailing);
}

// kZeroZero: a valid '0' '0' sample, reported apart only when asked (DecodeSample<true>).
enum class DecodeError { kOk, kTruncated, kBadWindow, kNotIncreasing, kZeroZero };

using State = XorChunkIterator::State;

// The decoders below read at most 145 bits per sample (a 68-bit dod and a 77-bit value),
// with loads that reach at most 27 bytes past the sample's first byte. REQUIRES of each:
// the 32 bytes from d + s.pos / 8 are readable. On an error, s.pos has moved past the
// fields read, so that a caller can tell a sample cut short by the chunk's end.

// Reads a value as Prometheus' xorRead does. `w` holds the bits from s.pos on, left-aligned,
// at least the top kValid of them the stream's.
template <int kValid = 56>
inline __attribute__((always_inline)) DecodeError DecodeValue(const uint8_t* d, State& s,
                                                              uint64_t w) {
  if ((w >> 63) == 0) {
    s.pos += 1;
    return DecodeError::kOk;
  }
  if ((w >> 62) == 0b10) {
    // The previous window.
    const int sig = static_cast<int>(s.sig);
    const uint64_t bits = sig <= kValid - 2 ? w << 2 : BitWindow64(d, s.pos + 2);
    s.v ^= (bits >> s.shift) & s.mask;
    s.pos += 2 + static_cast<uint64_t>(sig);
    return DecodeError::kOk;
  }
  // '11', 5 bits of leading zeros, 6 bits of significant-bit count (0 meaning 64).
  const int lead = static_cast<int>((w >> 57) & 31);
  int sig = static_cast<int>((w >> 51) & 63);
  if (sig == 0) sig = 64;
  s.pos += 13;
  if (lead + sig > 64) [[unlikely]]
    return DecodeError::kBadWindow;
  const int trail = 64 - lead - sig;
  s.leading = static_cast<uint8_t>(lead);
  s.shift = static_cast<uint64_t>(lead);
  s.trailing = static_cast<uint8_t>(trail);
  s.sig = static_cast<uint64_t>(sig);
  s.fast_top = sig <= 54 ? 0b010 : 8;
  s.fast_after14 = sig <= 39 ? 0b10 : 8;
  s.mask = ~uint64_t{0} << trail;
  const uint64_t bits = sig <= kValid - 13 ? w << 13 : BitWindow64(d, s.pos);
  s.v ^= (bits >> lead) & s.mask;
  s.pos += static_cast<uint64_t>(sig);
  return DecodeError::kOk;
}

// Moves the time on by the current interval. Modulo 2^64, as the encoder computed it.
inline __attribute__((always_inline)) bool AdvanceTime(State& s) {
  const int64_t t = static_cast<int64_t>(static_cast<uint64_t>(s.t) + s.t_delta);
  if (t <= s.t) [[unlikely]]
    return false;
  s.t = t;
  return true;
}

// Reads one sample after the second.
// With kTellZeroZero, a '0' '0' sample returns kZeroZero instead of kOk, so that a caller
// can look for a run of them.
template <bool kTellZeroZero = false>
inline __attribute__((always_inline)) DecodeError DecodeSample(const uint8_t* d, State& s) {
  const uint64_t w = BitWindow(d, s.pos);
  const uint64_t top = w >> 61;
  if (top < 0b100) {
    // dod 0: the interval stays.
    if (!AdvanceTime(s)) [[unlikely]] {
      s.pos += 1;
      return DecodeError::kNotIncreasing;
    }
    if (top < 0b010) {
      // '0' '0': same interval, same value; the commonest sample of all.
      s.pos += 2;
      return kTellZeroZero ? DecodeError::kZeroZero : DecodeError::kOk;
    }
    if (top == s.fast_top) [[likely]] {
      // '0' '10' with the window's bits inside w.
      s.v ^= ((w << 3) >> s.shift) & s.mask;
      s.pos += 3 + s.sig;
      return DecodeError::kOk;
    }
    s.pos += 1;
    return DecodeValue(d, s, w << 1);
  }
  uint64_t dod;
  if (top < 0b110) {  // '10': a 14-bit dod
    // Prometheus reads the 14 bits as negative above 2^13, so 0x2000 is +8192: the bits
    // minus one as a signed 14-bit number, plus one. (Subtracting 2^48 takes one from them;
    // a borrow into the '10' above them is shifted out.)
    dod = static_cast<uint64_t>(static_cast<int64_t>((w - (uint64_t{1} << 48)) << 2) >> 50) + 1;
    s.pos += 16;
    s.t_delta += dod;
    if (!AdvanceTime(s)) [[unlikely]]
      return DecodeError::kNotIncreasing;
    // A jittered scrape: the value's first 41 bits are still in w.
    const uint64_t rest = w << 16;
    if ((rest >> 63) == 0) {
      s.pos += 1;
      return DecodeError::kOk;
    }
    if ((rest >> 62) == s.fast_after14) [[likely]] {
      s.v ^= ((rest << 2) >> s.shift) & s.mask;
      s.pos += 2 + s.sig;
      return DecodeError::kOk;
    }
    return DecodeValue<41>(d, s, rest);
  } else if (top == 0b110) {
    dod = (w >> 44) & 0x1ffff;
    if (dod > (1u << 16)) dod -= 1u << 17;
    s.pos += 20;
  } else if ((w >> 60) == 0b1110) {
    dod = (w >> 40) & 0xfffff;
    if (dod > (1u << 19)) dod -= 1u << 20;
    s.pos += 24;
  } else [[unlikely]] {
    dod = BitWindow64(d, s.pos + 4);
    s.pos += 68;
  }
  s.t_delta += dod;
  if (!AdvanceTime(s)) [[unlikely]]
    return DecodeError::kNotIncreasing;
  return DecodeValue(d, s, BitWindow(d, s.pos));
}

std::string DescribeError(DecodeError e) {
  switch (e) {
    case DecodeError::kOk:
      return "ok";
    case DecodeError::kTruncated:
      return "bytes end before the sample does";
    case DecodeError::kBadWindow:
      return "leading zeros plus significant bits exceed 64";
    case DecodeError::kNotIncreasing:
      return "timestamp not after the previous one";
    case DecodeError::kZeroZero:
      return "ok";
  }
  return "unknown error";
}

// Out of line, so that Append's hot path stays small.
[[gnu::cold, gnu::noinline]] absl::Status OutOfOrderError(Timestamp t, Timestamp last) {
  return absl::InvalidArgumentError(fmt::format(
      "xor chunk: sample time {} is not after the chunk's last sample time {}", t, last));
}

[[gnu::cold, gnu::noinline]] absl::Status FullError() {
  return absl::FailedPreconditionError(
      fmt::format("xor chunk: full ({} samples)", kXorChunkMaxSamples));
}

}  // namespace

// ---- XorChunkAppender ----

XorChunkAppender::XorChunkAppender(XorChunkAppender&& other) noexcept
    : buf_(std::exchange(other.buf_, nullptr)),
      bit_len_(std::exchange(other.bit_len_, 0)),
      count_(std::exchange(other.count_, 0)),
      leading_(std::exchange(other.leading_, 0xff)),
      trailing_(other.trailing_),
      t_(other.t_),
      t_delta_(other.t_delta_),
      v_(other.v_) {}

XorChunkAppender& XorChunkAppender::operator=(XorChunkAppender&& other) noexcept {
  if (this != &other) {
    std::free(buf_);
    buf_ = std::exchange(other.buf_, nullptr);
    bit_len_ = std::exchange(other.bit_len_, 0);
    count_ = std::exchange(other.count_, 0);
    leading_ = std::exchange(other.leading_, 0xff);
    trailing_ = other.trailing_;
    t_ = other.t_;
    t_delta_ = other.t_delta_;
    v_ = other.v_;
  }
  return *this;
}

XorChunkAppender::~XorChunkAppender() { std::free(buf_); }

std::string_view XorChunkAppender::bytes() const {
  static constexpr char kEmpty[2] = {0, 0};
  if (buf_ == nullptr) return {kEmpty, 2};
  return {reinterpret_cast<const char*>(buf_), ByteLength(bit_len_)};
}

size_t XorChunkAppender::allocated_bytes() const {
  return buf_ == nullptr ? 0 : CapacityFor(ByteLength(bit_len_));
}

absl::Status XorChunkAppender::AppendLong(Timestamp t, uint64_t vb, uint64_t w, int n,
                                          uint64_t head, int head_len, uint64_t bits, int sig) {
  const uint64_t pos = bit_len_;
  const uint64_t end = pos + static_cast<uint64_t>(n + head_len + sig);
  Grow(ByteLength(pos), ByteLength(end));
  PutBits(buf_, pos, w >> (64 - n), n);
  PutBits(buf_, pos + n, head, head_len);
  PutBitsWide(buf_, pos + n + head_len, bits, sig);
  Commit(t, vb, end);
  return absl::OkStatus();
}

absl::Status XorChunkAppender::AppendGrowing(Timestamp t, uint64_t vb, uint64_t delta, uint64_t w,
                                             int n) {
  const uint64_t pos = bit_len_;
  const uint64_t end = pos + static_cast<uint64_t>(n);
  Grow(ByteLength(pos), ByteLength(end));
  uint8_t* const p = buf_ + (pos >> 3);
  StoreBigEndian64(p, LoadBigEndian64(p) | w >> (pos & 7));
  bit_len_ = static_cast<uint32_t>(end);
  t_delta_ = delta;
  t_ = t;
  v_ = vb;
  CountSample();
  return absl::OkStatus();
}

void XorChunkAppender::Grow(size_t old_len, size_t new_len) {
  static_assert(kSlack == kSlackBytes);
  const size_t old_cap = buf_ == nullptr ? 0 : CapacityFor(old_len);
  const size_t new_cap = CapacityFor(new_len);
  if (new_cap == old_cap) return;
  void* p = std::realloc(buf_, new_cap);
  if (p == nullptr) throw std::bad_alloc();
  buf_ = static_cast<uint8_t*>(p);
  if (new_cap > old_cap) std::memset(buf_ + old_cap, 0, new_cap - old_cap);
}

// Every case Append's fast path leaves out: the first two samples (byte-aligned varints),
// the errors and 64-bit dods.
absl::Status XorChunkAppender::AppendSlow(Timestamp t, double v) {
  const uint64_t vb = std::bit_cast<uint64_t>(v);
  if (count_ == 0) {
    Grow(0, 2);
    size_t pos = 2;
    pos += PutVarint(buf_ + pos, t);
    StoreBigEndian64(buf_ + pos, vb);
    pos += 8;
    bit_len_ = static_cast<uint32_t>(pos * 8);
    t_ = t;
    v_ = vb;
    count_ = 1;
    PutHeaderCount(buf_, count_);
    return absl::OkStatus();
  }
  if (t <= t_) return OutOfOrderError(t, t_);
  if (count_ == kXorChunkMaxSamples) return FullError();
  // Differences are taken modulo 2^64: t > t_ makes delta the true distance even when it
  // does not fit an int64.
  const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);
  const size_t old_len = ByteLength(bit_len_);
  uint64_t pos = bit_len_;
  if (count_ == 1) {
    // The first sample ends on a byte boundary.
    pos += PutUvarint(buf_ + bit_len_ / 8, delta) * 8;
    pos = WriteValue(buf_, pos, 0, 0, v_ ^ vb, &leading_, &trailing_);
  } else {
    pos = WriteSample(buf_, pos, static_cast<int64_t>(delta - t_delta_), v_ ^ vb, &leading_,
                      &trailing_);
  }
  bit_len_ = static_cast<uint32_t>(pos);
  t_delta_ = delta;
  t_ = t;
  v_ = vb;
  ++count_;
  PutHeaderCount(buf_, count_);
  Grow(old_len, ByteLength(pos));
  return absl::OkStatus();
}

absl::StatusOr<XorChunkAppender> XorChunkAppender::FromBytes(std::string_view chunk) {
  XorChunkIterator it(chunk);
  while (it.Next()) {
  }
  if (!it.status().ok()) return it.status();
  XorChunkAppender a;
  if (it.total_ == 0) {
    if (chunk.find_first_not_of('\0', 2) != std::string_view::npos) {
      return absl::DataLossError("xor chunk: nonzero bytes after an empty chunk's header");
    }
    return a;
  }
  const auto* data = reinterpret_cast<const uint8_t*>(chunk.data());
  const uint64_t end_bit = it.ChunkBitPosition();
  const size_t len = ByteLength(end_bit);
  const int pad = static_cast<int>(len * 8 - end_bit);
  if ((data[len - 1] & ((1u << pad) - 1)) != 0 ||
      chunk.find_first_not_of('\0', len) != std::string_view::npos) {
    return absl::DataLossError(
        fmt::format("xor chunk: nonzero bits after the last of its {} samples", it.total_));
  }
  a.Grow(0, len);
  std::memcpy(a.buf_, data, len);
  a.bit_len_ = static_cast<uint32_t>(end_bit);
  a.count_ = static_cast<uint16_t>(it.total_);
  a.leading_ = it.st_.leading;
  a.trailing_ = it.st_.trailing;
  a.t_ = it.st_.t;
  a.t_delta_ = it.st_.t_delta;
  a.v_ = it.st_.v;
  return a;
}

namespace {

// A value that changed (x != 0): its leading zeros (clamped to 31, as the window field
// holds them) and trailing zeros, then what the window choice decides for it.
struct Change {
  uint8_t lead;
  uint8_t trail;
  bool opens = false;  // written with '11' and the window (lead, trail) of its run
  uint16_t from = 0;   // where the last run starts in the cheapest split of the changes up to here
};

// Chooses the windows of a chunk's changed values with the fewest bits. A window is set by
// a '11' code (13 bits with its fields) and then serves every following change that fits it
// ('10'); each change costs 2 + (width of the window in force) bits besides. So a choice is
// a split of the changes into runs, each with one window, best the narrowest that holds
// them all, and costs 11 + k * (2 + width) bits for a run of k changes. Prometheus' appender
// opens a window only when a value does not fit, and then the narrowest for that value alone;
// this finds the cheapest split.
//
// Dynamic programming over where the last run starts. Going through the changes in order,
// it keeps the run starts that may still be the cheapest (the candidates), each with the
// window of its run so far and the cheapest cost of the changes before it (`base`). A
// candidate a is dropped for good when a later candidate b is already as cheap counting
// the changes between them at b's width: base[a] + (b - a) * (2 + width[b]) >= base[b]. It
// can never win again: a's window holds b's, both only widen, and from now on each change
// costs a at least what it costs b. Few candidates stay (about 5 to 8 on scrape-like
// data), so the search costs a few instructions per candidate and change, without branches.
//
// Sets `opens` and the windows (lead, trail) of every change; lead and trail of a change
// that does not open a run are left as they were (its run's window is in force).
void ChooseWindows(std::span<Change> c) {
  const int m = static_cast<int>(c.size());
  if (m == 0) return;
  // The candidates, oldest first: where each starts, its window, the cost before it.
  std::vector<int32_t> scratch(4 * static_cast<size_t>(m));
  int32_t* const start = scratch.data();
  int32_t* const lead = start + m;
  int32_t* const trail = lead + m;
  int32_t* const base = trail + m;
  int alive = 0;
  int32_t cheapest = 0;  // the fewest bits for the changes before j
  for (int j = 0; j < m; ++j) {
    start[alive] = j;
    lead[alive] = 64;
    trail[alive] = 64;
    base[alive] = cheapest;
    ++alive;
    const int32_t l = c[j].lead;
    const int32_t t = c[j].trail;
    int32_t best = INT32_MAX;
    int32_t from = j;
    // The last candidate kept (always the one before k): it starts at prev_start, and
    // prev_base is far below any cost before the first, so that nothing beats that.
    int32_t prev_start = 0;
    int32_t prev_base = INT32_MIN / 2;
    int kept = 0;
    for (int k = 0; k < alive; ++k) {
      const int32_t sk = start[k];
      const int32_t bk = base[k];
      const int32_t lk = std::min(lead[k], l);
      const int32_t tk = std::min(trail[k], t);
      const int32_t width2 = 66 - lk - tk;  // 2 + the window's width
      const int32_t cost = bk + 11 + (j - sk + 1) * width2;
      from = cost < best ? sk : from;
      best = std::min(best, cost);
      // This candidate may have beaten the one kept before it for good (see above).
      kept -= prev_base + (sk - prev_start) * width2 >= bk ? 1 : 0;
      start[kept] = sk;
      lead[kept] = lk;
      trail[kept] = tk;
      base[kept] = bk;
      ++kept;
      prev_start = sk;
      prev_base = bk;
    }
    alive = kept;
    c[j].from = static_cast<uint16_t>(from);
    cheapest = best;
  }
  // Walk the runs back from the last and give each its window.
  int end = m;
  while (end > 0) {
    const int first = c[end - 1].from;
    uint8_t l = 64;
    uint8_t t = 64;
    for (int i = first; i < end; ++i) {
      l = std::min(l, c[i].lead);
      t = std::min(t, c[i].trail);
    }
    c[first].opens = true;
    c[first].lead = l;
    c[first].trail = t;
    end = first;
  }
}

}  // namespace

absl::StatusOr<std::string> EncodeXorChunk(std::span<const Sample> samples) {
  const size_t n = samples.size();
  if (n > static_cast<size_t>(kXorChunkMaxSamples)) return FullError();
  for (size_t i = 1; i < n; ++i) {
    if (samples[i].t <= samples[i - 1].t) return OutOfOrderError(samples[i].t, samples[i - 1].t);
  }
  std::string out(2, '\0');
  PutHeaderCount(reinterpret_cast<uint8_t*>(out.data()), static_cast<uint16_t>(n));
  if (n == 0) return out;
  std::vector<Change> changes;
  changes.reserve(n - 1);
  for (size_t i = 1; i < n; ++i) {
    const uint64_t x =
        std::bit_cast<uint64_t>(samples[i].v) ^ std::bit_cast<uint64_t>(samples[i - 1].v);
    if (x == 0) continue;
    changes.push_back({static_cast<uint8_t>(std::min(std::countl_zero(x), 31)),
                       static_cast<uint8_t>(std::countr_zero(x))});
  }
  ChooseWindows(changes);

  // Room: the header, a 10-byte varint and the first value, a 10-byte uvarint, then at most
  // 145 bits (19 bytes) a sample, and PutBits' 8 bytes past the last field.
  out.resize(2 + 10 + 8 + 10 + 19 * n + 8, '\0');
  auto* buf = reinterpret_cast<uint8_t*>(out.data());
  size_t byte = 2;
  byte += PutVarint(buf + byte, samples[0].t);
  StoreBigEndian64(buf + byte, std::bit_cast<uint64_t>(samples[0].v));
  byte += 8;
  uint64_t pos = byte * 8;
  uint64_t last_delta = 0;
  size_t next_change = 0;
  uint8_t lead = 0;
  uint8_t trail = 0;
  for (size_t i = 1; i < n; ++i) {
    // Modulo 2^64, as the appender and the reader compute them.
    const uint64_t delta =
        static_cast<uint64_t>(samples[i].t) - static_cast<uint64_t>(samples[i - 1].t);
    uint64_t code = 0;
    int len = 0;
    if (i == 1) {
      pos += PutUvarint(buf + pos / 8, delta) * 8;  // the first value ends on a byte boundary
    } else {
      code = DodCode(buf, &pos, static_cast<int64_t>(delta - last_delta), &len);
    }
    last_delta = delta;
    const uint64_t x =
        std::bit_cast<uint64_t>(samples[i].v) ^ std::bit_cast<uint64_t>(samples[i - 1].v);
    if (x == 0) {
      PutBits(buf, pos, code << 1, len + 1);
      pos += len + 1;
      continue;
    }
    const Change& c = changes[next_change++];
    if (c.opens) {
      lead = c.lead;
      trail = c.trail;
    }
    pos = PutWindowed(buf, pos, code, len, x, lead, trail, c.opens);
  }
  out.resize(ByteLength(pos));
  return out;
}

// ---- XorChunkIterator ----

void XorChunkIterator::Reset(std::string_view chunk) {
  data_ = reinterpret_cast<const uint8_t*>(chunk.data());
  size_ = chunk.size();
  st_ = State{};
  tail_start_ = 0;
  read_ = 0;
  done_ = false;
  status_ = absl::OkStatus();
  if (size_ < 2) {
    total_ = 0;
    Fail(fmt::format("xor chunk: {} bytes, too short for its 2-byte header", size_));
    return;
  }
  total_ = data_[0] << 8 | data_[1];
  st_.pos = 16;
}

void XorChunkIterator::Fail(std::string message) {
  status_ = absl::DataLossError(std::move(message));
  done_ = true;
}

uint64_t XorChunkIterator::ChunkBitPosition() const {
  return st_.in_tail ? st_.pos + tail_start_ * 8 : st_.pos;
}

void XorChunkIterator::LoadTail(size_t start) {
  // start >= size_ - 32: see Place and AfterLimit.
  const size_t n = size_ - start;
  std::memcpy(tail_, data_ + start, n);
  std::memset(tail_ + n, 0, kTailBytes - n);
  tail_start_ = start;
}

void XorChunkIterator::Place(uint64_t pos) {
  st_.pos = pos;
  st_.in_tail = false;
  if (size_ >= 32 && pos <= (size_ - 32) * 8) {
    st_.limit = (size_ - 32) * 8;
    return;
  }
  const size_t start = static_cast<size_t>(pos / 8);
  LoadTail(start);
  st_.pos -= start * 8;
  st_.limit = (size_ - start) * 8;
  st_.in_tail = true;
}

// A sample ended past s->limit. In the chunk, that means the next one may be too near the
// end for the 8-byte loads: continue in tail_. In tail_, the limit is the chunk's end.
inline __attribute__((always_inline)) bool XorChunkIterator::AfterLimit(State* s) {
  if (s->in_tail) return false;
  const size_t start = static_cast<size_t>(s->pos / 8);
  LoadTail(start);
  s->pos -= start * 8;
  s->limit = (size_ - start) * 8;
  s->in_tail = true;
  return true;
}

bool XorChunkIterator::ReadFirstSamples() {
  size_t pos = ChunkBitPosition() / 8;
  if (read_ == 0) {
    if (!ReadVarint(data_, size_, &pos, &st_.t)) {
      Fail("xor chunk: bad or truncated first timestamp");
      return false;
    }
    if (size_ - pos < 8) {
      Fail("xor chunk: bytes end inside the first value");
      return false;
    }
    st_.v = LoadBigEndian64(data_ + pos);
    st_.pos = (pos + 8) * 8;
    st_.in_tail = false;
  } else {
    uint64_t delta;
    if (!ReadUvarint(data_, size_, &pos, &delta)) {
      Fail("xor chunk: bad or truncated second timestamp delta");
      return false;
    }
    const int64_t t = static_cast<int64_t>(static_cast<uint64_t>(st_.t) + delta);
    if (t <= st_.t) {
      Fail(fmt::format("xor chunk: sample 1 of {}: {}", total_,
                       DescribeError(DecodeError::kNotIncreasing)));
      return false;
    }
    st_.t = t;
    st_.t_delta = delta;
    Place(pos * 8);
    const uint8_t* d = Base(st_);
    DecodeError e = DecodeValue(d, st_, BitWindow(d, st_.pos));
    if (st_.pos > st_.limit && !AfterLimit(&st_)) e = DecodeError::kTruncated;
    if (e != DecodeError::kOk) {
      Fail(fmt::format("xor chunk: sample 1 of {}: {}", total_, DescribeError(e)));
      return false;
    }
  }
  ++read_;
  return true;
}

bool XorChunkIterator::Next() {
  if (done_) return false;
  if (read_ >= total_) {
    done_ = true;
    return false;
  }
  if (read_ < 2) return ReadFirstSamples();
  DecodeError e = DecodeSample(Base(st_), st_);
  if (st_.pos > st_.limit) [[unlikely]] {
    if (!AfterLimit(&st_)) e = DecodeError::kTruncated;
  }
  if (e != DecodeError::kOk) [[unlikely]] {
    Fail(fmt::format("xor chunk: sample {} of {}: {}", read_, total_, DescribeError(e)));
    return false;
  }
  ++read_;
  return true;
}

bool XorChunkIterator::Seek(Timestamp t) {
  if (done_) return false;
  if (read_ > 0 && st_.t >= t) return true;
  while (Next()) {
    if (st_.t >= t) return true;
  }
  return false;
}

absl::Status XorChunkIterator::AppendRange(Timestamp mint, Timestamp maxt,
                                           std::vector<Sample>* out) {
  if (read_ != 0 || done_) return SampleIterator::AppendRange(mint, maxt, out);
  // The first two samples are held back until the vector has room for all those wanted
  // (growing it for them first would allocate twice more).
  Sample first[2];
  int held = 0;
  while (read_ < 2) {
    if (!Next() || st_.t > maxt) {
      out->insert(out->end(), first, first + held);
      return status_;
    }
    if (st_.t >= mint) first[held++] = At();
  }
  int left = total_ - read_;
  if (held > 0) {
    out->reserve(out->size() + held + left);
    out->insert(out->end(), first, first + held);
  }
  // Two loops, each with as few live values as possible: skip to mint, then copy to maxt.
  State s = st_;
  const uint8_t* base = Base(s);
  DecodeError e = DecodeError::kOk;
  bool pending = false;  // s holds a sample at or after mint not yet copied
  if (s.t < mint) {
    while (left > 0) {
      e = DecodeSample(base, s);
      if (s.pos > s.limit) [[unlikely]] {
        if (!AfterLimit(&s)) e = DecodeError::kTruncated;
        base = tail_;
      }
      if (e != DecodeError::kOk) [[unlikely]]
        break;
      --left;
      if (s.t >= mint) {
        pending = true;
        break;
      }
    }
  }
  if (e == DecodeError::kOk && !(pending && s.t > maxt)) {
    // Samples go through a stack batch, appended with one copy each: resizing the vector
    // first would construct (zero) every sample before the decoder overwrites it, and
    // push_back checks the capacity every time. The batch is raw storage, constructed
    // sample by sample, so that it is not zeroed either.
    constexpr int kBatch = 64;
    alignas(Sample) unsigned char batch_bytes[kBatch * sizeof(Sample)];
    Sample* const batch = reinterpret_cast<Sample*>(batch_bytes);
    Sample* o = batch;
    out->reserve(out->size() + left + pending);
    if (pending) new (o++) Sample{s.t, std::bit_cast<double>(s.v)};
    // The loop does not look at maxt: each batch is cut at the first sample after it (times
    // increase: the decoder checks it), and decoding stops there. The samples decoded past
    // maxt, at most one batch, are not copied; an error among them is not one in the range.
    bool past_maxt = false;
    for (bool more = true; more;) {
      Sample* const end = o + std::min(left, static_cast<int>(batch + kBatch - o));
      while (o < end) {
        e = DecodeSample<true>(base, s);
        if (s.pos > s.limit) [[unlikely]] {
          if (!AfterLimit(&s)) e = DecodeError::kTruncated;
          base = tail_;
        }
        if (e != DecodeError::kOk) [[unlikely]] {
          if (e == DecodeError::kZeroZero) {
            e = DecodeError::kOk;
            new (o++) Sample{s.t, std::bit_cast<double>(s.v)};
            // More '0' '0' samples may follow (a constant series): take as many as one load
            // holds, an add and a store each. The run stops before a sample that would pass
            // the bits known to be the chunk's (s.limit) or fail the order check;
            // DecodeSample then takes that one as usual.
            const uint64_t w = BitWindow(base, s.pos);
            if (w >> 62 != 0) continue;
            const uint64_t k =
                std::min({static_cast<uint64_t>(std::countl_zero(w | 1)) / 2, uint64_t{28},
                          static_cast<uint64_t>(end - o), (s.limit - s.pos) / 2});
            const double v = std::bit_cast<double>(s.v);
            Timestamp t = s.t;
            uint64_t i = 0;
            for (; i < k; ++i) {
              const Timestamp next = static_cast<Timestamp>(static_cast<uint64_t>(t) + s.t_delta);
              if (next <= t) break;
              t = next;
              new (o++) Sample{t, v};
            }
            s.t = t;
            s.pos += 2 * i;
            continue;
          }
          more = false;
          break;
        }
        new (o++) Sample{s.t, std::bit_cast<double>(s.v)};
      }
      const int decoded = static_cast<int>(o - batch) - (pending ? 1 : 0);
      if (o != batch && o[-1].t > maxt) {
        // Cut at the first sample after maxt; it stays the current one (At()), as ChunkList
        // Iterator expects, and decoding stops.
        Sample* const cut =
            std::upper_bound(batch, o, maxt, [](Timestamp m, const Sample& x) { return m < x.t; });
        s.t = cut->t;
        s.v = std::bit_cast<uint64_t>(cut->v);
        left -= decoded - static_cast<int>(o - cut - 1);
        o = cut;
        past_maxt = true;
        more = false;
      } else {
        left -= decoded;
      }
      pending = false;
      out->insert(out->end(), batch, o);
      o = batch;
      more = more && left > 0;
    }
    if (past_maxt) {
      // Decoding went on past the sample that is now current: stop here. An error after
      // maxt is not reported.
      e = DecodeError::kOk;
      done_ = true;
    }
  }
  st_ = s;
  read_ = total_ - left;  // samples decoded; the last is the current one
  if (e != DecodeError::kOk) {
    Fail(fmt::format("xor chunk: sample {} of {}: {}", read_, total_, DescribeError(e)));
  }
  return status_;
}

}  // namespace strata
