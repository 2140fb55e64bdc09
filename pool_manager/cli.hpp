// SPDX-License-Identifier: Apache-2.0
// cli.hpp - the small framework every `engrampool` subcommand file plugs into.
//
// A subcommand file defines `void addXxxCommand(CLI::App &root, Runner &runner)`:
// it adds a CLI11 subcommand with its options and registers the function that runs
// it. main.cpp lists the add functions. A run function returns the exit code.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "pool/pool.hpp"
#include "util/status.hpp"

namespace engrampool::cli {

// The whole CLI: parse argv, run the subcommand, return the exit code.
int cliMain(int argc, char **argv);

class Runner {
public:
	void on(CLI::App *sub, std::function<int()> fn) { fns_[sub] = std::move(fn); }
	// Runs the parsed subcommand; 2 when none was given.
	int run(CLI::App &root);

private:
	std::map<CLI::App *, std::function<int()>> fns_;
};

// Print "engrampool: error: <message>" on stderr (one line) and return exit code 1.
int fail(const Status &s);
int fail(const std::string &msg);
// Print a JSON document on stdout (pretty, 2 spaces).
void printJson(const nlohmann::json &j);
// Open a pool for reading or writing; errors already carry the URI.
Result<std::unique_ptr<Pool>> openPool(const std::string &uri, bool write, uint32_t lockWaitMs = 10000);
// Size option parsing for CLI11 ("64M", "2G").
Result<uint64_t> sizeArg(const std::string &text);
// Largest --tokens-file read (bytes), and the largest batch read from it or --tokens:
// far above any real step, far below what exhausts memory (hash keeps layers x columns
// ids per token, lookup a dense output).
inline constexpr uint64_t kMaxTokensFileBytes = 256ull << 20;
inline constexpr size_t kMaxBatchSequences = 65536;
inline constexpr size_t kMaxBatchTokens = size_t{1} << 20;
// Validator for integer options: decimal digits only. CLI11 would read "-1" into an
// unsigned option as 2^64-1 and "010" as octal.
extern const CLI::Validator kNonNegativeInt;
// Validator for floating-point options: finite numbers only (no nan, inf).
extern const CLI::Validator kFinite;
// Text read from the pool (names, hostnames) is untrusted: control bytes, DEL, C1
// controls and invalid UTF-8 are shown as \xNN (and a backslash as \\), never raw.
std::string displayText(const std::string &s);
// Refuse (-EBUSY, naming the hosts) when the pool at uri has live hosts holding slots;
// `action` says what would hurt them ("destroy", "format over"). A URI that does not
// open as a pool has no hosts.
Status refuseIfLiveHosts(const std::string &uri, const std::string &action);
// Token batches: JSON [[ids...], ...] (ragged) or one flat [ids...], from --tokens
// text or a --tokens-file; exactly one of the two. Ids are 0..INT64_MAX; at most
// kMaxBatchSequences sequences and kMaxBatchTokens ids (checked while parsing).
Result<std::vector<std::vector<int64_t>>> parseTokens(const std::string &text, const std::string &what);
Result<std::vector<std::vector<int64_t>>> readTokens(const std::string &inline_, const std::string &file);
// --json flag with the standard help text.
void addJsonFlag(CLI::App *sub, bool &flag);
// True when stdout is a terminal (progress bars only then).
bool stdoutIsTty();

// A progress line on stderr: rows, GB/s, ETA. Silent unless enabled.
class Progress {
public:
	Progress(bool enabled, uint64_t total, uint64_t bytesPerUnit, std::string what);
	void update(uint64_t done);
	void finish();

private:
	bool enabled_;
	uint64_t total_, unitBytes_;
	std::string what_;
	uint64_t startNs_, lastNs_ = 0;
};

void addCreateCommand(CLI::App &root, Runner &runner);
void addImportCommand(CLI::App &root, Runner &runner);
void addLsCommand(CLI::App &root, Runner &runner);
void addStatCommand(CLI::App &root, Runner &runner);
void addVerifyCommand(CLI::App &root, Runner &runner);
void addRmCommand(CLI::App &root, Runner &runner);
void addHostsCommand(CLI::App &root, Runner &runner);
void addMasterCommand(CLI::App &root, Runner &runner);
void addGcCommand(CLI::App &root, Runner &runner);
void addDestroyCommand(CLI::App &root, Runner &runner);
void addHashCommand(CLI::App &root, Runner &runner);
void addModelCommand(CLI::App &root, Runner &runner);
void addLookupCommand(CLI::App &root, Runner &runner);
void addEmulateCommand(CLI::App &root, Runner &runner);
void addTokenMapCommand(CLI::App &root, Runner &runner);
void addHotsetCommand(CLI::App &root, Runner &runner);

} // namespace engrampool::cli
