// The board's fixed resources in one place, free of any SDK header: board.cpp sizes its
// tasks and buffers with them, `make stack-check` reads the loop task's stack from here,
// and hardware/budgets.py compiles this file with the core's headers to compute the RAM
// and power budgets, so a budget cannot describe another firmware than this one.
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis_model_data.h"
#include "noctis_schema.h"

namespace noctis::board {

constexpr uint32_t kLoopTaskStackBytes = 16384;   // upload path: TLS, the sync client, the queue
constexpr uint32_t kSamplingStackBytes = 4096;    // radar, accelerometer, epoch features
constexpr size_t kRadarUartBufferBytes = 4096;    // radar frames while the loop task waits on the network
constexpr unsigned kEpochQueueLength = 16;        // finished epochs, sampling task -> loop task
constexpr size_t kArenaCapacity = kEdgeTensorArenaBytes + 1024;  // compiled TFLM arena (+ interpreter)
constexpr uint32_t kHttpConnectTimeoutMs = 10000;
constexpr uint32_t kHttpReadTimeoutMs = 20000;
constexpr uint32_t kWatchdogSeconds = 60;         // longer than any one HTTP request may take
constexpr uint32_t kSyncAfterEverySeconds = kEpochSeconds;  // each finished epoch is uploaded
constexpr uint32_t kOtaCheckHours = 6;

// A finished epoch as it crosses from the sampling task to the loop task.
struct FinishedEpoch {
  uint64_t start_ms;
  double features[kFeatureCount];
};

}  // namespace noctis::board
