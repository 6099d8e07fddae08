#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fake_flash.h"
#include "noctis/device.h"
#include "memory_store.h"

using namespace noctis;

namespace {
struct NoModel : Stager {
  std::vector<bool> nights_began;  // what each epoch told the model
  uint8_t stage(const uint8_t[kFeatureCount], bool night_began) override {
    nights_began.push_back(night_began);
    return 1;
  }
};

struct Offline : Transport {
  UploadResult upload(const uint8_t*, size_t) override { return UploadResult{}; }
  bool refresh_token() override { return false; }
};

struct Counter : RandomSource {
  uint32_t value = 1000;
  uint32_t next() override { return value++; }
};

void features(double out[kFeatureCount], double presence = 1.0) {
  for (int i = 0; i < kFeatureCount; ++i) out[i] = 1.0;
  out[kPresenceRatio] = presence;
}

// A device on a fresh 16-sector flash, offline, just booted.
struct Rig {
  FakeFlash flash{16};
  MemoryStore nvs;
  NoModel model;
  Offline radio;
  Counter random;
  Device device{flash, radio, random, nvs, model};
  Rig() { device.boot(); }
};

// Everything in the queue, in the upload format: seq -> (start, hours code).
std::map<uint32_t, std::pair<uint32_t, uint8_t>> uploaded(FlashQueue& queue) {
  static uint8_t body[64 * kSectorBytes];
  BatchInfo info;
  const size_t len = queue.read_batch(body, sizeof body, 1u << 30, &info);
  std::map<uint32_t, std::pair<uint32_t, uint8_t>> out;
  for (size_t at = 0; at < len;) {
    BlockHeader h;
    size_t size = 0;
    REQUIRE(decode_block(body + at, len - at, &h, &size) == DecodeError::kNone);
    for (uint32_t i = 0; i < h.count; ++i)
      out[h.first_seq + i] = {h.first_start + 30 * i, body[at + kBlockHeaderBytes + kFeatureCount * i + kHoursSinceStart]};
    at += size;
  }
  return out;
}
}  // namespace

TEST_CASE("epochs made before the clock is set get their real start once it is") {
  Rig rig;
  Device& device = rig.device;
  double f[kFeatureCount];
  features(f);
  for (uint64_t i = 0; i < 10; ++i) device.record_epoch(5000 + 30000 * i, f);  // no NTP yet
  CHECK(device.queue().pending_epochs() == 0);
  device.set_time(305000, 1800000000);  // NTP answers 5 minutes after boot
  for (uint64_t i = 10; i < 20; ++i) device.record_epoch(5000 + 30000 * i, f);
  FlashQueue reader(rig.flash);
  reader.recover();
  const auto epochs = uploaded(reader);
  REQUIRE(epochs.size() == 20);
  CHECK(epochs.at(0).first == 1800000000u - 300);
  CHECK(epochs.at(19).first == 1800000000u - 300 + 19 * 30);
  CHECK(epochs.at(0).second == 0);  // the night starts with the first epoch
  // Monotonic time is 64-bit: 60 days in, starts are still exact.
  const uint64_t sixty_days_ms = 60ull * 86400 * 1000;
  device.record_epoch(5000 + sixty_days_ms, f);
  reader.recover();
  CHECK(uploaded(reader).rbegin()->second.first == 1800000000u - 300 + 60u * 86400);
}

TEST_CASE("hours since the night's start: counted from the night, a new night after an hour away") {
  Rig rig;
  Device& device = rig.device;
  device.set_time(0, 1800000000);
  double present[kFeatureCount], away[kFeatureCount];
  features(present);
  features(away, 0.0);
  uint64_t t = 0;
  for (int i = 0; i < 240; ++i, t += 30000) device.record_epoch(t, present);  // two hours in bed
  for (int i = 0; i < 150; ++i, t += 30000) device.record_epoch(t, away);     // 75 minutes up
  for (int i = 0; i < 10; ++i, t += 30000) device.record_epoch(t, present);   // back: a new night
  FlashQueue reader(rig.flash);
  reader.recover();
  const auto epochs = uploaded(reader);
  CHECK(epochs.at(239).second == quantize_feature(kHoursSinceStart, 239 * 30 / 3600.0));
  CHECK(epochs.at(390).second == 0);
  CHECK(epochs.at(399).second == quantize_feature(kHoursSinceStart, 9 * 30 / 3600.0));
  // The model is told where each night begins: the first epoch and the return, no other.
  const std::vector<bool>& began = rig.model.nights_began;
  REQUIRE(began.size() == 400);
  for (size_t i = 0; i < began.size(); ++i) CHECK_MESSAGE(began[i] == (i == 0 || i == 390), "epoch " << i);
}

TEST_CASE("seqs survive a reboot; losing NVS with an empty queue starts a new incarnation") {
  FakeFlash flash(16);
  MemoryStore nvs;
  NoModel model;
  Offline radio;
  Counter random;
  double f[kFeatureCount];
  features(f);
  uint32_t first_incarnation = 0;
  {
    Device device(flash, radio, random, nvs, model);
    device.boot();
    device.set_time(0, 1800000000);
    for (int i = 0; i < 50; ++i) device.record_epoch(30000ull * i, f);
    first_incarnation = device.incarnation();
  }
  {  // a reboot: same incarnation, seqs go on
    Device device(flash, radio, random, nvs, model);
    device.boot();
    CHECK(device.incarnation() == first_incarnation);
    CHECK(device.next_seq() == 50);
  }
  {  // NVS lost, epochs still in flash: the flash's identity and seqs hold
    MemoryStore fresh;
    Device device(flash, radio, random, fresh, model);
    device.boot();
    CHECK(device.incarnation() == first_incarnation);
    CHECK(device.next_seq() == 50);
  }
  {  // everything acknowledged and erased, then NVS lost: nothing says where seqs were
    FlashQueue queue(flash);
    queue.recover();
    queue.acknowledge(49);
    MemoryStore fresh;
    Device device(flash, radio, random, fresh, model);
    device.boot();
    CHECK(device.incarnation() != first_incarnation);
    CHECK(device.incarnation() != 0);
    CHECK(device.next_seq() == 0);
  }
}
