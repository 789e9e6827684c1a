// ublk/swap_safety.h - keep a block-device server alive when its device is swap.
#pragma once

#include <string>
#include <vector>

namespace coblk::ublk {

/// Prepares the calling process to serve a block device that may be used as
/// swap, or that sits in the kernel's writeback path:
///
/// - locks all of its memory, present and future, as it is faulted in
///   (mlockall with MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT): a server whose
///   own pages were swapped out to its own device could never page them back
///   in. ONFAULT matters: the page store reserves large address ranges and
///   must not have them populated up front. Skipped, with a warning, when
///   the process may not lock unlimited memory (no CAP_IPC_LOCK and a finite
///   RLIMIT_MEMLOCK), because later large mappings would then fail;
/// - sets oom_score_adj to -1000, so the OOM killer never picks the process
///   that turns memory pressure into free memory.
///
/// Returns one line per step that could not be done (empty when all were).
/// These are warnings, not an Error: the server is still correct without
/// them, only unsafe as swap, so the caller prints them and carries on.
std::vector<std::string> protect_server_process();

/// Marks the calling thread as an I/O flusher (PR_SET_IO_FLUSHER): its
/// allocations do not recurse into block or filesystem I/O, and it is not
/// throttled by dirty-page writeback, which could otherwise wait on the very
/// device this thread serves. Call on each queue thread. Returns 0 or -errno
/// (-EPERM without CAP_SYS_RESOURCE, -EINVAL before Linux 5.6): like
/// runtime::Reactor::register_files, a one-syscall wrapper on the queue
/// path keeps the kernel's form, and its failure is only a warning there.
int mark_io_flusher_thread();

}  // namespace coblk::ublk
