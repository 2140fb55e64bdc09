// SPDX-License-Identifier: Apache-2.0
// engrampool.hpp - C++20 RAII wrappers over the C ABI (header-only).
#pragma once
#include <engrampool/engrampool.h>
