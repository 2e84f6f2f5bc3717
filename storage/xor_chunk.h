// The Gorilla (XOR) float chunk: delta-of-delta timestamps and XOR-compressed values in one
// bit stream, byte for byte the same as Prometheus' XOR chunk (ChunkEncoding::kXor). The
// layout is documented in docs/format/chunks.md.
//
// What a chunk holds:
// - 0 to 65,535 samples with strictly increasing timestamps; any int64 timestamps (the format
//   works modulo 2^64, so even a step from INT64_MIN to INT64_MAX fits);
// - any float64 value, kept bit for bit (every NaN payload, the stale marker, ±Inf, -0.0).
#ifndef STRATA_STORAGE_XOR_CHUNK_H_
#define STRATA_STORAGE_XOR_CHUNK_H_

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/sample.h"
#include "storage/bitstream.h"
#include "storage/querier.h"

namespace strata {

// Most samples one XOR chunk can hold (its count field is a uint16).
inline constexpr int kXorChunkMaxSamples = 65535;

// Builds an XOR chunk one sample at a time. Small enough to keep one per series in the head
// (40 bytes plus the chunk bytes; the buffer grows in 64-byte steps up to 512 bytes).
// Move-only. REQUIRES: external synchronization.
class XorChunkAppender {
 public:
  // An empty chunk.
  XorChunkAppender() = default;
  // Resumes appending to an existing chunk, e.g. a head chunk reopened after a restart. The
  // result appends exactly as the appender that wrote `chunk` would have. Fails (DataLoss) if
  // `chunk` does not decode, or has nonzero bits after its last sample; zero padding bytes
  // after the last sample (older Prometheus versions wrote one sometimes) are dropped.
  static absl::StatusOr<XorChunkAppender> FromBytes(std::string_view chunk);

  XorChunkAppender(XorChunkAppender&& other) noexcept;
  XorChunkAppender& operator=(XorChunkAppender&& other) noexcept;
  XorChunkAppender(const XorChunkAppender&) = delete;
  XorChunkAppender& operator=(const XorChunkAppender&) = delete;
  ~XorChunkAppender();

  // Appends one sample. Fails, leaving the chunk unchanged, with InvalidArgument if `t` is
  // not after the last sample's time, and with FailedPrecondition if the chunk is full
  // (kXorChunkMaxSamples). Inline (defined below): the common samples never leave the
  // caller's loop.
  absl::Status Append(Timestamp t, double v);

  int num_samples() const { return count_; }
  // The chunk's bytes: a complete chunk at any time. Valid until the next Append, move or
  // destruction.
  std::string_view bytes() const;
  // Asks the CPU to fetch the byte the next sample is written to (a hint; never faults).
  void PrefetchEnd() const { __builtin_prefetch(buf_ + (bit_len_ >> 3), 1); }
  // The same for the chunk's bytes (its first 1 KiB), for a reader about to copy them: a
  // copy that waits for each cache line in turn was the largest cost of selecting a
  // series of the head whose data is not in the cache.
  void PrefetchBytes() const {
    const uint64_t n = std::min<uint64_t>((bit_len_ + 7) >> 3, 1024);
    for (uint64_t off = 0; off < n; off += 64) __builtin_prefetch(buf_ + off);
  }
  // The last sample's time and value. REQUIRES: num_samples() > 0.
  Timestamp last_timestamp() const { return t_; }
  double last_value() const { return std::bit_cast<double>(v_); }
  // Heap bytes held (for the head's memory accounting).
  size_t allocated_bytes() const;

 private:
  // Zeroed room kept after the chunk's last byte (see kSlack in xor_chunk.cc).
  static constexpr size_t kSlackBytes = 32;

  [[gnu::noinline]] absl::Status AppendSlow(Timestamp t, double v);
  // Append's rest for a sample longer than 57 bits: its first n bits, left-aligned in w,
  // then the value's control bits `head` (the low head_len bits) and its sig bits `bits`.
  [[gnu::noinline]] absl::Status AppendLong(Timestamp t, uint64_t vb, uint64_t w, int n,
                                            uint64_t head, int head_len, uint64_t bits, int sig);
  // Records an appended sample that ends at bit `end`.
  void Commit(Timestamp t, uint64_t vb, uint64_t end);
  // Counts one more sample, in count_ and in the chunk's header.
  void CountSample();
  // Whether the buffer may need to grow for a chunk growing from bit `pos` to bit `end`.
  static bool CrossesGrowth(uint64_t pos, uint64_t end);
  // Append's rest when CrossesGrowth: grows the buffer (first, so that a failed allocation
  // leaves the chunk unchanged), then writes the sample's n bits, left-aligned in w.
  // Out of line, so that nothing of Append's lives across a call.
  [[gnu::noinline]] absl::Status AppendGrowing(Timestamp t, uint64_t vb, uint64_t delta, uint64_t w,
                                               int n);
  // Append's rest: the value of a sample whose first n bits (n <= 24; its dod) are
  // left-aligned in w, with x the value XORed with the last one.
  absl::Status AppendValue(Timestamp t, uint64_t vb, uint64_t delta, uint64_t x, uint64_t w, int n);
  // Reallocates the buffer for a chunk growing from `old_len` to `new_len` bytes, if
  // CapacityFor (xor_chunk.cc: the one place of the growth policy) says so.
  [[gnu::noinline]] void Grow(size_t old_len, size_t new_len);

