#include "server/work_pool.h"

#include <algorithm>
#include <memory>

#include "server/api_json.h"
#include "spdlog/spdlog.h"
#include "src/strings.h"

namespace strata {

HttpHandler RunOnPool(WorkPool* pool, HttpHandler handler, InlineSlots* here) {
  auto shared = std::make_shared<const HttpHandler>(std::move(handler));
  return [pool, shared, here](const HttpRequest& req, HttpResponder responder) {
    // The request stays valid until the response is sent (HttpServer's contract).
    auto r = std::make_shared<HttpResponder>(std::move(responder));
    WorkPool::Task task = [shared, &req, r]() mutable { (*shared)(req, std::move(*r)); };
    if (here != nullptr && here->TryTake()) {
      WorkPool::Task on_this_thread = [&task, &r]() {
        r->WatchClientWhileHandledHere();
        std::move(task)();
      };
      const bool ran = pool->TryRunHere(on_this_thread);
      here->Give();
      if (ran) return;
    }
    bool accepted = pool->TrySubmit(std::move(task));
    if (!accepted && !r->sent()) {
      r->Send(HttpResponse::Json(
          503, ApiErrorBody(ApiErrorType::kUnavailable,
                            fmt::format("too many queries in flight ({} running, {} waiting); "
                                        "try again later",
                                        pool->running(), pool->queued()))));
    }
  };
}

}  // namespace strata
