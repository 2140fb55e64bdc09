// SPDX-License-Identifier: Apache-2.0
// agent.cpp - HostAgent: tickets, sequences, the pipeline thread and the heartbeat.
#include "agent/agent.hpp"

#include <algorithm>
#include <cstring>
#include <immintrin.h>
#include <sched.h>
#include <sys/mman.h>

#include <nlohmann/json.hpp>

#include "agent/metrics.hpp"
#include "agent/read_guard.hpp"
#include "device/cuda.hpp"
#include "pool/model_record.hpp"
#include "util/huge_alloc.hpp"
#include "gather/sigbus.hpp"
#include "model/widen.hpp"
#include "numa/numa.hpp"
#include "util/hash_util.hpp"
#include "util/units.hpp"

namespace engrampool {

namespace {

enum TicketState : uint32_t { kFree = 0, kQueued = 1, kDone = 2 };

// failedGeneration_ when the committed-generation word itself could not be read.
constexpr uint64_t kUnreadable = UINT64_MAX;
// processTicketOnce: a table of the ticket's view may have been reclaimed and reused
// while it was gathered (unregistered agents only); read again from a newer view.
constexpr int kReread = 1;

} // namespace

// The tables of one committed generation, as this agent reads them.
struct HostAgent::View {
	uint64_t generation = 0;
	struct Layer {
		const uint8_t *data = nullptr;  // packed rows, or the values plane of a planar table
		uint64_t rows = 0;
		uint32_t stride = 0;            // packed: row stride; planar: values pitch
		const uint8_t *scales = nullptr; // planar: the scales plane (pitch scaleBytes); else nullptr
		std::string name;
		HeldTable held;              // catalog slot + generation, for re-validation
	};
	std::vector<Layer> layers;
};

struct HostAgent::Ticket {
	std::atomic<uint64_t> id{0};
	std::atomic<uint32_t> state{kFree};
	std::atomic<uint32_t> layersDone{0};
	std::atomic<int> error{0};
	std::atomic<uint64_t> pinnedGen{0};
	std::shared_ptr<const View> view;
	uint32_t slot = 0;
	uint32_t tokens = 0;
	uint64_t startNs = 0;
	std::vector<int64_t> tokenBuf;
	std::vector<uint8_t> deadBuf;     // per token, when anyDead
	bool anyDead = false;
	std::vector<uint64_t> seqOffsets;
	std::vector<uint64_t> rowIds;     // [layer][token][column]
	std::vector<uint64_t> missRows;   // rows to gather for the layer in flight
	std::vector<uint32_t> missPos;    // in place: output row of each miss (its first use)
	std::vector<uint32_t> dupPos;     // in place: output rows that repeat an earlier row
	std::vector<uint64_t> hitRows;    // in place: hot-tier slot of each hit (tier on)
	std::vector<uint32_t> hitPos;     // in place: output row of each hit (its first use)
	std::vector<uint32_t> uniqueCode; // tier on: index entry of each distinct row, by first use
};

// Live sequences: seqId -> streaming state, fixed capacity, no allocation per step.
struct HostAgent::SeqTable {
	std::vector<uint64_t> keys;       // seqId + 1 (0 = empty)
	std::vector<uint32_t> vals;
	size_t mask = 0;
	std::vector<hashing::StreamState> states;
	std::vector<uint32_t> freeList;
	// Per-prefetch scratch.
	std::vector<hashing::StreamState> scratch;
	std::vector<int64_t> where;       // state index, -1 = new
	std::vector<uint64_t> seenKeys;   // duplicate check, stamped
	std::vector<uint32_t> seenStamp;
	uint32_t stamp = 0;

