#include "coblk/runtime/fault_injection.h"

#include <array>
#include <atomic>

namespace coblk::runtime::fault {

#if defined(COBLK_FAULT_INJECTION)
namespace {

// A rule's live state. Rules are armed by a test thread and consulted by
// reactor threads: `armed` is published with release after the rule's
// fields are written and read with acquire before they are read, and the
// counters are atomics so that two cores matching at once each take their
// own event (fetch_sub hands every event to exactly one matcher).
struct Slot {
  std::atomic<bool> armed{false};
  Rule rule;
  std::atomic<std::int64_t> skip{0};
  std::atomic<std::int64_t> count{0};
};

constexpr std::size_t kSlots = 8;
std::array<Slot, kSlots> slots;
std::array<std::atomic<std::uint64_t>, 5> fired_at{};

// True when the rule in `s` fires for this event.
bool take(Slot& s) noexcept {
  if (s.skip.load(std::memory_order_relaxed) > 0 && s.skip.fetch_sub(1, std::memory_order_relaxed) > 0) return false;
  return s.count.fetch_sub(1, std::memory_order_relaxed) > 0;
}

// Every armed rule for `site` (and `opcode`) counts the event, so each
// rule's `skip` counts all matching events; the first rule that fires
// decides the fault. Null when none fires.
const Rule* match(Site site, int opcode) noexcept {
  const Rule* fired = nullptr;
  for (Slot& s : slots) {
    if (!s.armed.load(std::memory_order_acquire)) continue;
    if (s.rule.site != site) continue;
    if (site == Site::io_result && s.rule.opcode >= 0 && s.rule.opcode != opcode) continue;
    if (take(s) && fired == nullptr) fired = &s.rule;
  }
  if (fired != nullptr) fired_at[static_cast<std::size_t>(site)].fetch_add(1, std::memory_order_relaxed);
  return fired;
}

}  // namespace

bool available() noexcept { return true; }

bool arm(const Rule& rule) noexcept {
  for (Slot& s : slots) {
    if (s.armed.load(std::memory_order_acquire)) continue;
    s.rule = rule;
    s.skip.store(static_cast<std::int64_t>(rule.skip), std::memory_order_relaxed);
    s.count.store(static_cast<std::int64_t>(rule.count), std::memory_order_relaxed);
    s.armed.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

void clear() noexcept {
  for (Slot& s : slots) s.armed.store(false, std::memory_order_release);
  for (auto& f : fired_at) f.store(0, std::memory_order_relaxed);
}

std::uint64_t fired(Site site) noexcept {
  return fired_at[static_cast<std::size_t>(site)].load(std::memory_order_relaxed);
}

namespace detail {

int io_result(std::uint8_t opcode, int result) noexcept {
  const Rule* r = match(Site::io_result, opcode);
  if (r == nullptr) return result;
  if (r->result < 0) return r->result;
  return result > r->result ? r->result : result;  // a short transfer
}

bool fail(Site site) noexcept { return match(site, -1) != nullptr; }

}  // namespace detail

#else

bool available() noexcept { return false; }
bool arm(const Rule& /*rule*/) noexcept { return false; }
void clear() noexcept {}
std::uint64_t fired(Site /*site*/) noexcept { return 0; }

#endif

}  // namespace coblk::runtime::fault
