// A small persistent thread pool for the kernels. The calling thread takes part as worker 0;
// workers 1..size-1 sleep on a condition variable between jobs (after a short spin), so an
// idle pool uses no CPU. Tasks are handed out dynamically from an atomic counter; what a task
// computes never depends on which worker runs it, so results do not depend on scheduling.
#ifndef DENSETRAIN_THREAD_POOL_H_
#define DENSETRAIN_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kernel_api.h"

namespace densetrain {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }
  // Runs fn(ctx, task, worker) for task in [0, ntasks); returns when all tasks are done.
  // Not reentrant: call from one thread at a time (the JS thread).
  void Run(int ntasks, TaskFn fn, void* ctx);
  // Stops and joins the workers; Run() then executes everything on the calling thread.
  void Shutdown();

  // Adapter with the signature of densetrain::ParallelFn.
  static void RunThunk(void* pool, int ntasks, TaskFn fn, void* ctx) {
    static_cast<ThreadPool*>(pool)->Run(ntasks, fn, ctx);
  }

 private:
  void WorkerLoop(int worker);
  void DoTasks(int worker);

  const int size_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable wake_;  // workers wait here for a job
  std::condition_variable idle_;  // the caller waits here for the job to finish
  bool stop_ = false;             // guarded by mu_
  bool open_ = false;             // a job is being handed out; guarded by mu_
  int active_ = 0;                // workers inside the current job; guarded by mu_
  std::atomic<uint64_t> generation_{0};

  // The current job (written by Run before it opens the job).
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int ntasks_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> done_{0};
};

}  // namespace densetrain

#endif  // DENSETRAIN_THREAD_POOL_H_
