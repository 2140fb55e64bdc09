// SPDX-License-Identifier: Apache-2.0
// cli_main.cpp - the `engrampool` admin CLI: one file per subcommand, listed here.
// main.cpp calls cliMain(); so does the test-only CLI of the crash tests.
#include <cstdio>
#include <string>

#include "cli.hpp"
#include "ep_config.h"

namespace engrampool::cli {

int cliMain(int argc, char **argv)
{
	CLI::App app{"engrampool - Engram conditional-memory tables in a shared CXL/DAX pool"};
	app.require_subcommand(1);
	app.set_version_flag("--version", EP_VERSION);
	app.footer("Pool URIs: file:/path | dax:/dev/daxX.Y | emul:NAME?node=N\n"
		   "Run 'engrampool COMMAND --help' for a command's options.");
	Runner runner;
	addCreateCommand(app, runner);
	addImportCommand(app, runner);
	addLsCommand(app, runner);
	addStatCommand(app, runner);
	addVerifyCommand(app, runner);
	addRmCommand(app, runner);
	addHostsCommand(app, runner);
	addGcCommand(app, runner);
	addMasterCommand(app, runner);
	addDestroyCommand(app, runner);
	addHashCommand(app, runner);
	addModelCommand(app, runner);
	addLookupCommand(app, runner);
	addEmulateCommand(app, runner);
	addTokenMapCommand(app, runner);
	addHotsetCommand(app, runner);
	// CLI11 reports a misspelt command as "A subcommand is required": name it instead.
	// Top-level options take no values, so the first word that is not an option is the
	// command.
	for (int i = 1; i < argc; i++) {
		std::string w = argv[i];
		if (w.empty() || w[0] == '-')
			continue;
		if (!app.get_subcommands([&](CLI::App *sub) { return sub->get_name() == w; }).empty())
			break;
		std::string names;
		for (CLI::App *sub : app.get_subcommands([](CLI::App *) { return true; }))
			names += (names.empty() ? "" : ", ") + sub->get_name();
		fprintf(stderr, "engrampool: error: unknown command '%s' (commands: %s)\n", displayText(w).c_str(),
			names.c_str());
		return 2;
	}
	try {
		app.parse(argc, argv);
	} catch (const CLI::CallForHelp &e) {
		return app.exit(e);
	} catch (const CLI::CallForAllHelp &e) {
		return app.exit(e);
	} catch (const CLI::CallForVersion &e) {
		return app.exit(e);
	} catch (const CLI::ParseError &e) {
		std::string msg = e.what();
		fprintf(stderr, "engrampool: error: %s (see --help)\n", msg.c_str());
		return 2;
	}
	try {
		return runner.run(app);
	} catch (const std::exception &e) {
		return fail(std::string("internal error: ") + e.what());
	}
}

} // namespace engrampool::cli
