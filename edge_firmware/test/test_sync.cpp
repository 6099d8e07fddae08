#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <set>
#include <vector>

#include "fake_flash.h"
#include "noctis/sync.h"

using namespace noctis;

struct ScriptedServer : Transport {
  std::deque<UploadResult> failures;  // answered before the server works normally
  std::set<uint32_t> stored;
  int64_t ack = -1;
  int calls = 0;
  int epochs_received = 0;  // resends included
  int token_requests = 0;
  size_t largest_body = 0;
  size_t max_body = 1 << 30;  // larger bodies answer 413
  uint32_t stated_max_epochs = 0, stated_max_body = 0;
  bool lose_responses = false;  // stores, then the answer is lost on the way back
  bool refresh_token() override {
    ++token_requests;
    return true;
  }
  UploadResult upload(const uint8_t* body, size_t len) override {
    ++calls;
    if (!failures.empty()) {
      UploadResult r = failures.front();
      failures.pop_front();
      return r;
    }
    if (len > max_body) {
      UploadResult r;
      r.kind = UploadResult::Kind::kHttpError;
      r.status = 413;
      return r;
    }
    largest_body = std::max(largest_body, len);
    REQUIRE(std::memcmp(body, kSessionMagic, 4) == 0);
    size_t offset = kSessionFixedBytes + kSessionGapBytes * get_u16(body + 6);
    while (offset < len) {
      BlockHeader h;
      size_t size = 0;
      REQUIRE(decode_block(body + offset, len - offset, &h, &size) == DecodeError::kNone);
      for (uint32_t i = 0; i < h.count; ++i) stored.insert(h.first_seq + i);
      epochs_received += h.count;
      offset += size;
    }
    while (stored.count(static_cast<uint32_t>(ack + 1))) ++ack;
    if (lose_responses) return UploadResult{};
    UploadResult r;
    r.kind = UploadResult::Kind::kAcknowledged;
    r.status = 200;
    r.ack_seq = ack;
    r.incarnation = get_u32(body + 8);  // the server answers for the seq space the record names
    r.max_batch_epochs = stated_max_epochs;
    r.max_body_bytes = stated_max_body;
    return r;
  }
};

// The scripted server, with its answers changed after the fact by the test.
struct AlteringServer : ScriptedServer {
  std::function<void(UploadResult&)> alter;
  UploadResult upload(const uint8_t* body, size_t len) override {
    UploadResult r = ScriptedServer::upload(body, len);
    alter(r);
    return r;
  }
};

struct CountingRandom : RandomSource {
  uint32_t value = 0xFFFFFFFFu;
  uint32_t next() override { return value; }
};

static void fill(FlashQueue& queue, uint32_t from, uint32_t to) {
  for (uint32_t seq = from; seq < to; ++seq) {
    EpochRecord e;
    e.seq = seq;
    e.start = 1795000000 + 30 * seq;
    e.night_start = 1795000000;
    e.codes[kHoursSinceStart] = hours_code(e.start, e.night_start);
    e.stage = 1;
    queue.append(e, 1);
  }
}

TEST_CASE("drains oldest-first and erases only what the server acknowledged") {
  FakeFlash flash(32);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 5000);
  ScriptedServer server;
  CountingRandom random;
  SyncClient sync(queue, server, random);
  uint64_t now = 0;
  for (int i = 0; i < 100 && queue.pending_epochs() > 0; ++i) now += sync.step(now);
  CHECK(queue.pending_epochs() == 0);
  CHECK(server.stored.size() == 5000);
  CHECK(server.ack == 4999);
  CHECK(server.calls == (5000 + kMaxBodyBlocks * 267 - 1) / (kMaxBodyBlocks * 267));
}

TEST_CASE("online with a lookahead: each epoch goes up once, when its stage is known, and waiting is no failure") {
  FakeFlash flash(32);
  FlashQueue queue(flash);
  queue.recover();
  queue.set_lookahead(7);
  ScriptedServer server;
  CountingRandom random;
  SyncConfig config;
  SyncClient sync(queue, server, random, config);
  uint64_t now = 0;
  for (uint32_t seq = 0; seq < 600; ++seq) {  // an epoch, then a sync, as the device does
    fill(queue, seq, seq + 1);
    CHECK(sync.step(now) == config.idle_poll_ms);  // nothing ready is no failure: no backoff
    // Up are all but the newest 7 (or all of a block sealed with them) and never the newest.
    CHECK(server.ack >= static_cast<int64_t>(seq) - 7);
    CHECK(server.ack < static_cast<int64_t>(seq));
    now += 30000;
  }
  CHECK(server.epochs_received == 600 - 7);  // none sent twice
  CHECK(queue.pending_epochs() == 7);
}

TEST_CASE("a 413 splits the batch at once, and the server's stated limits size the next ones") {
  FakeFlash flash(64);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 30 * 2880 / 24);  // a 30-hour outage
  ScriptedServer server;
  server.max_body = 3 * kSectorBytes + kSessionFixedBytes;  // stricter than the device: 3 blocks pass, 4 do not
  server.stated_max_epochs = 3 * 267;
  CountingRandom random;
  SyncClient sync(queue, server, random);
  uint64_t now = 0;
  for (int i = 0; i < 100 && queue.pending_epochs() > 0; ++i) now += sync.step(now);
  CHECK(queue.pending_epochs() == 0);
  CHECK(server.ack == 30 * 2880 / 24 - 1);
  CHECK(sync.epoch_limit() == 3 * 267);
  CHECK(server.largest_body <= server.max_body);
  CHECK(server.calls <= 7);  // one refused, then batches that fit
}

