#pragma once
/// One bounded HTTP GET with libcurl, for the address server (`members_url`).
///
/// Blocking: the node's main loop calls it from its own thread, never from an actor. Every call
/// is bounded by a connect timeout, a total timeout and a response size; plain http only, no
/// redirects, no proxy (the address server is named directly). Call http_global_init() once
/// before any other thread starts.

#include <cstddef>
#include <cstdint>
#include <string>

#include "actors/member/member_source.hpp"

namespace registry {

/// The limits of one GET.
struct http_get_limits {
  std::int64_t connect_timeout_ms;
  std::int64_t total_timeout_ms;
  std::size_t body_bytes_max;
};

/// Initialises libcurl for the process; "" on success, else the problem.
std::string http_global_init();

/// Releases libcurl's global state (at exit, after the last GET).
void http_global_cleanup();

/// GETs `url`. A response is `transferred` with its status and body; a connect error, a timeout or
/// a body over the limit is not, with the reason in `error`.
fetch_outcome http_get(const std::string& url, const http_get_limits& limits);

} // namespace registry
