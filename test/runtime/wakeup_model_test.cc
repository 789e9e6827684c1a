// The reactor's wake-up protocols, checked exhaustively on a model.
//
// Each test builds a model of two threads running a transcription of the
// runtime's code (reactor_wake.cc sleep_until_woken / notify_peer,
// reactor.cc poll_parked / resume_claimed, channel.h park / wake), and explores every interleaving
// under x86-TSO: each thread has a FIFO store buffer, a load reads the
// thread's own newest buffered store to the same variable or else memory, a
// buffered store reaches memory at any later moment (a separate step the
// explorer interleaves freely), and a fence, an exchange (a locked
// instruction), a syscall that waits, and membarrier need the caller's
// buffer to be empty. membarrier also empties every other thread's buffer at
// that moment: the barrier it forces on each other running thread. TSO is
// exact for x86, the machine coblk runs on; the comments in reactor_wake.cc give
// the argument in C++ memory-model terms for weaker machines.
//
// A state where no thread can move is terminal: it is correct when the
// consumer (the reactor) has everything; it is a lost wake-up when the
// reactor waits in the kernel for a wake-up that nobody will send. Each
// protocol is also checked with one ingredient removed, and the explorer
// must then find the lost wake-up: that is what shows the model can see one.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

BOOST_AUTO_TEST_SUITE(runtime_wakeup_model_test)

namespace {

// ---- a tiny x86-TSO machine and its exhaustive explorer ----

constexpr int kVars = 6;
constexpr int kRegs = 6;

struct Thread {
  int pc = 0;
  std::array<int, kRegs> reg{};
  std::vector<std::pair<int, int>> buffer;  // (variable, value), oldest first
  bool done = false;
};

struct Machine {
  std::array<int, kVars> mem{};
  std::array<Thread, 2> thread;
  std::string violation;  // set by a thread's step when it sees one

  std::vector<int> key() const {
    std::vector<int> k(mem.begin(), mem.end());
    for (const Thread& t : thread) {
      k.push_back(t.pc);
      k.push_back(t.done);
      k.insert(k.end(), t.reg.begin(), t.reg.end());
      k.push_back(static_cast<int>(t.buffer.size()));
      for (auto [var, value] : t.buffer) {
        k.push_back(var);
        k.push_back(value);
      }
    }
    return k;
  }
};

// The operations a thread's step may use. Each returns false when it cannot
// execute now (the step then does nothing and is not a transition).
struct Ops {
  Machine& m;
  int self;
  Thread& me() { return m.thread[self]; }
  int load(int var) {
    for (auto it = me().buffer.rbegin(); it != me().buffer.rend(); ++it) {
      if (it->first == var) return it->second;
    }
    return m.mem[var];
  }
  void store(int var, int value) { me().buffer.emplace_back(var, value); }
  bool fence() { return me().buffer.empty(); }
  // A locked exchange: needs an empty buffer, acts on memory at once.
  bool exchange(int var, int value, int& old) {
    if (!me().buffer.empty()) return false;
    old = m.mem[var];
    m.mem[var] = value;
    return true;
  }
  // membarrier(PRIVATE_EXPEDITED): a full barrier on every thread.
  bool membarrier() {
    if (!me().buffer.empty()) return false;
    for (Thread& t : m.thread) {
      for (auto [var, value] : t.buffer) m.mem[var] = value;
      t.buffer.clear();
    }
    return true;
  }
};

using Step = std::function<bool(Ops&)>;  // one instruction of one thread

struct Outcome {
  std::size_t states = 0;
  std::size_t finished = 0;      // terminal states where everything arrived
  std::size_t lost_wakeups = 0;  // terminal states where the reactor waits for ever
  std::string violation;         // the first invariant a step reported broken
};

// Explores every interleaving of the two threads' steps and store-buffer
// flushes from the initial machine. `finished(m)` tells a correct terminal
// state from a lost wake-up.
Outcome explore(Machine initial, const std::array<Step, 2>& steps,
                const std::function<bool(const Machine&)>& finished) {
  Outcome out;
  std::set<std::vector<int>> seen;
  std::vector<Machine> stack{std::move(initial)};
  while (!stack.empty()) {
    Machine m = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(m.key()).second) continue;
    ++out.states;
    bool moved = false;
    for (int t = 0; t < 2; ++t) {
      if (!m.thread[t].done) {
        Machine next = m;
        Ops ops{next, t};
        if (steps[t](ops)) {
          moved = true;
          if (!next.violation.empty() && out.violation.empty()) out.violation = next.violation;
          stack.push_back(std::move(next));
        }
      }
      if (!m.thread[t].buffer.empty()) {
        Machine next = m;
        auto [var, value] = next.thread[t].buffer.front();
        next.mem[var] = value;
        next.thread[t].buffer.erase(next.thread[t].buffer.begin());
        moved = true;
        stack.push_back(std::move(next));
      }
    }
    if (!moved) {
      (finished(m) ? out.finished : out.lost_wakeups) += 1;
    }
  }
  return out;
}

