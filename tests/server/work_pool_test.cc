#include "server/work_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/metrics.h"
#include "tests/server/http_test_client.h"

namespace strata {
namespace {

using ::strata::testing::TestHttpClient;
using ::testing::HasSubstr;

// A gate tasks wait at until the test opens it.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(WorkPool, RunsTasksOnAllThreadsAtOnce) {
  WorkPool pool(4, 0);
  // Each task waits until all four are running: this only finishes if they run concurrently.
  std::latch all_running(4);
  std::atomic<int> done{0};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] {
      all_running.arrive_and_wait();
      ++done;
    }));
  }
  pool.Shutdown();
  EXPECT_EQ(done.load(), 4);
}

// Tasks one after another go to the worker that was idle for the shortest time, so that
// they find its caches warm; a shared wake-up used to pick the longest-idle one, a different
// thread each time.
TEST(WorkPool, TasksOneAfterAnotherRunOnTheSameWorker) {
  WorkPool pool(4, 0);
  // First every worker is started and idle (threads start in no set order): four tasks
  // that wait for one another occupy all four, and once none runs, all four wait again.
  std::latch all_running(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool.TrySubmit([&] { all_running.arrive_and_wait(); }));
  all_running.wait();
  while (pool.running() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  std::vector<std::thread::id> ran;
  for (int i = 0; i < 20; ++i) {
    std::promise<std::thread::id> id;
    std::future<std::thread::id> got = id.get_future();
    ASSERT_TRUE(pool.TrySubmit([&id] { id.set_value(std::this_thread::get_id()); }));
    ran.push_back(got.get());
    // Back to idle: the worker counts itself out and waits again under one lock hold.
    while (pool.running() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  for (size_t i = 1; i < ran.size(); ++i) EXPECT_EQ(ran[i], ran[0]) << "task " << i;
}

// A task handed to an idle worker and tasks queued behind busy ones all run before
// Shutdown returns, and the counts add up meanwhile.
TEST(WorkPool, HandedAndQueuedTasksBothCountAndRun) {
  WorkPool pool(2, 4);
  Gate gate;
  std::atomic<int> done{0};
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] {
      gate.Wait();
      ++done;
    }));
  }
  EXPECT_FALSE(pool.TrySubmit([] {}));  // 2 running (or handed over) + 4 queued
  gate.Open();
  pool.Shutdown();
  EXPECT_EQ(done.load(), 6);
  EXPECT_FALSE(pool.TrySubmit([] {}));
}

TEST(WorkPool, RefusesWorkBeyondThreadsPlusQueue) {
  WorkPool pool(2, 3);
  Gate gate;
  std::latch started(2);
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] {
      started.count_down();
      gate.Wait();
      ++done;
    }));
  }
  started.wait();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.TrySubmit([&] { ++done; })) << i;
  EXPECT_EQ(pool.running(), 2);
  EXPECT_EQ(pool.queued(), 3u);
  // A refused task is destroyed unrun.
  auto witness = std::make_shared<int>(0);
  EXPECT_FALSE(pool.TrySubmit([witness] { ++*witness; }));
  EXPECT_EQ(witness.use_count(), 1);
  gate.Open();
  pool.Shutdown();
  EXPECT_EQ(done.load(), 5);
  EXPECT_EQ(*witness, 0);
  EXPECT_FALSE(pool.TrySubmit([] {}));
}

TEST(WorkPool, ShutdownFinishesQueuedWork) {
  WorkPool pool(1, 100);
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool.TrySubmit([&] { ++done; }));
  pool.Shutdown();
  EXPECT_EQ(done.load(), 100);
}

TEST(WorkPool, MoveOnlyTasksAndThrowingTasks) {
  WorkPool pool(1, 10);
  auto p = std::make_unique<int>(7);
  std::promise<int> got;
  ASSERT_TRUE(pool.TrySubmit([p = std::move(p), &got] { got.set_value(*p); }));
  ASSERT_TRUE(pool.TrySubmit([] { throw std::runtime_error("task failed"); }));
  std::promise<void> after;
  ASSERT_TRUE(pool.TrySubmit([&after] { after.set_value(); }));
  EXPECT_EQ(got.get_future().get(), 7);
  after.get_future().wait();  // the worker survived the throwing task
}

TEST(RunOnPool, AnswersOnThePoolAnd503WhenFull) {
  WorkPool pool(1, 1);
  Gate gate;
  std::latch first_running(1);
  std::atomic<int> calls{0};
  Router router;
  router.HandleGetPost("/api/v1/query",
                       RunOnPool(&pool, [&](const HttpRequest& req, HttpResponder r) {
                         if (calls++ == 0) {
                           first_running.count_down();
                           gate.Wait();
                         }
                         r.Send(HttpResponse::Json(200, "{\"q\":\"" + req.query + "\"}"));
                       }));
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  MetricsRegistry metrics;
  o.metrics = &metrics;
  HttpServer server(o, std::move(router));
  ASSERT_TRUE(server.Start().ok());

  TestHttpClient a(server.port()), b(server.port()), c(server.port());
  ASSERT_TRUE(a.SendRaw("GET /api/v1/query?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  first_running.wait();  // the only worker is busy
  ASSERT_TRUE(b.SendRaw("GET /api/v1/query?x=2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  // b is queued once the pool reports it; c then finds the pool full.
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pool.queued() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(pool.queued(), 1u);
  auto refused = c.Get("/api/v1/query?x=3");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_THAT(refused->body, HasSubstr("\"errorType\":\"unavailable\""));
  EXPECT_THAT(refused->body, HasSubstr("too many queries in flight"));

  gate.Open();
  auto ra = a.ReadResponse();
  auto rb = b.ReadResponse();
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->body, "{\"q\":\"x=1\"}");
  EXPECT_EQ(rb->body, "{\"q\":\"x=2\"}");
  server.Stop();
  pool.Shutdown();
}

}  // namespace
}  // namespace strata
