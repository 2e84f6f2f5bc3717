#include "server/work_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <set>
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

// Waits until every worker of `pool` (with no tasks) is idle.
void WaitAllIdle(WorkPool& pool, int threads) {
  std::latch all_running(threads);
  for (int i = 0; i < threads; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&] { all_running.arrive_and_wait(); }));
  }
  all_running.wait();
  while (pool.running() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

// TryRunHere runs the task on the caller's thread while holding an idle worker back, so
// that the pool's limit holds; the held worker then takes what was queued meanwhile.
TEST(WorkPool, TryRunHereRunsOnTheCallerAndHoldsAWorkerBack) {
  WorkPool pool(1, 1);
  WaitAllIdle(pool, 1);
  const std::thread::id caller = std::this_thread::get_id();
  std::promise<std::thread::id> queued_ran;
  WorkPool::Task task = [&] {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(pool.running(), 1);
    // The only worker is held back: a submitted task waits, and the queue is then full.
    EXPECT_TRUE(pool.TrySubmit([&] { queued_ran.set_value(std::this_thread::get_id()); }));
    EXPECT_EQ(pool.queued(), 1u);
    EXPECT_FALSE(pool.TrySubmit([] {}));
    WorkPool::Task nested = [] {};
    EXPECT_FALSE(pool.TryRunHere(nested)) << "no idle worker is left";
    EXPECT_TRUE(nested != nullptr) << "a refused task is left as it was";
  };
  ASSERT_TRUE(pool.TryRunHere(task));
  EXPECT_TRUE(task == nullptr);
  EXPECT_NE(queued_ran.get_future().get(), caller);
  while (pool.running() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  // Idle again: it runs here once more, and plain submissions still go to the worker.
  WorkPool::Task again = [&] { EXPECT_EQ(std::this_thread::get_id(), caller); };
  EXPECT_TRUE(pool.TryRunHere(again));
  std::promise<void> submitted;
  ASSERT_TRUE(pool.TrySubmit([&] { submitted.set_value(); }));
  submitted.get_future().wait();
  pool.Shutdown();
  WorkPool::Task late = [] {};
  EXPECT_FALSE(pool.TryRunHere(late));
}

// With slots for the I/O threads, a handler runs on the I/O thread that read its request
// when a worker is idle (not on the worker), and on the worker when no slot is free; a
// client that goes away stops a handler running on the I/O thread as it does one on the
// pool.
TEST(RunOnPool, RunsOnTheIoThreadWhenASlotAndAWorkerAreFree) {
  WorkPool pool(2, 4);
  WaitAllIdle(pool, 2);
  std::mutex mu;
  std::set<std::thread::id> pool_threads;
  {
    std::latch both(2);
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(pool.TrySubmit([&] {
        {
          std::lock_guard<std::mutex> lock(mu);
          pool_threads.insert(std::this_thread::get_id());
        }
        both.arrive_and_wait();
      }));
    }
    both.wait();
    while (pool.running() != 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  InlineSlots slots(1);
  std::atomic<bool> last_on_pool{false};
  std::atomic<int> stopped{0};
  Router router;
  router.HandleGetPost(
      "/q", RunOnPool(
                &pool,
                [&](const HttpRequest& req, HttpResponder r) {
                  {
                    std::lock_guard<std::mutex> lock(mu);
                    last_on_pool = pool_threads.contains(std::this_thread::get_id());
                  }
                  if (req.query == "wait") {
                    // Until the client is gone (the test's client closes its socket).
                    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
                    while (!req.PollClientGone() && std::chrono::steady_clock::now() < give_up) {
                      std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    }
                    if (req.ClientGone()) ++stopped;
                  }
                  r.Send(HttpResponse::Text(200, "ok"));
                },
                &slots));
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 2;
  MetricsRegistry metrics;
  o.metrics = &metrics;
  HttpServer server(o, std::move(router));
  ASSERT_TRUE(server.Start().ok());
  // The answer reaches the client before the I/O thread gives the slot and the worker back:
  // each request waits for both, or under load it could find the slot still taken.
  auto settle = [&] {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      if (pool.running() == 0 && slots.TryTake()) {
        slots.Give();
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  };
  TestHttpClient a(server.port());
  for (int i = 0; i < 3; ++i) {
    settle();
    auto r = a.Get("/q?x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ok");
    EXPECT_FALSE(last_on_pool) << "request " << i << " went to a worker";
  }
  // A handler on the I/O thread holds the slot: meanwhile requests go to the workers. Its
  // client then leaves, which it notices.
  settle();
  auto waiting = std::make_unique<TestHttpClient>(server.port());
  ASSERT_TRUE(waiting->SendRaw("GET /q?wait HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pool.running() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(pool.running(), 1);
  TestHttpClient b(server.port());
  auto r = b.Get("/q?x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "ok");
  EXPECT_TRUE(last_on_pool) << "the slot was taken: the worker answers";
  waiting.reset();
  while (stopped.load() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(stopped.load(), 1);
  server.Stop();
  pool.Shutdown();
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
