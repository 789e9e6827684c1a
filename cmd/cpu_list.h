// cmd/cpu_list.h - CPU numbers as users give them (--sqpoll=0,1), checked against the CPUs this process may use.
#pragma once

#include <string>
#include <vector>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// The CPUs this process may run on, in increasing order: its affinity
/// mask, which the kernel reports for online CPUs only. Empty if
/// sched_getaffinity fails.
std::vector<unsigned> process_cpus();

/// Parses "CPU[,CPU...]" (decimal CPU numbers, no spaces, no ranges) and
/// checks each against `allowed` (see process_cpus). Returns the CPUs in
/// the order given, or Error EINVAL with one line (no option name): an
/// empty item, a word that is not a whole number, or a CPU not in
/// `allowed`, named with the allowed list.
Result<std::vector<unsigned>> parse_cpu_list(const std::string& text, const std::vector<unsigned>& allowed);

/// `coblk add --sqpoll`'s value: "" (--sqpoll alone: no pinning, an
/// empty list) or a CPU list (parse_cpu_list) of one CPU, for every queue's
/// poller, or of exactly `queues` CPUs, one per queue. Error EINVAL with one
/// line that starts "--sqpoll".
Result<std::vector<unsigned>> parse_sqpoll_cpus(const std::string& value, unsigned queues,
                                                const std::vector<unsigned>& allowed);

}  // namespace coblk::cmd