	explicit SeqTable(size_t capacity, size_t maxEntries)
	{
		size_t m = pow2AtLeast(capacity * 2 + 1);
		keys.assign(m, 0);
		vals.assign(m, 0);
		mask = m - 1;
		states.resize(capacity);
		for (size_t i = 0; i < capacity; i++)
			freeList.push_back((uint32_t)(capacity - 1 - i));
		scratch.resize(maxEntries);
		where.resize(maxEntries);
		size_t s = pow2AtLeast(maxEntries * 2 + 1);
		seenKeys.assign(s, 0);
		seenStamp.assign(s, 0);
	}
	size_t probe(uint64_t id) const
	{
		size_t i = mixBits(id) & mask;
		while (keys[i] != 0 && keys[i] != id + 1)
			i = (i + 1) & mask;
		return i;
	}
	int64_t find(uint64_t id) const
	{
		size_t i = probe(id);
		return keys[i] ? (int64_t)vals[i] : -1;
	}
	uint32_t insert(uint64_t id)
	{
		uint32_t s = freeList.back();
		freeList.pop_back();
		size_t i = probe(id);
		keys[i] = id + 1;
		vals[i] = s;
		return s;
	}
	void erase(uint64_t id)
	{
		size_t i = probe(id);
		if (!keys[i])
			return;
		freeList.push_back(vals[i]);
		// Backward-shift deletion.
		size_t j = i;
		for (;;) {
			keys[i] = 0;
			for (;;) {
				j = (j + 1) & mask;
				if (!keys[j])
					return;
				size_t home = mixBits(keys[j] - 1) & mask;
				bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
				if (!between)
					break;
			}
			keys[i] = keys[j];
			vals[i] = vals[j];
			i = j;
		}
	}
	// True when id was already seen in this prefetch.
	bool seen(uint64_t id)
	{
		size_t m = seenKeys.size() - 1;
		size_t i = mixBits(id) & m;
		while (seenStamp[i] == stamp) {
			if (seenKeys[i] == id)
				return true;
			i = (i + 1) & m;
		}
		seenStamp[i] = stamp;
		seenKeys[i] = id;
		return false;
	}
};

// Dedup map of one layer: row id -> index value, cleared by bumping a stamp. One entry
// (key, value, stamp) per 16 bytes, so a probe touches one cache line, and each layer
// uses only the first pow2(2n) entries: a decode step of a few thousand rows works in a
// table that stays in L2 instead of probing the whole capacity (16 MiB at 16 k tokens x
// 16 columns) at random, a cache and TLB miss per row after the thread slept.
struct HostAgent::DedupMap {
	struct Entry {
		uint64_t key;
		uint32_t val;
		uint32_t stamp;
	};
	std::vector<Entry, HugePageAllocator<Entry>> entries; // a prefill's probes: no page walks
	uint32_t stamp = 0;
	size_t mask = 0;
	void init(size_t n) { entries.assign(pow2AtLeast(n * 2 + 1), Entry{0, 0, 0}); }
	// Start a layer of n row ids.
	void reset(size_t n)
	{
		if (++stamp == 0) {
			for (Entry &e : entries)
				e.stamp = 0;
			stamp = 1;
		}
		mask = std::min(entries.size(), pow2AtLeast(n * 2 + 1)) - 1;
	}
	void prefetch(uint64_t key) const { __builtin_prefetch(&entries[mixBits(key) & mask], 1); }
	// Returns a pointer to the value and whether the key was new.
	uint32_t *lookup(uint64_t key, bool &isNew)
	{
		size_t i = mixBits(key) & mask;
		while (entries[i].stamp == stamp) {
			if (entries[i].key == key) {
				isNew = false;
				return &entries[i].val;
			}
			i = (i + 1) & mask;
		}
		entries[i].stamp = stamp;
		entries[i].key = key;
		isNew = true;
		return &entries[i].val;
	}
};

Result<std::unique_ptr<HostAgent>> HostAgent::create(const AgentConfig &cfg)
{
	std::unique_ptr<HostAgent> a(new HostAgent());
	if (Status s = a->init(cfg); !s)
		return s;
	return a;
}

Status HostAgent::init(const AgentConfig &cfg)
{
	cfg_ = cfg;
	if (cfg.maxBatchTokens == 0 || cfg.maxSequences == 0 || cfg.slots == 0)
		return makeError(-EINVAL, "agent: max_batch_tokens, max_sequences and slots must be positive");
	if (cfg.model) {
		model_ = *cfg.model;
	} else if (cfg.modelPath.rfind(kPoolModelPrefix, 0) == 0) {
		// "pool:NAME": the model record and token map the pool itself stores.
		auto p = Pool::open(cfg.poolUri, OpenOptions{});
		if (!p)
			return p.status();
		auto m = poolModelConfig(**p, cfg.modelPath.substr(std::strlen(kPoolModelPrefix)));
		if (!m)
			return std::move(m.status()).context("agent: model '" + cfg.modelPath + "': ");
		model_ = std::move(m.value());
	} else {
		auto m = loadModelFile(cfg.modelPath);
		if (!m)
			return m.status();
		model_ = std::move(m.value());
	}
	auto layout = hashing::ModelLayout::create(model_);
	if (!layout)
		return layout.status();
	auto hasher = hashing::EngramHasher::create(*layout);
	if (!hasher)
		return hasher.status();
	hasher_ = std::make_unique<hashing::EngramHasher>(std::move(hasher.value()));
	layerCount_ = model_.layerIds.size();
	columns_ = hasher_->columns();
	rowStride_ = model_.rowFormat.rowStride();
	rowBytes_ = model_.rowFormat.rowBytes();
	valueBytes_ = model_.rowFormat.valueBytes();
	// Output format: packed rows are scattered as gathered; any other format is converted
	// from packed rows on the pipeline thread into the slot's staging (cuda) or output (host).
	if (cfg.outFormat < EP_OUT_PACKED || cfg.outFormat > EP_OUT_PLANES)
		return errorf(-EINVAL,
			      "agent: output format %d is unknown (expected 0 packed, 1 values, 2 scales, 3 f32, 4 bf16 "
			      "or 5 planes)",
			      cfg.outFormat);
	const uint64_t outRow = outputRowBytes(model_.rowFormat, cfg.outFormat);
	if (outRow == 0)
		return errorf(-EINVAL, "agent: output format %d (%s) needs a scale block; model '%s' has rows of %s",
			      cfg.outFormat, cfg.outFormat == EP_OUT_SCALES ? "scales" : "planes", model_.name.c_str(),
			      model_.rowFormat.describe().c_str());
	convert_ = cfg.outFormat != EP_OUT_PACKED;
	// PLANES: n values rows then n scales rows, n * rowBytes in all: staged as n "rows" of rowBytes.
	outAlloc_ = !convert_ ? rowStride_ : cfg.outFormat == EP_OUT_PLANES ? rowBytes_ : (uint32_t)outRow;
	outRowBytes_ = !convert_ ? rowBytes_ : cfg.outFormat == EP_OUT_PLANES ? valueBytes_ : (uint32_t)outRow;
	outRowStride_ = !convert_ ? rowStride_ : outRowBytes_;
	if (convert_ && cfg.device != device::Kind::Host && cfg.cacheRows)
		return errorf(EP_E_UNSUPPORTED,
			      "agent: output format %d with a hot-row tier needs the host device: the tier keeps packed "
			      "rows in device memory and cuda output is converted on the host (use format 0 or cache_rows 0)",
			      cfg.outFormat);
	if (cfg_.tables.empty())
		for (auto l : model_.layerIds)
			cfg_.tables.push_back(defaultTableName(model_.name, l));
	if (cfg_.tables.size() != layerCount_)
		return errorf(-EINVAL, "agent: %zu table names given for %zu Engram layers", cfg_.tables.size(), layerCount_);

	metrics_ = std::make_unique<AgentMetrics>();
	// Every access to the pool mapping outside the gather engine runs under the SIGBUS
	// guard: a pool file truncated under the agent is an error, never a dead server.
	if (int rc = gather::installSigbusHandler())
		return errorf(rc, "agent: cannot install the SIGBUS handler");
	OpenOptions oo; // read-only: agents never write catalog or data
	Result<std::unique_ptr<Pool>> pool = makeError(-EFAULT, "");
	uintptr_t faultAddr = 0;
	if (gather::guardedInvoke([&] { pool = Pool::open(cfg.poolUri, oo); }, &faultAddr) != 0)
		return makeError(-EFAULT, "SIGBUS reading pool " + cfg.poolUri +
						  ": its backing file was truncated (or a page is poisoned) while it was opened");
	if (!pool)
		return pool.status();
	pool_ = std::move(pool.value());
	auto view = guardedView("attaching");
	if (!view)
		return view.status();
	view_ = *view;
	viewGeneration_ = (*view)->generation;
	cacheGeneration_ = (*view)->generation;
	const uint64_t gen0 = (*view)->generation;

	// NUMA placement: near the GPU for the cuda device (the node of its exact PCI bus
	// id; -1, no placement, when unknown or unusable here).
	int node = cfg.numaNode;
	if (node < 0 && cfg.device == device::Kind::Cuda) {
		cuda::Probe p = cuda::probe();
		for (const cuda::DeviceInfo &d : p.devices)
			if (d.index == cfg.cudaDevice)
				node = numa::nodeOfPciDevice(d.pciBusId);
	}

	device::Options dopt;
	dopt.kind = cfg.device;
	dopt.cudaDevice = cfg.cudaDevice;
	dopt.numaNode = node;
	auto dev = device::Device::create(dopt);
	if (!dev)
		return dev.status();
	device_ = std::move(dev.value());
	size_t maxRows = (size_t)cfg.maxBatchTokens * columns_;
	EP_TRY(device_->allocate(cfg.slots, (uint32_t)layerCount_, maxRows, maxRows, outAlloc_));
	if (convert_) {
		packedScratch_.assign(maxRows * rowStride_, 0); // the pipeline gathers packed rows here
		floatScratch_.assign(model_.rowFormat.valuesPerRow, 0.0f);
	}
	if (cfg.cacheRows) {
		EP_TRY(device_->allocateCache(cfg.cacheRows, rowStride_));
		cache_ = std::make_unique<cache::HotRowCache>(cfg.cacheRows, cfg.cacheAdmit);
		if (cfg.cacheAdaptive && device_->kind() == device::Kind::Host)
			shadow_ = std::make_unique<cache::ShadowTier>(cfg.cacheRows, cfg.cacheAdmit);
		if (!cfg.hotSetFile.empty()) {
			auto hot = cache::HotRowCache::loadFrequencyFile(cfg.hotSetFile, cfg.cacheRows);
			if (!hot)
				return hot.status();
			for (auto &[layerId, row] : *hot) {
				int li = hasher_->layout().layerIndex(layerId);
				if (li < 0)
					return errorf(-EINVAL, "hot-set file %s names layer %u, not an Engram layer of the model",
						      cfg.hotSetFile.c_str(), layerId);
				if (row >= view_->layers[li].rows)
					return errorf(-ERANGE, "hot-set file %s: row %llu is outside layer %u's table",
						      cfg.hotSetFile.c_str(), (unsigned long long)row, layerId);
				cache_->pin((uint32_t)li, row);
				if (shadow_)
					shadow_->pin((uint32_t)li, row);
			}
		}
	}
	slotFilled_.assign(cfg.cacheRows, 0);

	gather::Options gopt;
	gopt.threads = std::max<uint32_t>(1, cfg.gatherThreads);
	gopt.numaNode = node;
	gopt.nonTemporal = cfg.nonTemporal;
	gopt.cost = pool_->region().uri().cost;
	gopt.guests = cfg.waitHelps;
	auto g = gather::Engine::create(gopt);
	if (!g)
		return g.status();
	gather_ = std::move(g.value());

	seqs_ = std::make_unique<SeqTable>(cfg.maxSequences, std::min(cfg.maxSequences, cfg.maxBatchTokens) + 1);
	for (uint32_t s = 0; s < cfg.slots; s++) {
		auto t = std::make_unique<Ticket>();
		t->slot = s;
		t->tokenBuf.resize(cfg.maxBatchTokens);
		t->deadBuf.resize(cfg.maxBatchTokens);
		t->seqOffsets.resize(seqs_->scratch.size() + 1);
		t->rowIds.resize(layerCount_ * maxRows);
		t->missRows.resize(maxRows);
		t->missPos.resize(maxRows);
		t->dupPos.resize(maxRows);
		if (cfg.cacheRows) {
			t->hitRows.resize(maxRows);
			t->hitPos.resize(maxRows);
			t->uniqueCode.resize(maxRows);
		}
		tickets_.push_back(std::move(t));
	}
	queue_ = std::vector<std::atomic<uint64_t>>(pow2AtLeast(cfg.slots + 1));

	if (cfg.registerHost) {
		Result<std::unique_ptr<HostRegistration>> reg = makeError(-EFAULT, "");
		if (gather::guardedInvoke([&] { reg = HostRegistration::attach(*pool_, cfg.hostIndex, gen0, 0); },
					  &faultAddr) != 0)
			return makeError(-EFAULT, poolFaultText(*pool_, "claiming this host's slot", faultAddr));
		if (!reg)
			return reg.status();
		reg_ = std::move(reg.value());
		uint32_t period = cfg.heartbeatMs ? cfg.heartbeatMs : std::max<uint32_t>(10, pool_->superblock().leaseMs / 4);
		heartbeat_ = std::thread([this, period] {
			pthread_setname_np(pthread_self(), "ep-heartbeat");
			std::unique_lock<std::mutex> lk(hbMutex_);
			while (!stop_.load()) {
				hbCv_.wait_for(lk, std::chrono::milliseconds(period));
				if (stop_.load())
					break;
				heartbeatOnce();
			}
		});
	}
	// Cold-start work happens here, not in the first step: the pipeline's dedup map is
	// built (and its pages touched) now, and create returns once the pipeline thread runs.
	dedup_ = std::make_unique<DedupMap>();
	dedup_->init(maxRows);
	pipeline_ = std::thread([this] {
		pthread_setname_np(pthread_self(), "ep-pipeline");
		pipelineLoop();
	});
	while (!pipelineReady_.load(std::memory_order_acquire))
		pipelineReady_.wait(0, std::memory_order_acquire);
	refresher_ = std::thread([this] {
		pthread_setname_np(pthread_self(), "ep-refresh");
		refreshLoop();
	});
	return Status::ok();
}

HostAgent::~HostAgent()
{
	stop_.store(true);
	queueSignal_.fetch_add(1);
	queueSignal_.notify_all();
	if (pipeline_.joinable())
		pipeline_.join();
	refreshSignal_.fetch_add(1);
	refreshSignal_.notify_all();
	if (refresher_.joinable())
		refresher_.join();
	{
		std::lock_guard<std::mutex> lk(hbMutex_);
		hbCv_.notify_all();
	}
	if (heartbeat_.joinable())
		heartbeat_.join();
	if (reg_ && !poolBackingTruncated(*pool_)) {
		// Guarded like every slot write: the pool may have been truncated after the check.
		uintptr_t addr = 0;
		Status st;
		try {
			(void)gather::guardedInvoke([&] { st = reg_->detach(); }, &addr);
		} catch (...) {
		}
	}
	// Wake any waiter left on an unreleased ticket.
	for (auto &t : tickets_) {
		t->layersDone.store((uint32_t)layerCount_);
		t->layersDone.notify_all();
	}
}

Result<std::shared_ptr<const HostAgent::View>> HostAgent::buildView(uint64_t generation) const
{
	auto snap = pool_->snapshot();
	if (!snap)
		return snap.status();
	auto v = std::make_shared<View>();
	v->generation = snap->generation;
	const auto &layout = hasher_->layout();
	for (size_t l = 0; l < layerCount_; l++) {
		const std::string &name = cfg_.tables[l];
		const TableInfo *t = snap->findTable(name);
		if (!t)
			return makeError(-ENOENT, "table '" + name + "' for Engram layer " + std::to_string(model_.layerIds[l]) +
							  " is not in the pool (generation " + std::to_string(snap->generation) +
							  "); import it with 'engrampool import'");
		if (t->modelFingerprint != layout.fingerprint())
			return makeError(EP_E_MODEL, "table '" + name + "' was imported for model fingerprint " +
							     fingerprintHex(t->modelFingerprint) + " but this model has " +
							     fingerprintHex(layout.fingerprint()) +
							     ": the pool and the model file disagree");
		const auto &ll = layout.layers()[l];
		// Either layout: the agent gathers packed rows of rowBytes_ (planar: both planes).
		const bool planar = t->planar();
		if (t->rows != ll.rows || t->rowBytes != rowBytes_ ||
		    (planar ? t->valueBytes() != model_.rowFormat.valueBytes() : t->rowStride != rowStride_))
			return errorf(EP_E_MODEL, "table '%s' has %llu rows of %u B, the model needs %llu rows of %u B",
				      name.c_str(), (unsigned long long)t->rows, planar ? t->rowBytes : t->rowStride,
				      (unsigned long long)ll.rows, rowStride_);
		View::Layer vl;
		const TablePlanes planes = pool_->tablePlanes(*t);
		vl.data = planes.values;
		vl.scales = planar ? planes.scales : nullptr;
		if (cfg_.prefault) {
			// Map every page of the table now, not one fault per gathered row later.
			// EFAULT: a page would raise SIGBUS (the pool file was truncated under us).
			// Then read a byte of every page: populating the page tables does not build
			// what a hypervisor keeps under them (on this project's PVM guests the first
			// access of each page of a mapping traps, ~6.5 us per 2 MiB page: 20 ms of a
			// 5.9 GiB table's first step, and seconds on 4 KiB pages), so the reads pay
			// that here, at attach or on the refresher thread, not in a step. A page
			// that would fault is caught by the SIGBUS guard this runs under.
			const uint64_t page = std::max<uint64_t>(4096, pool_->region().pageSize());
			auto populate = [page](const uint8_t *p, uint64_t bytes) {
				uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)4095;
				uintptr_t e = reinterpret_cast<uintptr_t>(p) + bytes;
				if (madvise(reinterpret_cast<void *>(a), e - a, MADV_POPULATE_READ) != 0 && errno == EFAULT)
					return false;
				uint8_t sum = 0;
				for (uintptr_t q = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1); q < e; q += page)
					sum += *reinterpret_cast<const volatile uint8_t *>(q);
				if (bytes)
					sum += *reinterpret_cast<const volatile uint8_t *>(p);
				(void)sum;
				return true;
			};
			bool readable = planar ? populate(vl.data, t->rows * t->valueBytes()) &&
							 populate(vl.scales, t->rows * t->scaleBytes())
					       : populate(vl.data, t->dataBytes);
			if (!readable) {
				uint64_t now = 0;
				bool cut = poolBackingTruncated(*pool_, &now);
				notePoolFault("prefaulting table '" + name + "'");
				return makeError(-EFAULT, "table '" + name + "' is not readable: " +
								  (cut ? "pool " + cfg_.poolUri + " was truncated (now " +
										 std::to_string(now) + " bytes, the pool maps " +
										 formatBytes(pool_->region().size()) + ")"
								       : "a page of pool " + cfg_.poolUri +
										 " is unreadable (poisoned?)"));
			}
		}
		vl.rows = t->rows;
		vl.stride = t->rowStride;
		vl.name = name;
		vl.held = HeldTable{t->slot, t->generation};
		v->layers.push_back(std::move(vl));
	}
	(void)generation;
	return std::shared_ptr<const View>(std::move(v));
}