  uint8_t* buf_ = nullptr;  // capacity is CapacityFor(byte length); see xor_chunk.cc
  uint32_t bit_len_ = 0;
  uint16_t count_ = 0;
  uint8_t leading_ = 0xff;  // 0xff: no XOR window yet
  uint8_t trailing_ = 0;
  int64_t t_ = 0;
  uint64_t t_delta_ = 0;
  uint64_t v_ = 0;  // the last value's bits
};

// Iterates the samples of one XOR chunk. Does not copy the bytes: `chunk` must outlive the
// iterator. Corrupt or truncated bytes end the iteration with a DataLoss status; the iterator
// never reads outside `chunk`. Bytes after the last sample are ignored. Not thread-safe.
class XorChunkIterator final : public SampleIterator {
 public:
  // An iterator with no samples; Reset() it to a chunk.
  XorChunkIterator() = default;
  explicit XorChunkIterator(std::string_view chunk) { Reset(chunk); }
  // Starts over on another chunk.
  void Reset(std::string_view chunk);

  bool Next() override;
  bool Seek(Timestamp t) override;
  Sample At() const override { return {st_.t, std::bit_cast<double>(st_.v)}; }
  absl::Status status() const override { return status_; }
  // Decodes the range in one tight loop.
  absl::Status AppendRange(Timestamp mint, Timestamp maxt, std::vector<Sample>* out) override;

  // The count in the chunk's header (0 if the header itself is missing).
  int num_samples() const { return total_; }

  // Decoder state after a sample; public only for the codec's own functions.
  //
  // The decoder reads with 8-byte loads and checks bounds once per sample, not per field:
  // while `pos` is at least 32 bytes before the chunk's end, a sample (at most 145 bits)
  // and the loads it needs cannot pass the end. The last bytes are copied once into the
  // iterator's zero-padded `tail_`, and `pos` then counts from there.
  struct State {
    uint64_t pos = 0;    // bit position in the chunk, or in tail_ when in_tail
    uint64_t limit = 0;  // a sample ending past this needs a look (see AfterLimit)
    int64_t t = 0;
    uint64_t t_delta = 0;
    uint64_t v = 0;
    // The value window. Until a '11' value sets one, Prometheus reads '10' values with
    // (0, 0): 64 significant bits.
    uint64_t mask = ~uint64_t{0};  // ones from bit `trailing` up
    uint64_t shift = 0;            // leading, or 0 until set
    uint64_t sig = 64;             // 64 - leading - trailing
    // The top three bits of a '0' '10' sample whose window bits are in the first loaded
    // word (sig <= 54), or 8 (no such bits) when they are not.
    uint64_t fast_top = 8;
    // The same after a 14-bit dod: the top two bits of a '10' value whose window bits are in
    // the first loaded word (sig <= 39), or 8.
    uint64_t fast_after14 = 8;
    uint8_t leading = 0xff;  // 0xff until a '11' value sets a window
    uint8_t trailing = 0;
    bool in_tail = false;
  };

 private:
  friend class XorChunkAppender;

  static constexpr size_t kTailBytes = 64;

