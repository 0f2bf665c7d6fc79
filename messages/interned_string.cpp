#include "messages/interned_string.hpp"

#include <array>
#include <mutex>
#include <unordered_map>

namespace registry {

namespace {

/// A text with its hash, so the pool's table does not hash it a second time.
struct text_key {
  std::uint64_t hash;
  std::string_view text;
  friend bool operator==(const text_key& a, const text_key& b) { return a.text == b.text; }
};

struct text_key_hash {
  std::size_t operator()(const text_key& k) const noexcept { return k.hash; }
};

/// The pool is sharded by hash so that actors interning on different threads rarely meet.
constexpr std::size_t pool_shards = 16;

struct pool_shard {
  std::mutex mtx;
  std::unordered_map<text_key, interned_string::entry*, text_key_hash> texts;
};

// Never destroyed: values with static storage may release their texts after main returns.
std::array<pool_shard, pool_shards>& pool() {
  static auto* shards = new std::array<pool_shard, pool_shards>;
  return *shards;
}

pool_shard& shard_of(std::uint64_t hash) {
  // The shard takes the top bits; each shard's table spreads its texts by the whole hash.
  return pool()[(hash >> 56) % pool_shards];
}

} // namespace

interned_string::interned_string(std::string_view text) {
  if (text.empty())
    return;
  auto hash = hash_of(text);
  auto& shard = shard_of(hash);
  std::lock_guard<std::mutex> guard{shard.mtx};
  auto i = shard.texts.find(text_key{hash, text});
  if (i != shard.texts.end()) {
    // Under the lock a listed entry has at least one holder: only drop_last takes the last one.
    i->second->refs.fetch_add(1, std::memory_order_relaxed);
    e_ = i->second;
    return;
  }
  auto* e = new entry;
  e->hash = hash;
  e->text.assign(text.data(), text.size());
  shard.texts.emplace(text_key{hash, e->text}, e);
  e_ = e;
}

void interned_string::drop_last(entry* e) noexcept {
  auto& shard = shard_of(e->hash);
  {
    std::lock_guard<std::mutex> guard{shard.mtx};
    // A lookup may have taken a new reference since the caller read 1.
    if (e->refs.fetch_sub(1, std::memory_order_acq_rel) != 1)
      return;
    shard.texts.erase(text_key{e->hash, e->text});
  }
  delete e;
}

std::size_t interned_string::live_texts() {
  std::size_t n = 0;
  for (auto& shard : pool()) {
    std::lock_guard<std::mutex> guard{shard.mtx};
    n += shard.texts.size();
  }
  return n;
}

const std::string& interned_string::empty_text() noexcept {
  static const std::string none;
  return none;
}

} // namespace registry
