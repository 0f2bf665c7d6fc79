#pragma once
/// A linearizability checker for recorded client histories: Wing and Gong's search with Lowe's
/// memoisation of (linearized set, model state), as Porcupine does it.
///
/// A history is a list of operations, each with a call time, a return time and an input and output.
/// An operation whose outcome is unknown (a timed-out write) returns at `unknown_return`: it may
/// take effect at any point after its call, or never as far as anyone can observe. Operations
/// known not to have happened are simply left out; reads with unknown outcome carry no
/// information and should be left out too.
///
/// The model is a sequential specification:
///
///   struct my_model {
///     using state = ...;   // copyable, ==, hashed by `hash`
///     using input = ...;
///     using output = ...;
///     static state init();
///     /// The state after `in`, if `in` may return `out` in `s`.
///     static std::optional<state> step(const state& s, const input& in, const output& out);
///     static std::size_t hash(const state& s);
///   };
///
/// Split a history into independent parts first (one per key for a key-value store): the search
/// is exponential in the worst case, and per-key histories stay small.
///
/// Algorithm: call and return events sorted by time (calls first on ties, so touching operations
/// count as concurrent) in a doubly linked list. Walking from the head, a call whose operation can
/// be applied to the current state (and whose resulting (set, state) was not seen before) is
/// linearized: pushed on a stack, its call and return unlinked, and the walk restarts. Reaching a
/// return means its operation could not be placed: backtrack (pop, restore, relink) and try the
/// next call after the popped one; an empty stack there means no linearization exists.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace registry::testing {

inline constexpr std::int64_t unknown_return = std::numeric_limits<std::int64_t>::max();

template <class Model>
struct operation {
  typename Model::input input;
  typename Model::output output;
  std::int64_t call = 0;
  std::int64_t ret = 0; ///< unknown_return when the outcome is unknown
};

struct linearizability_result {
  bool linearizable = false;
  bool gave_up = false;           ///< the search exceeded its step bound (no verdict)
  std::vector<std::size_t> order; ///< when linearizable: the operations in a legal order
};

/// Checks `history` against `Model`. `steps_max` bounds the search (then gave_up is set).
template <class Model>
linearizability_result check_linearizable(const std::vector<operation<Model>>& history,
                                          std::uint64_t steps_max = 50'000'000) {
  using state = typename Model::state;
  struct event {
    bool call = false;
    std::size_t op = 0;
    std::int64_t time = 0;
    int prev = -1;
    int next = -1;
    int match = -1; ///< a call's return event
  };
  const std::size_t n = history.size();
  std::vector<event> ev;
  ev.reserve(2 * n + 1);
  ev.push_back(event{}); // 0: the head
  for (std::size_t i = 0; i < n; ++i) {
    ev.push_back(event{true, i, history[i].call});
    ev.push_back(event{false, i, history[i].ret});
  }
  std::vector<int> sorted;
  for (int i = 1; i < static_cast<int>(ev.size()); ++i)
    sorted.push_back(i);
  std::stable_sort(sorted.begin(), sorted.end(), [&](int a, int b) {
    if (ev[a].time != ev[b].time)
      return ev[a].time < ev[b].time;
    return ev[a].call && !ev[b].call;
  });
  int prev = 0;
  for (int i : sorted) {
    ev[prev].next = i;
    ev[i].prev = prev;
    prev = i;
  }
  for (std::size_t i = 0; i < n; ++i)
    ev[1 + 2 * i].match = static_cast<int>(2 + 2 * i);

  auto lift = [&](int c) {
    auto& x = ev[c];
    ev[x.prev].next = x.next;
    if (x.next >= 0)
      ev[x.next].prev = x.prev;
    auto& r = ev[x.match];
    ev[r.prev].next = r.next;
    if (r.next >= 0)
      ev[r.next].prev = r.prev;
  };
  auto unlift = [&](int c) {
    auto& x = ev[c];
    auto& r = ev[x.match];
    ev[r.prev].next = x.match;
    if (r.next >= 0)
      ev[r.next].prev = x.match;
    ev[x.prev].next = c;
    if (x.next >= 0)
      ev[x.next].prev = c;
  };

  const std::size_t words = (n + 63) / 64;
  struct seen_key {
    std::vector<std::uint64_t> bits;
    state s;
    bool operator==(const seen_key& y) const {
      return bits == y.bits && s == y.s;
    }
  };
  struct seen_hash {
    std::size_t operator()(const seen_key& x) const {
      std::size_t h = Model::hash(x.s);
      for (auto w : x.bits)
        h = (h ^ static_cast<std::size_t>(w)) * 0x100000001b3ULL;
      return h;
    }
  };
  std::unordered_set<seen_key, seen_hash> seen;
  struct frame {
    int call = 0;
    state saved;
  };
  std::vector<frame> stack;
  std::vector<std::uint64_t> bits(words, 0);
  state current = Model::init();
  linearizability_result result;
  std::uint64_t steps = 0;
  int e = ev[0].next;
  while (ev[0].next >= 0) {
    if (++steps > steps_max) {
      result.gave_up = true;
      return result;
    }
    if (ev[e].call) {
      const auto& op = history[ev[e].op];
      if (auto next = Model::step(current, op.input, op.output)) {
        auto nbits = bits;
        nbits[ev[e].op / 64] |= std::uint64_t{1} << (ev[e].op % 64);
        if (seen.insert(seen_key{nbits, *next}).second) {
          stack.push_back(frame{e, current});
          current = std::move(*next);
          bits = std::move(nbits);
          lift(e);
          e = ev[0].next;
          continue;
        }
      }
      e = ev[e].next;
    } else {
      if (stack.empty())
        return result; // not linearizable
      auto top = std::move(stack.back());
      stack.pop_back();
      current = std::move(top.saved);
      bits[ev[top.call].op / 64] &= ~(std::uint64_t{1} << (ev[top.call].op % 64));
      unlift(top.call);
      e = ev[top.call].next;
    }
    // A call at the end of the list (only returns can end it) cannot happen: every call has
    // its return after it.
  }
  result.linearizable = true;
  for (const auto& f : stack)
    result.order.push_back(ev[f.call].op);
  return result;
}

/// A read/write register of integers (0 initially): the model the Raft simulation records.
struct register_model {
  using state = std::int64_t;
  struct input {
    bool write = false;
    std::int64_t value = 0; ///< writes: the value written
  };
  using output = std::int64_t; ///< reads: the value read
  static state init() {
    return 0;
  }
  static std::optional<state> step(const state& s, const input& in, const output& out) {
    if (in.write)
      return in.value;
    if (out == s)
      return s;
    return std::nullopt;
  }
  static std::size_t hash(const state& s) {
    return std::hash<std::int64_t>{}(s);
  }
};

} // namespace registry::testing