  bool ReadFirstSamples();
  void Fail(std::string message);
  // Places st_ at bit `pos` of the chunk, switching to tail_ if it is near the end.
  void Place(uint64_t pos);
  // Called when a sample ended past s->limit; false if the chunk ended first.
  bool AfterLimit(State* s);
  // Copies the chunk's bytes from `start` on into tail_. REQUIRES: start + 32 >= size_.
  [[gnu::noinline]] void LoadTail(size_t start);
  uint64_t ChunkBitPosition() const;
  const uint8_t* Base(const State& s) const { return s.in_tail ? tail_ : data_; }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  State st_;
  size_t tail_start_ = 0;  // chunk byte where tail_ starts
  int total_ = 0;
  int read_ = 0;
  bool done_ = false;  // at the end or failed
  absl::Status status_;
  uint8_t tail_[kTailBytes] = {};
};

inline absl::Status XorChunkAppender::Append(Timestamp t, double v) {
  // Inline so that a caller's loop keeps its own state in registers. The first two samples,
  // errors, a full chunk and 64-bit dods go to AppendSlow, which starts over. count_ - 2
  // wraps for 0 and 1, so one comparison covers count_ < 2 and a full chunk.
  const int64_t last_t = t_;
  if (static_cast<uint16_t>(count_ - 2) >= kXorChunkMaxSamples - 2 || t <= last_t) [[unlikely]] {
    return AppendSlow(t, v);
  }
  const uint64_t vb = std::bit_cast<uint64_t>(v);
  const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(last_t);  // mod 2^64
  const uint64_t dod = delta - t_delta_;
  const uint64_t x = vb ^ v_;
  // Each bucket calls AppendValue with its own constant code length, so that the value's
  // shifts and length checks fold.
  if (dod == 0) {
    return AppendValue(t, vb, delta, x, 0, 1);
  }
  if (dod + 8191 <= 16383) {  // Prometheus' bucket ranges: see FitsBucket
    return AppendValue(t, vb, delta, x, uint64_t{0b10} << 62 | (dod << 50) >> 2, 16);
  }
  if (dod + 65535 <= 131071) {
    return AppendValue(t, vb, delta, x, uint64_t{0b110} << 61 | (dod << 47) >> 3, 20);
  }
  if (dod + 524287 <= 1048575) {
    return AppendValue(t, vb, delta, x, uint64_t{0b1110} << 60 | (dod << 44) >> 4, 24);
  }
  return AppendSlow(t, v);
}

inline bool XorChunkAppender::CrossesGrowth(uint64_t pos, uint64_t end) {
  // The buffer's size is a function of the byte length that changes at most where
  // (byte length + kSlackBytes) crosses a multiple of 64 (see CapacityFor); in bits, where
  // bits + 8 * kSlackBytes - 1 crosses a multiple of 512.
  constexpr uint64_t kRound = 8 * kSlackBytes - 1;
  return ((pos + kRound) ^ (end + kRound)) >= 512;
}

inline __attribute__((always_inline)) absl::Status XorChunkAppender::AppendValue(
    Timestamp t, uint64_t vb, uint64_t delta, uint64_t x, uint64_t w, int n) {
  if (x == 0) {
    n += 1;  // '0'
  } else {
    const int lead = std::countl_zero(x);
    const int trail = std::countr_zero(x);
    // With no window yet leading_ is 0xff, which no count reaches; otherwise leading_ <= 31,
    // so Prometheus' clamp of the count to 31 cannot change the comparison.
    const int leading = leading_;
    const int trailing = trailing_;
    if (lead >= leading && trail >= trailing) {
      // '10', then the previous window's bits: x << leading left-aligns them.
      const int sig = 64 - leading - trailing;
      if (n + 2 + sig > 57) [[unlikely]] {
        return AppendLong(t, vb, w, n, 0b10, 2, x >> trailing, sig);
      }
      w |= (uint64_t{1} << 63 | (x << leading) >> 2) >> n;
      n += 2 + sig;
    } else {
      // '11', 5 bits of leading zeros (clamped to 31), 6 of significant bits (64 as 0).
      const int clamped = lead < 31 ? lead : 31;
      const int sig = 64 - clamped - trail;
      const uint64_t head = uint64_t{0b11} << 11 | static_cast<uint64_t>(clamped) << 6 |
                            static_cast<uint64_t>(sig & 63);
      leading_ = static_cast<uint8_t>(clamped);
      trailing_ = static_cast<uint8_t>(trail);
      if (n + 13 + sig > 57) [[unlikely]] {
        return AppendLong(t, vb, w, n, head, 13, x >> trail, sig);
      }
      w |= (head << 51 | (x << clamped) >> 13) >> n;
      n += 13 + sig;
    }
  }
  const uint64_t pos = bit_len_;
  const uint64_t end = pos + static_cast<uint64_t>(n);
  if (CrossesGrowth(pos, end)) [[unlikely]] {
    return AppendGrowing(t, vb, delta, w, n);
  }
  // n <= 57, so the sample lies in the 8 bytes from its first. Only that first byte holds
  // earlier bits (the rest are zero), and it is read alone: an 8-byte load would overlap the
  // previous sample's 8-byte store at another offset, which the CPU cannot forward. A '0'
  // '0' sample (w known zero in the dod-0 writer: the test folds away) is there already.
  // (Taking '0' '0' apart before AppendValue, as one branch, made gauges about 8% slower.)
  if (w != 0) {
    uint8_t* const p = buf_ + (pos >> 3);
    StoreBigEndian64(p, uint64_t{*p} << 56 | w >> (pos & 7));
  }
  bit_len_ = static_cast<uint32_t>(end);
  t_delta_ = delta;
  t_ = t;
  v_ = vb;
  CountSample();
  return absl::OkStatus();
}

inline void XorChunkAppender::CountSample() {
  ++count_;
  const uint16_t count_be = __builtin_bswap16(count_);  // the header: big-endian count
  std::memcpy(buf_, &count_be, 2);
}

inline void XorChunkAppender::Commit(Timestamp t, uint64_t vb, uint64_t end) {
  bit_len_ = static_cast<uint32_t>(end);
  t_delta_ = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);
  t_ = t;
  v_ = vb;
  CountSample();
}

// Encodes samples into one XOR chunk, choosing its value windows over the whole chunk: the
// fewest bits the format allows for these samples (docs/format/chunks.md, "Choosing
// windows"), about 11% fewer than XorChunkAppender on scrape-like data. Any reader of the
// format reads it, Prometheus' included. Fails as Append would: InvalidArgument if the times
// are not strictly increasing, FailedPrecondition for more than kXorChunkMaxSamples.
absl::StatusOr<std::string> EncodeXorChunk(std::span<const Sample> samples);

}  // namespace strata

#endif  // STRATA_STORAGE_XOR_CHUNK_H_
