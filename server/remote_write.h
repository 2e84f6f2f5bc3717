// Remote write 1.0 decoding: snappy block decompression and a zero-copy reader for the
// protobuf WriteRequest.
//
// libprotobuf's generated parser reads about 120 MB/s here, far below the ingest goal, so the
// reader is hand-written: it walks the decompressed bytes once, yields label names and values
// as views into them and copies samples into a reused array, allocating nothing per sample or
// per label once its buffers have grown. tests/server/remote_write_test.cc checks it against
// libprotobuf on random and corrupted requests.
//
// The wire format read (prometheus/prompb, field numbers in brackets):
//   WriteRequest   { repeated TimeSeries timeseries [1]; repeated MetricMetadata metadata [3] }
//   TimeSeries     { repeated Label labels [1]; repeated Sample samples [2];
//                    repeated Exemplar exemplars [3]; repeated Histogram histograms [4] }
//   Label          { string name [1]; string value [2] }
//   Sample         { double value [1]; int64 timestamp [2] }
//   MetricMetadata { MetricType type [1]; string metric_family_name [2]; string help [4];
//                    string unit [5] }
// Exemplars and native histograms are counted, not decoded. Unknown fields are skipped, and a
// known field sent with another wire type is skipped as unknown, as libprotobuf does.
#ifndef STRATA_SERVER_REMOTE_WRITE_H_
#define STRATA_SERVER_REMOTE_WRITE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "src/labels.h"
#include "src/sample.h"

namespace strata {

struct RemoteWriteLimits {
  // The decompressed body; a larger one is rejected before it is decompressed.
  size_t max_decoded_bytes = 64 << 20;
  size_t max_labels_per_series = 128;
  size_t max_label_name_bytes = 1024;
  size_t max_label_value_bytes = 16 * 1024;
};

// Decompresses a snappy block-format body into `out` (its memory is reused across calls).
// Errors: not snappy, or a decompressed length over `max_size` (checked from the header,
// before any work). InvalidArgument either way: the sender must not retry.
absl::Status SnappyDecompress(std::string_view compressed, size_t max_size, std::string* out);

// prompb's MetricMetadata.MetricType.
enum class MetricType : int32_t {
  kUnknown = 0,
  kCounter = 1,
  kGauge = 2,
  kHistogram = 3,
  kGaugeHistogram = 4,
  kSummary = 5,
  kInfo = 6,
  kStateset = 7,
};
// "counter", "gauge", ... as /api/v1/metadata spells them; "unknown" for other values.
std::string_view MetricTypeName(int32_t type);

struct RemoteWriteMetadata {
  int32_t type = 0;  // a MetricType value, or whatever the sender put there
  std::string_view metric_family_name;
  std::string_view help;
  std::string_view unit;
};

// One decoded series. Views point into the decoded body and the decoder.
struct RemoteWriteSeries {
  // For a valid series: sorted by name, labels with empty values left out (an empty value
  // means "absent"). For an invalid one: as sent, for diagnostics only.
  std::span<const LabelView> labels;
  std::span<const Sample> samples;  // in the order sent
  uint32_t exemplars = 0;           // exemplars sent with the series (not decoded)
  uint32_t histograms = 0;          // native histogram samples sent (not supported yet)
  // Why the series is invalid (no __name__, empty or duplicate label name, invalid UTF-8,
  // a limit passed), naming the series; empty when it is valid.
  std::string_view error;
  // The TimeSeries' label fields as sent, when they are one run of bytes (senders put them
  // first); empty otherwise. Equal bytes mean an equal label set.
  std::string_view raw_labels;
  // The caller's `known` callback recognized raw_labels: `labels` is empty (the label
  // fields were neither decoded nor validated) and `error` is empty; the caller knows the
  // series.
  bool known = false;
  bool ok() const { return error.empty(); }
};

// Decodes WriteRequest bytes. Reuse one decoder per connection or thread: its buffers keep
// their capacity across Decode() calls. Not thread-safe.
class WriteRequestDecoder {
 public:
  // Decodes `body` (the decompressed protobuf). The views handed out stay valid until the
  // next Decode() and while `body` lives. A malformed message (truncated, bad varint, bad
  // wire type) is an InvalidArgument error and leaves nothing decoded. Invalid series do not
  // fail the request: each carries its error, so the caller can keep the valid ones and
  // answer 400 for the rest, as Prometheus does.
  absl::Status Decode(std::string_view body, const RemoteWriteLimits& limits = {});
  // The same, but series whose raw label bytes `known` recognizes are marked `known` and
  // their labels are neither decoded nor validated. `known` is called once, after the
  // request's structure has been read and before any label is decoded, with the raw label
  // bytes of every series that has them (contiguous label fields), in series order; it
  // sets known[i] to 1 for the raw[i] it recognizes (known[] starts all 0). All at once, so
  // that the caller can look them up as a batch (a lookup per series waits on memory).
  // REQUIRES: `known` recognizes only bytes that decoded to a valid label set before (equal
  // bytes decode equally). It may see the bytes of a malformed label field of a request
  // that then fails.
  using KnownFn =
      absl::FunctionRef<void(std::span<const std::string_view> raw, std::span<uint8_t> known)>;
  absl::Status Decode(std::string_view body, const RemoteWriteLimits& limits, KnownFn known);

