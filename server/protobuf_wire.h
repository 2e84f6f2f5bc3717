// Protobuf wire format, by hand: a bounds-checked reader over bytes (zero-copy views) and an
// appending writer. Used where libprotobuf is too slow (remote write) or would be the only
// reason to depend on it (remote read). Field numbers and types are the caller's business.
#ifndef STRATA_SERVER_PROTOBUF_WIRE_H_
#define STRATA_SERVER_PROTOBUF_WIRE_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

inline constexpr int kMaxGroupDepth = 64;

// A cursor over protobuf wire bytes. Every read checks bounds; on failure the cursor's
// position is unspecified and the caller gives up on the whole message.
class WireReader {
 public:
  explicit WireReader(std::string_view buf)
      : begin_(reinterpret_cast<const uint8_t*>(buf.data())), p_(begin_), end_(p_ + buf.size()) {}

  bool done() const { return p_ == end_; }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }

  bool ReadVarint(uint64_t* out) {
    // Fast path: one byte (field tags, small lengths).
    if (p_ < end_ && *p_ < 0x80) {
      *out = *p_++;
      return true;
    }
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) return false;
      uint8_t b = *p_++;
      result |= static_cast<uint64_t>(b & 0x7f) << shift;  // bits past 64 are dropped
      if (b < 0x80) {
        *out = result;
        return true;
      }
    }
    return false;  // more than ten bytes
  }

  bool ReadTag(uint32_t* field, uint32_t* wire) {
    uint64_t tag;
    if (!ReadVarint(&tag) || tag > UINT32_MAX) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }

  bool ReadFixed64(uint64_t* out) {
    if (end_ - p_ < 8) return false;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p_[i];  // little-endian
    p_ += 8;
    *out = v;
    return true;
  }

  bool ReadBytes(std::string_view* out) {
    uint64_t len;
    if (!ReadVarint(&len) || len > static_cast<uint64_t>(end_ - p_)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), static_cast<size_t>(len));
    p_ += len;
    return true;
  }

  // Skips the length-delimited fields that follow, while their tag is the one byte `tag`
  // and their length fits in one byte, and returns how many. Stops before anything else
  // (another field, a longer length, a length past the end), which the caller then reads
  // as usual. Remote write's label fields, one after another, cost a few instructions each.
  size_t SkipShortFields(uint8_t tag) {
    size_t n = 0;
    while (end_ - p_ >= 2 && p_[0] == tag && p_[1] < 0x80 && p_[1] <= end_ - p_ - 2) {
      p_ += 2 + p_[1];
      ++n;
    }
    return n;
  }

  // Skips the value of a field whose tag was just read.
  bool Skip(uint32_t field, uint32_t wire, int depth = 0) {
    switch (wire) {
      case kVarint: {
        uint64_t v;
        return ReadVarint(&v);
      }
      case kFixed64:
        if (end_ - p_ < 8) return false;
        p_ += 8;
        return true;
      case kLengthDelimited: {
        std::string_view v;
        return ReadBytes(&v);
      }
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      case kStartGroup: {
        if (depth >= kMaxGroupDepth) return false;
        for (;;) {
          uint32_t f, w;
          if (!ReadTag(&f, &w)) return false;
          if (w == kEndGroup) return f == field;
          if (!Skip(f, w, depth + 1)) return false;
        }
      }
      default:  // an end-group tag outside a group, or wire types 6 and 7
        return false;
    }
  }

 private:
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
};

// Appends protobuf fields to a string. A nested message is written by Begin/EndMessage,
// which reserve a length prefix and fill it in afterwards (the prefix is sized for the
// final length, moving the body only when it outgrows the reserved byte).
class WireWriter {
 public:
  explicit WireWriter(std::string* out) : out_(out) {}

  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Tag(uint32_t field, WireType wire) { Varint(uint64_t{field} << 3 | wire); }

  void VarintField(uint32_t field, uint64_t v) {
    Tag(field, kVarint);
    Varint(v);
  }
  // int64 fields are varints of the two's complement bits (negative values take 10 bytes).
  void Int64Field(uint32_t field, int64_t v) { VarintField(field, static_cast<uint64_t>(v)); }
  void DoubleField(uint32_t field, double v) {
    Tag(field, kFixed64);
    uint64_t bits = std::bit_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) out_->push_back(static_cast<char>(bits >> (8 * i)));
  }
  void BytesField(uint32_t field, std::string_view v) {
    Tag(field, kLengthDelimited);
    Varint(v.size());
    out_->append(v);
  }

  // Starts a length-delimited field holding a message; returns a mark for EndMessage.
  size_t BeginMessage(uint32_t field) {
    Tag(field, kLengthDelimited);
    out_->push_back(0);  // one byte reserved for the length
    return out_->size();
  }
  void EndMessage(size_t mark) {
    const size_t len = out_->size() - mark;
    if (len < 0x80) {
      (*out_)[mark - 1] = static_cast<char>(len);
      return;
    }
    std::string prefix;
    WireWriter(&prefix).Varint(len);
    out_->replace(mark - 1, 1, prefix);
  }

  std::string* out() { return out_; }

 private:
  std::string* out_;
};

}  // namespace strata

#endif  // STRATA_SERVER_PROTOBUF_WIRE_H_