// ---- model 1: mail (submit_to, Reactor::wake) and the reactor's sleep ----
//
// Thread 0 is a sender that posts `messages` messages to core 1 with
// Reactor::send -> notify_peer; thread 1 is core 1's reactor loop:
// poll_mailboxes, then sleep_until_woken. Memory: the mailbox's tail, the
// reactor's sleeping_ flag, and the wake-ups in its completion queue (a
// MSG_RING's CQE, written by the kernel: not buffered).

enum Mail { TAIL, SLEEPING, CQ };

struct MailModel {
  int messages = 2;
  bool sender_fence = true;   // notify_peer's seq_cst fence
  bool sleeper_fence = true;  // sleep_until_woken's seq_cst fence
};

Outcome check_mail(const MailModel& model) {
  const Step sender = [model](Ops& o) {
    Thread& t = o.me();
    int& sent = t.reg[0];
    int& old = t.reg[1];
    switch (t.pc) {
      case 0:  // push into the mailbox (release store of the tail)
        o.store(TAIL, ++sent);
        t.pc = 1;
        return true;
      case 1:  // notify_peer: fence
        if (model.sender_fence && !o.fence()) return false;
        t.pc = 2;
        return true;
      case 2:  // if (!peer.sleeping_.load()) return
        t.pc = o.load(SLEEPING) != 0 ? 3 : 5;
        return true;
      case 3:  // if (!peer.sleeping_.exchange(false)) return
        if (!o.exchange(SLEEPING, 0, old)) return false;
        t.pc = old != 0 ? 4 : 5;
        return true;
      case 4:  // MSG_RING: a CQE in the peer's ring (a syscall: buffer empty)
        if (!o.fence()) return false;
        o.m.mem[CQ] += 1;
        t.pc = 5;
        return true;
      case 5:  // next message, or done
        if (sent == model.messages) {
          t.done = true;
        } else {
          t.pc = 0;
        }
        return true;
    }
    return false;
  };
  const Step reactor = [model](Ops& o) {
    Thread& t = o.me();
    int& handled = t.reg[0];
    switch (t.pc) {
      case 0:  // poll_mailboxes: handle everything visible
        handled = o.load(TAIL);
        if (handled == model.messages) {
          t.done = true;  // all mail handled: the rest of the run is not the question
        } else {
          t.pc = 1;
        }
        return true;
      case 1:  // sleep_until_woken: sleeping_ = true
        o.store(SLEEPING, 1);
        t.pc = 2;
        return true;
      case 2:  // seq_cst fence
        if (model.sleeper_fence && !o.fence()) return false;
        t.pc = 3;
        return true;
      case 3:  // mail waiting? then do not sleep
        if (o.load(TAIL) > handled) {
          o.store(SLEEPING, 0);
          t.pc = 0;
        } else {
          t.pc = 4;
        }
        return true;
      case 4:  // io_uring_enter waits until a CQE is there (no time limit)
        if (!o.fence() || o.m.mem[CQ] == 0) return false;
        o.m.mem[CQ] = 0;  // reap
        t.pc = 5;
        return true;
      case 5:  // awake
        o.store(SLEEPING, 0);
        t.pc = 0;
        return true;
    }
    return false;
  };
  return explore(Machine{}, {sender, reactor}, [](const Machine& m) { return m.thread[1].done; });
}

