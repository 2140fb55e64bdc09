// SPDX-License-Identifier: Apache-2.0
// engine.cpp - the gather engine: helper threads that share a run() with the caller.
//
// Work sharing: a run is cut into chunks handed out by one atomic counter. The caller
// starts on chunks at once and helpers join as they wake, so a helper that is slow to
// wake (2 busy cores, a descheduled thread) costs parallelism, never a wait for work
// it was statically assigned. The caller only waits for chunks already being copied.
//
// Publication: the caller writes the job while `open_` is false and no helper is
// inside (`busy_` == 0), then opens it and bumps `epoch_` (the futex word). A helper
// enters by incrementing busy_ and only then checks open_ (both seq_cst, a Dekker
// pair), so it can never read a job that is being rewritten. A helper that wakes
// late finds the counter exhausted and leaves without touching the caller's buffers.
//
// Idle helpers spin on epoch_ for Options::spinNs, then sleep in FUTEX_WAIT; the
// caller issues FUTEX_WAKE only when someone sleeps (`sleepers_`), so back-to-back
// runs cost no syscall. warm() wakes sleeping helpers ahead of a run that is coming
// (the agent calls it when a prefetch starts hashing) and keeps them spinning until it.
//
// Guests: help() lets a thread that would otherwise spin (the agent's caller in wait())
// enter the open run the way a helper does (busy_, then open_) and take chunks. With
// Options::guests a run is shared even when the engine has no helper threads.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <linux/futex.h>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "gather/gather.hpp"
#include "gather/kernel.hpp"
#include "gather/sigbus.hpp"
#include "numa/numa.hpp"
// The shared switch model lives with the emulation tools; it has no lib/ dependencies
// and is compiled into the library (lib/gather/meson.build).
#include "../../emulation/switch/switch_model.hpp"

