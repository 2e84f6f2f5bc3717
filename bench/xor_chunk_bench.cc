// XOR chunk codec speed and size on scrape-like data. Figures go to bench/RESULTS.md.
//
// Every benchmark works on 256 series, one 120-sample chunk each (the head's chunk size),
// 15 s apart. Counters reported:
//   ns_per_sample     wall time per sample (encode: one appender per chunk, as the head does;
//                     pack: EncodeXorChunk over a chunk's samples)
//   bytes_per_sample  chunk bytes (header included) per sample
//   items_per_second  samples per second
//
// Arguments: /<shape>/<ts>
//   shape 0 counter: integer-valued, increments 0..500 per scrape, rare resets
//   shape 1 gauge: random walk in integer steps of -8..8 (queue lengths, goroutines)
//   shape 2 constant
//   shape 3 mix: one third each of the above, series interleaved
//   shape 4 float gauge: random walk with full-precision float steps (a worst case, not in
//           the mix)
//   ts 0 exact: every scrape exactly 15 s after the last (a healthy target as Prometheus
//           stores it: the scrape loop snaps jitter within --scrape.timestamp-tolerance,
//           2 ms by default)
//   ts 1 aligned: jitter as below, snapped when within 2 ms
//   ts 2 raw: the same jitter, never snapped (a sender that does not align)
// Jitter model: 90% of scrapes within 2 ms of the ideal time, 10% off by 3..25 ms either way.
// Nothing here is measured from a real fleet; bench/RESULTS.md shows how much each choice
// moves the figures.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "src/sample.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr int kSeries = 256;
constexpr int kChunkSamples = 120;
constexpr int64_t kInterval = 15000;

enum Shape { kCounter = 0, kGauge = 1, kConstant = 2, kMix = 3, kFloatGauge = 4 };

enum TimestampMode { kExact = 0, kAligned = 1, kRaw = 2 };

std::vector<std::vector<Sample>> MakeSeries(int shape, int ts_mode) {
  std::mt19937_64 rng(42);
  std::vector<std::vector<Sample>> all(kSeries);
  for (int s = 0; s < kSeries; ++s) {
    const int kind = shape == kMix ? s % 3 : shape;
    std::vector<Sample>& out = all[s];
    int64_t ideal = 1700000000000 + int64_t(rng() % kInterval);
    double v = kind == kConstant ? double(rng() % 100000) : double(rng() % 1000000);
    if (kind == kFloatGauge) v = double(rng() % 1000000) / 7.0;
    for (int i = 0; i < kChunkSamples; ++i) {
      int64_t jitter = int64_t(rng() % 3);  // 0..2 ms
      if (rng() % 10 == 0) jitter = 3 + int64_t(rng() % 23);
      if (rng() % 2) jitter = -jitter;
      if (ts_mode == kExact || (ts_mode == kAligned && jitter >= -2 && jitter <= 2)) {
        jitter = 0;
      }
      switch (kind) {
        case kCounter:
          v += double(rng() % 501);
          if (rng() % 2000 == 0) v = 0;
          break;
        case kGauge:
          v += double(int64_t(rng() % 17) - 8);
          break;
        case kConstant:
          break;
        case kFloatGauge:
          v += (double(rng() % 2000001) - 1000000.0) / 3.0e6;
          break;
      }
      out.push_back({ideal + jitter, v});
      ideal += kInterval;
    }
  }
  return all;
}

