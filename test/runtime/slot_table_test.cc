// SlotTable (runtime/slot_table.h): the table of in-flight operations that
// the reactor's ring and the polled ring share. A CQE must reach exactly
// the operation that was given its user_data, never an older or a freed one.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <set>
#include <vector>

#include "coblk/runtime/slot_table.h"

BOOST_AUTO_TEST_SUITE(runtime_slot_table_test)

using coblk::runtime::SlotTable;
using coblk::runtime::Waiter;

namespace {

Waiter waiter_named(const char* name, std::uint8_t group = 0) { return Waiter{{}, name, 0, group}; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_completed_operation_returns_its_waiter_result_and_flags_and_frees_its_slot) {
  SlotTable table(4);
  const std::uint64_t ud = table.open(waiter_named("reader", 1));
  BOOST_TEST(ud != 0u);
  BOOST_TEST(table.in_flight() == 1u);
  const Waiter* waiter = table.complete(ud, 4096, 7);
  BOOST_REQUIRE(waiter != nullptr);
  BOOST_TEST(std::string(waiter->name) == "reader");
  BOOST_TEST(waiter->group == 1u);
  BOOST_TEST(table.in_flight() == 0u);
  std::uint32_t flags = 0;
  BOOST_TEST(table.close(ud, &flags) == 4096);
  BOOST_TEST(flags == 7u);
}

BOOST_AUTO_TEST_CASE(a_second_cqe_for_the_same_operation_is_ignored) {
  SlotTable table(4);
  const std::uint64_t ud = table.open(waiter_named("a"));
  BOOST_TEST(table.complete(ud, 1, 0) != nullptr);
  BOOST_TEST(table.complete(ud, 2, 0) == nullptr);
  BOOST_TEST(table.close(ud) == 1);  // the first result stands
  BOOST_TEST(table.in_flight() == 0u);
}

BOOST_AUTO_TEST_CASE(a_late_cqe_of_a_freed_slot_misses_the_operation_that_reuses_it) {
  SlotTable table(1);
  const std::uint64_t old_ud = table.open(waiter_named("old"));
  BOOST_TEST(table.complete(old_ud, 1, 0) != nullptr);
  (void)table.close(old_ud);
  const std::uint64_t new_ud = table.open(waiter_named("new"));
  BOOST_TEST(static_cast<std::uint32_t>(new_ud) == static_cast<std::uint32_t>(old_ud));  // same slot
  BOOST_TEST(new_ud != old_ud);                                                          // new generation
  BOOST_TEST(table.complete(old_ud, 99, 0) == nullptr);
  BOOST_TEST(table.in_flight() == 1u);
  const Waiter* waiter = table.complete(new_ud, 5, 0);
  BOOST_REQUIRE(waiter != nullptr);
  BOOST_TEST(std::string(waiter->name) == "new");
  BOOST_TEST(table.close(new_ud) == 5);
}

BOOST_AUTO_TEST_CASE(user_data_the_table_never_handed_out_is_ignored) {
  SlotTable table(4);
  const std::uint64_t ud = table.open(waiter_named("a"));
  // Out of range, a free slot, the reactor's reserved values, and 0.
  const std::uint64_t all = ~std::uint64_t{0};
  const std::uint64_t others[] = {
      std::uint64_t{1} << 32 | 1000, std::uint64_t{1} << 32 | 3, all, all - 1, all - 2, all - 17, 0};
  for (const std::uint64_t other : others) {
    BOOST_TEST(table.complete(other, 1, 0) == nullptr, other);
  }
  BOOST_TEST(table.in_flight() == 1u);
  BOOST_TEST(table.complete(ud, 0, 0) != nullptr);
}

BOOST_AUTO_TEST_CASE(the_table_grows_beyond_its_capacity_and_keeps_earlier_user_data_valid) {
  SlotTable table(2);
  std::vector<std::uint64_t> uds;
  uds.reserve(100);
  for (int i = 0; i < 100; ++i) uds.push_back(table.open(waiter_named("x")));
  BOOST_TEST(table.capacity() >= 100u);
  BOOST_TEST(table.in_flight() == 100u);
  std::set<std::uint32_t> indexes;
  for (const std::uint64_t ud : uds) indexes.insert(static_cast<std::uint32_t>(ud));
  BOOST_TEST(indexes.size() == 100u);  // every operation has a slot of its own
  for (std::size_t i = 0; i < uds.size(); ++i) {
    BOOST_REQUIRE(table.complete(uds[i], static_cast<std::int32_t>(i), 0) != nullptr);
  }
  for (std::size_t i = 0; i < uds.size(); ++i) BOOST_TEST(table.close(uds[i]) == static_cast<int>(i));
}

BOOST_AUTO_TEST_CASE(for_each_in_flight_names_exactly_the_operations_not_yet_completed) {
  SlotTable table(8);
  const std::uint64_t a = table.open(waiter_named("a"));
  const std::uint64_t b = table.open(waiter_named("b"));
  const std::uint64_t c = table.open(waiter_named("c"));
  BOOST_TEST(table.complete(b, 0, 0) != nullptr);
  std::set<std::uint64_t> seen;
  table.for_each_in_flight([&](std::uint64_t ud) { seen.insert(ud); });
  BOOST_TEST((seen == std::set<std::uint64_t>{a, c}));
}

BOOST_AUTO_TEST_CASE(the_generation_wrap_never_produces_user_data_zero_nor_matches_an_old_generation) {
  // Start three reuses before the wrap of slot 0's 32-bit generation.
  SlotTable table(1, UINT32_MAX - 2);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 8; ++i) {
    const std::uint64_t ud = table.open(waiter_named("w"));
    BOOST_TEST(ud != 0u);
    BOOST_TEST((ud >> 32) != 0u);
    BOOST_TEST(seen.insert(ud).second);  // a new user_data every time
    for (const std::uint64_t old : seen) {
      if (old != ud) BOOST_TEST(table.complete(old, -1, 0) == nullptr);
    }
    BOOST_REQUIRE(table.complete(ud, i, 0) != nullptr);
    BOOST_TEST(table.close(ud) == i);
  }
}

BOOST_AUTO_TEST_CASE(first_generation_zero_is_taken_as_one) {
  SlotTable table(1, 0);
  BOOST_TEST(table.open(waiter_named("w")) == (std::uint64_t{1} << 32));
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_slot_table_test