// ---- model 2: a Channel consumer parked on its reactor ----
//
// Thread 0 is the producer's core: it pushes `items` items, and after each
// one runs Channel::wake(consumer_): waker_fence(), a load of `waiting`,
// and, if set, parked_needs_wake (a load of the consumer reactor's
// sleeping_), the claim (exchange) and wake_parked, which sends mail (as in
// model 1). Thread 1 is the consumer's core: the consumer task takes what
// it can, parks (Channel::park), and the reactor loop handles mail
// (resume_claimed), polls its parked waits (poll_parked) and sleeps
// (sleep_until_woken, with membarrier when wakers are light).

enum Park { ITEMS, WAITING, PSLEEPING, MAIL, PCQ };

struct ParkModel {
  int items = 2;
  bool light_wakers = true;       // waker_fence() is a compiler barrier only
  bool membarrier = true;         // sleep_until_woken's membarrier
  bool poll_before_sleep = true;  // sleep_until_woken re-checks the parked waits
  bool recheck_on_claim = true;   // resume_claimed re-checks the condition
};

Outcome check_park(const ParkModel& model) {
  const Step producer = [model](Ops& o) {
    Thread& t = o.me();
    int& pushed = t.reg[0];
    int& old = t.reg[1];
    int& mail = t.reg[2];
    switch (t.pc) {
      case 0:  // ring_.try_push: release store of the tail
        o.store(ITEMS, ++pushed);
        t.pc = 1;
        return true;
      case 1:  // waker_fence()
        if (!model.light_wakers && !o.fence()) return false;
        t.pc = 2;
        return true;
      case 2:  // if (waiting.load(relaxed)) claim(...)
        t.pc = o.load(WAITING) != 0 ? 3 : 9;
        return true;
      case 3:  // parked_needs_wake: is the consumer's reactor asleep?
        t.pc = o.load(PSLEEPING) != 0 ? 4 : 9;
        return true;
      case 4:  // the claim
        if (!o.exchange(WAITING, 0, old)) return false;
        t.pc = old != 0 ? 5 : 9;
        return true;
      case 5:  // wake_parked -> send: push the message
        o.store(MAIL, ++mail);
        t.pc = 6;
        return true;
      case 6:  // notify_peer: fence
        if (!o.fence()) return false;
        t.pc = 7;
        return true;
      case 7:
        t.pc = o.load(PSLEEPING) != 0 ? 8 : 9;
        return true;
      case 8:  // exchange, then MSG_RING
        if (!o.exchange(PSLEEPING, 0, old)) return false;
        if (old != 0) o.m.mem[PCQ] += 1;
        t.pc = 9;
        return true;
      case 9:
        if (pushed == model.items) {
          t.done = true;
        } else {
          t.pc = 0;
        }
        return true;
    }
    return false;
  };
  // Consumer core. reg: got (items taken), handled (mail), old, resumed
  // (1 when the task was just resumed by a claim or a poll).
  const Step consumer = [model](Ops& o) {
    Thread& t = o.me();
    int& got = t.reg[0];
    int& handled = t.reg[1];
    int& old = t.reg[2];
    int& resumed = t.reg[3];
    enum : int {
      kTake,
      kParkFlag,
      kParkFence,
      kParkCheck,
      kParkReclaim,
      kLoop,
      kPoll,
      kPollClaim,
      kSleepFlag,
      kSleepFence,
      kSleepBarrier,
      kSleepMail,
      kSleepPoll,
      kSleepPollClaim,
      kWait,
      kAwake,
      kRepark,
      kReparkFence,
      kReparkCheck,
      kReparkClaim,
    };
    switch (t.pc) {
      case kTake: {  // the consumer task: recv() takes what is there
        const int items = o.load(ITEMS);
        if (resumed != 0 && items == got) {
          // Resumed with nothing to take: recv() would report a closed
          // channel (the bug of the stale claim).
          o.m.violation = "a parked consumer was resumed without an item";
        }
        resumed = 0;
        got = items;
        if (got == model.items) {
          t.done = true;
        } else {
          t.pc = kParkFlag;
        }
        return true;
      }
      case kParkFlag:  // park(): waiting = true, then Reactor::park links it
        o.store(WAITING, 1);
        t.pc = kParkFence;
        return true;
      case kParkFence:
        if (!o.fence()) return false;
        t.pc = kParkCheck;
        return true;
      case kParkCheck:
        t.pc = o.load(ITEMS) > got ? kParkReclaim : kLoop;
        return true;
      case kParkReclaim:  // take back our own wait, or stay (a claim is coming)
        if (!o.exchange(WAITING, 0, old)) return false;
        t.pc = old != 0 ? kTake : kLoop;
        return true;
      case kLoop:  // the reactor loop: poll_mailboxes (resume_claimed)
        if (o.load(MAIL) > handled) {
          handled = o.load(MAIL);
          if (!model.recheck_on_claim || o.load(ITEMS) > got) {
            resumed = 1;
            t.pc = kTake;
          } else {
            t.pc = kRepark;
          }
        } else {
          t.pc = kPoll;
        }
        return true;
      case kPoll:  // poll_parked: waiting still set and the condition true?
        t.pc = o.load(WAITING) != 0 && o.load(ITEMS) > got ? kPollClaim : kSleepFlag;
        return true;
      case kPollClaim:
        if (!o.exchange(WAITING, 0, old)) return false;
        if (old != 0) {
          resumed = 1;
          t.pc = kTake;
        } else {
          t.pc = kSleepFlag;
        }
        return true;
      case kSleepFlag:  // sleep_until_woken
        o.store(PSLEEPING, 1);
        t.pc = kSleepFence;
        return true;
      case kSleepFence:
        if (!o.fence()) return false;
        t.pc = kSleepBarrier;
        return true;
      case kSleepBarrier:
        if (model.light_wakers && model.membarrier && !o.membarrier()) return false;
        t.pc = kSleepMail;
        return true;
      case kSleepMail:
        if (o.load(MAIL) > handled) {
          o.store(PSLEEPING, 0);
          t.pc = kLoop;
        } else {
          t.pc = kSleepPoll;
        }
        return true;
      case kSleepPoll:
        t.pc = model.poll_before_sleep && o.load(WAITING) != 0 && o.load(ITEMS) > got ? kSleepPollClaim : kWait;
        return true;
      case kSleepPollClaim:
        if (!o.exchange(WAITING, 0, old)) return false;
        o.store(PSLEEPING, 0);
        if (old != 0) {
          resumed = 1;
          t.pc = kTake;
        } else {
          t.pc = kLoop;
        }
        return true;
      case kWait:  // io_uring_enter until a CQE (no time limit)
        if (!o.fence() || o.m.mem[PCQ] == 0) return false;
        o.m.mem[PCQ] = 0;
        t.pc = kAwake;
        return true;
      case kAwake:
        o.store(PSLEEPING, 0);
        t.pc = kLoop;
        return true;
      case kRepark:  // resume_claimed on a stale claim: park again
        o.store(WAITING, 1);
        t.pc = kReparkFence;
        return true;
      case kReparkFence:
        if (!o.fence()) return false;
        t.pc = kReparkCheck;
        return true;
      case kReparkCheck:
        t.pc = o.load(ITEMS) > got ? kReparkClaim : kLoop;
        return true;
      case kReparkClaim:
        if (!o.exchange(WAITING, 0, old)) return false;
        if (old != 0) {
          resumed = 1;
          t.pc = kTake;
        } else {
          t.pc = kLoop;
        }
        return true;
    }
    return false;
  };
  return explore(Machine{}, {producer, consumer}, [](const Machine& m) { return m.thread[1].done; });
}

