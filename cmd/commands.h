// cmd/commands.h - the `coblk` subcommands.
#pragma once

// Each takes the arguments after its name, prints its output on stdout and,
// on failure, exactly one line on stderr, and returns the process exit
// status (see docs/cli.md).

#include <boost/program_options.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace coblk::cmd {

/// Exit statuses: 0 success, 1 the operation failed, 2 bad usage.
enum ExitStatus : int { kExitOk = 0, kExitFailure = 1, kExitUsage = 2 };

/// Prints "coblk <command>: <message>" on stderr; returns `status`.
int report_error(const char* command, const std::string& message, int status = kExitFailure);

/// Parses `args` against `desc` (which must contain "help"). Returns an exit
/// status when the command is already done (help printed, or a usage error
/// reported), nullopt when the caller should go on with `vm`.
std::optional<int> parse_command_line(const char* command, const std::vector<std::string>& args,
                                      const boost::program_options::options_description& desc,
                                      boost::program_options::variables_map& vm);

/// Parses a device id given with -n (0..2^20-1). On failure sets `error`.
bool parse_dev_id(const std::string& text, uint32_t& id, std::string& error);

/// The ids of the ublk devices that exist (from /sys/class/ublk-char, or /dev).
std::vector<uint32_t> existing_device_ids();

int run_add(const std::vector<std::string>& args);         ///< coblk add
int run_del(const std::vector<std::string>& args);         ///< coblk del
int run_list(const std::vector<std::string>& args);        ///< coblk list
int run_features(const std::vector<std::string>& args);    ///< coblk features
int run_recover(const std::vector<std::string>& args);     ///< coblk recover
int run_stats(const std::vector<std::string>& args);       ///< coblk stats
int run_writeback(const std::vector<std::string>& args);   ///< coblk writeback
int run_idle(const std::vector<std::string>& args);        ///< coblk idle
int run_recompress(const std::vector<std::string>& args);  ///< coblk recompress
int run_metrics(const std::vector<std::string>& args);     ///< coblk metrics
int run_up(const std::vector<std::string>& args);          ///< coblk up
int run_down(const std::vector<std::string>& args);        ///< coblk down
int run_top(const std::vector<std::string>& args);         ///< coblk top
int run_bench(const std::vector<std::string>& args);       ///< coblk bench

}  // namespace coblk::cmd
