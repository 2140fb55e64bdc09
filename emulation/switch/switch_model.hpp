// SPDX-License-Identifier: Apache-2.0
// switch_model.hpp - a CXL switch's shared bandwidth, modeled across host processes.
//
// Emulated hosts are separate processes on one machine; the rows they read cross one
// modeled switch whose bandwidth they share. The model is a GCRA / virtual-clock token
// bucket kept in a small shared-memory segment (/dev/shm/ep-switch.NAME): a
// reservation of B bytes issued at time t completes at
//     tat' = max(tat, t) + B / rate,   done = max(t, tat' - burst / rate)
// so traffic of all hosts is served first-come first-served at `rate`, and up to
// `burst` bytes pass without queueing. One atomic word (tat) is updated with a CAS:
// the segment is local shared memory of one machine (emulation infrastructure), never
// pool memory, so the pool's "no cross-host atomics" rule does not apply to it.
//
// Independent of lib/ on purpose (no engrampool types): the gather engine can apply it
// per run() later, as it applies CostModel::linkGbps today.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace engrampool::emu {

struct SwitchStats {
	double gbps = 0;                 // modeled switch bandwidth, GB/s (= bytes/ns)
	uint64_t burstBytes = 0;
	uint64_t reservations = 0;
	uint64_t bytes = 0;              // bytes that crossed
	uint64_t queuedNs = 0;           // sum over reservations of (done - issue - bytes/rate)
	uint32_t attached = 0;           // processes that opened the segment
};

class SwitchModel {
public:
	~SwitchModel();
	SwitchModel(const SwitchModel &) = delete;
	SwitchModel &operator=(const SwitchModel &) = delete;

	// Create the segment (fails if it exists). gbps > 0.
	static std::unique_ptr<SwitchModel> create(const std::string &name, double gbps, uint64_t burstBytes,
						   std::string *error);
	// Attach to an existing segment.
	static std::unique_ptr<SwitchModel> open(const std::string &name, std::string *error);
	// Remove the segment's name (attached processes keep their mapping).
	static bool destroy(const std::string &name);
	// The shm object path of a switch name ("/dev/shm/ep-switch.NAME").
	static std::string path(const std::string &name);

	// Reserve `bytes` crossing the switch, issued at nowNs (CLOCK_MONOTONIC, shared by
	// every process of the machine). Returns the time they have all crossed (>= nowNs).
	// Lock-free; safe from any thread of any attached process.
	uint64_t reserve(uint64_t bytes, uint64_t nowNs);
	// Same, issued now.
	uint64_t reserve(uint64_t bytes);

	SwitchStats stats() const;
	const std::string &name() const { return name_; }

	static uint64_t nowNs();         // CLOCK_MONOTONIC in ns

private:
	struct Shared;
	SwitchModel() = default;
	static std::unique_ptr<SwitchModel> map(const std::string &name, int fd, std::string *error);

	std::string name_;
	Shared *shared_ = nullptr;
	double nsPerByte_ = 0;
	uint64_t burstNs_ = 0;
};

} // namespace engrampool::emu
