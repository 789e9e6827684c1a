// runtime/scheduling_group.h - classes of work that share a core by weight.
#pragma once

#include <cstdint>
#include <string_view>

namespace coblk::runtime {

/// A class of tasks that shares its core's time with the other groups in
/// proportion to its shares.
///
/// Every reactor keeps one run queue per group and picks the group that has
/// had the least weighted run time, so a busy background group (compression,
/// tier flushes) cannot starve latency-sensitive I/O: it gets its shares, and
/// its tasks are asked to yield (need_yield()) when the slice runs out.
///
/// Two groups always exist: io_group() and background_group(). Further groups
/// are made with create_scheduling_group() before any Runtime starts. The
/// group table is read-only while reactors run, so any core may read it
/// without synchronisation.
class SchedulingGroup {
 public:
  /// Most groups a process can have.
  static constexpr unsigned max_groups = 8;

  /// The latency-sensitive group (shares 1000). Tasks run here by default.
  static SchedulingGroup io() noexcept { return SchedulingGroup(0); }
  /// The background group (shares 200): compression, tier flushes, scans.
  static SchedulingGroup background() noexcept { return SchedulingGroup(1); }

  /// Index of the group in each reactor's tables.
  unsigned index() const noexcept { return index_; }
  /// The group's name, for stats and stall reports.
  std::string_view name() const noexcept;
  /// The group's weight.
  unsigned shares() const noexcept;

  /// Two handles are equal when they name the same group.
  friend bool operator==(SchedulingGroup, SchedulingGroup) = default;

  /// Constructs a handle for an existing index (used internally).
  explicit constexpr SchedulingGroup(unsigned index) noexcept : index_(static_cast<std::uint8_t>(index)) {}

 private:
  std::uint8_t index_;
};

/// Creates a new group. Must be called before any Runtime is started; throws
/// std::logic_error when reactors are running or the table is full, and
/// std::invalid_argument when shares is 0.
SchedulingGroup create_scheduling_group(std::string_view name, unsigned shares);

/// Number of groups currently defined.
unsigned scheduling_group_count() noexcept;

/// Changes a group's shares. Like creation, only before reactors start.
void set_scheduling_group_shares(SchedulingGroup group, unsigned shares);

}  // namespace coblk::runtime
