// runtime/result.h - Error and Result<T>: coblk's one way to report a failure.
#pragma once

// The rule, for every public API in every layer:
//   - An operation that can fail for reasons outside the program (the kernel
//     refuses, a file is missing, a value came from a user) returns
//     Result<T>: a value, or an Error holding a positive errno and one line
//     of text a person can act on. Constructors that can fail are private
//     behind a static `create(...)` returning Result<T> (or
//     Result<std::unique_ptr<T>> for types that do not move).
//   - The I/O path (a Target's coroutines, a Queue's commands, an awaitable's
//     result) speaks the kernel's language instead: an int that is the byte
//     count or 0 on success and a negative errno (-EIO, -EOPNOTSUPP, written
//     as named constants, never as bare numbers) on failure. That int is what
//     the kernel receives; it must cost no allocation.
//   - Exceptions are for broken invariants (a bug) and std::bad_alloc. The
//     runtime carries an exception out of a Task to its awaiter, and the ublk
//     layer turns one escaping a target into -EIO, so a bug fails a request
//     instead of the process.

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace coblk {

/// Why an operation failed: an errno value (positive, e.g. ENOENT) and one
/// line of text for a person, naming what failed and, where it helps, what
/// to do about it. The message never ends in a newline.
class Error {
 public:
  /// An error with errno `code` (> 0) and `message`.
  Error(int code, std::string message) : code_(code), message_(std::move(message)) {}

  /// The errno value, always positive.
  int code() const noexcept { return code_; }
  /// -code(): the form the I/O path and the kernel use.
  int negative() const noexcept { return -code_; }
  /// One line for a person.
  const std::string& message() const noexcept { return message_; }

  /// "what: strerror(code)"; the usual way to describe a failed system call.
  static Error from_errno(int code, const std::string& what) { return Error(code, what + ": " + std::strerror(code)); }

 private:
  int code_;
  std::string message_;
};

/// The value of an operation that succeeded, or the Error of one that
/// failed. Converts implicitly from either, so a function can simply
/// `return value;` or `return Error(EINVAL, "...");`.
///
/// Asking a failed Result for its value (or a successful one for its error)
/// is a bug, and throws std::bad_variant_access rather than reading garbage.
template <typename T>
class [[nodiscard]] Result {
 public:
  /// A successful result holding `value`. Never a stand-in for the copy or
  /// move constructor: `bool` is constructible from a Result (explicit
  /// operator bool), so without the first condition copying a non-const
  /// Result<bool> would pick this constructor and hold ok() as its value,
  /// dropping any error.
  template <typename U = T>
  requires(!std::is_same_v<std::remove_cvref_t<U>, Result> && std::is_constructible_v<T, U&&>)
      // Implicit on purpose (`return value;`); the requires clause keeps it
      // from hiding the copy and move constructors, which clang-tidy 14's
      // check cannot see.
      // NOLINTNEXTLINE(google-explicit-constructor, bugprone-forwarding-reference-overload)
      Result(U&& value)
      : state_(std::in_place_index<0>, std::forward<U>(value)) {}
  /// A failed result.
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  /// True when the operation succeeded.
  bool ok() const noexcept { return state_.index() == 0; }
  /// Same as ok().
  explicit operator bool() const noexcept { return ok(); }

  /// The value; only when ok().
  T& value() & { return std::get<0>(state_); }
  /// The value; only when ok().
  const T& value() const& { return std::get<0>(state_); }
  /// The value, moved out; only when ok().
  T&& value() && { return std::get<0>(std::move(state_)); }
  /// Same as value().
  T& operator*() & { return value(); }
  /// Same as value().
  const T& operator*() const& { return value(); }
  /// Member access to the value; only when ok().
  T* operator->() { return &value(); }
  /// Member access to the value; only when ok().
  const T* operator->() const { return &value(); }

  /// The error; only when !ok().
  const Error& error() const& { return std::get<1>(state_); }
  /// The error, moved out; only when !ok().
  Error&& error() && { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

/// The result of an operation that produces nothing but can fail.
template <>
class [[nodiscard]] Result<void> {
 public:
  /// Success.
  Result() = default;
  /// A failed result.
  Result(Error error) : error_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  /// True when the operation succeeded.
  bool ok() const noexcept { return error_.index() == 0; }
  /// Same as ok().
  explicit operator bool() const noexcept { return ok(); }
  /// The error; only when !ok().
  const Error& error() const& { return std::get<1>(error_); }
  /// The error, moved out; only when !ok().
  Error&& error() && { return std::get<1>(std::move(error_)); }

 private:
  std::variant<std::monostate, Error> error_;
};

/// `text` in single quotes with control characters written as `\xNN`, for
/// quoting what a person typed inside an Error's message: the message stays
/// one line whatever was typed.
inline std::string quote_for_message(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

/// Success of a Result<void>, spelled so it reads as one: `return ok();`.
inline Result<void> ok() { return {}; }

}  // namespace coblk
