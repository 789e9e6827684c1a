// runtime/reactor_user_data.h - the user_data values a Reactor keeps for its own CQEs (internal to the runtime).
#pragma once

#include <cstdint>

/// The reserved user_data values of a Reactor's ring, shared by the files
/// that implement it (reactor.cc, reactor_ring.cc, reactor_wake.cc). Slot
/// user_data is (generation << 32 | index) with index < 2^31, so none of
/// these (index >= 0xfffffffd) ever matches a slot; Reactor::ignored_user_data
/// (~0) is the public one.
namespace coblk::runtime::reactor_user_data {

/// The CQE of a peer's MSG_RING wake-up, posted into this ring.
inline constexpr std::uint64_t wake = ~0ull - 1;
/// The CQE of this reactor's own eventfd read.
inline constexpr std::uint64_t eventfd = ~0ull - 2;
/// A MSG_RING wake-up this reactor sent to core c completes with
/// msg_ring_sent - c, so that a refused one (the peer's CQ overflowed, say)
/// is noticed and sent again. Core counts are far below 2^20, so the range
/// (msg_ring_sent_last, msg_ring_sent] never meets the values above.
inline constexpr std::uint64_t msg_ring_sent = ~0ull - 16;
/// The end (exclusive) of the msg_ring_sent range.
inline constexpr std::uint64_t msg_ring_sent_last = msg_ring_sent - (1u << 20);

}  // namespace coblk::runtime::reactor_user_data
