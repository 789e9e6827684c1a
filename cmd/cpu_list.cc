#include "coblk/cmd/cpu_list.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace coblk::cmd {

std::vector<unsigned> process_cpus() {
  std::vector<unsigned> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

Result<std::vector<unsigned>> parse_cpu_list(const std::string& text, const std::vector<unsigned>& allowed) {
  std::vector<unsigned> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    unsigned cpu = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), cpu);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size())
      return Error(EINVAL, "expected a CPU number or a comma-separated list of them, not " + quote_for_message(item));
    if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end()) {
      std::string list;
      for (unsigned c : allowed) list += (list.empty() ? "" : ",") + std::to_string(c);
      return Error(EINVAL, "CPU " + std::to_string(cpu) + " is not online or not allowed to this process (allowed: " +
                               (list.empty() ? "none" : list) + ")");
    }
    out.push_back(cpu);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

Result<std::vector<unsigned>> parse_sqpoll_cpus(const std::string& value, unsigned queues,
                                                const std::vector<unsigned>& allowed) {
  if (value.empty()) return std::vector<unsigned>{};
  Result<std::vector<unsigned>> cpus = parse_cpu_list(value, allowed);
  if (!cpus) return Error(EINVAL, "--sqpoll: " + cpus.error().message());
  if (cpus->size() != 1 && cpus->size() != queues)
    return Error(EINVAL, "--sqpoll: " + std::to_string(cpus->size()) + " CPUs for " + std::to_string(queues) +
                             " queues: give one CPU for all of them, or one per queue");
  return cpus;
}

}  // namespace coblk::cmd
