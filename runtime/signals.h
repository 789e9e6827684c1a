// runtime/signals.h - stop signals received as data, awaited on a reactor.
#pragma once

#include <signal.h>

#include <initializer_list>
#include <stop_token>

#include "coblk/runtime/result.h"
#include "coblk/runtime/task.h"

namespace coblk::runtime {

/// A set of signals that a program receives as data instead of through
/// handlers: block() blocks them in the calling thread, so every thread it
/// starts afterwards (a Runtime's reactors among them) inherits the mask,
/// and a task awaits them with wait(). Create it at the top of main(),
/// before any Runtime exists; otherwise a reactor thread that does not
/// block the signals may receive one and die of it.
///
/// The mask stays in place when the SignalSet is destroyed: unblocking
/// would deliver any pending signal with its default action.
class SignalSet {
 public:
  /// Blocks `signals` (by default the ones a server stops on) in the
  /// calling thread and opens a signalfd for them.
  static Result<SignalSet> block(std::initializer_list<int> signals = {SIGINT, SIGTERM, SIGHUP});

  /// Moves the descriptor; the source is left empty.
  SignalSet(SignalSet&& other) noexcept;
  /// Moves the descriptor; the source is left empty.
  SignalSet& operator=(SignalSet&& other) noexcept;
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;
  /// Closes the signalfd (the mask stays; see the class comment).
  ~SignalSet();

  /// Waits, on the calling reactor, for one of the signals: its number, or
  /// a negative errno (-ECANCELED once `stop` is requested on this core).
  Task<int> wait(std::stop_token stop = {});

  /// The signalfd, for callers that poll it themselves.
  int fd() const noexcept { return fd_; }

 private:
  explicit SignalSet(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace coblk::runtime
