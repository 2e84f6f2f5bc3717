// The compacted block codec (storage/compacted_block.cc) on node-exporter-like data
// (bench/node_exporter_data.h): size against XOR chunks, encode and decode speed.
// Figures go to bench/RESULTS.md ("Compacted partitions").
//
//   BM_CompactedEncode/noisy/window_h   4 hosts x 200 series, one block per host and window
//                                       of window_h hours (24 = one partition). Counters:
//                                       bytes_per_sample of the blocks, xor_bytes_per_sample
//                                       of 120-sample XOR chunks with their 1-byte encoding
//                                       and span header (no keys), ratio = compacted / XOR.
//                                       items_per_second: samples encoded per second.
//   BM_CompactedDecode/noisy/window_h   every series of every block decoded; ns_per_sample
//                                       includes decompressing the blocks.
//   BM_CompactedDecodeColumns/...       the same with the blocks already decompressed.

#include <string>
#include <vector>

#include "bench/node_exporter_data.h"
#include "benchmark/benchmark.h"
#include "storage/compacted_block.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr int kHosts = 4;
constexpr int kScrapesPerHour = 240;

struct Blocks {
  std::vector<std::string> values;
  int64_t samples = 0;
  int64_t xor_bytes = 0;
};

std::vector<std::vector<CompactedSeries>> Groups(bool noisy, int window_h) {
  std::vector<std::vector<CompactedSeries>> groups;
  SeriesRef ref = 1;
  const Timestamp window = int64_t{window_h} * 3600 * 1000;
  for (int h = 0; h < kHosts; ++h) {
    auto host = bench::NodeExporterHost(h, 24 * kScrapesPerHour, noisy);
    const Timestamp start = 1700000000000 - 1700000000000 % window;
    for (int w = 0; w <= 24 / window_h; ++w) {
      std::vector<CompactedSeries> g;
      for (size_t i = 0; i < host.size(); ++i) {
        CompactedSeries s{.ref = ref + i, .samples = {}};
        for (const Sample& x : host[i].samples) {
          if (x.t >= start + w * window && x.t < start + (w + 1) * window) s.samples.push_back(x);
        }
        if (!s.samples.empty()) g.push_back(std::move(s));
      }
      if (!g.empty()) groups.push_back(std::move(g));
    }
    ref += host.size();
  }
  return groups;
}

int64_t XorBytes(const std::vector<Sample>& s) {
  int64_t bytes = 0;
  for (size_t i = 0; i < s.size(); i += 120) {
    std::span<const Sample> part(s.data() + i, std::min<size_t>(120, s.size() - i));
    bytes += static_cast<int64_t>(EncodeXorChunk(part).value().size()) + 1 +
             (part.back().t - part.front().t >= 16384 ? 3 : 2);
  }
  return bytes;
}

void SetRate(benchmark::State& state, int64_t samples) {
  const double total = double(samples) * double(state.iterations());
  state.SetItemsProcessed(int64_t(total));
  state.counters["ns_per_sample"] =
      benchmark::Counter(total * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_CompactedEncode(benchmark::State& state) {
  auto groups = Groups(state.range(0) != 0, static_cast<int>(state.range(1)));
  int64_t samples = 0, xor_bytes = 0, bytes = 0;
  for (const auto& g : groups) {
    for (const auto& s : g) {
      samples += static_cast<int64_t>(s.samples.size());
      xor_bytes += XorBytes(s.samples);
    }
  }
  for (auto _ : state) {
    bytes = 0;
    for (const auto& g : groups) bytes += static_cast<int64_t>(EncodeCompactedBlock(g)->size());
  }
  SetRate(state, samples);
  state.counters["bytes_per_sample"] = double(bytes) / double(samples);
  state.counters["xor_bytes_per_sample"] = double(xor_bytes) / double(samples);
  state.counters["ratio"] = double(bytes) / double(xor_bytes);
}

void BM_CompactedDecode(benchmark::State& state) {
  auto groups = Groups(state.range(0) != 0, static_cast<int>(state.range(1)));
  std::vector<std::string> values;
  int64_t samples = 0;
  for (const auto& g : groups) {
    values.push_back(*EncodeCompactedBlock(g));
    for (const auto& s : g) samples += static_cast<int64_t>(s.samples.size());
  }
  std::vector<Sample> out;
  for (auto _ : state) {
    for (const std::string& v : values) {
      auto b = CompactedBlock::Open(v);
      for (size_t i = 0; i < b->num_series(); ++i) {
        out.clear();
        if (!b->Decode(i, &out).ok()) state.SkipWithError("decode");
        benchmark::DoNotOptimize(out.data());
      }
    }
  }
  SetRate(state, samples);
}

void BM_CompactedDecodeColumns(benchmark::State& state) {
  auto groups = Groups(state.range(0) != 0, static_cast<int>(state.range(1)));
  std::vector<CompactedBlock> blocks;
  int64_t samples = 0;
  for (const auto& g : groups) {
    blocks.push_back(*CompactedBlock::Open(*EncodeCompactedBlock(g)));
    for (const auto& s : g) samples += static_cast<int64_t>(s.samples.size());
  }
  std::vector<Sample> out;
  for (auto _ : state) {
    for (const CompactedBlock& b : blocks) {
      for (size_t i = 0; i < b.num_series(); ++i) {
        out.clear();
        if (!b.Decode(i, &out).ok()) state.SkipWithError("decode");
        benchmark::DoNotOptimize(out.data());
      }
    }
  }
  SetRate(state, samples);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"noisy", "window_h"});
  for (int noisy : {0, 1}) {
    for (int w : {2, 24}) b->Args({noisy, w});
  }
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_CompactedEncode)->Apply(Args);
BENCHMARK(BM_CompactedDecode)->Apply(Args);
BENCHMARK(BM_CompactedDecodeColumns)->Apply(Args);

}  // namespace
}  // namespace strata
