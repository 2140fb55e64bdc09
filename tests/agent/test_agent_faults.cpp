// SPDX-License-Identifier: Apache-2.0
// test_agent_faults.cpp - bad input changes nothing (out-of-vocabulary ids, unknown or
// duplicate sequences, oversized batches), model/pool mismatches fail create with the
// table named, and a pool file truncated under a live agent fails the ticket with -EFAULT.
#include "agent_test_util.hpp"

using namespace eptest;
using namespace engrampool;

namespace {

// Expected rows of tokens [pos, pos+count) of one whole sequence.
ExpectedTicket expectTail(const Expect &e, const std::vector<int64_t> &seq, size_t pos)
{
	ExpectedTicket t;
	auto ids = e.rowIds(seq);
	size_t T = seq.size(), J = e.columns();
	t.rows.assign(e.layers(), {});
	for (size_t l = 0; l < e.layers(); l++)
		for (size_t k = pos; k < T; k++)
			for (size_t j = 0; j < J; j++)
				t.rows[l].push_back(ids[(l * T + k) * J + j]);
	t.tokens = (uint32_t)(T - pos);
	return t;
}

} // namespace

TEST(AgentFaults, OutOfVocabularyTokenChangesNothing)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 1);
	auto a = makeAgent(agentConfig(p, 64));
	Expect e(m);
	std::vector<int64_t> s1 = {5, 6, 7}, s2 = {9, 10};
	BatchEntry b[2] = {{1, s1.data(), 3, kSeqStart}, {2, s2.data(), 2, kSeqStart}};
	uint64_t t = 0;
	ASSERT_EQ(0, a->prefetch(b, 2, &t));
	ASSERT_EQ(0, a->release(t));
	uint64_t ticketsBefore = metrics(*a)["tickets"].get<uint64_t>();
	// Sequence 1 continues with a good token, sequence 2 with an id = vocabulary size.
	// (Negative ids pass through the vocabulary map unchanged, as in the reference: not an error.)
	std::vector<int64_t> good = {11}, oov = {(int64_t)m.tokenizerVocabSize}, far = {INT64_MAX};
	BatchEntry bad[2] = {{1, good.data(), 1, 0}, {2, oov.data(), 1, 0}};
	EXPECT_EQ(EP_E_TOKEN, a->prefetch(bad, 2, &t));
	bad[1].tokens = far.data();
	EXPECT_EQ(EP_E_TOKEN, a->prefetch(bad, 2, &t));
	// A new sequence with a bad id is not created either.
	BatchEntry badStart = {3, oov.data(), 1, kSeqStart};
	EXPECT_EQ(EP_E_TOKEN, a->prefetch(&badStart, 1, &t));
	EXPECT_EQ(-ENOENT, a->endSequence(3));
	EXPECT_EQ(ticketsBefore, metrics(*a)["tickets"].get<uint64_t>());
	// Both sequences continue as if the bad batches never happened.
	std::vector<int64_t> n1 = {12, 13}, n2 = {14};
	BatchEntry next[2] = {{1, n1.data(), 2, 0}, {2, n2.data(), 1, kSeqEnd}};
	ASSERT_EQ(0, a->prefetch(next, 2, &t));
	ASSERT_EQ(0, a->wait(t));
	std::vector<int64_t> full1 = {5, 6, 7, 12, 13}, full2 = {9, 10, 14};
	ExpectedTicket e1 = expectTail(e, full1, 3), e2 = expectTail(e, full2, 2), both;
	both.tokens = e1.tokens + e2.tokens;
	both.rows.resize(2);
	for (int l = 0; l < 2; l++) {
		both.rows[l] = e1.rows[l];
		both.rows[l].insert(both.rows[l].end(), e2.rows[l].begin(), e2.rows[l].end());
	}
	std::string why;
	EXPECT_EQ(0u, outputMismatches(*a, t, both, m.rowFormat, p.seed, -1, nullptr, &why)) << why;
	ASSERT_EQ(0, a->release(t));
	EXPECT_EQ(-ENOENT, a->endSequence(2)) << "kSeqEnd forgot sequence 2";
	EXPECT_EQ(0, a->endSequence(1));
}

