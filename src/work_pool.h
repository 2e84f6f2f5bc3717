// A fixed set of threads running tasks from a bounded queue: the server's query and
// remote-write pools (so that slow work never occupies the HTTP I/O threads and a burst is
// refused at once instead of piling up), and the engine's helpers for parallel range
// functions.
#ifndef STRATA_SRC_WORK_POOL_H_
#define STRATA_SRC_WORK_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace strata {

// Thread-safe.
class WorkPool {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  // `threads` workers (at least 1); at most `max_queued` tasks wait for a worker.
  WorkPool(int threads, size_t max_queued);
  ~WorkPool();  // Shutdown()
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task`, or refuses it (returns false, and destroys the task unrun) when the queue
  // is full or the pool is shutting down.
  bool TrySubmit(Task task);

  // Runs `task` on the calling thread, now, when a worker is idle: that worker is held back
  // meanwhile (the task counts as running, so no more tasks run at once than there are
  // workers) and takes the first queued task, if any, when it is done. Saves the two
  // thread wake-ups of a hand-over and back for short tasks. Returns false, `task`
  // untouched, when no worker is idle or the pool is shutting down.
  bool TryRunHere(Task& task);

  // Refuses new tasks, lets the queued and running ones finish, joins the workers. Does not
  // wait for tasks TryRunHere runs on other threads.
  // Idempotent. REQUIRES: not called from a task.
  void Shutdown();

  size_t queued() const;
  int running() const;
  int threads() const { return static_cast<int>(workers_.size()); }
  size_t max_queued() const { return max_queued_; }

 private:
  // A worker waits on its own condition variable, so that a task goes to the worker idle
  // for the shortest time (last in, first out): its caches, and its malloc arena and
  // per-thread cache, are warm from the last task. With one shared condition variable the
  // longest-idle worker woke instead, and queries one after another ran on a different
  // thread each time (25-45% slower for the dashboard queries of the macro benchmark).
  struct Worker {
    std::condition_variable cv;
    Task task;  // handed over by TrySubmit while idle
    bool has_task = false;
  };
  void Work(Worker* w);
  static void RunTask(Task& task);

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::deque<Task> queue_;     // tasks no idle worker took
  std::vector<Worker*> idle_;  // the most recently idle last
  int running_ = 0;            // tasks handed over or running
  bool shutting_down_ = false;
  std::vector<std::unique_ptr<Worker>> state_;
  std::vector<std::thread> workers_;
};

}  // namespace strata

#endif  // STRATA_SRC_WORK_POOL_H_
