#include "server/ops_handlers.h"

#include "src/metrics.h"

namespace strata {

void RegisterHealthHandlers(Router& router, const Readiness* readiness) {
  router.Handle("GET", "/-/healthy", [](const HttpRequest&, HttpResponder responder) {
    responder.Send(HttpResponse::Text(200, "Strata Server is Healthy.\n"));
  });
  router.Handle("GET", "/-/ready", [readiness](const HttpRequest&, HttpResponder responder) {
    if (readiness->ready()) {
      responder.Send(HttpResponse::Text(200, "Strata Server is Ready.\n"));
    } else {
      responder.Send(HttpResponse::Text(503, "Service Unavailable\n"));
    }
  });
}

void RegisterMetricsHandler(Router& router, const MetricsRegistry* registry) {
  router.Handle("GET", "/metrics", [registry](const HttpRequest&, HttpResponder responder) {
    HttpResponse r;
    r.status = 200;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = registry->ExpositionText();
    responder.Send(std::move(r));
  });
}

}  // namespace strata