// The committed generation's view, every pool access under the SIGBUS guard. On a fault
// the frame is abandoned (a snapshot's buffers leak): callers check poolBackingTruncated
// first so that only a truncation racing with the read gets here.
Result<std::shared_ptr<const HostAgent::View>> HostAgent::guardedView(const char *why) const
{
	Result<std::shared_ptr<const View>> v = makeError(-EFAULT, "");
	uintptr_t addr = 0;
	if (gather::guardedInvoke(
		    [&] {
			    auto g = pool_->committedGeneration();
			    v = g ? buildView(*g) : Result<std::shared_ptr<const View>>(g.status());
		    },
		    &addr) != 0) {
		std::string text = poolFaultText(*pool_, std::string("reading the catalog while ") + why, addr);
		notePoolFault(text);
		return makeError(-EFAULT, text);
	}
	return v;
}

void HostAgent::notePoolFault(const std::string &why) const
{
	poolFault_.store(true, std::memory_order_relaxed);
	metrics_->poolFaults.fetch_add(1, std::memory_order_relaxed);
	std::lock_guard<std::mutex> lk(errMutex_);
	healthProblem_ = why;
}

void HostAgent::heartbeatOnce()
{
	std::string problem;
	uint64_t now = 0;
	if (poolBackingTruncated(*pool_, &now)) {
		// Writing the slot would raise SIGBUS: skip it while the pool is cut short.
		problem = "heartbeat skipped: pool " + cfg_.poolUri + " was truncated (now " + std::to_string(now) +
			  " bytes, the pool maps " + formatBytes(pool_->region().size()) + ")";
		poolFault_.store(true, std::memory_order_relaxed);
	} else {
		uintptr_t addr = 0;
		Status st;
		int rc = -EFAULT;
		try {
			rc = gather::guardedInvoke([&] { st = reg_->heartbeat(oldestPinnedGeneration()); }, &addr);
		} catch (const std::exception &e) {
			st = makeError(-ENOMEM, e.what());
			rc = 0;
		}
		if (rc != 0) {
			problem = poolFaultText(*pool_, "renewing this host's heartbeat", addr);
			notePoolFault(problem);
		} else if (!st) {
			problem = "heartbeat: " + st.message();
		}
	}
	if (problem.empty()) {
		heartbeatFailing_.store(false, std::memory_order_relaxed);
		return;
	}
	metrics_->heartbeatFailures.fetch_add(1, std::memory_order_relaxed);
	bool first = !heartbeatFailing_.exchange(true, std::memory_order_relaxed);
	std::lock_guard<std::mutex> lk(errMutex_);
	healthProblem_ = problem;
	if (first)
		lastError_ = problem;
}

bool HostAgent::healthy(std::string *problem) const
{
	uint64_t now = 0;
	bool truncated = poolBackingTruncated(*pool_, &now);
	bool ok = !truncated && !viewStale_.load(std::memory_order_relaxed) &&
		  !heartbeatFailing_.load(std::memory_order_relaxed) && !poolFault_.load(std::memory_order_relaxed);
	if (problem) {
		std::lock_guard<std::mutex> lk(errMutex_);
		if (ok)
			problem->clear();
		else if (truncated)
			*problem = "pool " + cfg_.poolUri + " was truncated (now " + std::to_string(now) +
				   " bytes, the pool maps " + formatBytes(pool_->region().size()) + ")" +
				   (healthProblem_.empty() ? "" : "; " + healthProblem_);
		else
			*problem = healthProblem_;
	}
	return ok;
}

uint64_t HostAgent::generation() const
{
	return viewGeneration_.load();
}

uint64_t HostAgent::oldestPinnedGeneration() const
{
	uint64_t g = viewGeneration_.load();
	for (auto &t : tickets_) {
		uint64_t p = t->pinnedGen.load(std::memory_order_acquire);
		if (p && p < g)
			g = p;
	}
	return g;
}

void HostAgent::setError(std::string msg) const
{
	std::lock_guard<std::mutex> lk(errMutex_);
	lastError_ = std::move(msg);
}

std::string HostAgent::lastError() const
{
	std::lock_guard<std::mutex> lk(errMutex_);
	return lastError_;
}

// Follow the committed generation (prefetch, at a ticket boundary). Cheap and
// non-blocking: it adopts a view the refresher thread has built, reads the committed
// generation word, and when that moved posts it to the refresher; the snapshot, view
// build and prefault never run on the caller's thread, and tickets issued meanwhile
// keep the view they pin. Never fails the caller and never drops the view it has:
// whatever goes wrong (a corrupted catalog entry, a truncated pool, a busy writer, a
// missing table) the agent keeps serving the last good generation, which stays readable
// (a registered host's heartbeat holds its extents; an unregistered agent re-validates
// every gather), and reports the problem in lastError(), healthy() and the metrics. A
// failed generation is retried after refreshRetryMs, or at once when the committed
// generation moves again.
void HostAgent::refreshView()
{
	if (pendingReady_.load(std::memory_order_acquire)) {
		std::shared_ptr<const View> v;
		{
			std::lock_guard<std::mutex> lk(pendingMutex_);
			v = std::move(pendingView_);
			pendingReady_.store(false, std::memory_order_relaxed);
		}
		if (v && v->generation > viewGeneration_.load(std::memory_order_relaxed)) {
			view_ = std::move(v);
			viewGeneration_.store(view_->generation);
			viewStale_.store(false, std::memory_order_relaxed);
			metrics_->generationChanges.fetch_add(1, std::memory_order_relaxed);
		}
	}
	if (refreshBusy_.load(std::memory_order_acquire))
		return;
	if (poolFault_.load(std::memory_order_relaxed) && poolBackingTruncated(*pool_))
		return; // still cut short: the ticket's gather reports it (no SIGBUS per prefetch)
	const uint64_t failed = failedGeneration_.load(std::memory_order_relaxed);
	if (failed == kUnreadable && nowMonotonicNs() < refreshRetryNs_.load(std::memory_order_relaxed))
		return; // the generation word could not be read a moment ago
	Result<uint64_t> g = makeError(-EFAULT, "");
	uintptr_t addr = 0;
	if (gather::guardedInvoke([&] { g = pool_->committedGeneration(); }, &addr) != 0) {
		std::string text = poolFaultText(*pool_, "reading the committed generation", addr);
		notePoolFault(text);
		noteRefreshFailure(kUnreadable, text);
		return;
	}
	if (!g) {
		noteRefreshFailure(kUnreadable, g.status().message());
		return;
	}
	if (poolFault_.load(std::memory_order_relaxed))
		poolFault_.store(false, std::memory_order_relaxed); // readable again, whole size
	if (*g == viewGeneration_.load(std::memory_order_relaxed)) {
		viewStale_.store(false, std::memory_order_relaxed);
		return;
	}
	if (*g == failed && nowMonotonicNs() < refreshRetryNs_.load(std::memory_order_relaxed))
		return;
	refreshWanted_.store(*g, std::memory_order_relaxed);
	refreshBusy_.store(true, std::memory_order_release);
	refreshSignal_.fetch_add(1, std::memory_order_release);
	refreshSignal_.notify_one();
}

