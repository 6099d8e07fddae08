// The device application: what the firmware does between its sensors and the server.
// The same object code runs on the ESP32 (src/board/board.cpp) and on the host as a
// whole device (host/), where it talks to the real server; only the ports differ:
// the queue's Flash, the Transport, the KeyValueStore (NVS), the Stager (TFLM) and
// where the time comes from.
//
// Time: an epoch's start is the wall-clock anchor (NTP) plus the 64-bit monotonic time
// elapsed since it was taken, so it neither wraps nor depends on when the device booted.
// Epochs made before the clock is set wait in RAM with their monotonic time (up to
// kMaxUnanchored, two hours; beyond that the oldest are dropped and counted) and are
// stored with their real start once the anchor arrives.
//
// hours_since_start (feature 14) counts from the start of the night, as the models are
// trained (noctis_contract.features.night_hours): a night starts with the first epoch
// stored after boot, or when someone is present again after at least an hour away; a
// reboot within the hour continues the night.
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis/flash_queue.h"
#include "noctis/sync.h"

namespace noctis {

class KeyValueStore {  // NVS on the ESP32: survives reboots, but may be lost (reflash, reset)
 public:
  virtual ~KeyValueStore() = default;
  virtual uint32_t get_u32(const char* key, uint32_t fallback) = 0;
  virtual void set_u32(const char* key, uint32_t value) = 0;
  // Strings (provisioning): copies at most cap - 1 bytes and a NUL into out; returns the
  // stored length, 0 when the key is absent.
  virtual size_t get_str(const char* key, char* out, size_t cap) = 0;
  virtual void set_str(const char* key, const char* value) = 0;
};

class Stager {  // the edge model: a stage 0..3 for the newest epoch, kNoStage if it cannot
 public:
  virtual ~Stager() = default;
  // night_began: this epoch is its night's first, so the model's history starts empty,
  // as each night's does in training (noctis_contract.features.night_so_far).
  virtual uint8_t stage(const uint8_t codes[kFeatureCount], bool night_began) = 0;
};

// 2: stages with the edge model's lookahead (kEdgeModelLookahead, manifest format 2).
constexpr uint32_t kFirmwareVersion = 2;

struct DeviceConfig {
  uint32_t firmware_version = kFirmwareVersion;
  uint32_t model_version = 1;
  // The model's output on the window ending at an epoch is the stage of the epoch this
  // many epochs before it (the queue places it there and holds the newest back).
  uint32_t lookahead_epochs = 0;
  SyncConfig sync;
};

constexpr size_t kMaxUnanchored = 240;           // two hours of epochs before the clock is set
constexpr uint32_t kNightBreakSeconds = 3600;    // this long away (or off) starts a new night
constexpr double kPresentRatio = 0.2;            // presence_ratio at or above: someone in bed

class Device {
 public:
  Device(Flash& flash, Transport& transport, RandomSource& random, KeyValueStore& store, Stager& stager,
         DeviceConfig config = {});

  // Recovers the queue and the seq space: the incarnation and next seq survive a reboot,
  // and a device that lost them starts a new incarnation instead of reusing seqs.
  RecoveryReport boot();
  // The wall clock is known: at monotonic now_ms it was unix_s.
  void set_time(uint64_t now_ms, uint32_t unix_s);
  // One epoch of features that began at monotonic epoch_start_ms (feature 14 is ignored:
  // the device computes it). Staged, then stored in flash (or held until the clock is set).
  void record_epoch(uint64_t epoch_start_ms, const double features[kFeatureCount]);
  // Uploads if due; returns ms until it wants to be called again.
  uint32_t sync(uint64_t now_ms);
  // The board's Wi-Fi RSSI and free heap, reported with the next upload (0: not known).
  void set_vitals(int32_t rssi_dbm, uint32_t free_heap) { sync_.set_vitals(rssi_dbm, free_heap); }

  uint32_t incarnation() const { return incarnation_; }
  uint32_t next_seq() const { return next_seq_; }
  bool time_known() const { return anchored_; }
  uint32_t unanchored_dropped() const { return unanchored_dropped_; }
  const FlashQueue& queue() const { return queue_; }
  const SyncClient& sync_client() const { return sync_; }

 private:
  struct Unanchored {
    uint64_t start_ms;
    uint8_t codes[kFeatureCount];
    bool present;
  };
  // Stages the epoch (the model sees it with its hours since the night's start) and
  // appends it to the queue.
  void store(uint32_t start, uint8_t codes[kFeatureCount], bool present);

  FlashQueue queue_;
  SyncClient sync_;
  RandomSource& random_;
  KeyValueStore& store_;
  Stager& stager_;
  DeviceConfig config_;
  uint32_t incarnation_ = 0;
  uint32_t next_seq_ = 0;
  bool anchored_ = false;
  uint64_t anchor_ms_ = 0;
  uint32_t anchor_unix_ = 0;
  uint32_t night_start_ = 0;
  uint32_t last_start_ = 0;
  uint32_t absent_since_ = 0;  // start of the current absence, 0 while someone is present
  Unanchored unanchored_[kMaxUnanchored] = {};
  size_t unanchored_first_ = 0, unanchored_count_ = 0;
  uint32_t unanchored_dropped_ = 0;
};

}  // namespace noctis
