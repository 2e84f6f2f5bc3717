#include "server/remote_read.h"

#include <snappy.h>

#include <boost/crc.hpp>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "fmt/format.h"
#include "server/api_handlers.h"
#include "server/protobuf_wire.h"
#include "server/remote_write.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr int kSamplesPerChunk = 120;  // as Prometheus cuts head chunks

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("malformed remote-read request: {}", what));
}

absl::StatusOr<LabelMatcher> DecodeMatcher(std::string_view msg) {
  WireReader r(msg);
  uint64_t type = 0;
  std::string_view name, value;
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return Malformed("bad label matcher");
    bool ok;
    if (f == 1 && w == kVarint) {
      ok = r.ReadVarint(&type);
    } else if (f == 2 && w == kLengthDelimited) {
      ok = r.ReadBytes(&name);
    } else if (f == 3 && w == kLengthDelimited) {
      ok = r.ReadBytes(&value);
    } else {
      ok = r.Skip(f, w);
    }
    if (!ok) return Malformed("bad label matcher");
  }
  MatchType t;
  switch (type) {
    case 0:
      t = MatchType::kEqual;
      break;
    case 1:
      t = MatchType::kNotEqual;
      break;
    case 2:
      t = MatchType::kRegexMatch;
      break;
    case 3:
      t = MatchType::kRegexNoMatch;
      break;
    default:
      return absl::InvalidArgumentError(fmt::format("unknown label matcher type {}", type));
  }
  return LabelMatcher::Make(t, name, value);
}

absl::Status DecodeHints(std::string_view msg, SelectHints* hints) {
  WireReader r(msg);
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return Malformed("bad read hints");
    bool ok;
    uint64_t v = 0;
    if (f == 1 && w == kVarint) {
      ok = r.ReadVarint(&v);
      hints->step_ms = static_cast<int64_t>(v);
    } else if (f == 2 && w == kLengthDelimited) {
      std::string_view func;
      ok = r.ReadBytes(&func);
      hints->func = std::string(func);
    } else if (f == 7 && w == kVarint) {
      ok = r.ReadVarint(&v);
      hints->range_ms = static_cast<int64_t>(v);
    } else {
      ok = r.Skip(f, w);  // start/end (the query's own bounds govern), grouping, by
    }
    if (!ok) return Malformed("bad read hints");
  }
  return absl::OkStatus();
}

absl::StatusOr<RemoteReadQuery> DecodeQuery(std::string_view msg) {
  RemoteReadQuery q;
  WireReader r(msg);
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return Malformed("bad query");
    uint64_t v = 0;
    std::string_view sub;
    if (f == 1 && w == kVarint) {
      if (!r.ReadVarint(&v)) return Malformed("bad query start");
      q.start = static_cast<int64_t>(v);
    } else if (f == 2 && w == kVarint) {
      if (!r.ReadVarint(&v)) return Malformed("bad query end");
      q.end = static_cast<int64_t>(v);
    } else if (f == 3 && w == kLengthDelimited) {
      if (!r.ReadBytes(&sub)) return Malformed("bad label matcher");
      absl::StatusOr<LabelMatcher> m = DecodeMatcher(sub);
      if (!m.ok()) return m.status();
      q.matchers.push_back(*std::move(m));
    } else if (f == 4 && w == kLengthDelimited) {
      if (!r.ReadBytes(&sub)) return Malformed("bad read hints");
      if (absl::Status st = DecodeHints(sub, &q.hints); !st.ok()) return st;
    } else if (!r.Skip(f, w)) {
      return Malformed("bad query");
    }
  }
  bool selective = false;
  for (const LabelMatcher& m : q.matchers) selective = selective || !m.MatchesEmpty();
  if (!selective) {
    return absl::InvalidArgumentError(
        "remote-read query: at least one label matcher must not match the empty string");
  }
  if (q.end < q.start) {
    return absl::InvalidArgumentError(
        fmt::format("remote-read query: end {} is before start {}", q.end, q.start));
  }
  q.hints.mint = q.start;
  q.hints.maxt = q.end;
  return q;
}

void WriteLabels(WireWriter& w, uint32_t field, const Labels& labels) {
  for (const LabelView& l : labels) {
    size_t mark = w.BeginMessage(field);
    w.BytesField(1, l.name);
    w.BytesField(2, l.value);
    w.EndMessage(mark);
  }
}

