#include <doctest/doctest.h>

#include <map>
#include <set>
#include <vector>

#include "fake_flash.h"
#include "noctis/flash_queue.h"

using namespace noctis;

constexpr uint32_t kNight = 1795000000;

static EpochRecord make_epoch(uint32_t seq, uint32_t start, uint32_t night_start = kNight) {
  EpochRecord e;
  e.seq = seq;
  e.start = start;
  e.night_start = night_start;
  for (int i = 0; i < kFeatureCount; ++i) e.codes[i] = static_cast<uint8_t>((seq * 7 + i * 13) % 256);
  e.codes[kHoursSinceStart] = hours_code(start, night_start);
  if (seq % 11 == 0) e.codes[3] = kMissingCode;
  e.stage = static_cast<uint8_t>(seq % 4);
  return e;
}

struct Decoded {
  std::map<uint32_t, std::vector<uint8_t>> codes;  // seq -> codes
  int duplicates = 0;
  bool all_valid = true;
};

// Everything the queue would upload, decoded with the contract codec.
static Decoded drain_view(FlashQueue& queue) {
  Decoded out;
  static uint8_t body[2048 * kSectorBytes];
  BatchInfo info;
  size_t len = queue.read_batch(body, sizeof body, 1u << 30, &info);
  size_t offset = 0;
  while (offset < len) {
    BlockHeader h;
    size_t size = 0;
    if (decode_block(body + offset, len - offset, &h, &size) != DecodeError::kNone) {
      out.all_valid = false;
      break;
    }
    for (int i = 0; i < h.count; ++i) {
      const uint8_t* c = body + offset + kBlockHeaderBytes + kFeatureCount * i;
      if (out.codes.count(h.first_seq + i)) ++out.duplicates;
      out.codes[h.first_seq + i] = std::vector<uint8_t>(c, c + kFeatureCount);
    }
    offset += size;
  }
  return out;
}

// A scripted life of the device: a night with a clock jump, a partial ack, more epochs.
struct Script {
  std::vector<EpochRecord> epochs;
  int ack_after = 400;
  int64_t ack_seq = 300;
  Script() {
    uint32_t start = kNight, night = kNight;
    for (uint32_t seq = 0; seq < 700; ++seq) {
      if (seq == 150) start += 3600, night = start + 30 * seq;  // a reboot later: a new night, a new block
      if (seq == 500) night = start + 30 * seq;  // someone back in bed: a new night in an unbroken run
      epochs.push_back(make_epoch(seq, start + 30 * seq, night));
    }
  }
};

TEST_CASE("append, read back and acknowledge") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  Script script;
  for (int i = 0; i < 500; ++i) queue.append(script.epochs[i], 1);
  CHECK(queue.pending_epochs() == 500);
  Decoded view = drain_view(queue);
  CHECK(view.all_valid);
  CHECK(view.codes.size() == 500);
  CHECK(view.codes[123] == std::vector<uint8_t>(script.epochs[123].codes, script.epochs[123].codes + kFeatureCount));
  queue.acknowledge(300);  // erases only whole blocks at or below 300
  Decoded after = drain_view(queue);
  CHECK(after.codes.begin()->first <= 301);
  CHECK(after.codes.rbegin()->first == 499);
  CHECK(queue.pending_epochs() == after.codes.size());
  queue.acknowledge(499);
  CHECK(queue.pending_epochs() == 0);
}

TEST_CASE("a reboot keeps every epoch, stages of the open block aside") {
  FakeFlash flash(8);
  {
    FlashQueue queue(flash);
    queue.recover();
    Script script;
    for (int i = 0; i < 420; ++i) queue.append(script.epochs[i], 1);
  }
  FlashQueue again(flash);
  RecoveryReport report = again.recover();
  CHECK(report.sealed_open_blocks == 1);
  CHECK(report.pending_epochs == 420);
  CHECK(again.next_seq() == 420);
  CHECK(drain_view(again).codes.size() == 420);
}

TEST_CASE("the ring drops the oldest block only when 189 days' worth is full") {
  FakeFlash flash(5);  // the identity sector, then a ring of 4 with one kept free: 801 epochs
  FlashQueue queue(flash);
  queue.recover();
  CHECK(queue.capacity_epochs() == 3 * kMaxEpochsPerBlock);
  for (uint32_t seq = 0; seq < 3 * kMaxEpochsPerBlock + 10; ++seq) queue.append(make_epoch(seq, 1795000000 + 30 * seq), 1);
  CHECK(queue.dropped_epochs() == kMaxEpochsPerBlock);
  Decoded view = drain_view(queue);
  CHECK(view.codes.begin()->first == static_cast<uint32_t>(kMaxEpochsPerBlock));
  CHECK(view.codes.rbegin()->first == static_cast<uint32_t>(3 * kMaxEpochsPerBlock + 9));
  // The upload says where the device's holdings begin, so the server can pass the rest.
  static uint8_t body[8 * kSectorBytes];
  BatchInfo info;
  queue.read_batch(body, sizeof body, 10000, &info);
  CHECK(info.held_from == static_cast<uint32_t>(kMaxEpochsPerBlock));
  CHECK(info.reason_below == GapReason::kQueueFull);
  FakeFlash full(kFlashQueueBytes / kSectorBytes);
  CHECK(FlashQueue(full).capacity_epochs() >= 189u * 2880u);
}

