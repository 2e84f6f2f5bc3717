// The server's scrape of itself: every --self-scrape.interval, the metrics registry is
// gathered into samples labelled as a Prometheus scrape of job="strata" would be, and handed
// to a sink (the storage appender, once wired), so dashboards have data at first start.
#ifndef STRATA_SERVER_SELF_SCRAPE_H_
#define STRATA_SERVER_SELF_SCRAPE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/metrics.h"
#include "src/sample.h"

namespace strata {

class SelfScraper {
 public:
  // Receives one scrape: every sample at time `t`. Called on the scraper's thread.
  using Sink = std::function<void(Timestamp t, std::vector<GatheredSample> samples)>;

  // `instance` is the value of the instance label (the listen address, as Prometheus would
  // name the target). REQUIRES: `registry` outlives the scraper; interval_ms > 0.
  SelfScraper(const MetricsRegistry* registry, std::string instance, int64_t interval_ms,
              Sink sink);
  ~SelfScraper();  // Stop()
  SelfScraper(const SelfScraper&) = delete;
  SelfScraper& operator=(const SelfScraper&) = delete;

  // Scrapes at once, then every interval, on a thread of its own.
  void Start();
  // Stops and joins; a scrape in progress finishes first. Idempotent.
  void Stop();

  // One scrape on the caller's thread. The samples carry job="strata" and
  // instance=<instance>; a metric's own job or instance label becomes exported_job or
  // exported_instance, as with honor_labels: false. Like a Prometheus scrape it adds up (1),
  // scrape_duration_seconds and scrape_samples_scraped.
  std::vector<GatheredSample> Scrape() const;

 private:
  void Run();

  const MetricsRegistry* registry_;
  std::string instance_;
  int64_t interval_ms_;
  Sink sink_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace strata

#endif  // STRATA_SERVER_SELF_SCRAPE_H_
