// SPDX-License-Identifier: Apache-2.0
// main.cpp - the `engrampool` admin CLI (commands: cli_main.cpp).
#include "cli.hpp"

int main(int argc, char **argv)
{
	return engrampool::cli::cliMain(argc, argv);
}
