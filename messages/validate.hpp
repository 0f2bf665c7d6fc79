#pragma once
/// Validation of client input against Nacos's limits (reference §3). Each function returns the first
/// problem as a field_error naming the field, or nothing. Callers reject the request and change nothing.

#include <optional>
#include <string>
#include <vector>

#include "messages/model.hpp"

namespace registry {

/// namespace <= 64 chars of [A-Za-z0-9_-]; group <= 128 of [A-Za-z0-9-_:.]; service <= 512, not
/// starting with '@', without "@@", whitespace or CJK characters. Empty names are errors (callers
/// apply defaults first).
std::optional<field_error> validate_service_key(const service_key& key);

/// cluster <= 64 chars of [0-9a-zA-Z-_].
std::optional<field_error> validate_cluster(const std::string& cluster);

/// ip (non-empty, <= 128, no whitespace/CJK), port 1..65535 (Nacos allows 0; a registered instance
/// on port 0 is useless, so we refuse it), weight 0..10000 and finite, cluster, metadata (at most
/// metadata_entries_max entries, keys + values <= 1024 chars, no empty key), instance id <= 256,
/// ephemeral: a persistent instance only where `persistent_allowed` (the stateless persistent
/// register; sessions, beats and Distro carry ephemeral instances only: field "ephemeral").
std::optional<field_error> validate_instance(const instance& x, bool persistent_allowed = false);

/// The instances of a batch register (defaults applied): at least one and at most
/// defaults::batch_register_instances_max (field "instances"); each as validate_instance (ephemeral
/// only), its field named by position ("instances[3].port"); no two with the same ip, port and
/// cluster (refused, not merged: field "instances[j]" of the later one).
std::optional<field_error> validate_instance_batch(const std::vector<instance>& xs);

/// A client id: not empty, at most client_id_chars_max bytes (field "clientId").
std::optional<field_error> validate_client_id(const client_id& id);

/// A client's whole state as another node sends it (Distro): the rules its own requests passed,
/// applied to the whole. The id (validate_client_id); every service key (validate_service_key) and
/// instance (validate_instance); at most `instances_max` instances in all (field "instances", as
/// a register over the limit); no two instances of a service with the same ip, port and cluster
/// ("instances": a register replaces such an instance); and for a heartbeat client ("ip:port#true")
/// only instances at its own ip:port ("ip", as a register refuses).
std::optional<field_error> validate_client(const client_id& id, const client_services& services,
                                           std::size_t instances_max);

/// page >= 1, 1 <= size <= page_size_max.
std::optional<field_error> validate_page(std::uint32_t page, std::uint32_t size);

/// Fills empty namespace/group/cluster with defaults (public, DEFAULT_GROUP, DEFAULT).
void apply_defaults(service_key& key);
void apply_defaults(instance& x);

/// Splits "k=v" into a pair; error names the field "metadata".
std::optional<field_error> parse_metadata_entry(const std::string& text,
                                                std::pair<std::string, std::string>& out);

} // namespace registry
