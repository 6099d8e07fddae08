#include <doctest/doctest.h>

#include <deque>
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
  bool lose_responses = false;  // stores, then the answer is lost on the way back
  UploadResult upload(const uint8_t* body, size_t len) override {
    ++calls;
    if (!failures.empty()) {
      UploadResult r = failures.front();
      failures.pop_front();
      return r;
    }
    size_t offset = 0;
    while (offset < len) {
      BlockHeader h;
      size_t size = 0;
      REQUIRE(decode_block(body + offset, len - offset, &h, &size) == DecodeError::kNone);
      for (uint32_t i = 0; i < h.count; ++i) stored.insert(h.first_seq + i);
      offset += size;
    }
    while (stored.count(static_cast<uint32_t>(ack + 1))) ++ack;
    if (lose_responses) return UploadResult{};
    UploadResult r;
    r.kind = UploadResult::Kind::kAcknowledged;
    r.status = 200;
    r.ack_seq = ack;
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
    e.codes[kHoursSinceStart] = 1;
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
  CHECK(server.calls == (5000 + 16 * 267 - 1) / (16 * 267));
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
  CHECK(sync.step(4'000'000) == 0 + config.idle_poll_ms);  // delivered now
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
  SyncClient sync(queue, server, random);
  sync.step(0);
  CHECK(sync.needs_new_token());
  sync.step(1);
  CHECK(server.calls == 1);
  sync.token_refreshed();
  sync.step(2);
  CHECK(queue.pending_epochs() == 0);
}
