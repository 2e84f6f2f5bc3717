#include "server/self_scrape.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

const GatheredSample* Find(const std::vector<GatheredSample>& samples, const Labels& labels) {
  for (const GatheredSample& s : samples) {
    if (s.labels == labels) return &s;
  }
  return nullptr;
}

TEST(SelfScraper, LabelsSamplesAsAScrapeOfJobStrata) {
  MetricsRegistry reg;
  reg.GetCounter("strata_test_events_total", "Events.")->Add(3);
  reg.CounterFamily("strata_test_by_job_total", "With a job label.", {"job"})
      ->With({"upstream"})
      ->Inc();
  SelfScraper scraper(&reg, "127.0.0.1:9090", 15000, nullptr);
  std::vector<GatheredSample> got = scraper.Scrape();

  const GatheredSample* events = Find(got, Labels{{"__name__", "strata_test_events_total"},
                                                  {"instance", "127.0.0.1:9090"},
                                                  {"job", "strata"}});
  ASSERT_NE(events, nullptr);
  EXPECT_EQ(events->value, 3);
  const GatheredSample* renamed = Find(got, Labels{{"__name__", "strata_test_by_job_total"},
                                                   {"exported_job", "upstream"},
                                                   {"instance", "127.0.0.1:9090"},
                                                   {"job", "strata"}});
  ASSERT_NE(renamed, nullptr);
  EXPECT_EQ(renamed->value, 1);
  const GatheredSample* up =
      Find(got, Labels{{"__name__", "up"}, {"instance", "127.0.0.1:9090"}, {"job", "strata"}});
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->value, 1);
  const GatheredSample* scraped = Find(got, Labels{{"__name__", "scrape_samples_scraped"},
                                                   {"instance", "127.0.0.1:9090"},
                                                   {"job", "strata"}});
  ASSERT_NE(scraped, nullptr);
  EXPECT_EQ(scraped->value, 2);
  for (const GatheredSample& s : got) {
    EXPECT_EQ(s.labels.Get("job"), "strata") << s.labels.ToString();
  }
}

TEST(SelfScraper, ScrapesRepeatedlyUntilStopped) {
  MetricsRegistry reg;
  Counter* c = reg.GetCounter("strata_test_ticks_total", "Ticks.");
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Timestamp> times;
  SelfScraper scraper(&reg, "host:1", 1, [&](Timestamp t, std::vector<GatheredSample> s) {
    c->Inc();
    std::lock_guard<std::mutex> lock(mu);
    times.push_back(t);
    EXPECT_FALSE(s.empty());
    cv.notify_all();
  });
  scraper.Start();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return times.size() >= 3; });
  }
  scraper.Stop();
  size_t after_stop = times.size();
  EXPECT_GE(after_stop, 3u);
  EXPECT_LE(times.front(), times.back());
  scraper.Stop();  // idempotent
  EXPECT_EQ(times.size(), after_stop);
}

}  // namespace
}  // namespace strata