// The refresher thread: builds the view of each posted generation.
void HostAgent::refreshLoop()
{
	while (!stop_.load(std::memory_order_acquire)) {
		uint32_t sig = refreshSignal_.load(std::memory_order_acquire);
		if (!refreshBusy_.load(std::memory_order_acquire)) {
			refreshSignal_.wait(sig, std::memory_order_acquire);
			continue;
		}
		uint64_t target = refreshWanted_.load(std::memory_order_relaxed);
		std::shared_ptr<const View> built;
		std::string failure;
		try {
			auto v = guardedView("moving to a new generation");
			if (v)
				built = std::move(v.value());
			else
				failure = v.status().message();
		} catch (const std::exception &e) {
			failure = std::string("internal error: ") + e.what();
		}
		if (built) {
			failedGeneration_.store(0, std::memory_order_relaxed);
			std::lock_guard<std::mutex> lk(pendingMutex_);
			pendingView_ = std::move(built);
			pendingReady_.store(true, std::memory_order_release);
		} else {
			noteRefreshFailure(target, failure);
		}
		refreshBusy_.store(false, std::memory_order_release);
	}
}

void HostAgent::noteRefreshFailure(uint64_t target, const std::string &why)
{
	failedGeneration_.store(target, std::memory_order_relaxed);
	refreshRetryNs_.store(nowMonotonicNs() + (uint64_t)cfg_.refreshRetryMs * 1000000ull, std::memory_order_relaxed);
	viewStale_.store(true, std::memory_order_relaxed);
	metrics_->refreshFailures.fetch_add(1, std::memory_order_relaxed);
	std::string text = "serving generation " + std::to_string(viewGeneration_.load()) + ": moving to " +
			   (target != kUnreadable ? "generation " + std::to_string(target) : std::string("a new generation")) +
			   " failed: " + why;
	std::lock_guard<std::mutex> lk(errMutex_);
	healthProblem_ = text;
	lastError_ = std::move(text);
}

int HostAgent::prefetch(const BatchEntry *entries, size_t n, uint64_t *ticketOut, const uint8_t *const *dead)
{
	if (!ticketOut || (n && !entries))
		return -EINVAL;
	if (n == 0 || n > seqs_->scratch.size())
		return n == 0 ? -EINVAL : -E2BIG;
	uint64_t id = nextTicket_.load(std::memory_order_relaxed);
	Ticket &t = *tickets_[id % tickets_.size()];
	if (t.state.load(std::memory_order_acquire) != kFree)
		return -EBUSY;
	if (pipelineParked_.load(std::memory_order_relaxed)) {
		// Heads-up: the pipeline thread (and through it the gather helpers) wakes while we
		// hash; the push below then finds it spinning. A prefetch that fails after this
		// costs one idle spin.
		headsUp_.store(1, std::memory_order_seq_cst);
		queueSignal_.fetch_add(1, std::memory_order_seq_cst);
		queueSignal_.notify_one();
	}

	SeqTable &st = *seqs_;
	if (++st.stamp == 0) {
		std::fill(st.seenStamp.begin(), st.seenStamp.end(), 0);
		st.stamp = 1;
	}
	size_t total = 0, fresh = 0;
	bool anyDead = false;
	t.seqOffsets[0] = 0;
	for (size_t i = 0; i < n; i++) {
		const BatchEntry &e = entries[i];
		if (e.count && !e.tokens)
			return -EINVAL;
		total += e.count;
		if (total > cfg_.maxBatchTokens)
			return -E2BIG;
		if (st.seen(e.seqId))
			return -EINVAL; // one entry per sequence and batch
		int64_t idx = st.find(e.seqId);
		if (e.flags & kSeqStart) {
			hasher_->beginSequence(st.scratch[i]);
			if (idx < 0 && !(e.flags & kSeqEnd))
				fresh++; // a one-shot entry (start and end) never takes a slot
		} else {
			if (idx < 0)
				return -ENOENT;
			st.scratch[i] = st.states[(size_t)idx];
		}
		st.where[i] = idx;
		std::memcpy(t.tokenBuf.data() + t.seqOffsets[i], e.tokens, e.count * sizeof(int64_t));
		t.seqOffsets[i + 1] = total;
		if (dead && dead[i] && e.count && !anyDead) {
			// First entry with flags: the entries before it are all live.
			std::memset(t.deadBuf.data(), 0, t.seqOffsets[i]);
			anyDead = true;
		}
		if (anyDead) {
			if (dead && dead[i])
				std::memcpy(t.deadBuf.data() + t.seqOffsets[i], dead[i], e.count);
			else
				std::memset(t.deadBuf.data() + t.seqOffsets[i], 0, e.count);
		}
	}
	if (fresh > st.freeList.size())
		return -E2BIG;
	Status hs = hasher_->hashStream(std::span(st.scratch.data(), n), std::span<const int64_t>(t.tokenBuf.data(), total),
					std::span<const uint64_t>(t.seqOffsets.data(), n + 1),
					std::span<uint64_t>(t.rowIds.data(), layerCount_ * total * columns_),
					hashing::HashOutput::RowIds,
					anyDead ? std::span<const uint8_t>(t.deadBuf.data(), total) : std::span<const uint8_t>());
	if (!hs.isOk())
		return hs.code();
	refreshView();

	// Commit: sequence states move forward only now that nothing can fail.
	for (size_t i = 0; i < n; i++) {
		const BatchEntry &e = entries[i];
		if (e.flags & kSeqEnd) {
			if (st.where[i] >= 0)
				st.erase(e.seqId);
			continue;
		}
		uint32_t idx = st.where[i] >= 0 ? (uint32_t)st.where[i] : st.insert(e.seqId);
		st.states[idx] = st.scratch[i];
	}

	t.view = view_;
	t.tokens = (uint32_t)total;
	t.anyDead = anyDead;
	t.error.store(0, std::memory_order_relaxed);
	t.layersDone.store(0, std::memory_order_relaxed);
	t.startNs = nowMonotonicNs();
	t.pinnedGen.store(view_->generation, std::memory_order_release);
	t.id.store(id, std::memory_order_relaxed);
	t.state.store(kQueued, std::memory_order_release);
	nextTicket_.store(id + 1, std::memory_order_relaxed);

	uint64_t tail = queueTail_.load(std::memory_order_relaxed);
	queue_[tail & (queue_.size() - 1)].store(id, std::memory_order_relaxed);
	queueTail_.store(tail + 1, std::memory_order_seq_cst);
	queueSignal_.fetch_add(1, std::memory_order_seq_cst);
	if (pipelineParked_.load(std::memory_order_seq_cst))
		queueSignal_.notify_one();

	metrics_->tickets.fetch_add(1, std::memory_order_relaxed);
	metrics_->tokens.fetch_add(total, std::memory_order_relaxed);
	*ticketOut = id;
	return 0;
}

// How long the pipeline thread spins for work before it sleeps: briefly after a ticket
// (the next one usually comes a step later, far beyond a spin), up to
// kHeadsUpSpinNs after a prefetch's heads-up (its ticket follows the hashing).
constexpr uint64_t kIdleSpinNs = 50000;
constexpr uint64_t kHeadsUpSpinNs = 2000000;

