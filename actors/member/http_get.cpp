#include "actors/member/http_get.hpp"

#include <memory>

#include <curl/curl.h>

namespace registry {

namespace {

/// Collects the body and stops the transfer once it passes the limit.
struct body_sink {
  std::string body;
  std::size_t bytes_max = 0;
  bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* sink = static_cast<body_sink*>(user);
  std::size_t n = size * count;
  if (sink->body.size() + n > sink->bytes_max) {
    sink->too_large = true;
    return 0; // makes curl_easy_perform fail with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

std::string too_large_text(const http_get_limits& limits) {
  return "the response is larger than " + std::to_string(limits.body_bytes_max) + " bytes";
}

} // namespace

std::string http_global_init() {
  auto rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  return rc == CURLE_OK ? std::string{} : std::string{curl_easy_strerror(rc)};
}

void http_global_cleanup() {
  curl_global_cleanup();
}

fetch_outcome http_get(const std::string& url, const http_get_limits& limits) {
  fetch_outcome result;
  std::unique_ptr<CURL, void (*)(CURL*)> handle{curl_easy_init(), curl_easy_cleanup};
  if (!handle) {
    result.error = "cannot create an HTTP client handle";
    return result;
  }
  CURL* h = handle.get();
  body_sink sink;
  sink.bytes_max = limits.body_bytes_max;
  // Every option that matters is set explicitly rather than left to libcurl's defaults.
  bool ok = curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                                static_cast<long>(limits.connect_timeout_ms)) == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(limits.total_timeout_ms))
                 == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                                static_cast<curl_off_t>(limits.body_bytes_max)) == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_USERAGENT, "registryd") == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK
            && curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) == CURLE_OK;
  if (!ok) {
    result.error = "cannot set up the HTTP request";
    return result;
  }
  auto rc = curl_easy_perform(h);
  if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    result.error = too_large_text(limits);
    return result;
  }
  if (rc != CURLE_OK) {
    result.error = curl_easy_strerror(rc); // stable texts, e.g. "Timeout was reached"
    return result;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  result.transferred = true;
  result.status = status;
  result.body = std::move(sink.body);
  return result;
}

} // namespace registry