TEST(AgentFaults, BadBatchesAreRefusedWithTheirCode)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 1);
	AgentConfig c = agentConfig(p, 16);
	c.maxSequences = 8;
	auto a = makeAgent(c);
	std::vector<int64_t> tok(32, 4);
	uint64_t t = 0;
	BatchEntry one = {1, tok.data(), 2, 0};
	EXPECT_EQ(-ENOENT, a->prefetch(&one, 1, &t)) << "unknown sequence without kSeqStart";
	BatchEntry dup[2] = {{1, tok.data(), 2, kSeqStart}, {1, tok.data(), 2, 0}};
	EXPECT_EQ(-EINVAL, a->prefetch(dup, 2, &t)) << "one sequence twice in a batch";
	EXPECT_EQ(-ENOENT, a->endSequence(1)) << "the refused batch started nothing";
	BatchEntry big = {1, tok.data(), 17, kSeqStart};
	EXPECT_EQ(-E2BIG, a->prefetch(&big, 1, &t)) << "over maxBatchTokens";
	BatchEntry split[2] = {{1, tok.data(), 9, kSeqStart}, {2, tok.data(), 8, kSeqStart}};
	EXPECT_EQ(-E2BIG, a->prefetch(split, 2, &t)) << "17 tokens over two entries";
	std::vector<BatchEntry> many;
	for (uint64_t i = 0; i < 16; i++)
		many.push_back({100 + i, tok.data(), 1, kSeqStart});
	EXPECT_EQ(-E2BIG, a->prefetch(many.data(), many.size(), &t)) << "over maxSequences";
	BatchEntry nullTokens = {1, nullptr, 2, kSeqStart};
	EXPECT_EQ(-EINVAL, a->prefetch(&nullTokens, 1, &t));
	EXPECT_EQ(-EINVAL, a->prefetch(&one, 0, &t));
	EXPECT_EQ(-EINVAL, a->prefetch(&one, 1, nullptr));
	EXPECT_EQ(0u, metrics(*a)["tickets"].get<uint64_t>());
	// Live sequences are bounded too: the ninth concurrent sequence is refused.
	for (uint64_t i = 0; i < 8; i++) {
		BatchEntry s = {200 + i, tok.data(), 1, kSeqStart};
		ASSERT_EQ(0, a->prefetch(&s, 1, &t)) << i;
		ASSERT_EQ(0, a->release(t));
	}
	BatchEntry ninth = {300, tok.data(), 1, kSeqStart};
	EXPECT_EQ(-E2BIG, a->prefetch(&ninth, 1, &t));
	ASSERT_EQ(0, a->endSequence(200));
	EXPECT_EQ(0, a->prefetch(&ninth, 1, &t));
	ASSERT_EQ(0, a->release(t));
	// A correct batch still works after all of that.
	for (uint64_t i = 1; i < 8; i++)
		ASSERT_EQ(0, a->endSequence(200 + i));
	ASSERT_EQ(0, a->endSequence(300));
	BatchEntry ok = {1, tok.data(), 16, kSeqStart | kSeqEnd};
	ASSERT_EQ(0, a->prefetch(&ok, 1, &t));
	EXPECT_EQ(0, a->wait(t));
	EXPECT_EQ(0, a->release(t));
	EXPECT_EQ(0u, metrics(*a)["errors"].get<uint64_t>());
}

TEST(AgentFaults, OneShotSequenceNeedsNoLiveSlot)
{
	// A start+end entry (a one-shot lookup, as `engrampool lookup` sends) never occupies a
	// sequence slot, so it must be accepted while maxSequences sequences are live.
	ModelConfig m = tinyModel();
	AgentPool p(m, 1);
	AgentConfig c = agentConfig(p, 16);
	c.maxSequences = 2;
	auto a = makeAgent(c);
	std::vector<int64_t> tok(4, 9);
	uint64_t t = 0;
	BatchEntry live[2] = {{1, tok.data(), 1, kSeqStart}, {2, tok.data(), 1, kSeqStart}};
	ASSERT_EQ(0, a->prefetch(live, 2, &t));
	ASSERT_EQ(0, a->release(t));
	BatchEntry once = {3, tok.data(), 4, kSeqStart | kSeqEnd};
	EXPECT_EQ(0, a->prefetch(&once, 1, &t)) << "HostAgent::prefetch counts a start+end entry as a new live sequence";
	if (t)
		(void)a->release(t);
}

