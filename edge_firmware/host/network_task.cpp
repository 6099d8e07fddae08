#include "network_task.h"

#include <chrono>
#include <cstring>

namespace noctis::host {

void NetworkTask::start() {
  publish();
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void NetworkTask::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

void NetworkTask::set_clock(uint32_t unix_s) {
  Item item{};
  item.clock = true, item.at_ms = now_ms_, item.unix_s = unix_s;
  std::lock_guard<std::mutex> lock(mutex_);
  items_.push_back(item);
}

void NetworkTask::hand_over(uint64_t start_ms, const double features[kFeatureCount], uint8_t stage) {
  Item item{};
  item.at_ms = start_ms, item.stage = stage;
  std::memcpy(item.features, features, sizeof item.features);
  std::lock_guard<std::mutex> lock(mutex_);
  items_.push_back(item);
}

size_t NetworkTask::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return items_.size();
}

void NetworkTask::publish() {
  pending_ = device_.queue().pending_epochs();
  ready_ = device_.queue().ready_epochs();
  held_ = device_.queue().held_back();
  next_seq_ = device_.next_seq();
  incarnation_ = device_.incarnation();
  failures_ = device_.sync_client().consecutive_failures();
}

void NetworkTask::run() {
  uint64_t next_sync_ms = 0;
  while (running_) {
    for (;;) {
      Item item;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (items_.empty()) break;
        item = items_.front();
        items_.pop_front();
      }
      if (item.clock) {
        device_.set_time(item.at_ms, item.unix_s);
      } else {
        stager_.next.push_back(item.stage);
        device_.record_epoch(item.at_ms, item.features);
        next_sync_ms = 0;  // as the board: a new epoch is uploaded at once
      }
      publish();
    }
    const uint64_t now = now_ms_;
    if (now >= next_sync_ms) next_sync_ms = now + device_.sync(now);  // may wait out a hung server
    publish();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace noctis::host
