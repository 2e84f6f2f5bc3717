#include "storage/xor_chunk.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "fmt/format.h"

namespace strata {
namespace {

// Zeroed room kept after the chunk's last byte, so that an append never checks bounds: the
// second sample takes at most a 10-byte uvarint and 77 bits, any later one 145 bits (19
// bytes), and BitWriter stores a whole 8-byte word past the last byte it fills.
constexpr size_t kSlack = 32;

// The buffer size for a chunk of `len` bytes. A pure function of the length, so the appender
// need not store its capacity: it reallocates whenever the result changes.
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

inline void WriteDod(BitWriter& w, int64_t dod) {
  const uint64_t u = static_cast<uint64_t>(dod);
  if (dod == 0) {
    w.Write(0, 1);
  } else if (FitsBucket<14>(dod)) {
    w.Write(uint64_t{0b10} << 14 | (u & 0x3fff), 16);
  } else if (FitsBucket<17>(dod)) {
    w.Write(uint64_t{0b110} << 17 | (u & 0x1ffff), 20);
  } else if (FitsBucket<20>(dod)) {
    w.Write(uint64_t{0b1110} << 20 | (u & 0xfffff), 24);
  } else {
    w.Write(0b1111, 4);
    w.Write(u, 64);
  }
}

// The value as Prometheus' xorWrite writes it. `leading` is 0xff until the first window.
inline void WriteValue(BitWriter& w, uint64_t prev, uint64_t cur, uint8_t* leading,
                       uint8_t* trailing) {
  const uint64_t delta = prev ^ cur;
  if (delta == 0) {
    w.Write(0, 1);
    return;
  }
  int lead = std::countl_zero(delta);
  const int trail = std::countr_zero(delta);
  if (lead >= 32) lead = 31;  // the field has 5 bits
  if (*leading != 0xff && lead >= *leading && trail >= *trailing) {
    // '10': the significant bits fit the previous window.
    const int sig = 64 - *leading - *trailing;
    const uint64_t bits = delta >> *trailing;
    if (sig <= 62) {
      w.Write(uint64_t{0b10} << sig | bits, sig + 2);
    } else {
      w.Write(0b10, 2);
      w.Write(bits, sig);
    }
    return;
  }
  // '11', 5 bits of leading zeros, 6 bits of significant-bit count (64 written as 0).
  *leading = static_cast<uint8_t>(lead);
  *trailing = static_cast<uint8_t>(trail);
  const int sig = 64 - lead - trail;
  const uint64_t header =
      uint64_t{0b11} << 11 | static_cast<uint64_t>(lead) << 6 | static_cast<uint64_t>(sig & 63);
  const uint64_t bits = delta >> trail;
  if (sig <= 51) {
    w.Write(header << sig | bits, 13 + sig);
  } else {
    w.Write(header, 13);
    w.Write(bits, sig);
  }
}

enum class DecodeError { kOk, kTruncated, kBadWindow, kNotIncreasing };

// Reads a value as Prometheus' xorRead does. REQUIRES: s.br.count() >= 13 unless the stream
// ends first.
inline __attribute__((always_inline)) DecodeError DecodeValue(XorChunkIterator::State& s) {
  BitReader& br = s.br;
  const uint64_t w = br.word();
  if ((w >> 63) == 0) {
    if (br.count() < 1) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(1);
    return DecodeError::kOk;
  }
  if ((w >> 62) == 0b11) {
    if (br.count() < 13) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(13);
    const int lead = static_cast<int>((w >> 57) & 31);
    int sig = static_cast<int>((w >> 51) & 63);
    if (sig == 0) sig = 64;
    if (lead + sig > 64) [[unlikely]]
      return DecodeError::kBadWindow;
    s.leading = static_cast<uint8_t>(lead);
    s.trailing = static_cast<uint8_t>(64 - lead - sig);
    s.sig = static_cast<uint8_t>(sig);
  } else {
    // '10': the previous window; before any, Prometheus' reader uses (0, 0).
    if (br.count() < 2) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(2);
  }
  const int sig = s.sig;
  uint64_t bits;
  if (sig <= br.count()) {  // so sig < 64
    bits = br.Peek(sig);
    br.Skip(sig);
  } else if (!br.Read(sig, &bits)) [[unlikely]] {
    return DecodeError::kTruncated;
  }
  s.v ^= bits << s.trailing;
  return DecodeError::kOk;
}

// Reads one sample after the second.
inline __attribute__((always_inline)) DecodeError DecodeSample(XorChunkIterator::State& s) {
  BitReader& br = s.br;
  // Refilling only below 32 bits (enough for any dod but the 64-bit one) skips about half
  // the refills; the checks below catch the rest.
  if (br.count() < 32) br.Refill();
  const uint64_t w = br.word();
  uint64_t dod;
  if ((w >> 62) == 0) {
    // '0' '0': same interval, same value; the commonest sample of all.
    if (br.count() < 2) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(2);
    const int64_t t = static_cast<int64_t>(static_cast<uint64_t>(s.t) + s.t_delta);
    if (t <= s.t) [[unlikely]]
      return DecodeError::kNotIncreasing;
    s.t = t;
    return DecodeError::kOk;
  }
  if ((w >> 63) == 0) {
    // '01': count() >= 32 here, or Refill() ran and the bits past count() are zero (unless
    // count() >= 56), so the 1 bit is a real one and count() >= 2.
    br.Skip(1);
    dod = 0;
  } else if ((w >> 62) == 0b10) {
    if (br.count() < 16) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(16);
    dod = (w >> 48) & 0x3fff;
    if (dod > (1u << 13)) dod -= 1u << 14;
  } else if ((w >> 61) == 0b110) {
    if (br.count() < 20) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(20);
    dod = (w >> 44) & 0x1ffff;
    if (dod > (1u << 16)) dod -= 1u << 17;
  } else if ((w >> 60) == 0b1110) {
    if (br.count() < 24) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(24);
    dod = (w >> 40) & 0xfffff;
    if (dod > (1u << 19)) dod -= 1u << 20;
  } else [[unlikely]] {
    if (br.count() < 4) [[unlikely]]
      return DecodeError::kTruncated;
    br.Skip(4);
    if (!br.Read(64, &dod)) [[unlikely]]
      return DecodeError::kTruncated;
  }
  // Modulo 2^64, as the encoder computed it.
  s.t_delta += dod;
  const int64_t t = static_cast<int64_t>(static_cast<uint64_t>(s.t) + s.t_delta);
  if (t <= s.t) [[unlikely]]
    return DecodeError::kNotIncreasing;
  s.t = t;
  if (br.count() < 13) br.Refill();
  return DecodeValue(s);
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

void XorChunkAppender::Grow(size_t old_len, size_t new_len) {
  const size_t old_cap = buf_ == nullptr ? 0 : CapacityFor(old_len);
  const size_t new_cap = CapacityFor(new_len);
  if (new_cap == old_cap) return;
  void* p = std::realloc(buf_, new_cap);
  if (p == nullptr) throw std::bad_alloc();
  buf_ = static_cast<uint8_t*>(p);
  if (new_cap > old_cap) std::memset(buf_ + old_cap, 0, new_cap - old_cap);
}

// The first two samples (byte-aligned varints) and the errors.
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
  // count_ == 1. Differences are taken modulo 2^64: t > t_ makes delta the true distance
  // even when it does not fit an int64.
  const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);
  const size_t old_len = ByteLength(bit_len_);
  // The first sample ends on a byte boundary.
  uint64_t pos = bit_len_ + PutUvarint(buf_ + bit_len_ / 8, delta) * 8;
  BitWriter w(buf_, pos);
  WriteValue(w, v_, vb, &leading_, &trailing_);
  pos = w.Finish(buf_);
  bit_len_ = static_cast<uint32_t>(pos);
  t_delta_ = delta;
  t_ = t;
  v_ = vb;
  count_ = 2;
  PutHeaderCount(buf_, count_);
  Grow(old_len, ByteLength(pos));
  return absl::OkStatus();
}

absl::Status XorChunkAppender::Append(Timestamp t, double v) {
  if (count_ < 2 || t <= t_ || count_ == kXorChunkMaxSamples) [[unlikely]] {
    return AppendSlow(t, v);
  }
  const uint64_t vb = std::bit_cast<uint64_t>(v);
  const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);  // mod 2^64
  const size_t old_len = ByteLength(bit_len_);
  uint64_t pos = bit_len_;
  if (delta == t_delta_ && vb == v_) {
    // '0' '0': the commonest sample; the bits are zero already, so only the length moves.
    pos += 2;
  } else {
    BitWriter w(buf_, pos);
    WriteDod(w, static_cast<int64_t>(delta - t_delta_));
    WriteValue(w, v_, vb, &leading_, &trailing_);
    pos = w.Finish(buf_);
  }
  bit_len_ = static_cast<uint32_t>(pos);
  t_delta_ = delta;
  t_ = t;
  v_ = vb;
  ++count_;
  PutHeaderCount(buf_, count_);
  // CapacityFor() changes only where ceil((len + kSlack) / 64) does; check that cheaply.
  const size_t new_len = ByteLength(pos);
  if (((old_len + kSlack - 1) ^ (new_len + kSlack - 1)) >= 64) [[unlikely]] {
    Grow(old_len, new_len);
  }
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
  const uint64_t end_bit = it.st_.br.BitPosition(data);
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

absl::StatusOr<std::string> EncodeXorChunk(std::span<const Sample> samples) {
  XorChunkAppender a;
  for (const Sample& s : samples) {
    if (absl::Status st = a.Append(s.t, s.v); !st.ok()) return st;
  }
  return std::string(a.bytes());
}

// ---- XorChunkIterator ----

void XorChunkIterator::Reset(std::string_view chunk) {
  data_ = reinterpret_cast<const uint8_t*>(chunk.data());
  size_ = chunk.size();
  st_ = State{};
  read_ = 0;
  done_ = false;
  status_ = absl::OkStatus();
  if (size_ < 2) {
    total_ = 0;
    Fail(fmt::format("xor chunk: {} bytes, too short for its 2-byte header", size_));
    return;
  }
  total_ = data_[0] << 8 | data_[1];
  st_.br = BitReader(data_, size_, 2);
}

void XorChunkIterator::Fail(std::string message) {
  status_ = absl::DataLossError(std::move(message));
  done_ = true;
}

bool XorChunkIterator::ReadFirstSamples() {
  size_t pos = st_.br.BitPosition(data_) / 8;
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
    st_.br = BitReader(data_, size_, pos + 8);
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
    st_.br = BitReader(data_, size_, pos);
    st_.br.Refill();
    if (DecodeError e = DecodeValue(st_); e != DecodeError::kOk) {
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
  if (DecodeError e = DecodeSample(st_); e != DecodeError::kOk) {
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
  while (read_ < 2) {
    if (!Next()) return status_;
    if (st_.t > maxt) return status_;
    if (st_.t >= mint) out->push_back(At());
  }
  // Two loops, each with as few live values as possible: skip to mint, then copy to maxt.
  State s = st_;
  int left = total_ - read_;
  DecodeError e = DecodeError::kOk;
  bool pending = false;  // s holds a sample at or after mint not yet copied
  if (s.t < mint) {
    while (left > 0) {
      e = DecodeSample(s);
      if (e != DecodeError::kOk) break;
      --left;
      if (s.t >= mint) {
        pending = true;
        break;
      }
    }
  }
  if (e == DecodeError::kOk && !(pending && s.t > maxt)) {
    const size_t base = out->size();
    out->resize(base + left + pending);
    Sample* const first = out->data() + base;
    Sample* o = first;
    if (pending) *o++ = {s.t, std::bit_cast<double>(s.v)};
    while (left > 0) {
      e = DecodeSample(s);
      if (e != DecodeError::kOk) break;
      --left;
      if (s.t > maxt) break;
      *o++ = {s.t, std::bit_cast<double>(s.v)};
    }
    out->resize(base + (o - first));
  }
  st_ = s;
  read_ = total_ - left;  // samples decoded; the last is the current one
  if (e != DecodeError::kOk) {
    Fail(fmt::format("xor chunk: sample {} of {}: {}", read_, total_, DescribeError(e)));
  }
  return status_;
}

}  // namespace strata