TEST(AgentFaults, ModelFingerprintMismatchNamesTheTable)
{
	ModelConfig m = tinyModel();
	AgentPool p(m, 1);
	auto j = tinyModelJson();
	j["seed"] = 1; // same shape, different hash: rows of this pool would be wrong for it
	ModelConfig other = makeModel(j);
	AgentConfig c = agentConfig(p);
	c.model = &other;
	auto a = HostAgent::create(c);
	ASSERT_FALSE(a);
	EXPECT_EQ(EP_E_MODEL, a.code());
	EXPECT_NE(std::string::npos, a.status().message().find("tiny/layer1")) << a.status().message();
	// A different row format with the same name is refused the same way.
	auto j2 = tinyModelJson();
	j2["dtype"] = "bf16";
	ModelConfig other2 = makeModel(j2);
	c.model = &other2;
	auto a2 = HostAgent::create(c);
	ASSERT_FALSE(a2);
	EXPECT_EQ(EP_E_MODEL, a2.code()) << a2.status().message();
}

TEST(AgentFaults, MissingTableNamesIt)
{
	ModelConfig m = tinyModel();
	ScopedPool pool("emul", 32ull << 20);
	{
		auto w = openPool(pool.uri(), true);
		ASSERT_TRUE(importRandom(*w, m, 1, 1));
	}
	AgentConfig c;
	c.poolUri = pool.uri();
	c.model = &m;
	c.registerHost = false;
	auto a = HostAgent::create(c);
	ASSERT_FALSE(a);
	EXPECT_EQ(-ENOENT, a.code());
	EXPECT_NE(std::string::npos, a.status().message().find("tiny/layer15")) << a.status().message();
	// Explicit table names: a wrong count and an unknown name.
	c.tables = {"tiny/layer1"};
	EXPECT_EQ(-EINVAL, HostAgent::create(c).code());
	c.tables = {"tiny/layer1", "nope"};
	auto b = HostAgent::create(c);
	EXPECT_EQ(-ENOENT, b.code());
	EXPECT_NE(std::string::npos, b.status().message().find("'nope'")) << b.status().message();
}

TEST(AgentFaults, TruncatedPoolFileFailsTheTicketNotTheProcess)
{
	// In a child: a SIGBUS that escaped would kill it, not the test runner.
	int rc = runForked([]() -> int {
		ModelConfig m = tinyModel();
		AgentPool p(m, 9, 32ull << 20, "file");
		auto a = makeAgent(agentConfig(p, 512));
		const TableInfo &t0 = p.tables.at(m.layerIds[0]);
		const TableInfo &t1 = p.tables.at(m.layerIds[1]);
		const TableInfo &first = t0.dataOffset < t1.dataOffset ? t0 : t1;
		// A good ticket first.
		std::vector<int64_t> toks(400);
		for (size_t i = 0; i < toks.size(); i++)
			toks[i] = (int64_t)((i * 7919) % m.tokenizerVocabSize);
		BatchEntry b = {1, toks.data(), (uint32_t)toks.size(), kSeqStart | kSeqEnd};
		uint64_t t = 0;
		if (a->prefetch(&b, 1, &t) || a->wait(t) || a->release(t))
			return 10;
		// Cut the file 64 KiB into the lower table: layer 0's rows past the cut are gone.
		uint64_t cut = first.dataOffset + 65536;
		if (truncate(p.pool.backingPath().c_str(), (off_t)cut) != 0)
			return 11;
		b.seqId = 2;
		if (a->prefetch(&b, 1, &t) != 0)
			return 12;
		int w = a->wait(t);
		if (w != -EFAULT) {
			fprintf(stderr, "wait returned %d, expected -EFAULT\n", w);
			return 13;
		}
		std::string err = a->lastError();
		fprintf(stderr, "lastError: %s\n", err.c_str());
		if (err.find("'" + t0.name + "'") == std::string::npos || err.find("offset") == std::string::npos)
			return 14;
		// The offset named is inside layer 0's table and at or past the cut.
		size_t at = err.find("offset ");
		uint64_t off = std::stoull(err.substr(at + 7));
		if (off >= t0.dataBytes)
			return 15;
		if (&first == &t0 && off < 65536)
			return 16;
		if (a->release(t) != 0)
			return 17;
		auto j = metrics(*a);
		if (j["errors"].get<uint64_t>() != 1)
			return 18;
		// The agent stays usable: a batch whose rows all lie before the cut would succeed;
		// any other batch fails the same clean way.
		b.seqId = 3;
		if (a->prefetch(&b, 1, &t) != 0)
			return 19;
		if (a->wait(t) != -EFAULT || a->release(t) != 0)
			return 20;
		return 0;
	});
	EXPECT_EQ(0, rc) << "child exit code (see stderr); 128+7 would be an escaped SIGBUS";
}