void HostAgent::pipelineLoop()
{
	pipelineReady_.store(1, std::memory_order_release);
	pipelineReady_.notify_all();
	uint64_t spinFrom = nowMonotonicNs();
	while (!stop_.load(std::memory_order_acquire)) {
		uint64_t head = queueHead_.load(std::memory_order_relaxed);
		if (head == queueTail_.load(std::memory_order_acquire)) {
			// Spin first (by the clock, read every 64 pauses), then sleep.
			const uint64_t spinNs = headsUp_.exchange(0, std::memory_order_acquire) ? kHeadsUpSpinNs : kIdleSpinNs;
			bool got = false;
			for (uint32_t i = 0; !got && !stop_.load(std::memory_order_relaxed); i++) {
				_mm_pause();
				got = head != queueTail_.load(std::memory_order_acquire);
				if ((i & 63) == 63 && nowMonotonicNs() - spinFrom > spinNs)
					break;
				if ((i & 63) == 63 && headsUp_.load(std::memory_order_relaxed))
					break; // a heads-up while spinning: restart with its longer spin
				if ((i & 255) == 255)
					sched_yield(); // a caller (the pusher) waiting for this core gets it
			}
			if (got || stop_.load(std::memory_order_relaxed))
				continue;
			if (headsUp_.load(std::memory_order_relaxed)) {
				spinFrom = nowMonotonicNs();
				continue;
			}
			// Park: a producer that pushes after our tail check sees parked = 1 (both
			// seq_cst) and wakes us; one that pushed before is seen by the check.
			pipelineParked_.store(1, std::memory_order_seq_cst);
			uint32_t sig = queueSignal_.load(std::memory_order_seq_cst);
			if (head == queueTail_.load(std::memory_order_seq_cst) && !headsUp_.load(std::memory_order_seq_cst) &&
			    !stop_.load()) {
				queueSignal_.wait(sig, std::memory_order_seq_cst);
			}
			pipelineParked_.store(0, std::memory_order_relaxed);
			spinFrom = nowMonotonicNs();
			if (headsUp_.load(std::memory_order_relaxed))
				gather_->warm(kHeadsUpSpinNs); // helpers wake while the caller hashes
			continue;
		}
		uint64_t id = queue_[head & (queue_.size() - 1)].load(std::memory_order_relaxed);
		queueHead_.store(head + 1, std::memory_order_release);
		Ticket &t = *tickets_[id % tickets_.size()];
		int rc = processTicket(t);
		if (rc != 0) {
			t.error.store(rc, std::memory_order_relaxed);
			metrics_->errors.fetch_add(1, std::memory_order_relaxed);
		}
		metrics_->ticketLatency.record(nowMonotonicNs() - t.startNs);
		t.state.store(kDone, std::memory_order_release);
		t.layersDone.store((uint32_t)layerCount_, std::memory_order_release);
		t.layersDone.notify_all();
		if (cache_)
			refillHotTier();
		spinFrom = nowMonotonicNs();
	}
}

// Between tickets: evict the hot tier's next victims in advance (CLOCK sweep, map erase,
// the victims' frequencies: several cache misses each), so that admission on a ticket's
// path is a slot pop and an insert. Stops as soon as another ticket is queued.
void HostAgent::refillHotTier()
{
	while (cache_->spares() < cache_->spareCapacity() && !stop_.load(std::memory_order_relaxed)) {
		if (queueHead_.load(std::memory_order_relaxed) != queueTail_.load(std::memory_order_acquire))
			return;
		if (cache_->refill(64) == 0)
			return; // free slots left, no admission, or only referenced / pinned rows this round
	}
}

int HostAgent::processTicket(Ticket &t)
{
	for (int attempt = 0;; attempt++) {
		int rc = processTicketOnce(t);
		if (rc != kReread)
			return rc;
		// An agent without a host slot holds nothing back: a table of its view was replaced
		// and its space reclaimed (and maybe reused) while the ticket gathered from it. What
		// was gathered is discarded (nothing was signalled or admitted to the cache); the
		// whole ticket is gathered again from the committed generation, never a mix.
		metrics_->readRetries.fetch_add(1, std::memory_order_relaxed);
		if (attempt >= kMaxReadRetries) {
			setError("tables were replaced and their space reused while this ticket read them (" +
				 std::to_string(attempt + 1) + " tries); retry the prefetch");
			return EP_E_RETRY;
		}
		auto v = guardedView("re-reading after a table replace");
		if (!v) {
			setError("re-reading after a table replace: " + v.status().message());
			return v.code() == -EFAULT ? -EFAULT : EP_E_RETRY;
		}
		t.view = *v;
		t.pinnedGen.store((*v)->generation, std::memory_order_release);
	}
}

namespace {
// Hot-tier buckets prefetched ahead of a lookup (each a likely cache and TLB miss), in the
// lookup pass on the gather threads and in the counting pass on the pipeline thread.
constexpr size_t kHotAhead = 32;

// Hot-tier lookups (HotRowCache::peek) of a span of distinct rows, run by the gather
// engine's workers while the pipeline thread waits in Engine::run.
struct TierPeek {
	static constexpr uint32_t kNone = UINT32_MAX; // not in the tier
	const cache::HotRowCache *hot;
	uint32_t layer;
	const uint64_t *rows;
	uint32_t *slot;
	static void span(void *p, size_t begin, size_t end)
	{
		const auto &t = *static_cast<const TierPeek *>(p);
		for (size_t u = begin; u < end && u < begin + kHotAhead; u++)
			t.hot->prefetch(t.layer, t.rows[u]);
		for (size_t u = begin; u < end; u++) {
			if (u + kHotAhead < end)
				t.hot->prefetch(t.layer, t.rows[u + kHotAhead]);
			const int64_t s = t.hot->peek(t.layer, t.rows[u]);
			t.slot[u] = s < 0 ? kNone : (uint32_t)s;
		}
	}
};

// Layer passes with fewer distinct rows say little about per-row costs (a decode batch of
// one is 32 rows of two layers).
constexpr size_t kEconomyMinRows = 32;
constexpr double kEconomyWeight = 1.0 / 8; // running averages: weight of the newest pass
constexpr double kShadowMinLookups = 64;   // the shadow's hit rate is judged by from here on
inline void average(double &avg, double x, uint32_t &samples, double weight = kEconomyWeight)
{
	avg = samples++ ? avg + weight * (x - avg) : x;
}
} // namespace

bool HostAgent::SampledBypass::use()
{
	if (!bypass)
		return true;
	if (++sinceSample < sampleEvery)
		return false;
	sinceSample = 0;
	return true;
}

void HostAgent::SampledBypass::decide(double costs, double saves, bool sampled)
{
	if (!bypass && costs > 1.1 * saves) {
		bypass = true;
		sinceSample = 0;
		sampleEvery = kSampleFirst;
	} else if (bypass && costs < 0.9 * saves) {
		bypass = false;
	} else if (bypass && sampled) {
		sampleEvery = std::min(2 * sampleEvery, kSampleMax); // confirmed: run it less often
	}
}

void HostAgent::TierEconomy::notePool(size_t rows, uint64_t ns)
{
	if (rows >= kEconomyMinRows)
		average(poolNsPerRow, (double)ns / (double)rows, poolSamples);
}

bool HostAgent::TierEconomy::noteTier(size_t looked, size_t hits, uint64_t ns)
{
	if (looked < kEconomyMinRows)
		return false;
	// While bypassed the rare sampled passes weigh more, so a tier that starts to pay is
	// back within a few samples.
	const double weight = bypass ? 0.5 : kEconomyWeight;
	uint32_t n = tierSamples;
	average(tierNsPerRow, (double)ns / (double)looked, n, weight);
	average(hitRate, (double)hits / (double)looked, tierSamples, weight);
	return true;
}

void HostAgent::TierEconomy::judge(const cache::ShadowTier *shadow, bool sampled)
{
	if (tierSamples < 4 || poolSamples == 0)
		return; // too early to judge
	// The tier's own hit rate understates a bypassed tier's: it admits nothing while
	// bypassed, so its rows go stale. The shadow keeps learning on every pass.
	judgedHitRate = shadow && shadow->lookups() >= kShadowMinLookups ? shadow->hitRate() : hitRate;
	// Per looked-up row the tier costs tierNsPerRow and saves hitRate x poolNsPerRow.
	decide(tierNsPerRow, judgedHitRate * poolNsPerRow, sampled);
}

void HostAgent::DedupEconomy::noteDedup(size_t ids, size_t unique, uint64_t ns)
{
	if (ids < kEconomyMinRows)
		return;
	const double weight = bypass ? 0.5 : kEconomyWeight; // rare samples while bypassed weigh more
	uint32_t n = dedupSamples;
	average(nsPerId, (double)ns / (double)ids, n, weight);
	average(repeatRate, (double)(ids - unique) / (double)ids, dedupSamples, weight);
}

void HostAgent::DedupEconomy::notePool(size_t rows, uint64_t ns)
{
	if (rows >= kEconomyMinRows)
		average(poolNsPerRow, (double)ns / (double)rows, poolSamples);
}

void HostAgent::DedupEconomy::judge(bool sampled)
{
	if (dedupSamples < 4 || poolSamples == 0)
		return; // too early to judge
	// Per id, deduplicating costs nsPerId and saves repeatRate x poolNsPerRow (a repeat's
	// second read is costed as a pool row: it often hits the cache, so this errs towards
	// deduplicating).
	decide(nsPerId, repeatRate * poolNsPerRow, sampled);
}

bool HostAgent::dedupAdaptive() const
{
	return cfg_.dedupAdaptive && !cache_ && !convert_ && device_->kind() == device::Kind::Host;
}

