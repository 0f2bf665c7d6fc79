#pragma once
/// Runs a batch of health checks at once (no CAF): non-blocking TCP connects, and for HTTP a GET
/// of the path on the connection, all waited for with poll() up to one timeout. Blocks for at most
/// `timeout_ms`; the raft actor runs it in a detached actor.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace registry {

struct health_probe {
  std::uint64_t id = 0;
  std::string ip; ///< IPv4 dotted quad
  std::uint32_t port = 0;
  std::string http_path; ///< "" = a TCP connect
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_probe& x) {
  return f(caf::meta::type_name("registry::health_probe"), x.id, x.ip, x.port, x.http_path);
}

struct health_probe_result {
  std::uint64_t id = 0;
  /// 0 ok, 1 failed (timeout, a non-2xx answer, other errors), 2 failed at once (refused).
  std::int32_t outcome = 1;
  std::int64_t rt_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, health_probe_result& x) {
  return f(caf::meta::type_name("registry::health_probe_result"), x.id, x.outcome, x.rt_ms);
}

/// Runs every probe; one result per probe, in order.
std::vector<health_probe_result> run_probes(const std::vector<health_probe>& xs,
                                            std::int64_t timeout_ms);

} // namespace registry