  size_t series_count() const { return series_.size(); }
  RemoteWriteSeries series(size_t i) const;
  std::span<const RemoteWriteMetadata> metadata() const { return metadata_; }

  size_t invalid_series() const { return invalid_series_; }
  size_t total_samples() const { return samples_.size(); }
  // Samples that belong to invalid series.
  size_t invalid_samples() const { return invalid_samples_; }
  // Exemplars and native histogram samples of all series, valid or not.
  size_t total_exemplars() const { return total_exemplars_; }
  size_t total_histograms() const { return total_histograms_; }
  // The error of the first invalid series, or "".
  std::string_view first_error() const;

 private:
  struct SeriesRecord {
    uint32_t label_begin = 0;
    uint32_t label_count = 0;
    uint32_t sample_begin = 0;
    uint32_t sample_count = 0;
    uint32_t exemplars = 0;
    uint32_t histograms = 0;
    int32_t error = -1;    // index into errors_
    size_t raw_begin = 0;  // raw_labels as offsets into the body
    size_t raw_size = 0;
    // Where the label fields are, as offsets into the body: from the first label field to
    // the last one, or to the end of the TimeSeries when other fields come between.
    size_t labels_begin = 0;
    size_t labels_end = 0;
    size_t at = 0;  // the TimeSeries field's offset in the body, for errors
    bool known = false;
  };

  absl::Status DecodeImpl(std::string_view body, const RemoteWriteLimits& limits, KnownFn* known);
  // Reads a TimeSeries' samples and delimits its label fields (decoded later, by
  // DecodeLabels). False when it is malformed.
  bool DecodeTimeSeries(std::string_view msg, size_t at);
  bool DecodeLabels(SeriesRecord& rec);
  void Validate(SeriesRecord& rec, const RemoteWriteLimits& limits);
  void Clear();  // forgets everything decoded
  // Forgets everything decoded and returns the error for a malformed field at `at`.
  absl::Status Malformed(size_t at, std::string_view why);

  std::string_view body_;  // of the last Decode
  std::vector<LabelView> labels_;
  std::vector<Sample> samples_;
  std::vector<SeriesRecord> series_;
  std::vector<RemoteWriteMetadata> metadata_;
  std::vector<std::string> errors_;
  std::vector<std::string_view> raw_;  // for `known`: raw label bytes of series_[raw_series_[i]]
  std::vector<uint32_t> raw_series_;
  std::vector<uint8_t> raw_known_;
  size_t invalid_series_ = 0;
  size_t invalid_samples_ = 0;
  size_t total_exemplars_ = 0;
  size_t total_histograms_ = 0;
};

// The HTTP side of a remote-write request, checked before any decoding, as Prometheus 3
// checks it: Content-Type "application/x-protobuf" (also when absent, for old 1.0 senders)
// optionally with proto=prometheus.WriteRequest; Content-Encoding "snappy" (or absent).
// Anything else, remote write 2.0 included, is 415 Unsupported Media Type with a message
// saying what is accepted. Returns OK or an error whose message is the response text.
absl::Status CheckRemoteWriteHeaders(std::string_view content_type,
                                     std::string_view content_encoding);

// A remote-write body turned into series: snappy-decompressed into `scratch` (reused) and
// decoded into `decoder`, whose views point into `scratch`. On failure `http_status` is
// what to answer: 400 for undecodable snappy or protobuf, 413 for a body that decompresses
// past the limit. Invalid series are not a failure here; see WriteRequestDecoder.
struct RemoteWriteDecodeResult {
  absl::Status status;
  int http_status = 204;
};
RemoteWriteDecodeResult DecodeRemoteWriteBody(std::string_view body,
                                              const RemoteWriteLimits& limits, std::string* scratch,
                                              WriteRequestDecoder* decoder);
// The same with WriteRequestDecoder::Decode's `known` callback.
RemoteWriteDecodeResult DecodeRemoteWriteBody(std::string_view body,
                                              const RemoteWriteLimits& limits, std::string* scratch,
                                              WriteRequestDecoder* decoder,
                                              WriteRequestDecoder::KnownFn known);

}  // namespace strata

#endif  // STRATA_SERVER_REMOTE_WRITE_H_
