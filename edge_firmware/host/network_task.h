// The board's two tasks on the host (noctis-device --tasks): the calling thread plays
// the sampling task and only hands finished epochs over; a network thread owns the
// Device, as the board's loop task does (src/board/board.cpp), records what it is
// handed and syncs when due, however long a request hangs. So a stalled server can
// be shown not to stop sampling, with the firmware's own code on both sides.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "noctis/device.h"
#include "posix_port.h"

namespace noctis::host {

class NetworkTask {
 public:
  NetworkTask(Device& device, ReplayStager& stager) : device_(device), stager_(stager) {}
  ~NetworkTask() { stop(); }
  void start();
  void stop();

  // From the sampling side; never waits on the network.
  void set_now(uint64_t now_ms) { now_ms_ = now_ms; }
  void advance(uint64_t ms) { now_ms_ += ms; }
  void set_clock(uint32_t unix_s);
  void hand_over(uint64_t start_ms, const double features[kFeatureCount], uint8_t stage);

  // What the network thread last published.
  size_t waiting() const;
  uint64_t pending() const { return pending_; }
  uint64_t ready() const { return ready_; }  // of pending, what it would upload now
  uint64_t held() const { return held_; }    // of pending, waiting for their stage
  uint32_t next_seq() const { return next_seq_; }
  uint32_t incarnation() const { return incarnation_; }
  uint32_t failures() const { return failures_; }

 private:
  struct Item {
    bool clock;  // set the wall clock instead of recording an epoch
    uint64_t at_ms;
    uint32_t unix_s;
    double features[kFeatureCount];
    uint8_t stage;
  };
  void run();
  void publish();

  Device& device_;
  ReplayStager& stager_;
  mutable std::mutex mutex_;
  std::deque<Item> items_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> now_ms_{0}, pending_{0}, ready_{0}, held_{0};
  std::atomic<uint32_t> next_seq_{0}, incarnation_{0}, failures_{0};
};

}  // namespace noctis::host