int HostAgent::processTicketOnce(Ticket &t)
{
	const View &view = *t.view;
	// A registered host's heartbeat holds the view's extents; otherwise every gather is
	// re-validated and layers are signalled only once the whole ticket is known good.
	const bool validate = !reg_;
	// The cache belongs to one generation: rows of a replaced table must never be served.
	if (cache_ && view.generation != cacheGeneration_) {
		cache_->clearUnpinned(); // the static hot set stays; its bytes are refetched
		if (shadow_)
			shadow_->clearUnpinned();
		std::fill(slotFilled_.begin(), slotFilled_.end(), 0);
		cacheGeneration_ = view.generation;
	}
	const size_t n = (size_t)t.tokens * columns_;
	DedupMap &dm = *dedup_;
	// The adaptive tier (host device: a hit is a copy from host memory, comparable with
	// the pool row it saves; on the CUDA device a hit also saves the PCIe copy, which this
	// pass does not see, so the tier is always used there).
	const bool adaptive = cache_ && cfg_.cacheAdaptive && device_->kind() == device::Kind::Host;
	for (uint32_t l = 0; l < layerCount_; l++) {
		const View::Layer &vl = view.layers[l];
		const device::LayerBuffers &buf = device_->buffers(t.slot, l);
		const uint64_t *ids = t.rowIds.data() + (size_t)l * n;
		uint32_t *index = buf.stagingIndex;
		uint32_t *admit = buf.stagingAdmit;
		size_t misses = 0, admits = 0, unique = 0, dups = 0, hits = 0;
		// Packed output on the host device: gathered in place (see below).
		const bool inPlace = !convert_ && device_->kind() == device::Kind::Host;
		uint32_t *const missPos = t.missPos.data();
		uint32_t *const dupPos = t.dupPos.data();
		constexpr size_t kDedupAhead = 8; // map entries prefetched ahead (each a likely miss)
		// Adaptive dedup (no tier, host device, packed output: the only case where a repeat
		// can simply be gathered again): while deduplicating costs more than it saves, the
		// layer's ids are gathered as they are, into output rows 0..n-1.
		const bool dedupAdaptive = this->dedupAdaptive();
		const bool dedup = !dedupAdaptive || dedupEco_.use();
		const uint64_t dedup0 = dedupAdaptive ? nowMonotonicNs() : 0;
		if (!dedup) {
			uint64_t top = 0; // the range check of pass 1, vectorised
			for (size_t i = 0; i < n; i++)
				top = std::max(top, ids[i]);
			if (n && top >= vl.rows)
				return -ERANGE;
			unique = misses = n;
			metrics_->dedupSkippedRows.fetch_add(n, std::memory_order_relaxed);
		} else {
			dm.reset(n);
			// Pass 1: deduplicate. Each distinct row is listed once (missRows/missPos, by first
			// use); its index entry is final here when there is no tier (every distinct row is
			// gathered), else its ordinal, resolved by pass 2.
			for (size_t i = 0; i < kDedupAhead && i < n; i++)
				dm.prefetch(ids[i]);
			for (size_t i = 0; i < n; i++) {
				uint64_t r = ids[i];
				if (i + kDedupAhead < n)
					dm.prefetch(ids[i + kDedupAhead]);
				if (r >= vl.rows)
					return -ERANGE; // hashing guarantees this; a mismatch is a bug, not a crash
				bool isNew;
				uint32_t *v = dm.lookup(r, isNew);
				if (!isNew) {
					index[i] = *v;
					dupPos[dups++] = (uint32_t)i;
					continue;
				}
				*v = (uint32_t)unique;
				index[i] = (uint32_t)unique;
				t.missRows[unique] = r;
				missPos[unique++] = (uint32_t)i;
			}
			misses = unique;
		}
		if (dedupAdaptive && dedup)
			dedupEco_.noteDedup(n, unique, nowMonotonicNs() - dedup0);
		if (shadow_)
			shadow_->observe(l, t.missRows.data(), unique); // before pass 2 reorders missRows
		// The tier, unless it is measured not to pay (lookups and hit copies costing more
		// than the pool rows its hits save): then the distinct rows come from the pool, as
		// without a tier, and one pass in 16..256 (TierEconomy) keeps the figures current.
		cache::HotRowCache *const hot = cache_ && (!adaptive || tierEco_.use()) ? cache_.get() : nullptr;
		if (cache_ && !hot)
			metrics_->cacheBypassedRows.fetch_add(unique, std::memory_order_relaxed);
		uint64_t tierNs = 0, poolNs = 0, mark = hot && adaptive ? nowMonotonicNs() : 0;
		if (hot) {
			// Pass 2: look the distinct rows up in the tier. Misses are compacted in place
			// (misses <= u), hits listed apart; an admitted miss gets its slot filled
			// after the gather.
			uint32_t *const code = t.uniqueCode.data();
			misses = 0;
			// The lookups only read the tier: spread over the gather threads (each core
			// walks its own page tables and keeps its own misses in flight), they leave
			// each row's slot in code[u]; the loop below, on this thread alone, counts
			// them (with admission: the row's frequency, in the same bucket line,
			// prefetched again) and admits misses, replacing code[u] as it goes.
			TierPeek peek{hot, l, t.missRows.data(), code};
			gather::Job lj;
			lj.count = unique;
			lj.task = &TierPeek::span;
			lj.taskCtx = &peek;
			lj.local = true;
			if (gather_->run(lj) != 0) {
				setError("hot-row tier lookup faulted");
				return -EFAULT;
			}
			const bool counts = hot->admits();
			for (size_t u = 0; counts && u < kHotAhead && u < unique; u++)
				hot->prefetch(l, t.missRows[u]);
			for (size_t u = 0; u < unique; u++) {
				if (counts && u + kHotAhead < unique)
					hot->prefetch(l, t.missRows[u + kHotAhead]);
				const uint64_t r = t.missRows[u];
				const uint32_t i = missPos[u];
				const int64_t c = hot->record(l, r, code[u] == TierPeek::kNone ? -1 : (int64_t)code[u]);
				if (c >= 0 && slotFilled_[(size_t)c]) {
					if (inPlace) {
						// Copied by the gather engine from the tier below; repeats copy
						// from this first use (kFromCache | hit ordinal, in place only).
						code[u] = device::kFromCache | (uint32_t)hits;
						t.hitRows[hits] = (uint64_t)c;
						t.hitPos[hits++] = i;
					} else {
						code[u] = device::kFromCache | (uint32_t)c;
						hits++;
					}
				} else {
					code[u] = (uint32_t)misses;
					t.missRows[misses] = r;
					missPos[misses] = i;
					// No CLOCK sweep here: a full tier admits into the spare slots refilled
					// between tickets (refillHotTier), or not at all.
					int64_t fill = c >= 0 ? c : hot->admit(l, r, false);
					if (fill >= 0) {
						admit[2 * admits] = (uint32_t)misses;
						admit[2 * admits + 1] = (uint32_t)fill;
						admits++;
					}
					misses++;
				}
				index[i] = code[u];
			}
			// Pass 3: repeats take their first use's entry.
			for (size_t k = 0; k < dups; k++)
				index[dupPos[k]] = code[index[dupPos[k]]];
		}
		if (adaptive) {
			const uint64_t now = nowMonotonicNs();
			tierNs = mark ? now - mark : 0;
			mark = now;
		} else if (dedupAdaptive) {
			mark = nowMonotonicNs();
		}
		gather::Job job;
		job.table = vl.data;
		job.tableRows = vl.rows;
		job.rowStride = vl.stride;
		job.rowBytes = vl.scales ? valueBytes_ : rowBytes_;
		job.rows = dedup ? t.missRows.data() : ids;
		job.count = misses;
		// Packed output: straight into the staging slot; other formats: packed into the
		// pipeline's scratch first, converted below. On the host device with packed output,
		// rows are gathered in place: each distinct pool row straight into the output row
		// of its first use (the identity when all are distinct, the usual decode step);
		// then hot-tier hits are gathered from the tier (same engine, same threads, no cost
		// model), repeats copied from their first use, and admitted rows from the output
		// into the tier; no staging copy, no scatter pass.
		uint8_t *const packedDst = convert_ ? packedScratch_.data() : inPlace ? buf.output : buf.stagingRows;
		job.dst = packedDst;
		job.dstStride = rowStride_;
		if (inPlace && misses != n)
			job.dstIndex = missPos;
		if (validate)
			callReadHook(testhooks::ReadStage::BeforeRead, l);
		int grc = gather_->run(job);
		const char *plane = vl.scales ? "the values plane of " : "";
		if (grc == 0 && vl.scales) {
			// Planar: a second pass puts each row's scales behind its values (packed rows).
			job.table = vl.scales;
			job.rowStride = rowBytes_ - valueBytes_;
			job.rowBytes = rowBytes_ - valueBytes_;
			job.dst = packedDst + valueBytes_;
			grc = gather_->run(job);
			plane = "the scales plane of ";
		}
		if (adaptive) {
			const uint64_t now = nowMonotonicNs();
			poolNs = now - mark;
		} else if (dedupAdaptive) {
			poolNs = nowMonotonicNs() - mark;
		}
		if (int rc = grc; rc != 0) {
			gather::Fault f = gather_->fault();
			std::string why = "a page is poisoned";
			uint64_t now = 0;
			if (poolBackingTruncated(*pool_, &now))
				why = "pool " + cfg_.poolUri + " was truncated: now " + std::to_string(now) +
				      " bytes, the pool maps " + formatBytes(pool_->region().size());
			if (f.sigbus)
				notePoolFault("gather from table '" + vl.name + "': SIGBUS (" + why + ")");
			setError("gather from " + std::string(plane) + "table '" + vl.name + "' faulted at byte offset " +
				 std::to_string(f.offset) +
				 (f.sigbus ? " (SIGBUS: " + why + ")" : ""));
			return rc;
		}
		if (validate && misses) {
			callReadHook(testhooks::ReadStage::AfterRead, l);
			auto held = tablesStillHeld(*pool_, view.generation, &vl.held, 1);
			if (!held) {
				if (held.code() == -EFAULT)
					notePoolFault(held.status().message());
				setError("gather from table '" + vl.name + "': " + held.status().message());
				return held.code();
			}
			if (!*held)
				return kReread;
		}
		if (convert_) {
			// Output rows in the agent's format, from the gathered packed rows or the (host)
			// hot-row tier; the tier stays packed: admitted rows are copied from the scratch
			// after the conversion read the tier (as the device's scatter-then-admit does).
			uint8_t *cacheBase = cache_ ? device_->cacheRows() : nullptr;
			const bool host = device_->kind() == device::Kind::Host;
			convertLayer(index, n, cacheBase, host ? buf.output : buf.stagingRows);
			for (size_t k = 0; k < admits; k++)
				std::memcpy(cacheBase + (size_t)admit[2 * k + 1] * rowStride_,
					    packedScratch_.data() + (size_t)admit[2 * k] * rowStride_, rowStride_);
			size_t staged = 0;
			if (!host) {
				// cuda: the converted staging is copied as is (identity scatter).
				for (size_t i = 0; i < n; i++)
					index[i] = (uint32_t)i;
				staged = n;
			}
			if (int rc = device_->submitLayer(t.slot, l, staged, staged, 0, outAlloc_); rc != 0) {
				setError("device: " + device_->lastError());
				return rc;
			}
		} else if (inPlace) {
			const uint64_t copy0 = hits && adaptive ? nowMonotonicNs() : 0;
			if (hits) {
				gather::Job hj;
				hj.table = device_->cacheRows();
				hj.tableRows = cfg_.cacheRows;
				hj.rowStride = rowStride_;
				hj.rowBytes = rowBytes_;
				hj.rows = t.hitRows.data();
				hj.count = hits;
				hj.dst = buf.output;
				hj.dstStride = rowStride_;
				hj.dstIndex = t.hitPos.data();
				hj.local = true;
				if (int rc = gather_->run(hj); rc != 0) {
					setError("copy from the hot-row tier faulted");
					return rc;
				}
				if (adaptive)
					tierNs += nowMonotonicNs() - copy0;
			}
			for (size_t k = 0; k < dups; k++) {
				const size_t i = dupPos[k];
				const uint32_t e = index[i];
				const size_t first = (e & device::kFromCache) ? t.hitPos[e & ~device::kFromCache] : missPos[e];
				std::memcpy(buf.output + i * rowStride_, buf.output + first * rowStride_, rowStride_);
			}
			uint8_t *const cacheBase = cache_ ? device_->cacheRows() : nullptr;
			const uint64_t admit0 = admits && adaptive ? nowMonotonicNs() : 0;
			for (size_t k = 0; k < admits; k++)
				std::memcpy(cacheBase + (size_t)admit[2 * k + 1] * rowStride_,
					    buf.output + (size_t)missPos[admit[2 * k]] * rowStride_, rowStride_);
			if (admit0)
				tierNs += nowMonotonicNs() - admit0;
			if (int rc = device_->submitLayer(t.slot, l, 0, 0, 0, rowStride_); rc != 0) {
				setError("device: " + device_->lastError());
				return rc;
			}
		} else if (int rc = device_->submitLayer(t.slot, l, misses, n, admits, rowStride_); rc != 0) {
			setError("device: " + device_->lastError());
			return rc;
		}
		for (size_t k = 0; k < admits; k++)
			slotFilled_[admit[2 * k + 1]] = 1;
		if (adaptive) {
			tierEco_.notePool(misses, poolNs);
			const bool sampled = hot && tierEco_.noteTier(unique, hits, tierNs);
			tierEco_.judge(shadow_.get(), sampled);
			metrics_->cacheBypassing.store(tierEco_.bypass, std::memory_order_relaxed);
			if (shadow_)
				metrics_->cacheWarmHitRate.store(shadow_->hitRate(), std::memory_order_relaxed);
		}
		if (dedupAdaptive) {
			dedupEco_.notePool(misses, poolNs);
			dedupEco_.judge(dedup && dedupEco_.bypass);
			metrics_->dedupSkipping.store(dedupEco_.bypass, std::memory_order_relaxed);
		}
		metrics_->rows.fetch_add(n, std::memory_order_relaxed);
		metrics_->uniqueRows.fetch_add(unique, std::memory_order_relaxed);
		metrics_->gatheredRows.fetch_add(misses, std::memory_order_relaxed);
		metrics_->gatheredBytes.fetch_add(misses * rowBytes_, std::memory_order_relaxed);
		metrics_->cacheHits.fetch_add(unique - misses, std::memory_order_relaxed);
		metrics_->cacheMisses.fetch_add(hot ? misses : 0, std::memory_order_relaxed);
		metrics_->cacheAdmissions.fetch_add(admits, std::memory_order_relaxed);
		if (!validate && l + 1 < layerCount_) {
			// Layer l is usable now: the first Engram layer never waits for the last.
			t.layersDone.store(l + 1, std::memory_order_release);
			t.layersDone.notify_all();
		}
	}
	return 0;
}