// Runs one query and calls `fn(labels, samples)` per series, in label order.
template <typename Fn>
absl::Status ForEachSeries(Queryable& db, const RemoteReadQuery& q, Fn&& fn) {
  absl::StatusOr<std::unique_ptr<Querier>> querier = db.MakeQuerier(q.start, q.end);
  if (!querier.ok()) return querier.status();
  absl::StatusOr<std::unique_ptr<SeriesSet>> set = (*querier)->Select(q.matchers, q.hints);
  if (!set.ok()) return set.status();
  std::vector<Sample> samples;
  while ((*set)->Next()) {
    samples.clear();
    std::unique_ptr<SampleIterator> it = (*set)->Samples();
    if (absl::Status st = it->AppendRange(q.start, q.end, &samples); !st.ok()) return st;
    if (samples.empty()) continue;
    if (absl::Status st = fn((*set)->labels(), samples); !st.ok()) return st;
  }
  return (*set)->status();
}

// Appends one frame: uvarint length, CRC-32C big-endian, message.
void AppendFrame(std::string_view msg, std::string* out) {
  WireWriter(out).Varint(msg.size());
  uint32_t crc = Crc32c(msg);
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(crc >> shift));
  out->append(msg);
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

absl::StatusOr<RemoteReadRequest> DecodeReadRequest(std::string_view proto) {
  RemoteReadRequest req;
  WireReader r(proto);
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return Malformed("bad field tag");
    if (f == 1 && w == kLengthDelimited) {
      std::string_view sub;
      if (!r.ReadBytes(&sub)) return Malformed("truncated query");
      absl::StatusOr<RemoteReadQuery> q = DecodeQuery(sub);
      if (!q.ok()) return q.status();
      req.queries.push_back(*std::move(q));
    } else if (f == 2 && w == kVarint) {
      uint64_t v;
      if (!r.ReadVarint(&v)) return Malformed("bad response type");
      req.accepted_response_types.push_back(static_cast<int32_t>(v));
    } else if (f == 2 && w == kLengthDelimited) {  // packed, as proto3 writes repeated enums
      std::string_view packed;
      if (!r.ReadBytes(&packed)) return Malformed("bad response types");
      WireReader p(packed);
      while (!p.done()) {
        uint64_t v;
        if (!p.ReadVarint(&v)) return Malformed("bad response types");
        req.accepted_response_types.push_back(static_cast<int32_t>(v));
      }
    } else if (!r.Skip(f, w)) {
      return Malformed("bad field");
    }
  }
  return req;
}

absl::StatusOr<ReadResponseType> NegotiateResponseType(const RemoteReadRequest& req) {
  if (req.accepted_response_types.empty()) return ReadResponseType::kSamples;
  for (int32_t t : req.accepted_response_types) {
    if (t == 0) return ReadResponseType::kSamples;
    if (t == 1) return ReadResponseType::kStreamedXorChunks;
  }
  return absl::InvalidArgumentError(fmt::format(
      "server does not support any of the requested response types: {}; supported: SAMPLES (0), "
      "STREAMED_XOR_CHUNKS (1)",
      fmt::join(req.accepted_response_types, ", ")));
}

absl::Status BuildSamplesResponse(Queryable& db, const RemoteReadRequest& req,
                                  const RemoteReadLimits& limits, std::string* out) {
  WireWriter w(out);
  int64_t total = 0;
  for (const RemoteReadQuery& q : req.queries) {
    size_t result = w.BeginMessage(1);
    absl::Status st =
        ForEachSeries(db, q, [&](const Labels& labels, const std::vector<Sample>& samples) {
          total += static_cast<int64_t>(samples.size());
          if (total > limits.max_samples) {
            return absl::ResourceExhaustedError(
                fmt::format("exceeded sample limit ({})", limits.max_samples));
          }
          size_t series = w.BeginMessage(1);
          WriteLabels(w, 1, labels);
          for (const Sample& s : samples) {
            size_t sample = w.BeginMessage(2);
            w.DoubleField(1, s.v);
            w.Int64Field(2, s.t);
            w.EndMessage(sample);
          }
          w.EndMessage(series);
          return absl::OkStatus();
        });
    if (!st.ok()) return st;
    w.EndMessage(result);
  }
  return absl::OkStatus();
}