void report(const char* what, const Outcome& o) {
  BOOST_TEST_MESSAGE(what << ": " << o.states << " states, " << o.finished << " finished, " << o.lost_wakeups
                          << " lost wake-ups" << (o.violation.empty() ? "" : ", ") << o.violation);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_reactor_never_sleeps_for_ever_with_mail_waiting) {
  for (int messages = 1; messages <= 3; ++messages) {
    const Outcome o = check_mail(MailModel{messages, true, true});
    report("mail", o);
    BOOST_TEST(o.lost_wakeups == 0u);
    BOOST_TEST(o.finished > 0u);
    BOOST_TEST(o.states > 50u);  // the explorer did explore
  }
}

BOOST_AUTO_TEST_CASE(without_the_senders_fence_mail_can_wait_behind_a_sleeping_reactor) {
  const Outcome o = check_mail(MailModel{1, false, true});
  report("mail, no sender fence", o);
  BOOST_TEST(o.lost_wakeups > 0u);
}

BOOST_AUTO_TEST_CASE(without_the_sleepers_fence_mail_can_wait_behind_a_sleeping_reactor) {
  const Outcome o = check_mail(MailModel{1, true, false});
  report("mail, no sleeper fence", o);
  BOOST_TEST(o.lost_wakeups > 0u);
}