TEST_CASE("a corrupt block is erased at boot, counted, and declared as a hole") {
  FakeFlash flash(8);
  {
    FlashQueue queue(flash);
    queue.recover();
    for (uint32_t seq = 0; seq < 3 * kMaxEpochsPerBlock; ++seq) queue.append(make_epoch(seq, 1795000000 + 30 * seq), 1);
  }
  const uint8_t damage = 0x00;
  flash.program(2 * kSectorBytes + 100, &damage, 1);  // a bit error in the second block's codes
  FlashQueue again(flash);
  const RecoveryReport report = again.recover();
  CHECK(report.corrupt_blocks == 1);
  static uint8_t body[8 * kSectorBytes];
  BatchInfo info;
  again.read_batch(body, sizeof body, 10000, &info);
  REQUIRE(info.gap_count == 1);
  CHECK(info.gaps[0].first_seq == static_cast<uint32_t>(kMaxEpochsPerBlock));
  CHECK(info.gaps[0].count == static_cast<uint32_t>(kMaxEpochsPerBlock));
  CHECK(info.gaps[0].reason == GapReason::kCorrupt);
  CHECK(info.epochs == 2u * kMaxEpochsPerBlock);
}

TEST_CASE("batches respect the epoch limit and always hold whole blocks") {
  FakeFlash flash(16);
  FlashQueue queue(flash);
  queue.recover();
  for (uint32_t seq = 0; seq < 5 * kMaxEpochsPerBlock; ++seq) queue.append(make_epoch(seq, 1795000000 + 30 * seq), 1);
  static uint8_t body[16 * kSectorBytes];
  BatchInfo info;
  queue.read_batch(body, sizeof body, 2 * kMaxEpochsPerBlock + 100, &info);
  CHECK(info.blocks == 2);
  CHECK(info.epochs == 2u * kMaxEpochsPerBlock);
  CHECK(info.last_seq == 2 * kMaxEpochsPerBlock - 1);
}

TEST_CASE("a power cut at every write, torn at any byte and bit, loses nothing but the epoch being written") {
  Script script;
  // Count the writes of an uncut run first.
  FakeFlash probe(8);
  {
    FlashQueue q(probe);
    q.recover();
    for (size_t i = 0; i < script.epochs.size(); ++i) {
      q.append(script.epochs[i], 1);
      if (static_cast<int>(i) == script.ack_after) q.acknowledge(script.ack_seq);
    }
  }
  const long total = probe.writes;
  REQUIRE(total > 1400);
  long checked = 0;
  constexpr uint32_t kTears = 4;  // per cut point: tears at different bytes, with different bits
  for (long run = 0; run < (total + 1) * kTears; ++run) {
    const long cut = run / kTears;
    FakeFlash flash(8);
    std::set<uint32_t> committed;  // append() returned
    bool acked = false;
    flash.cut_after(cut, static_cast<uint32_t>(run * 2654435761u));
    try {
      FlashQueue q(flash);
      q.recover();
      for (size_t i = 0; i < script.epochs.size(); ++i) {
        q.append(script.epochs[i], 1);
        committed.insert(script.epochs[i].seq);
        if (static_cast<int>(i) == script.ack_after) {
          acked = true;  // the server has these: from here on erasing them is allowed
          q.acknowledge(script.ack_seq);
        }
      }
    } catch (const PowerCut&) {
    }
    flash.never_cut();
    FlashQueue rebooted(flash);
    rebooted.recover();
    Decoded view = drain_view(rebooted);
    REQUIRE_MESSAGE(view.all_valid, "cut at write ", cut);
    REQUIRE_MESSAGE(view.duplicates == 0, "cut at write ", cut);
    for (uint32_t seq : committed) {
      if (acked && seq <= script.ack_seq) continue;  // the server has it; erasing it is allowed
      REQUIRE_MESSAGE(view.codes.count(seq) == 1, "cut at write ", cut, ": lost seq ", seq);
      const EpochRecord& e = script.epochs[seq];
      REQUIRE(view.codes[seq] == std::vector<uint8_t>(e.codes, e.codes + kFeatureCount));
    }
    for (const auto& [seq, codes] : view.codes) {
      // Nothing appears that was not written; at most the in-flight epoch beyond those
      // committed, and then whole: a torn epoch is never kept.
      REQUIRE_MESSAGE(seq < script.epochs.size(), "cut at write ", cut);
      if (!committed.count(seq)) REQUIRE_MESSAGE(seq == committed.size(), "cut at write ", cut, " phantom ", seq, " committed ", committed.size());
      const EpochRecord& e = script.epochs[seq];
      REQUIRE_MESSAGE(codes == std::vector<uint8_t>(e.codes, e.codes + kFeatureCount), "cut at write ", cut, ": torn seq ", seq);
    }
    // And the queue keeps working after the reboot.
    const uint32_t next = 10000;
    rebooted.append(make_epoch(next, 1800000000), 1);
    REQUIRE(drain_view(rebooted).codes.count(next) == 1);
    ++checked;
  }
  CHECK(checked == (total + 1) * kTears);
}
