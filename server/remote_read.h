// Remote read at POST /api/v1/read, so a Prometheus (or anything speaking the protocol) can
// use Strata as its long-term store with `remote_read`.
//
// Wire format (prometheus/prompb, field numbers in brackets):
//   ReadRequest  { repeated Query queries [1]; repeated ResponseType accepted_response_types [2] }
//   Query        { int64 start_timestamp_ms [1]; int64 end_timestamp_ms [2];
//                  repeated LabelMatcher matchers [3]; ReadHints hints [4] }
//   LabelMatcher { Type type [1] (EQ 0, NEQ 1, RE 2, NRE 3); string name [2]; string value [3] }
//   ReadHints    { int64 step_ms [1]; string func [2]; int64 start_ms [3]; int64 end_ms [4];
//                  repeated string grouping [5]; bool by [6]; int64 range_ms [7] }
// Responses, by the first accepted type Strata implements (SAMPLES when none is listed):
//   SAMPLES (0): one snappy-compressed ReadResponse { repeated QueryResult results [1] },
//     QueryResult { repeated TimeSeries timeseries [1] }, TimeSeries { labels [1]; samples [2] }.
//   STREAMED_XOR_CHUNKS (1): a sequence of frames, each uvarint(length), the CRC-32C
//     (Castagnoli) of the message as 4 big-endian bytes, then a ChunkedReadResponse
//     { repeated ChunkedSeries chunked_series [1]; int64 query_index [2] },
//     ChunkedSeries { repeated Label labels [1]; repeated Chunk chunks [2] },
//     Chunk { int64 min_time_ms [1]; int64 max_time_ms [2]; Encoding type [3] (XOR 1); bytes data
//     [4] }. Series follow each other in label order; a series may span frames, never interleave.
//     XOR chunk bytes are Prometheus' own (docs/format/chunks.md), cut at 120 samples.
#ifndef STRATA_SERVER_REMOTE_READ_H_
#define STRATA_SERVER_REMOTE_READ_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/http_server.h"
#include "src/matcher.h"
#include "src/sample.h"
#include "storage/querier.h"

namespace strata {

struct ApiContext;

enum class ReadResponseType : int32_t { kSamples = 0, kStreamedXorChunks = 1 };

struct RemoteReadQuery {
  Timestamp start = 0;
  Timestamp end = 0;
  std::vector<LabelMatcher> matchers;
  SelectHints hints;  // mint/maxt are the query's start and end
};

struct RemoteReadRequest {
  std::vector<RemoteReadQuery> queries;
  std::vector<int32_t> accepted_response_types;  // as sent
};

struct RemoteReadLimits {
  // Samples per SAMPLES response (Prometheus' --storage.remote.read-sample-limit default).
  int64_t max_samples = 50'000'000;
  // Bytes of one streamed frame's message (--storage.remote.read-max-bytes-in-frame).
  size_t max_bytes_in_frame = 1 << 20;
  size_t max_decoded_bytes = 32 << 20;
};

// Decodes the (decompressed) ReadRequest. InvalidArgument for malformed protobuf, unknown
// matcher types, invalid regular expressions, or a query whose matchers all match the
// empty string.
absl::StatusOr<RemoteReadRequest> DecodeReadRequest(std::string_view proto);

// The response type to use: the first accepted one that is implemented, SAMPLES when the
// list is empty; InvalidArgument when none is implemented.
absl::StatusOr<ReadResponseType> NegotiateResponseType(const RemoteReadRequest& req);

// Builds the uncompressed ReadResponse for every query of `req`. ResourceExhausted when the
// samples pass `limits.max_samples`.
absl::Status BuildSamplesResponse(Queryable& db, const RemoteReadRequest& req,
                                  const RemoteReadLimits& limits, std::string* out);

// Appends the frames of the streamed response for every query of `req` to `out`.
absl::Status BuildStreamedChunksResponse(Queryable& db, const RemoteReadRequest& req,
                                         const RemoteReadLimits& limits, std::string* out);

// CRC-32C (Castagnoli), as streamed frames carry it.
uint32_t Crc32c(std::string_view data);

// Registers POST /api/v1/read. Runs on the context's query pool; errors are plain text with
// 400 for a bad request and 500 for storage failures, as Prometheus answers them.
// REQUIRES: `ctx` outlives the server.
void RegisterRemoteReadHandler(Router& router, ApiContext* ctx);

}  // namespace strata

#endif  // STRATA_SERVER_REMOTE_READ_H_