namespace engrampool::gather {

namespace {

constexpr uint32_t kMaxThreads = 256;
constexpr size_t kMinChunkRows = 32;
constexpr uint32_t kChunksPerWorker = 4;

inline void cpuRelax()
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#endif
}

// CLOCK_MONOTONIC: the clock of the shared switch model, the same in every process.
inline uint64_t nowNs()
{
	return emu::SwitchModel::nowNs();
}

void futexWait(std::atomic<uint32_t> *word, uint32_t expected)
{
	syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futexWakeAll(std::atomic<uint32_t> *word)
{
	syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// Spin, then yield: a worker we wait for may be descheduled on a 2-core machine.
template <typename Pred>
inline void waitUntil(Pred done)
{
	for (uint32_t spins = 0; !done(); spins++) {
		if (spins < 4096)
			cpuRelax();
		else
			sched_yield();
	}
}

Status validate(const Options &o)
{
	if (o.threads == 0 || o.threads > kMaxThreads)
		return errorf(-EINVAL, "gather: threads must be 1..%u, got %u", kMaxThreads, o.threads);
	if (o.isa != Isa::Auto && !isaSupported(o.isa))
		return errorf(EP_E_UNSUPPORTED, "gather: this CPU cannot run the %s kernel", isaName(o.isa));
	if (o.cost.latencyNs > 1000000 || !(o.cost.linkGbps >= 0) || !std::isfinite(o.cost.linkGbps) ||
	    !(o.cost.switchGbps >= 0) || !std::isfinite(o.cost.switchGbps))
		return errorf(-EINVAL, "gather: cost model out of range (latency %u ns, link %.3f GB/s, switch %.3f GB/s)",
			      o.cost.latencyNs, o.cost.linkGbps, o.cost.switchGbps);
	return numa::checkNode(o.numaNode, numa::Need::Cpus, "gather threads");
}

// The switch of o.cost (switchGbps > 0): the segment every engine of the pool shares,
// opened or created, or a private one when no switchName is given.
Result<std::unique_ptr<emu::SwitchModel>> attachSwitch(const CostModel &c)
{
	std::string err;
	if (c.switchName.empty()) {
		static std::atomic<uint64_t> seq{ 0 };
		std::string name = "engine." + std::to_string(getpid()) + "." + std::to_string(seq++);
		auto s = emu::SwitchModel::create(name, c.switchGbps, 0, &err);
		if (!s)
			return makeError(-EIO, "gather: " + err);
		emu::SwitchModel::destroy(name); // the mapping stays: private to this engine
		return s;
	}
	const std::string name = "pool." + c.switchName;
	for (int attempt = 0; attempt < 200; attempt++) {
		auto s = emu::SwitchModel::open(name, &err);
		if (s) {
			emu::SwitchStats st = s->stats();
			if (std::fabs(st.gbps - c.switchGbps) <= 1e-9 * c.switchGbps)
				return s;
			if (st.attached <= 1) {
				// Left by an earlier run with another setting, and no one else uses it.
				s.reset();
				emu::SwitchModel::destroy(name);
				continue;
			}
			return errorf(-EINVAL,
				      "gather: switch_gbps=%g, but the pool's switch %s is modeled at %g GB/s by %u other "
				      "process(es): every host of a pool must give the same switch_gbps (remove the file when "
				      "none of them runs)",
				      c.switchGbps, emu::SwitchModel::path(name).c_str(), st.gbps, st.attached - 1);
		}
		s = emu::SwitchModel::create(name, c.switchGbps, 0, &err);
		if (s)
			return s;
		// Another process created it between our open and create, or is still
		// initialising it: open again.
		usleep(500);
	}
	return makeError(-EIO, "gather: " + err);
}

class EngineImpl final : public Engine {
public:
	explicit EngineImpl(const Options &o, std::unique_ptr<emu::SwitchModel> sw)
		: opts_(o), kernel_(detail::kernelFor(o.isa)), switch_(std::move(sw))
	{
	}

	~EngineImpl() override
	{
		stop_.store(true, std::memory_order_seq_cst);
		epoch_.fetch_add(1, std::memory_order_seq_cst);
		futexWakeAll(&epoch_);
		for (auto &t : helpers_)
			t.join();
	}

	Status start()
	{
		uint32_t n = opts_.threads - 1;
		helpers_.reserve(n);
		for (uint32_t i = 0; i < n; i++) {
			try {
				helpers_.emplace_back([this, i] { helperMain(i); });
			} catch (const std::system_error &e) {
				return errorf(-EAGAIN, "gather: cannot start helper thread %u: %s", i, e.what());
			}
		}
		std::unique_lock<std::mutex> lk(startMutex_);
		startCv_.wait(lk, [&] { return started_ == n; });
		if (pinError_)
			return makeError(pinError_, "gather: " + pinMessage_);
		return Status::ok();
	}

	int run(const Job &job) override
	{
		fault_ = Fault{};
		if (warmUntil_.load(std::memory_order_relaxed))
			warmUntil_.store(0, std::memory_order_relaxed); // the run warm() announced is here
		if (job.count == 0 || (job.rowBytes == 0 && !job.task))
			return 0;
		const bool pool = !job.local && !job.task;
		const uint64_t t0 = opts_.cost.enabled() && pool ? nowNs() : 0;
		// Issued now: queued behind the traffic other hosts reserved before.
		const uint64_t switchDone = switch_ && pool ? switch_->reserve((uint64_t)job.count * job.rowBytes, t0) : 0;
		uint32_t workers = 1;
		int rc;
		if ((helpers_.empty() && !opts_.guests) || job.count < opts_.parallelThreshold) {
			rc = runAlone(job);
		} else {
			workers = opts_.threads;
			rc = runShared(job);
		}
		if (t0)
			applyCost(job, workers, t0, switchDone);
		return rc;
	}

	void warm(uint64_t ns) override
	{
		if (helpers_.empty())
			return;
		warmUntil_.store(nowNs() + ns, std::memory_order_relaxed);
		// A helper woken without a new run finds the last run's chunks all taken and
		// goes back to waiting (now spinning until warmUntil_).
		epoch_.fetch_add(1, std::memory_order_seq_cst);
		if (sleepers_.load(std::memory_order_seq_cst))
			futexWakeAll(&epoch_);
	}

	bool help() override
	{
		// Cheap checks first: a waiting caller polls this in its spin loop.
		if (!opts_.guests || !open_.load(std::memory_order_acquire) ||
		    next_.load(std::memory_order_relaxed) >= chunks_.load(std::memory_order_relaxed))
			return false;
		return join();
	}

	Fault fault() const override { return fault_; }
	const Options &options() const override { return opts_; }

private:
	struct Span {
		const EngineImpl *self;
		const Job *job;
		size_t begin, end;
	};

	static void copySpan(void *p)
	{
		auto *s = static_cast<Span *>(p);
		if (s->job->task) {
			s->job->task(s->job->taskCtx, s->begin, s->end);
			return;
		}
		s->self->kernel_(*s->job, s->begin, s->end, s->self->opts_.nonTemporal, s->self->opts_.prefetchDistance);
	}

	void recordFault(const Job &job, uintptr_t addr)
	{
		Fault f;
		f.sigbus = true;
		f.address = addr;
		uintptr_t base = reinterpret_cast<uintptr_t>(job.table);
		uint64_t span = job.tableRows * job.rowStride;
		f.offset = addr - base;
		f.inTable = addr >= base && addr - base < span;
		f.row = job.rowStride ? f.offset / job.rowStride : 0;
		fault_ = f;
	}

	int runAlone(const Job &job)
	{
		Span s{ this, &job, 0, job.count };
		uintptr_t addr = 0;
		int rc = guardedCall(copySpan, &s, &addr);
		if (rc) {
			if (opts_.nonTemporal)
				flushStreams();
			recordFault(job, addr);
		}
		return rc;
	}

	int runShared(const Job &job)
	{
		// Close the previous run and wait out any helper still inside it.
		open_.store(false, std::memory_order_seq_cst);
		waitUntil([&] { return busy_.load(std::memory_order_seq_cst) == 0; });

		job_ = job;
		// A guest counts as one more worker (it may or may not come).
		const size_t pieces = (size_t)(opts_.threads + (opts_.guests ? 1 : 0)) * kChunksPerWorker;
		chunkRows_ = std::max((job.count + pieces - 1) / pieces, kMinChunkRows);
		chunks_.store((job.count + chunkRows_ - 1) / chunkRows_, std::memory_order_relaxed);
		next_.store(0, std::memory_order_relaxed);
		done_.store(0, std::memory_order_relaxed);
		faulted_.store(false, std::memory_order_relaxed);
		faultAddr_ = 0;

		open_.store(true, std::memory_order_seq_cst);
		epoch_.fetch_add(1, std::memory_order_seq_cst);
		if (sleepers_.load(std::memory_order_seq_cst))
			futexWakeAll(&epoch_);

		work();
		const size_t chunks = chunks_.load(std::memory_order_relaxed);
		waitUntil([&] { return done_.load(std::memory_order_acquire) == chunks; });
		if (faulted_.load(std::memory_order_acquire)) {
			recordFault(job, faultAddr_);
			return -EFAULT;
		}
		return 0;
	}

	// Enter the open run, if any, as a helper or a guest: busy_ first, then open_ (the
	// Dekker pair with runShared), so a job being rewritten is never read. Returns whether
	// there were chunks left to take.
	bool join()
	{
		busy_.fetch_add(1, std::memory_order_seq_cst);
		const bool joined = open_.load(std::memory_order_seq_cst) &&
				    next_.load(std::memory_order_relaxed) < chunks_.load(std::memory_order_relaxed);
		if (joined)
			work();
		busy_.fetch_sub(1, std::memory_order_seq_cst);
		return joined;
	}

	// Take chunks until none are left (caller and helpers alike).
	void work()
	{
		const size_t chunks = chunks_.load(std::memory_order_relaxed);
		for (;;) {
			size_t c = next_.fetch_add(1, std::memory_order_relaxed);
			if (c >= chunks)
				return;
			// After a fault the rest is skipped (the run fails anyway) but still counted.
			if (!faulted_.load(std::memory_order_relaxed)) {
				Span s{ this, &job_, c * chunkRows_, std::min(job_.count, (c + 1) * chunkRows_) };
				uintptr_t addr = 0;
				if (guardedCall(copySpan, &s, &addr)) {
					if (opts_.nonTemporal)
						flushStreams();
					bool expected = false;
					if (faulted_.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
						faultAddr_ = addr; // published by the done_ release below
				}
			}
			done_.fetch_add(1, std::memory_order_release);
		}
	}

	static void flushStreams()
	{
#if defined(__x86_64__)
		__builtin_ia32_sfence();
#endif
	}

	void applyCost(const Job &job, uint32_t workers, uint64_t t0, uint64_t switchDone)
	{
		uint64_t ns = modeledNs(opts_.cost, job.count, (uint64_t)job.count * job.rowBytes,
					std::max<uint32_t>(1, opts_.prefetchDistance), workers);
		uint64_t until = std::max(t0 + ns, switchDone);
		// The emulated memory stall: spin, but yield now and then, so that on a machine
		// shared by several emulated hosts the wait of one does not take the CPU another
		// needs (on real hardware each host stalls on its own cores).
		for (uint32_t i = 0; nowNs() < until; i++) {
			if ((i & 63) == 63)
				sched_yield();
			cpuRelax();
		}
	}

	void pinHelper(uint32_t index)
	{
		char name[16];
		snprintf(name, sizeof(name), "ep-gather-%u", index + 1);
		pthread_setname_np(pthread_self(), name);
		if (Status s = numa::runOnNode(opts_.numaNode, "gather threads"); !s) {
			std::lock_guard<std::mutex> lk(startMutex_);
			if (!pinError_) {
				pinError_ = s.code();
				pinMessage_ = s.message();
			}
		}
	}

	void helperMain(uint32_t index)
	{
		pinHelper(index);
		uint32_t seen = epoch_.load(std::memory_order_acquire);
		{
			std::lock_guard<std::mutex> lk(startMutex_);
			started_++;
		}
		startCv_.notify_one();
		for (;;) {
			seen = waitEpoch(seen);
			if (stop_.load(std::memory_order_acquire))
				return;
			join();
		}
	}

	uint32_t waitEpoch(uint32_t seen)
	{
		const uint64_t spinUntil = nowNs() + opts_.spinNs;
		uint32_t e;
		for (uint32_t i = 0; (e = epoch_.load(std::memory_order_acquire)) == seen; i++) {
			// Read the clock every 64 pauses only: it costs more than a pause. A warm()
			// extends the spin until its run starts (run() clears warmUntil_).
			if ((i & 63) == 63) {
				uint64_t now = nowNs();
				if (now >= spinUntil && now >= warmUntil_.load(std::memory_order_relaxed))
					break;
			}
			// Yield now and then: on an oversubscribed machine (many agents, real-time
			// priorities) a spinning helper must not hold a core another thread waits for.
			if ((i & 255) == 255)
				sched_yield();
			cpuRelax();
		}
		while (e == seen) {
			sleepers_.fetch_add(1, std::memory_order_seq_cst);
			e = epoch_.load(std::memory_order_seq_cst);
			if (e == seen)
				futexWait(&epoch_, seen);
			sleepers_.fetch_sub(1, std::memory_order_seq_cst);
			e = epoch_.load(std::memory_order_acquire);
		}
		return e;
	}

	const Options opts_;
	const detail::KernelFn kernel_;
	const std::unique_ptr<emu::SwitchModel> switch_; // switchGbps > 0 only
	std::vector<std::thread> helpers_;
	Fault fault_;

	std::mutex startMutex_;
	std::condition_variable startCv_;
	uint32_t started_ = 0;
	int pinError_ = 0;
	std::string pinMessage_;

	// Each hot word on its own line: helpers poll epoch_ while the caller bumps others.
	alignas(64) std::atomic<uint32_t> epoch_{ 0 };
	alignas(64) std::atomic<uint32_t> sleepers_{ 0 };
	std::atomic<uint64_t> warmUntil_{ 0 }; // warm(): helpers spin until this time (ns)
	alignas(64) std::atomic<uint32_t> busy_{ 0 };
	std::atomic<bool> open_{ false };
	std::atomic<bool> stop_{ false };
	alignas(64) std::atomic<size_t> next_{ 0 };
	alignas(64) std::atomic<size_t> done_{ 0 };
	std::atomic<bool> faulted_{ false };
	uintptr_t faultAddr_ = 0;
	alignas(64) Job job_;
	size_t chunkRows_ = 0;
	std::atomic<size_t> chunks_{ 0 }; // atomic: help() reads it before it enters

};

} // namespace

Result<std::unique_ptr<Engine>> Engine::create(const Options &opts)
{
	EP_TRY(validate(opts));
	if (int rc = installSigbusHandler())
		return errorf(rc, "gather: cannot install the SIGBUS handler");
	std::unique_ptr<emu::SwitchModel> sw;
	if (opts.cost.switchGbps > 0) {
		auto s = attachSwitch(opts.cost);
		if (!s)
			return s.status();
		sw = std::move(s.value());
	}
	auto e = std::make_unique<EngineImpl>(opts, std::move(sw));
	EP_TRY(e->start());
	return std::unique_ptr<Engine>(std::move(e));
}

} // namespace engrampool::gather