// Output rows 0..n-1 in the agent's format: row i from index[i] (a gathered packed row of
// the scratch, or a packed row of the host hot-row tier when kFromCache is set).
void HostAgent::convertLayer(const uint32_t *index, size_t n, const uint8_t *cacheRows, uint8_t *dst)
{
	const RowFormat &f = model_.rowFormat;
	const uint8_t *scratch = packedScratch_.data();
	const size_t stride = rowStride_;
	const uint32_t vb = valueBytes_, sb = rowBytes_ - valueBytes_, out = outAlloc_;
	auto source = [&](uint32_t e) -> const uint8_t * {
		return (e & device::kFromCache) ? cacheRows + (size_t)(e & ~device::kFromCache) * stride
						: scratch + (size_t)e * stride;
	};
	switch (cfg_.outFormat) {
	case EP_OUT_F32:
		for (size_t i = 0; i < n; i++)
			dequantizeRow(f, source(index[i]), reinterpret_cast<float *>(dst + i * out));
		break;
	case EP_OUT_BF16: {
		float *tmp = floatScratch_.data();
		for (size_t i = 0; i < n; i++)
			dequantizeRowBf16(f, source(index[i]), reinterpret_cast<uint16_t *>(dst + i * out), tmp);
		break;
	}
	case EP_OUT_VALUES:
		for (size_t i = 0; i < n; i++)
			std::memcpy(dst + i * out, source(index[i]), vb);
		break;
	case EP_OUT_SCALES:
		for (size_t i = 0; i < n; i++)
			std::memcpy(dst + i * out, source(index[i]) + vb, sb);
		break;
	case EP_OUT_PLANES:
		for (size_t i = 0; i < n; i++) {
			const uint8_t *src = source(index[i]);
			std::memcpy(dst + i * vb, src, vb);
			std::memcpy(dst + n * vb + i * sb, src + vb, sb);
		}
		break;
	default: break;
	}
}

HostAgent::Ticket *HostAgent::findTicket(uint64_t id) const
{
	if (id == 0)
		return nullptr;
	Ticket *t = tickets_[id % tickets_.size()].get();
	if (t->id.load(std::memory_order_acquire) != id || t->state.load(std::memory_order_acquire) == kFree)
		return nullptr;
	return t;
}

// How long wait() spins before it sleeps on the ticket.
constexpr uint64_t kWaitSpinNs = 1000000;

int HostAgent::findLayerWait(uint64_t ticket, int layerIndex, Ticket **t, uint32_t *need) const
{
	*t = findTicket(ticket);
	if (!*t)
		return -ENOENT;
	if (layerIndex >= (int)layerCount_)
		return -EINVAL;
	*need = layerIndex < 0 ? (uint32_t)layerCount_ : (uint32_t)layerIndex + 1;
	return 0;
}

int HostAgent::wait(uint64_t ticket, int layerIndex)
{
	Ticket *t;
	uint32_t need;
	if (int rc = findLayerWait(ticket, layerIndex, &t, &need); rc != 0)
		return rc;
	metrics_->waits.fetch_add(1, std::memory_order_relaxed);
	uint32_t done = t->layersDone.load(std::memory_order_acquire);
	if (done < need) {
		uint64_t t0 = nowMonotonicNs();
		// Spin up to kWaitSpinNs before sleeping: a layer is usually ready within a step's
		// time, and a futex wake-up costs more than that on a VM (an IPI per wake). While
		// spinning, copy rows with the pipeline (AgentConfig::waitHelps): this core would
		// otherwise only wait for the ones that do.
		const bool helps = cfg_.waitHelps;
		for (int i = 0; done < need; i++) {
			if (helps && gather_->help()) {
				done = t->layersDone.load(std::memory_order_acquire);
				continue;
			}
			_mm_pause();
			done = t->layersDone.load(std::memory_order_acquire);
			if ((i & 63) == 63 && nowMonotonicNs() - t0 > kWaitSpinNs)
				break;
			if ((i & 255) == 255)
				sched_yield(); // the pipeline (or a gather helper) may need this core
		}
		while (done < need) {
			t->layersDone.wait(done, std::memory_order_acquire);
			done = t->layersDone.load(std::memory_order_acquire);
		}
		uint64_t stall = nowMonotonicNs() - t0;
		metrics_->stalls.fetch_add(1, std::memory_order_relaxed);
		metrics_->stallNs.fetch_add(stall, std::memory_order_relaxed);
		metrics_->stallLatency.record(stall);
	}
	if (int e = t->error.load(std::memory_order_acquire); e != 0)
		return e;
	if (device_->kind() != device::Kind::Host) {
		uint32_t from = layerIndex < 0 ? 0 : (uint32_t)layerIndex;
		for (uint32_t l = from; l < need; l++)
			if (int rc = device_->waitLayer(t->slot, l); rc != 0)
				return rc;
	}
	return 0;
}

int HostAgent::poll(uint64_t ticket, int layerIndex) const
{
	Ticket *t;
	uint32_t need;
	if (int rc = findLayerWait(ticket, layerIndex, &t, &need); rc != 0)
		return rc;
	if (t->layersDone.load(std::memory_order_acquire) < need)
		return 0;
	if (int e = t->error.load(std::memory_order_acquire); e != 0)
		return e;
	return 1;
}

int HostAgent::output(uint64_t ticket, uint32_t layerIndex, LayerOutput *out) const
{
	Ticket *t = findTicket(ticket);
	if (!t || !out)
		return t ? -EINVAL : -ENOENT;
	if (layerIndex >= layerCount_)
		return -EINVAL;
	out->rows = device_->buffers(t->slot, layerIndex).output;
	out->tokens = t->tokens;
	out->columns = columns_;
	out->rowBytes = outRowBytes_;
	out->rowStride = outRowStride_;
	out->format = (uint32_t)cfg_.outFormat;
	out->layerId = model_.layerIds[layerIndex];
	out->generation = t->view->generation;
	return 0;
}

