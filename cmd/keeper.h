// cmd/keeper.h - the keeper: the process that holds a ram or zram device's memory and restarts its server.
#pragma once

// See docs/architecture.md, "Memory that outlives its server".
//
// A ram or zram device added with --recovery keeps its data in memfds. The
// keeper is the daemon `coblk add` leaves behind: it forks the server, takes
// the memfds from it (SCM_RIGHTS) before the device starts, and holds them
// (mapped, and locked while no server runs) for the device's whole life.
// When the server dies, the keeper starts a new one that recovers the data
// from those memfds, unless the server died too often within a minute (a
// crash loop: the keeper then gives up, logs why, and leaves the device
// quiesced). `coblk recover` asks the keeper (SIGUSR1) to try again;
// `coblk del` ends it (SIGTERM), which frees the memory.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "coblk/cmd/add_options.h"
#include "coblk/cmd/server.h"
#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// Runs the keeper of the new device `o` (keeps_memory(o) is true): starts
/// its first server, which reports readiness on `report`, then keeps the
/// memory and restarts servers until the device is deleted. Returns the
/// exit status.
int run_keeper(const AddOptions& o, ReadinessReport& report);

/// Server side: hands the target's memfds `fds` of device `dev_id` to the
/// keeper over `socket` and waits until the keeper holds them. Returns
/// Error EPIPE (one line) if the keeper is gone.
Result<void> hand_memory_to_keeper(int socket, std::uint32_t dev_id, std::span<const int> fds);

/// `coblk recover` of a device with a keeper: asks the keeper `keeper_pid`
/// (started at `keeper_start`) to start a server now, and waits until the
/// device is live (prints its block device) or the keeper reports failure.
/// Returns the exit status; a keeper that is gone means the data is lost,
/// reported as such.
int recover_through_keeper(std::uint32_t dev_id, pid_t keeper_pid, std::uint64_t keeper_start);

/// When process `pid` started (clock ticks since boot, field 22 of
/// /proc/PID/stat), or 0 if there is no such process.
std::uint64_t process_start_time(pid_t pid);

/// True when the keeper recorded as `pid`, started at `start`, still runs:
/// the same process, not another one that reused the number (which a
/// signal meant for the keeper must never reach).
bool keeper_alive(pid_t pid, std::uint64_t start);

/// What a keeper last wrote about its device.
struct KeeperStatus {
  std::string state;      ///< "serving", "restarting", "waiting" (--no-restart), "gave-up"
  unsigned restarts = 0;  ///< servers it started after the first
  std::string last;       ///< the last event, one line
};

/// The keeper status of `dev_id`, if it has a keeper.
std::optional<KeeperStatus> load_keeper_status(std::uint32_t dev_id);

}  // namespace coblk::cmd
