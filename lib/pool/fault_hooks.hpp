// SPDX-License-Identifier: Apache-2.0
// fault_hooks.hpp - crash-consistency tests kill a writer after its k-th persist.
//
// Only code linked against the internal static library can set the hook (the tests and
// the test-only CLI tests/emu/engrampool_faulty); libengrampool.so does not export it,
// and the shipping library reads no environment variable for it.
#pragma once

#include <cstdint>

namespace engrampool::testhooks {

// Called after every persist a writer makes, with the running count of this process.
using PersistHook = void (*)(uint64_t persistCount);
void setWriterPersistHook(PersistHook hook);
PersistHook writerPersistHook();

} // namespace engrampool::testhooks
