#include "server/work_pool.h"

#include <algorithm>
#include <memory>

#include "server/api_json.h"
#include "spdlog/spdlog.h"
#include "src/strings.h"

namespace strata {

HttpHandler RunOnPool(WorkPool* pool, HttpHandler handler) {
  auto shared = std::make_shared<const HttpHandler>(std::move(handler));
  return [pool, shared](const HttpRequest& req, HttpResponder responder) {
    // The request stays valid until the response is sent (HttpServer's contract).
    auto r = std::make_shared<HttpResponder>(std::move(responder));
    bool accepted = pool->TrySubmit([shared, &req, r]() mutable { (*shared)(req, std::move(*r)); });
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
