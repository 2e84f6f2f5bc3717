// Big-endian (most significant bit first) bit streams over byte buffers, as the XOR chunk
// format lays out its bits. Header-only so that the codec's loops inline them.
//
// Both classes are small value types meant to live in registers for the span of one encode or
// decode loop; neither owns memory.
#ifndef STRATA_STORAGE_BITSTREAM_H_
#define STRATA_STORAGE_BITSTREAM_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strata {

inline uint64_t LoadBigEndian64(const uint8_t* p) {
  uint64_t x;
  std::memcpy(&x, p, sizeof(x));
  if constexpr (std::endian::native == std::endian::little) x = __builtin_bswap64(x);
  return x;
}

inline void StoreBigEndian64(uint8_t* p, uint64_t x) {
  if constexpr (std::endian::native == std::endian::little) x = __builtin_bswap64(x);
  std::memcpy(p, &x, sizeof(x));
}

// Appends bits to a buffer, starting at any bit position.
//
// REQUIRES: every byte from the start position's byte up to 8 bytes past the last byte the
// writer will touch is writable, and every bit at or after the start position is zero (the
// writer ORs nothing in, but it stores whole 64-bit words, so it rewrites the bytes after the
// end with zeros). The owner of the buffer keeps that slack.
class BitWriter {
 public:
  BitWriter(uint8_t* buf, uint64_t bit_pos)
      : p_(buf + bit_pos / 8), n_(static_cast<int>(bit_pos % 8)) {
    // The partial byte's used bits, left-aligned; its unused low bits are zero (and the whole
    // byte is zero when n_ == 0).
    acc_ = static_cast<uint64_t>(*p_) << 56;
  }

  // Writes the low `n` bits of `v`, most significant first.
  // REQUIRES: 1 <= n <= 64 and v < 2^n.
  void Write(uint64_t v, int n) {
    const int free = 64 - n_;
    if (n < free) {
      acc_ |= v << (free - n);
      n_ += n;
      return;
    }
    const int rest = n - free;  // 0..63 bits that do not fit in this word
    acc_ |= v >> rest;
    StoreBigEndian64(p_, acc_);
    p_ += 8;
    acc_ = rest == 0 ? 0 : v << (64 - rest);
    n_ = rest;
  }

  // Stores the pending bits. Returns the bit position after the last bit written, relative to
  // `buf` as given to the constructor.
  uint64_t Finish(const uint8_t* buf) {
    StoreBigEndian64(p_, acc_);
    return static_cast<uint64_t>(p_ - buf) * 8 + n_;
  }

 private:
  uint8_t* p_;    // the first byte not yet stored
  uint64_t acc_;  // pending bits, left-aligned
  int n_;         // number of pending bits, 0..63
};

// Reads bits from a bounded buffer. Never reads outside [data, data + size).
//
// It keeps up to 64 bits, left-aligned, in a word; Refill() tops it up with one unaligned
// 8-byte load while at least 8 bytes remain and byte by byte near the end. Bits in the word
// past count() are either zero or the stream's true next bits, so Peek() may look past count()
// safely; callers check count() before they Skip().
class BitReader {
 public:
  BitReader() = default;
  // Starts reading at byte `offset` of `data`. REQUIRES: offset <= size.
  BitReader(const uint8_t* data, size_t size, size_t offset)
      : next_(data + offset), end_(data + size) {}

  // Makes count() >= 56 unless the stream ends first.
  void Refill() {
    if (end_ - next_ >= 8) {
      buf_ |= LoadBigEndian64(next_) >> count_;
      // Whole bytes that fit: count_ becomes 56 + count_ % 8, that is count_ | 56.
      next_ += (63 - count_) >> 3;
      count_ |= 56;
    } else {
      while (count_ < 56 && next_ < end_) {
        buf_ |= static_cast<uint64_t>(*next_++) << (56 - count_);
        count_ += 8;
      }
    }
  }

  // Number of bits buffered.
  int count() const { return count_; }
  // The buffered word, next bit first.
  uint64_t word() const { return buf_; }
  // The next n bits. REQUIRES: 1 <= n <= 64.
  uint64_t Peek(int n) const { return buf_ >> (64 - n); }
  // Drops n bits. REQUIRES: 0 <= n <= count() and n < 64.
  void Skip(int n) {
    buf_ <<= n;
    count_ -= n;
  }

  // Reads n bits into *v. Returns false if the stream ends first. REQUIRES: 1 <= n <= 64.
  // Not recursive, so that it inlines and the reader's state can stay in registers.
  bool Read(int n, uint64_t* v) {
    uint64_t hi = 0;
    if (n > 56) {
      if (!Take(32, &hi)) return false;
      n -= 32;
    }
    uint64_t lo;
    if (!Take(n, &lo)) return false;
    *v = hi << n | lo;
    return true;
  }

  // Bits consumed so far, counted from `data`.
  uint64_t BitPosition(const uint8_t* data) const {
    return static_cast<uint64_t>(next_ - data) * 8 - count_;
  }

 private:
  // Reads n <= 56 bits.
  bool Take(int n, uint64_t* v) {
    if (count_ < n) {
      Refill();
      if (count_ < n) return false;
    }
    *v = Peek(n);
    Skip(n);
    return true;
  }

  const uint8_t* next_ = nullptr;  // the next byte not yet in buf_
  const uint8_t* end_ = nullptr;
  uint64_t buf_ = 0;
  int count_ = 0;
};

}  // namespace strata

#endif  // STRATA_STORAGE_BITSTREAM_H_
