#include "server/self_scrape.h"

#include <chrono>

#include "spdlog/spdlog.h"
#include "src/time.h"

namespace strata {
namespace {

constexpr std::string_view kJob = "strata";

}  // namespace

SelfScraper::SelfScraper(const MetricsRegistry* registry, std::string instance, int64_t interval_ms,
                         Sink sink)
    : registry_(registry),
      instance_(std::move(instance)),
      interval_ms_(interval_ms),
      sink_(std::move(sink)) {}

SelfScraper::~SelfScraper() { Stop(); }

void SelfScraper::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void SelfScraper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<GatheredSample> SelfScraper::Scrape() const {
  auto start = std::chrono::steady_clock::now();
  std::vector<GatheredSample> gathered = registry_->Gather();
  std::vector<GatheredSample> out;
  out.reserve(gathered.size() + 3);
  LabelsBuilder b;
  for (GatheredSample& s : gathered) {
    b.Reset(s.labels);
    for (std::string_view target : {std::string_view("job"), std::string_view("instance")}) {
      if (std::string_view own = s.labels.Get(target); !own.empty()) {
        b.Set("exported_" + std::string(target), own);
      }
    }
    b.Set("job", kJob);
    b.Set("instance", instance_);
    out.push_back({b.Build(), s.value});
  }
  double scraped = static_cast<double>(out.size());
  double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto synthetic = [&](std::string_view name, double v) {
    out.push_back({Labels{{kMetricName, name}, {"job", kJob}, {"instance", instance_}}, v});
  };
  synthetic("up", 1);
  synthetic("scrape_duration_seconds", duration);
  synthetic("scrape_samples_scraped", scraped);
  return out;
}

void SelfScraper::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Timestamp now = NowMillis();
    try {
      sink_(now, Scrape());
    } catch (const std::exception& e) {
      spdlog::error("self-scrape failed: {}", e.what());
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

}  // namespace strata
