// cmd/ram_expression.h - zram-generator's `zram-size` arithmetic: an expression in `ram`, the machine's memory in MiB.
#pragma once

// The config file (cmd/boot_config.h) sizes a device the way
// zram-generator.conf(5) does: `zram-size = min(ram / 2, 4096)`, where
// `ram` is MemTotal of /proc/meminfo in MiB and the result is MiB too.

#include <string_view>

#include "coblk/runtime/result.h"

namespace coblk::cmd {

/// Evaluates `text`, an arithmetic expression over `ram` (= `ram_mib`), and
/// returns its value. The language is the part of zram-generator's (the
/// fasteval crate's) that makes sense for a size:
///
/// - decimal numbers (`4096`, `0.5`), `ram`, `e`, `pi`;
/// - `+ - * / %` and `^` (power, right-associative), unary `-` and `+`,
///   parentheses, with the usual precedence (`^` binds tighter than unary
///   minus: `-2^2` is -4);
/// - `min(a, b, ...)`, `max(a, b, ...)`, `abs(x)`, `floor(x)`, `ceil(x)`,
///   `round(x)` (halves away from zero), `int(x)` (towards zero), `log(x)`
///   (base 10) and `log(base, x)`.
///
/// Error EINVAL, one line naming the column, for anything else: a unit
/// suffix (`4G`: the value is in MiB already), an unknown name, a
/// misplaced token, a division by zero, or a result that is not a finite
/// number.
Result<double> evaluate_ram_expression(std::string_view text, double ram_mib);

}  // namespace coblk::cmd