absl::Status BuildStreamedChunksResponse(Queryable& db, const RemoteReadRequest& req,
                                         const RemoteReadLimits& limits, std::string* out) {
  std::string frame;
  for (size_t qi = 0; qi < req.queries.size(); ++qi) {
    absl::Status st = ForEachSeries(
        db, req.queries[qi], [&](const Labels& labels, const std::vector<Sample>& samples) {
          // One ChunkedReadResponse per series, split into several when it grows past the
          // frame limit; each part repeats the labels, as the protocol expects.
          size_t i = 0;
          while (i < samples.size()) {
            frame.clear();
            WireWriter w(&frame);
            size_t series = w.BeginMessage(1);
            WriteLabels(w, 1, labels);
            do {
              // Windows chosen over the whole chunk: about a tenth fewer bytes than the
              // head's appender writes, in the format Prometheus reads.
              size_t n = std::min<size_t>(kSamplesPerChunk, samples.size() - i);
              absl::StatusOr<std::string> chunk =
                  EncodeXorChunk(std::span<const Sample>(samples.data() + i, n));
              if (!chunk.ok()) return chunk.status();
              size_t c = w.BeginMessage(2);
              w.Int64Field(1, samples[i].t);
              w.Int64Field(2, samples[i + n - 1].t);
              w.VarintField(3, 1);  // XOR
              w.BytesField(4, *chunk);
              w.EndMessage(c);
              i += n;
            } while (i < samples.size() && frame.size() < limits.max_bytes_in_frame);
            w.EndMessage(series);
            w.Int64Field(2, static_cast<int64_t>(qi));
            AppendFrame(frame, out);
          }
          return absl::OkStatus();
        });
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

void RegisterRemoteReadHandler(Router& router, ApiContext* ctx) {
  router.Handle("POST", "/api/v1/read", [ctx](const HttpRequest& req, HttpResponder responder) {
    auto r = std::make_shared<HttpResponder>(std::move(responder));
    bool accepted = ctx->query_pool->TrySubmit([ctx, &req, r]() mutable {
      auto text = [](int status, const auto& msg) {
        return HttpResponse::Text(status,
                                  fmt::format("{}\n", std::string_view(msg.data(), msg.size())));
      };
      Storage* storage = ctx->storage.load(std::memory_order_acquire);
      if (storage == nullptr) {
        r->Send(text(503, std::string_view("TSDB not ready")));
        return;
      }
      RemoteReadLimits limits;
      thread_local std::string decoded;
      if (absl::Status st = SnappyDecompress(req.body, limits.max_decoded_bytes, &decoded);
          !st.ok()) {
        r->Send(text(400, st.message()));
        return;
      }
      absl::StatusOr<RemoteReadRequest> read = DecodeReadRequest(decoded);
      if (!read.ok()) {
        r->Send(text(400, read.status().message()));
        return;
      }
      absl::StatusOr<ReadResponseType> type = NegotiateResponseType(*read);
      if (!type.ok()) {
        r->Send(text(400, type.status().message()));
        return;
      }
      HttpResponse resp;
      resp.status = 200;
      resp.compressible = false;
      absl::Status st;
      if (*type == ReadResponseType::kSamples) {
        std::string proto;
        st = BuildSamplesResponse(*storage, *read, limits, &proto);
        if (st.ok()) {
          snappy::Compress(proto.data(), proto.size(), &resp.body);
          resp.content_type = "application/x-protobuf";
          resp.headers.emplace_back("Content-Encoding", "snappy");
        }
      } else {
        st = BuildStreamedChunksResponse(*storage, *read, limits, &resp.body);
        resp.content_type = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
      }
      if (!st.ok()) {
        int code = absl::IsResourceExhausted(st) || absl::IsInvalidArgument(st) ? 400 : 500;
        r->Send(text(code, st.message()));
        return;
      }
      r->Send(std::move(resp));
    });
    if (!accepted && !r->sent()) {
      r->Send(HttpResponse::Text(503, "too many queries in flight; retry later\n"));
    }
  });
}

}  // namespace strata
