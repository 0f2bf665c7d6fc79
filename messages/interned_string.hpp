#pragma once
/// A string held once per process however many values name it: the namespaces, groups, service
/// names, clusters, addresses and metadata that a million instances repeat. Equal texts share one
/// entry, so copies are a reference count, equality is a pointer comparison and the hash is
/// computed once per text. The pool holds only texts that some value holds (an entry goes with
/// its last holder), so it is bounded by the stores that hold the values.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace registry {

class interned_string {
public:
  interned_string() noexcept = default; ///< the empty string (holds no entry)
  interned_string(std::string_view text); // NOLINT: implicit, a plain string converts in place
  interned_string(const std::string& text) : interned_string(std::string_view{text}) {} // NOLINT
  interned_string(const char* text) : interned_string(std::string_view{text}) {}        // NOLINT

  interned_string(const interned_string& other) noexcept : e_(other.e_) { retain(); }
  interned_string(interned_string&& other) noexcept : e_(std::exchange(other.e_, nullptr)) {}
  interned_string& operator=(const interned_string& other) noexcept {
    interned_string copy{other};
    std::swap(e_, copy.e_);
    return *this;
  }
  interned_string& operator=(interned_string&& other) noexcept {
    std::swap(e_, other.e_);
    return *this;
  }
  ~interned_string() { release(); }

  void clear() noexcept { release(); }

  const std::string& str() const noexcept { return e_ ? e_->text : empty_text(); }
  operator const std::string&() const noexcept { return str(); } // NOLINT: reads as a string
  bool empty() const noexcept { return e_ == nullptr; }
  std::size_t size() const noexcept { return str().size(); }
  const char* c_str() const noexcept { return str().c_str(); }
  const char* data() const noexcept { return str().data(); }

  /// FNV-1a 64 over the text's bytes: the same in every process, kept with the entry.
  std::uint64_t hash() const noexcept { return e_ ? e_->hash : empty_hash; }

  static std::uint64_t hash_of(std::string_view text) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : text) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  }

  /// Distinct texts held now (each freed with its last holder): the pool's size.
  static std::size_t live_texts();

  friend bool operator==(const interned_string& a, const interned_string& b) noexcept {
    return a.e_ == b.e_;
  }
  friend bool operator!=(const interned_string& a, const interned_string& b) noexcept {
    return a.e_ != b.e_;
  }
  /// Ordered by text, as the plain strings were: listings and maps keep their order.
  friend bool operator<(const interned_string& a, const interned_string& b) noexcept {
    return a.e_ != b.e_ && a.str() < b.str();
  }
  friend bool operator>(const interned_string& a, const interned_string& b) noexcept {
    return b < a;
  }
  friend bool operator<=(const interned_string& a, const interned_string& b) noexcept {
    return !(b < a);
  }
  friend bool operator>=(const interned_string& a, const interned_string& b) noexcept {
    return !(a < b);
  }
  friend bool operator==(const interned_string& a, const std::string& b) noexcept {
    return a.str() == b;
  }
  friend bool operator==(const std::string& a, const interned_string& b) noexcept {
    return a == b.str();
  }
  friend bool operator!=(const interned_string& a, const std::string& b) noexcept {
    return a.str() != b;
  }
  friend bool operator!=(const std::string& a, const interned_string& b) noexcept {
    return a != b.str();
  }
  friend bool operator==(const interned_string& a, const char* b) noexcept { return a.str() == b; }
  friend bool operator!=(const interned_string& a, const char* b) noexcept { return a.str() != b; }
  friend bool operator<(const interned_string& a, const std::string& b) noexcept {
    return a.str() < b;
  }
  friend bool operator<(const std::string& a, const interned_string& b) noexcept {
    return a < b.str();
  }

  friend std::string operator+(const interned_string& a, const std::string& b) {
    return a.str() + b;
  }
  friend std::string operator+(const std::string& a, const interned_string& b) {
    return a + b.str();
  }
  friend std::string operator+(const interned_string& a, const char* b) { return a.str() + b; }
  friend std::string operator+(const char* a, const interned_string& b) { return a + b.str(); }
  friend std::string operator+(const interned_string& a, const interned_string& b) {
    return a.str() + b.str();
  }
  friend std::ostream& operator<<(std::ostream& out, const interned_string& x) {
    return out << x.str();
  }

  struct entry {
    std::atomic<std::size_t> refs{1};
    std::uint64_t hash = 0;
    std::string text;
  };

private:
  static constexpr std::uint64_t empty_hash = 0xcbf29ce484222325ULL;
  static const std::string& empty_text() noexcept;
  void retain() noexcept {
    if (e_)
      e_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (!e_)
      return;
    // Above one holder the count drops without the pool's lock; the last holder takes the lock,
    // so a text being looked up is never freed under the lookup.
    auto n = e_->refs.load(std::memory_order_relaxed);
    while (n > 1)
      if (e_->refs.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
        e_ = nullptr;
        return;
      }
    drop_last(e_);
    e_ = nullptr;
  }
  static void drop_last(entry* e) noexcept;

  entry* e_ = nullptr;
};

} // namespace registry

template <>
struct std::hash<registry::interned_string> {
  std::size_t operator()(const registry::interned_string& x) const noexcept { return x.hash(); }
};