void SetCounters(benchmark::State& state, int64_t samples, int64_t bytes) {
  const double total = double(samples) * double(state.iterations());
  state.SetItemsProcessed(int64_t(total));
  // Rate of (samples / 1e9), inverted: nanoseconds per sample.
  state.counters["ns_per_sample"] =
      benchmark::Counter(total * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_sample"] = double(bytes) / double(samples);
}

// One pass over every series: what each benchmark iteration does. Out of line, so that
// callgrind can count one pass's instructions (see bench/RESULTS.md); returns chunk bytes.
[[gnu::noinline]] int64_t EncodePass(const std::vector<std::vector<Sample>>& series) {
  int64_t bytes = 0;
  for (const auto& s : series) {
    XorChunkAppender a;
    for (const Sample& x : s) {
      absl::Status st = a.Append(x.t, x.v);
      benchmark::DoNotOptimize(st);
    }
    bytes += int64_t(a.bytes().size());
    benchmark::DoNotOptimize(a.bytes().data());
  }
  return bytes;
}

void BM_XorEncode(benchmark::State& state) {
  const auto series = MakeSeries(int(state.range(0)), int(state.range(1)));
  int64_t samples = 0, bytes = 0;
  for (const auto& s : series) samples += int64_t(s.size());
  for (auto _ : state) bytes = EncodePass(series);
  SetCounters(state, samples, bytes);
}

// One chunk per series: as the head's appender builds them, or (packed) as EncodeXorChunk
// does, with windows chosen over the whole chunk.
std::vector<std::string> EncodeAll(const std::vector<std::vector<Sample>>& series, int64_t* samples,
                                   int64_t* bytes, bool packed = false) {
  std::vector<std::string> chunks;
  *samples = *bytes = 0;
  for (const auto& s : series) {
    if (packed) {
      chunks.push_back(EncodeXorChunk(s).value());
    } else {
      XorChunkAppender a;
      for (const Sample& x : s) (void)a.Append(x.t, x.v);
      chunks.emplace_back(a.bytes());
    }
    *samples += int64_t(s.size());
    *bytes += int64_t(chunks.back().size());
  }
  return chunks;
}

// EncodeXorChunk over each series' samples: what remote read and chunk rewrites write.
[[gnu::noinline]] int64_t PackPass(const std::vector<std::vector<Sample>>& series) {
  int64_t bytes = 0;
  for (const auto& s : series) {
    absl::StatusOr<std::string> c = EncodeXorChunk(s);
    bytes += int64_t(c->size());
    benchmark::DoNotOptimize(c->data());
  }
  return bytes;
}

void BM_XorPack(benchmark::State& state) {
  const auto series = MakeSeries(int(state.range(0)), int(state.range(1)));
  int64_t samples = 0, bytes = 0;
  for (const auto& s : series) samples += int64_t(s.size());
  for (auto _ : state) bytes = PackPass(series);
  SetCounters(state, samples, bytes);
}

[[gnu::noinline]] void DecodeRangePass(const std::vector<std::string>& chunks,
                                       std::vector<Sample>* out) {
  for (const std::string& c : chunks) {
    out->clear();
    XorChunkIterator it(c);
    absl::Status st = it.AppendRange(INT64_MIN, INT64_MAX, out);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(out->data());
  }
}

[[gnu::noinline]] double DecodeNextPass(const std::vector<std::string>& chunks) {
  double sum = 0;
  for (const std::string& c : chunks) {
    XorChunkIterator it(c);
    SampleIterator& si = it;
    while (si.Next()) sum += si.At().v;
  }
  return sum;
}

// Bulk decoding, as range queries read a series.
void BM_XorDecodeAppendRange(benchmark::State& state) {
  int64_t samples, bytes;
  const auto chunks =
      EncodeAll(MakeSeries(int(state.range(0)), int(state.range(1))), &samples, &bytes);
  std::vector<Sample> out;
  out.reserve(kChunkSamples);
  for (auto _ : state) DecodeRangePass(chunks, &out);
  SetCounters(state, samples, bytes);
}

// The same over packed chunks (more '10' codes, fewer '11').
void BM_XorDecodePackedAppendRange(benchmark::State& state) {
  int64_t samples, bytes;
  const auto chunks = EncodeAll(MakeSeries(int(state.range(0)), int(state.range(1))), &samples,
                                &bytes, /*packed=*/true);
  std::vector<Sample> out;
  out.reserve(kChunkSamples);
  for (auto _ : state) DecodeRangePass(chunks, &out);
  SetCounters(state, samples, bytes);
}

// Sample by sample through the SampleIterator interface (virtual calls).
void BM_XorDecodeNext(benchmark::State& state) {
  int64_t samples, bytes;
  const auto chunks =
      EncodeAll(MakeSeries(int(state.range(0)), int(state.range(1))), &samples, &bytes);
  for (auto _ : state) {
    double sum = DecodeNextPass(chunks);
    benchmark::DoNotOptimize(sum);
  }
  SetCounters(state, samples, bytes);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"shape", "ts"});
  for (int ts : {kExact, kAligned, kRaw}) {
    for (int shape : {kCounter, kGauge, kConstant, kMix, kFloatGauge}) b->Args({shape, ts});
  }
}

BENCHMARK(BM_XorEncode)->Apply(Args);
BENCHMARK(BM_XorDecodeAppendRange)->Apply(Args);
BENCHMARK(BM_XorDecodeNext)->Apply(Args);
BENCHMARK(BM_XorPack)->Apply(Args);
BENCHMARK(BM_XorDecodePackedAppendRange)->Apply(Args);

}  // namespace
}  // namespace strata