BOOST_AUTO_TEST_CASE(a_parked_consumer_always_gets_every_item_with_fence_free_wakers_and_membarrier) {
  for (int items = 1; items <= 3; ++items) {
    const Outcome o = check_park(ParkModel{items, true, true, true, true});
    report("park, light wakers", o);
    BOOST_TEST(o.lost_wakeups == 0u);
    BOOST_TEST(o.violation.empty(), o.violation);
    BOOST_TEST(o.finished > 0u);
  }
}

BOOST_AUTO_TEST_CASE(a_parked_consumer_always_gets_every_item_with_fenced_wakers) {
  for (int items = 1; items <= 3; ++items) {
    const Outcome o = check_park(ParkModel{items, false, false, true, true});
    report("park, fenced wakers", o);
    BOOST_TEST(o.lost_wakeups == 0u);
    BOOST_TEST(o.violation.empty(), o.violation);
  }
}

BOOST_AUTO_TEST_CASE(fence_free_wakers_without_membarrier_can_leave_a_consumer_parked) {
  const Outcome o = check_park(ParkModel{1, true, false, true, true});
  report("park, light wakers, no membarrier", o);
  BOOST_TEST(o.lost_wakeups > 0u);
}

BOOST_AUTO_TEST_CASE(a_reactor_that_sleeps_without_rechecking_its_parked_waits_can_lose_a_wake_up) {
  const Outcome o = check_park(ParkModel{1, true, true, false, true});
  report("park, no poll before sleep", o);
  BOOST_TEST(o.lost_wakeups > 0u);
}

BOOST_AUTO_TEST_CASE(a_stale_claim_resumes_nobody_without_its_condition) {
  const Outcome fixed = check_park(ParkModel{2, true, true, true, true});
  BOOST_TEST(fixed.violation.empty(), fixed.violation);
  // Without the re-check, a claim whose item the consumer had already
  // taken resumes it with nothing there (the bug that made recv() return
  // std::nullopt on an open channel).
  const Outcome broken = check_park(ParkModel{2, true, true, true, false});
  report("park, no re-check on claim", broken);
  BOOST_TEST(broken.violation == "a parked consumer was resumed without an item");
}

BOOST_AUTO_TEST_SUITE_END()  // runtime_wakeup_model_test