int HostAgent::liveMask(uint64_t ticket, uint8_t *mask, size_t cap, size_t *tokens) const
{
	Ticket *t = findTicket(ticket);
	if (!t)
		return -ENOENT;
	if (cap && !mask)
		return -EINVAL;
	const size_t n = std::min<size_t>(cap, t->tokens);
	if (t->anyDead)
		for (size_t i = 0; i < n; i++)
			mask[i] = t->deadBuf[i] ? 0 : 1;
	else if (n)
		std::memset(mask, 1, n);
	if (tokens)
		*tokens = t->tokens;
	return 0;
}

void *HostAgent::layerEvent(uint64_t ticket, uint32_t layerIndex) const
{
	Ticket *t = findTicket(ticket);
	if (!t || layerIndex >= layerCount_)
		return nullptr;
	return device_->layerEvent(t->slot, layerIndex);
}

int HostAgent::release(uint64_t ticket)
{
	Ticket *t = findTicket(ticket);
	if (!t)
		return -ENOENT;
	// A ticket still in the pipeline is waited for: its buffers are in use.
	if (t->state.load(std::memory_order_acquire) != kDone)
		if (int rc = wait(ticket, -1); rc != 0 && rc == -ENOENT)
			return rc;
	t->view.reset();
	t->pinnedGen.store(0, std::memory_order_release);
	t->id.store(0, std::memory_order_relaxed);
	t->state.store(kFree, std::memory_order_release);
	return 0;
}

int HostAgent::endSequence(uint64_t seqId)
{
	if (seqs_->find(seqId) < 0)
		return -ENOENT;
	seqs_->erase(seqId);
	return 0;
}

std::string HostAgent::metricsJson() const
{
	const AgentMetrics &m = *metrics_;
	auto q = [](const LatencyHistogram &h, double p) { return h.quantile(p) / 1000.0; };
	uint64_t uniq = m.uniqueRows.load(), gathered = m.gatheredRows.load();
	std::string problem;
	bool ok = healthy(&problem);
	nlohmann::json health = {
		{"ok", ok},
		{"view_stale", viewStale_.load()},
		{"pool_truncated", poolBackingTruncated(*pool_)},
		{"pool_fault", poolFault_.load()},
		{"heartbeat_failing", heartbeatFailing_.load()},
		{"refresh_failures", m.refreshFailures.load()},
		{"pool_faults", m.poolFaults.load()},
		{"heartbeat_failures", m.heartbeatFailures.load()},
		{"read_retries", m.readRetries.load()},
		{"problem", problem},
	};
	const uint64_t hits = m.cacheHits.load(), misses = m.cacheMisses.load();
	nlohmann::json j = {
		{"generation", viewGeneration_.load()},
		{"host_slot", hostSlot()},
		{"tickets", m.tickets.load()},
		{"tokens", m.tokens.load()},
		{"rows", m.rows.load()},
		{"unique_rows", uniq},
		{"gathered_rows", gathered},
		{"gathered_bytes", m.gatheredBytes.load()},
		{"cache", {{"capacity_rows", cfg_.cacheRows},
			   {"hits", m.cacheHits.load()},
			   {"misses", m.cacheMisses.load()},
			   {"admissions", m.cacheAdmissions.load()},
			   {"hit_rate", uniq ? (double)(uniq - gathered) / (double)uniq : 0.0},
			   {"lookup_hit_rate", hits + misses ? (double)hits / (double)(hits + misses) : 0.0},
			   {"adaptive", cache_ && cfg_.cacheAdaptive && device_->kind() == device::Kind::Host},
			   {"bypassing", m.cacheBypassing.load()},
			   {"bypassed_rows", m.cacheBypassedRows.load()},
			   {"warm_hit_rate", m.cacheWarmHitRate.load()}}},
		{"dedup", {{"adaptive", dedupAdaptive()},
			   {"skipping", m.dedupSkipping.load()},
			   {"skipped_rows", m.dedupSkippedRows.load()}}},
		{"stalls", {{"count", m.stalls.load()},
			    {"waits", m.waits.load()},
			    {"total_us", m.stallNs.load() / 1000.0},
			    {"p50_us", q(m.stallLatency, 0.5)},
			    {"p99_us", q(m.stallLatency, 0.99)}}},
		{"ticket_latency_us", {{"count", m.ticketLatency.count()},
				       {"p50", q(m.ticketLatency, 0.5)},
				       {"p99", q(m.ticketLatency, 0.99)},
				       {"p999", q(m.ticketLatency, 0.999)},
				       {"max", m.ticketLatency.maxNs() / 1000.0}}},
		{"errors", m.errors.load()},
		{"generation_changes", m.generationChanges.load()},
		{"health", health},
		{"device", device_->describe()},
		{"page_size", pool_->region().pageSize()}, // bytes per page of the pool mapping (2 MiB: hugetlb/devdax)
	};
	return j.dump(2);
}

std::string HostAgent::metricsPrometheus() const
{
	const AgentMetrics &m = *metrics_;
	std::string out;
	auto counter = [&](const char *name, const char *help, uint64_t v) {
		out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
		       std::to_string(v) + "\n";
	};
	counter("engrampool_agent_tickets_total", "Prefetch tickets issued.", m.tickets.load());
	counter("engrampool_agent_tokens_total", "Tokens hashed.", m.tokens.load());
	counter("engrampool_agent_rows_total", "Row lookups (tokens x heads x layers).", m.rows.load());
	counter("engrampool_agent_unique_rows_total", "Distinct rows per ticket and layer.", m.uniqueRows.load());
	counter("engrampool_agent_gathered_rows_total", "Rows read from the pool.", m.gatheredRows.load());
	counter("engrampool_agent_gathered_bytes_total", "Bytes read from the pool.", m.gatheredBytes.load());
	counter("engrampool_agent_cache_hits_total", "Hot-row tier hits.", m.cacheHits.load());
	counter("engrampool_agent_cache_misses_total", "Hot-row tier misses.", m.cacheMisses.load());
	counter("engrampool_agent_cache_bypassed_rows_total",
		"Distinct rows gathered from the pool without a tier lookup (the adaptive tier did not pay).",
		m.cacheBypassedRows.load());
	counter("engrampool_agent_dedup_skipped_rows_total",
		"Rows gathered without deduplication (the adaptive dedup did not pay; counted as unique rows too).",
		m.dedupSkippedRows.load());
	counter("engrampool_agent_stalls_total", "wait() calls that blocked.", m.stalls.load());
	counter("engrampool_agent_stall_seconds_total_ns", "Nanoseconds wait() blocked.", m.stallNs.load());
	counter("engrampool_agent_errors_total", "Tickets that failed.", m.errors.load());
	counter("engrampool_agent_refresh_failures_total",
		"Moves to a new table generation that failed (the agent kept serving its last good one).",
		m.refreshFailures.load());
	counter("engrampool_agent_pool_faults_total", "SIGBUS on the pool mapping (truncated pool file, poisoned page).",
		m.poolFaults.load());
	counter("engrampool_agent_heartbeat_failures_total", "Host-slot heartbeats not written.",
		m.heartbeatFailures.load());
	counter("engrampool_agent_read_retries_total",
		"Tickets gathered again because a table was reclaimed under an agent without a host slot.",
		m.readRetries.load());
	out += "# HELP engrampool_agent_ticket_latency_seconds Prefetch to last layer in device memory.\n"
	       "# TYPE engrampool_agent_ticket_latency_seconds histogram\n";
	uint64_t cum = 0;
	for (int b = 0; b < LatencyHistogram::kBuckets; b++) {
		uint64_t c = m.ticketLatency.bucketCount(b);
		if (!c)
			continue;
		cum += c;
		char le[64];
		snprintf(le, sizeof(le), "%.9f", (double)LatencyHistogram::bucketUpper(b) / 1e9);
		out += std::string("engrampool_agent_ticket_latency_seconds_bucket{le=\"") + le + "\"} " +
		       std::to_string(cum) + "\n";
	}
	out += "engrampool_agent_ticket_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
	char sum[64];
	snprintf(sum, sizeof(sum), "%.9f", m.ticketLatency.sumNs() / 1e9);
	out += std::string("engrampool_agent_ticket_latency_seconds_sum ") + sum + "\n";
	out += "engrampool_agent_ticket_latency_seconds_count " + std::to_string(cum) + "\n";
	char warm[32];
	snprintf(warm, sizeof(warm), "%.6f", m.cacheWarmHitRate.load());
	out += "# HELP engrampool_agent_cache_warm_hit_rate Share of distinct rows the adaptive tier hits when used and warm "
	       "(estimated by its sampled shadow, also while it is bypassed).\n"
	       "# TYPE engrampool_agent_cache_warm_hit_rate gauge\nengrampool_agent_cache_warm_hit_rate " +
	       std::string(warm) + "\n";
	out += "# TYPE engrampool_agent_generation gauge\nengrampool_agent_generation " +
	       std::to_string(viewGeneration_.load()) + "\n";
	out += "# HELP engrampool_agent_healthy 1 when the agent serves the committed generation from a whole pool.\n"
	       "# TYPE engrampool_agent_healthy gauge\nengrampool_agent_healthy " +
	       std::string(healthy() ? "1" : "0") + "\n";
	out += "# HELP engrampool_agent_view_stale 1 while the agent serves an older generation than the committed one.\n"
	       "# TYPE engrampool_agent_view_stale gauge\nengrampool_agent_view_stale " +
	       std::string(viewStale_.load() ? "1" : "0") + "\n";
	return out;
}

} // namespace engrampool
