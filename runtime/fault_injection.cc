#include "coblk/runtime/fault_injection.h"

#include <array>
#include <atomic>
#include <charconv>
#include <cstdint>

namespace coblk::runtime::fault {

namespace {

constexpr std::array<std::string_view, 6> kSiteNames = {"io_result",   "frame_alloc",   "wakeup",
                                                        "store_alloc", "store_publish", "queue_start"};
static_assert(static_cast<std::size_t>(Site::queue_start) + 1 == kSiteNames.size(), "a name for every Site");

// Parses all of `text` as a decimal of type T.
template <typename T>
bool parse_number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

}  // namespace

bool parse_rule(std::string_view spec, Rule& rule, std::string& error) {
  rule = Rule{};
  const std::size_t comma = spec.find(',');
  const std::string_view site = spec.substr(0, comma);
  std::size_t index = 0;
  while (index < kSiteNames.size() && kSiteNames[index] != site) ++index;
  if (index == kSiteNames.size()) {
    error = "unknown fault site '" + std::string(site) +
            "' (io_result, frame_alloc, wakeup, store_alloc, store_publish, queue_start)";
    return false;
  }
  rule.site = static_cast<Site>(index);
  std::string_view rest = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
  while (!rest.empty()) {
    const std::size_t next = rest.find(',');
    const std::string_view field = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    const std::size_t eq = field.find('=');
    const std::string_view key = field.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : field.substr(eq + 1);
    bool parsed = false;
    if (key == "opcode") {
      parsed = parse_number(value, rule.opcode) && rule.opcode >= -1 && rule.opcode < 256;
    } else if (key == "skip") {
      // arm() keeps the counters signed: beyond INT64_MAX a rule would never fire.
      parsed = parse_number(value, rule.skip) && rule.skip <= std::uint64_t{INT64_MAX};
    } else if (key == "count") {
      parsed = parse_number(value, rule.count) && rule.count <= std::uint64_t{INT64_MAX};
    } else if (key == "result") {
      parsed = parse_number(value, rule.result);
    } else {
      error = "unknown fault rule key '" + std::string(key) + "' (opcode, skip, count, result)";
      return false;
    }
    if (!parsed) {
      error = "bad value '" + std::string(value) + "' for fault rule key '" + std::string(key) + "'";
      return false;
    }
  }
  return true;
}

bool arm_from_spec(std::string_view specs, std::string& error) {
  if (!available()) {
    error = "this build has no fault injection (CMake option COBLK_FAULT_INJECTION)";
    return false;
  }
  while (!specs.empty()) {
    const std::size_t next = specs.find(';');
    Rule rule;
    if (!parse_rule(specs.substr(0, next), rule, error)) return false;
    if (!arm(rule)) {
      error = "more than 8 fault rules";
      return false;
    }
    specs = next == std::string_view::npos ? std::string_view() : specs.substr(next + 1);
  }
  return true;
}

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
std::array<std::atomic<std::uint64_t>, kSiteNames.size()> fired_at{};

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
