#pragma once
/// Conversion between the Distro protocol's plain structs and distro.proto.

#include "actors/distro/distro_protocol.hpp"
#include "messages/distro.pb.h"

namespace registry::distro {

void to_wire(const client_data& x, v1::ClientData& out);
client_data from_wire(const v1::ClientData& x);

v1::SyncBatch to_wire(const sync_batch& x);
sync_batch from_wire(const v1::SyncBatch& x);

v1::VerifyBatch to_wire(const verify_batch& x);
verify_batch from_wire(const v1::VerifyBatch& x);

v1::VerifyReply to_wire(const verify_reply& x);
verify_reply from_wire(const v1::VerifyReply& x);

v1::SnapshotRequest to_wire(const snapshot_request& x);
snapshot_request from_wire(const v1::SnapshotRequest& x);

v1::Snapshot to_wire(const snapshot& x);
snapshot from_wire(const v1::Snapshot& x);

} // namespace registry::distro
