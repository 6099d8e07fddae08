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

// What the queue would upload now: seq -> edge stage (-1: sent without stages).
static std::map<uint32_t, int> uploaded_stages(FlashQueue& queue) {
  static uint8_t body[16 * kSectorBytes];
  BatchInfo info;
  const size_t len = queue.read_batch(body, sizeof body, 1u << 30, &info);
  std::map<uint32_t, int> out;
  for (size_t offset = 0; offset < len;) {
    BlockHeader h;
    size_t size = 0;
    REQUIRE(decode_block(body + offset, len - offset, &h, &size) == DecodeError::kNone);
    const uint8_t* packed = body + offset + kBlockHeaderBytes + kFeatureCount * h.count;
    for (int i = 0; i < h.count; ++i) out[h.first_seq + i] = h.has_stages ? stage_at(packed, i) : -1;
    offset += size;
  }
  return out;
}

TEST_CASE("with a lookahead each output stages the epoch L back, and the newest L wait for theirs") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  queue.set_lookahead(3);
  // The model's output on the window ending at seq: (seq / 2) % 4, so a misplaced stage shows.
  auto output = [](uint32_t seq) { return static_cast<uint8_t>((seq / 2) % 4); };
  auto epoch = [&](uint32_t seq, uint32_t night) {
    EpochRecord e = make_epoch(seq, kNight + 30 * seq, night);
    e.stage = output(seq);
    return e;
  };
  for (uint32_t seq = 0; seq < 10; ++seq) queue.append(epoch(seq, kNight), 1);
  CHECK(queue.pending_epochs() == 10);
  CHECK(queue.ready_epochs() == 7);
  auto sent = uploaded_stages(queue);
  REQUIRE(sent.size() == 7);  // seqs 0..6: 7..9 wait for the windows ending at 10..12
  for (const auto& [seq, stage] : sent) CHECK(stage == output(seq + 3));

  // The server holds 0..6: the open block stays, and the next upload starts at 7.
  queue.acknowledge(6);
  CHECK(queue.pending_epochs() == 3);
  CHECK(queue.ready_epochs() == 0);
  CHECK(uploaded_stages(queue).empty());
  for (uint32_t seq = 10; seq < 12; ++seq) queue.append(epoch(seq, kNight), 1);
  sent = uploaded_stages(queue);
  CHECK(sent == std::map<uint32_t, int>{{7, output(10)}, {8, output(11)}});

  // Someone back in bed after an hour: a new night seals the block, and its last three
  // epochs take the night's newest output, as training's windows do at a night's end.
  const uint32_t next_night = kNight + 30 * 12;
  queue.append(epoch(12, next_night), 1);
  sent = uploaded_stages(queue);
  CHECK(sent == std::map<uint32_t, int>{{7, output(10)}, {8, output(11)}, {9, output(11)}, {10, output(11)},
                                        {11, output(11)}});
  CHECK(queue.ready_epochs() == 5);
  CHECK(queue.pending_epochs() == 6);
  queue.acknowledge(11);  // the sealed block, acknowledged in two parts, is erased
  CHECK(queue.pending_epochs() == 1);
  for (uint32_t seq = 13; seq < 16; ++seq) queue.append(epoch(seq, next_night), 1);
  // The new night's first output was of the old night's window: seq 12's is 15's.
  CHECK(uploaded_stages(queue) == std::map<uint32_t, int>{{12, output(15)}});

  // A reboot: the open block is sealed without its stages (they were in RAM), and what
  // the server acknowledged of it is sent again (it keeps each epoch once).
  FlashQueue again(flash);
  again.recover();
  again.set_lookahead(3);
  CHECK(again.pending_epochs() == 4);
  CHECK(uploaded_stages(again) == std::map<uint32_t, int>{{12, -1}, {13, -1}, {14, -1}, {15, -1}});
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

TEST_CASE("a block full mid-night waits for its last stages while the next one fills") {
  FakeFlash flash(8);
  FlashQueue queue(flash);
  queue.recover();
  queue.set_lookahead(3);
  auto output = [](uint32_t seq) { return static_cast<uint8_t>((seq / 2) % 4); };
  auto epoch = [&](uint32_t seq) {
    EpochRecord e = make_epoch(seq, kNight + 30 * seq, kNight);
    e.stage = output(seq);
    return e;
  };
  const uint32_t full = kMaxEpochsPerBlock;
  for (uint32_t seq = 0; seq < full + 1; ++seq) queue.append(epoch(seq), 1);
  // The full block's last three wait for the outputs of seqs full..full+2.
  CHECK(queue.held_back() == 3);
  auto sent = uploaded_stages(queue);
  CHECK(sent.size() == full - 2);
  CHECK(sent.rbegin()->first == full - 3);
  queue.acknowledge(full - 10);  // the server holds part of the full block
  CHECK(queue.held_back() == 3);
  for (uint32_t seq = full + 1; seq < full + 5; ++seq) queue.append(epoch(seq), 1);
  sent = uploaded_stages(queue);
  REQUIRE(sent.size() == 11);  // full-9 .. full+1: the full block sealed, the open one's first two
  for (const auto& [seq, stage] : sent) CHECK_MESSAGE(stage == output(seq + 3), "seq ", seq);
  CHECK(queue.held_back() == 3);
  CHECK(queue.pending_epochs() == 14);

  // A reboot while a full block finishes: both are sealed, their stages gone, no epoch.
  for (uint32_t seq = full + 5; seq < 2 * full + 2; ++seq) queue.append(epoch(seq), 1);
  CHECK(queue.held_back() == 3);
  FlashQueue again(flash);
  const RecoveryReport report = again.recover();
  CHECK(report.sealed_open_blocks == 2);
  // The ack was in RAM: all three blocks are sent again (the server keeps each epoch once).
  CHECK(again.pending_epochs() == 2 * full + 2);
  const auto resent = uploaded_stages(again);
  CHECK(resent.size() == 2 * full + 2);
  CHECK(resent.at(full - 1) == output(full + 2));  // sealed with its stages before the cut
  CHECK(resent.at(2 * full - 4) == -1);             // the finishing block's were in RAM
  CHECK(resent.at(2 * full) == -1);
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
  uint32_t lookahead = 0;
  SUBCASE("each epoch staged as it ends") {}
  // The script's second night fills a block at seq 417: it finishes while the next one fills.
  SUBCASE("staged 3 epochs late") { lookahead = 3; }
  // Count the writes of an uncut run first.
  FakeFlash probe(8);
  {
    FlashQueue q(probe);
    q.recover();
    q.set_lookahead(lookahead);
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
      q.set_lookahead(lookahead);
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
    rebooted.set_lookahead(lookahead);
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
    for (uint32_t k = 0; k <= lookahead; ++k) rebooted.append(make_epoch(next + k, 1800000000 + 30 * k), 1);
    REQUIRE(drain_view(rebooted).codes.count(next) == 1);
    ++checked;
  }
  CHECK(checked == (total + 1) * kTears);
}
