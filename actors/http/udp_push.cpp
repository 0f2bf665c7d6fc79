#include "actors/http/udp_push.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "actors/http/http_params.hpp"

namespace registry::http {

udp_push_table::udp_push_table(config cfg) : cfg_(cfg) {
  // nop
}

bool udp_push_table::subscribe(const udp_address& addr, const subscription& sub,
                               std::int64_t now_ms) {
  auto& subs = subs_[addr];
  auto i = subs.find(sub);
  if (i != subs.end()) {
    i->second = now_ms;
    return true;
  }
  if (subscription_count_ >= cfg_.subscriptions_max) {
    if (subs.empty())
      subs_.erase(addr);
    return false;
  }
  subs.emplace(sub, now_ms);
  ++subscription_count_;
  return true;
}

bool udp_push_table::unsubscribe(const udp_address& addr, const subscription& sub) {
  auto i = subs_.find(addr);
  if (i == subs_.end())
    return true;
  if (i->second.erase(sub) > 0)
    --subscription_count_;
  if (!i->second.empty())
    return false;
  subs_.erase(i);
  return true;
}

bool udp_push_table::subscribed(const udp_address& addr, const subscription& sub) const {
  auto i = subs_.find(addr);
  return i != subs_.end() && i->second.count(sub) > 0;
}

std::int64_t udp_push_table::next_ref_time(std::int64_t now_us) {
  last_ref_time_ = std::max(last_ref_time_ + 1, now_us);
  return last_ref_time_;
}

std::uint64_t udp_push_table::start_push(const udp_address& addr, const service_key& key,
                                         std::int64_t ref_time, std::string datagram,
                                         std::int64_t now_ms,
                                         std::optional<std::uint64_t>& superseded) {
  superseded.reset();
  for (auto i = pushes_.begin(); i != pushes_.end(); ++i) {
    if (i->second.addr == addr && i->second.key == key) {
      superseded = i->first;
      pushes_.erase(i);
      break;
    }
  }
  auto id = next_id_++;
  pushes_.emplace(id, push{addr, key, ref_time, std::move(datagram), 1,
                           now_ms + cfg_.ack_timeout_ms});
  return id;
}

std::optional<std::uint64_t> udp_push_table::on_ack(const udp_address& addr,
                                                    std::int64_t ref_time) {
  for (auto i = pushes_.begin(); i != pushes_.end(); ++i) {
    if (i->second.ref_time == ref_time && i->second.addr == addr) {
      auto id = i->first;
      pushes_.erase(i);
      return id;
    }
  }
  return std::nullopt;
}

udp_push_table::effects udp_push_table::on_tick(std::int64_t now_ms) {
  effects fx;
  for (auto i = pushes_.begin(); i != pushes_.end();) {
    auto& p = i->second;
    if (p.due_ms > now_ms) {
      ++i;
      continue;
    }
    if (p.sent <= cfg_.retries_max) {
      ++p.sent;
      p.due_ms = now_ms + cfg_.ack_timeout_ms;
      fx.resend.emplace_back(p.addr, p.datagram);
      ++i;
      continue;
    }
    fx.failed.push_back(i->first);
    i = pushes_.erase(i);
  }
  for (auto a = subs_.begin(); a != subs_.end();) {
    for (auto s = a->second.begin(); s != a->second.end();) {
      if (now_ms - s->second >= cfg_.subscriber_expiry_ms) {
        fx.expired.emplace_back(a->first, s->first);
        s = a->second.erase(s);
        --subscription_count_;
      } else {
        ++s;
      }
    }
    if (a->second.empty()) {
      fx.idle.push_back(a->first);
      a = subs_.erase(a);
    } else {
      ++a;
    }
  }
  fx.wake_at_ms = next_wake();
  return fx;
}

std::optional<std::int64_t> udp_push_table::next_wake() const {
  std::optional<std::int64_t> result;
  auto take = [&](std::int64_t t) { result = result ? std::min(*result, t) : t; };
  for (auto& [id, p] : pushes_)
    take(p.due_ms);
  return result;
}

std::string make_push_datagram(const std::string& service_info_json, std::int64_t ref_time) {
  return nlohmann::json{{"type", "dom"}, {"data", service_info_json}, {"lastRefTime", ref_time}}
    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool parse_push_ack(const std::string& datagram, std::int64_t& ref_time) {
  auto doc = nlohmann::json::parse(datagram, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return false;
  auto type = doc.find("type");
  if (type == doc.end() || !type->is_string() || type->get<std::string>() != "push-ack")
    return false;
  auto ref = doc.find("lastRefTime");
  if (ref == doc.end())
    return false;
  if (ref->is_number_integer()) {
    ref_time = ref->get<std::int64_t>();
    return true;
  }
  if (ref->is_number_float()) {
    ref_time = static_cast<std::int64_t>(ref->get<double>());
    return true;
  }
  if (ref->is_string())
    return parse_int(ref->get<std::string>(), ref_time);
  return false;
}

} // namespace registry::http
