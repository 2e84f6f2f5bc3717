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

#include <bit>
#include <cstddef>
#include <cstdint>
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
  // The last sample's time and value. REQUIRES: num_samples() > 0.
  Timestamp last_timestamp() const { return t_; }
  double last_value() const { return std::bit_cast<double>(v_); }
  // Heap bytes held (for the head's memory accounting).
  size_t allocated_bytes() const;

 private:
  // Zeroed room kept after the chunk's last byte (see kSlack in xor_chunk.cc).
  static constexpr size_t kSlackBytes = 32;

  [[gnu::noinline]] absl::Status AppendSlow(Timestamp t, double v);
  void Grow(size_t old_len, size_t new_len);

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
    uint8_t leading = 0xff;        // 0xff until a '11' value sets a window
    uint8_t trailing = 0;
    uint8_t shift = 0;  // leading, or 0 until set
    uint8_t sig = 64;   // 64 - leading - trailing
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
  // Inline so that a caller's loop keeps its own state in registers. Anything unusual goes
  // to AppendSlow, which starts over.
  if (count_ < 2 || t <= t_ || count_ == kXorChunkMaxSamples) [[unlikely]] {
    return AppendSlow(t, v);
  }
  const uint64_t vb = std::bit_cast<uint64_t>(v);
  const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);  // mod 2^64
  const uint64_t dod = delta - t_delta_;
  const uint64_t x = vb ^ v_;
  const uint64_t pos = bit_len_;
  uint64_t code = 0;  // the sample's bits, written in one store
  int len;
  if ((dod | x) == 0) {
    // '0' '0': the commonest sample; the bits are zero already, so only the length moves.
    len = 2;
  } else {
    if (dod == 0) {
      len = 1;
    } else if (dod + 8191 <= 16383) {
      code = uint64_t{0b10} << 14 | (dod & 0x3fff);
      len = 16;
    } else {
      return AppendSlow(t, v);
    }
    if (x == 0) {
      code <<= 1;
      len += 1;
    } else {
      // '10' when x fits the window. With no window yet leading_ is 0xff, which no count of
      // leading zeros reaches; otherwise leading_ <= 31, so Prometheus' clamp of the count
      // to 31 cannot change the comparison.
      const int sig = 64 - leading_ - trailing_;
      if (__builtin_clzll(x) < leading_ || __builtin_ctzll(x) < trailing_ || len + 2 + sig > 57) {
        return AppendSlow(t, v);
      }
      code = (code << 2 | 0b10) << sig | x >> trailing_;
      len += 2 + sig;
    }
  }
  // CapacityFor() changes only where ceil((len + kSlack) / 64) does; growing is for
  // AppendSlow.
  const size_t old_len = (pos + 7) / 8;
  const size_t new_len = (pos + len + 7) / 8;
  if (((old_len + kSlackBytes - 1) ^ (new_len + kSlackBytes - 1)) >= 64) [[unlikely]] {
    return AppendSlow(t, v);
  }
  if (code != 0) PutBits(buf_, pos, code, len);
  bit_len_ = static_cast<uint32_t>(pos + len);
  t_delta_ = delta;
  t_ = t;
  v_ = vb;
  ++count_;
  buf_[0] = static_cast<uint8_t>(count_ >> 8);
  buf_[1] = static_cast<uint8_t>(count_);
  return absl::OkStatus();
}

// Encodes samples into one XOR chunk (the same bytes XorChunkAppender builds).
absl::StatusOr<std::string> EncodeXorChunk(std::span<const Sample> samples);

}  // namespace strata

#endif  // STRATA_STORAGE_XOR_CHUNK_H_
