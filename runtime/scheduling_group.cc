#include "coblk/runtime/scheduling_group.h"

#include <array>
#include <atomic>
#include <stdexcept>
#include <string>

namespace coblk::runtime {

namespace detail {
// Number of running Runtimes. Group creation checks it so the table is never
// written while a reactor reads it. Relaxed is enough: the Runtime's thread
// creation already orders the table writes before any reactor reads them.
std::atomic<int> running_runtimes{0};
}  // namespace detail

namespace {

struct GroupEntry {
  std::string name;
  unsigned shares;
};

std::array<GroupEntry, SchedulingGroup::max_groups>& table() {
  static std::array<GroupEntry, SchedulingGroup::max_groups> groups = {GroupEntry{"io", 1000},
                                                                       GroupEntry{"background", 200}};
  return groups;
}

unsigned& count() {
  static unsigned n = 2;
  return n;
}

void check_not_running(const char* what) {
  if (detail::running_runtimes.load(std::memory_order_relaxed) != 0) {
    throw std::logic_error(std::string(what) + ": scheduling groups are fixed while a Runtime runs");
  }
}

}  // namespace

std::string_view SchedulingGroup::name() const noexcept { return table()[index_].name; }

unsigned SchedulingGroup::shares() const noexcept { return table()[index_].shares; }

SchedulingGroup create_scheduling_group(std::string_view name, unsigned shares) {
  check_not_running("create_scheduling_group");
  if (shares == 0) {
    throw std::invalid_argument("create_scheduling_group: shares must be at least 1");
  }
  if (count() == SchedulingGroup::max_groups) {
    throw std::logic_error("create_scheduling_group: no more than 8 groups");
  }
  table()[count()] = GroupEntry{std::string(name), shares};
  return SchedulingGroup(count()++);
}

unsigned scheduling_group_count() noexcept { return count(); }

void set_scheduling_group_shares(SchedulingGroup group, unsigned shares) {
  check_not_running("set_scheduling_group_shares");
  if (shares == 0) {
    throw std::invalid_argument("set_scheduling_group_shares: shares must be at least 1");
  }
  table()[group.index()].shares = shares;
}

}  // namespace coblk::runtime