TEST_CASE("a single block the server refuses backs off instead of looping") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 10);
  ScriptedServer server;
  server.max_body = 100;
  CountingRandom random;
  SyncClient sync(queue, server, random);
  CHECK(sync.step(0) > 0);
  CHECK(server.calls == 1);
  CHECK(queue.pending_epochs() == 10);
}

TEST_CASE("an ack that holds back part of the batch waits instead of resending at once") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 300);
  ScriptedServer server;
  server.stored = {};
  CountingRandom random;
  random.value = 0x80000000u;
  AlteringServer partial;
  // e.g. an epoch stamped in the future holds the watermark
  partial.alter = [](UploadResult& r) { r.ack_seq = 100; };
  SyncClient sync(queue, partial, random);
  CHECK(sync.step(0) > 0);
  CHECK(sync.consecutive_failures() == 1);
}

TEST_CASE("the answer's JSON gives the watermark and the limits") {
  const char* json = R"({"accepted":3,"duplicates":0,"rejected":[{"seq":4,"reason":"x","final":true}],)"
                     R"("ack_seq":41,"incarnation":7,"declared_gap_epochs":0,"max_batch_epochs":2880,"max_body_bytes":2097152})";
  UploadResult result;
  REQUIRE(parse_ack(json, std::strlen(json), &result));
  CHECK(result.ack_seq == 41);
  CHECK(result.incarnation == 7);
  CHECK(result.max_batch_epochs == 2880);
  CHECK(result.max_body_bytes == 2097152);
  CHECK_FALSE(parse_ack("{}", 2, &result));
  const char* anonymous = R"({"ack_seq":41})";  // whose seqs? nothing may be erased by it
  CHECK_FALSE(parse_ack(anonymous, std::strlen(anonymous), &result));
}

TEST_CASE("an ack for another incarnation erases nothing") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 300);
  CountingRandom random;
  random.value = 0x80000000u;
  AlteringServer server;
  server.alter = [](UploadResult& r) { r.incarnation ^= 1; };
  SyncClient sync(queue, server, random);
  sync.set_identity(42, 1, 1, 1);
  CHECK(sync.step(0) > 0);
  CHECK(server.stored.size() == 300);
  CHECK(queue.pending_epochs() == 300);
  CHECK(sync.consecutive_failures() == 1);
}

TEST_CASE("backs off with jitter, honours Retry-After, keeps everything while down") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 50);
  ScriptedServer server;
  UploadResult down;  // network error
  UploadResult busy;
  busy.kind = UploadResult::Kind::kHttpError;
  busy.status = 503;
  busy.retry_after_s = 120;
  server.failures = {down, down, down, busy};
  CountingRandom random;
  SyncConfig config;
  SyncClient sync(queue, server, random, config);
  std::vector<uint32_t> waits;
  for (int i = 0; i < 4; ++i) waits.push_back(sync.step(1'000'000ull * i));
  // Full jitter with the random source at its maximum: the ceiling doubles each time.
  CHECK(waits[0] == config.base_delay_ms);
  CHECK(waits[1] == 2 * config.base_delay_ms);
  CHECK(waits[2] == 4 * config.base_delay_ms);
  CHECK(waits[3] == 120000);  // Retry-After wins over the smaller jittered delay
  CHECK(queue.pending_epochs() == 50);
  random.value = 0;  // with a small draw the delay is still never below Retry-After
  CHECK(sync.step(4'000'000) == config.idle_poll_ms);  // delivered now
  CHECK(queue.pending_epochs() == 0);
  CHECK(sync.consecutive_failures() == 0);
}

TEST_CASE("a lost answer is resent and the server's dedup keeps it exactly once") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 100);
  ScriptedServer server;
  server.lose_responses = true;
  CountingRandom random;
  SyncClient sync(queue, server, random);
  sync.step(0);
  CHECK(queue.pending_epochs() == 100);  // not acknowledged: nothing erased
  server.lose_responses = false;
  sync.step(10'000'000);
  CHECK(queue.pending_epochs() == 0);
  CHECK(server.stored.size() == 100);
}

TEST_CASE("401 asks for a new device token instead of hammering") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  fill(queue, 0, 10);
  ScriptedServer server;
  UploadResult unauthorized;
  unauthorized.kind = UploadResult::Kind::kHttpError;
  unauthorized.status = 401;
  server.failures = {unauthorized};
  CountingRandom random;
  random.value = 0;
  SyncClient sync(queue, server, random);
  sync.step(0);
  CHECK(server.token_requests == 1);  // the first token, before the first upload
  CHECK(server.calls == 1);
  sync.step(1);
  CHECK(server.token_requests == 2);  // a new one after the 401, then the upload
  CHECK(server.calls == 2);
  CHECK(queue.pending_epochs() == 0);
}
