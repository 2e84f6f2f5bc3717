#include "src/work_pool.h"

#include <algorithm>
#include <exception>

#include "spdlog/spdlog.h"

namespace strata {

WorkPool::WorkPool(int threads, size_t max_queued) : max_queued_(max_queued) {
  int n = std::max(1, threads);
  state_.reserve(n);
  workers_.reserve(n);
  for (int i = 0; i < n; ++i) {
    state_.push_back(std::make_unique<Worker>());
    workers_.emplace_back([this, w = state_.back().get()] { Work(w); });
  }
}

WorkPool::~WorkPool() { Shutdown(); }

bool WorkPool::TrySubmit(Task task) {
  Worker* w = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t in_system = queue_.size() + static_cast<size_t>(running_);
    if (shutting_down_ || in_system >= workers_.size() + max_queued_) return false;
    if (idle_.empty()) {
      queue_.push_back(std::move(task));
      return true;
    }
    w = idle_.back();
    idle_.pop_back();
    w->task = std::move(task);
    w->has_task = true;
    ++running_;
  }
  w->cv.notify_one();
  return true;
}

bool WorkPool::TryRunHere(Task& task) {
  Worker* w = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_ || idle_.empty()) return false;
    w = idle_.back();  // held back: not idle, not handed a task
    idle_.pop_back();
    ++running_;
  }
  RunTask(task);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    // When shutting down, the workers still there drain the queue; this one may have left.
    if (!queue_.empty() && !shutting_down_) {
      w->task = std::move(queue_.front());
      queue_.pop_front();
      w->has_task = true;
      ++running_;
      wake = true;
    } else {
      // Back where it was, the most recently idle. (When shutting down its thread may be
      // gone; nothing takes an idle worker then.)
      idle_.push_back(w);
    }
  }
  if (wake) w->cv.notify_one();
  return true;
}

void WorkPool::RunTask(Task& task) {
  try {
    std::move(task)();
  } catch (const std::exception& e) {
    // A task's own cleanup (an HttpResponder answering 500, say) has run by now.
    spdlog::error("work pool task threw: {}", e.what());
  }
  task = nullptr;  // destroyed outside the lock
}

void WorkPool::Work(Worker* w) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Task task;
    if (!queue_.empty()) {
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    } else if (shutting_down_) {
      return;
    } else {
      idle_.push_back(w);
      w->cv.wait(lock, [&] { return w->has_task || shutting_down_; });
      if (!w->has_task) {
        // Shutting down: no longer idle; finish what is queued, then leave. (Not in idle_
        // while TryRunHere holds it back: it is put back there, unused, afterwards.)
        if (auto it = std::find(idle_.begin(), idle_.end(), w); it != idle_.end()) idle_.erase(it);
        continue;
      }
      task = std::move(w->task);
      w->has_task = false;  // running_ was counted by TrySubmit
    }
    lock.unlock();
    RunTask(task);
    lock.lock();
    --running_;
  }
}

void WorkPool::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    for (auto& w : state_) w->cv.notify_all();
  }
  for (auto& w : workers_) w.join();
}

size_t WorkPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

int WorkPool::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

}  // namespace strata
