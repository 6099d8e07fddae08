// Declarations as in ESP-IDF 4.4 (esp_timer.h), as arduino-esp32 2.0.x ships it.
#pragma once
#include <cstdint>

int64_t esp_timer_get_time();  // microseconds since boot, 64-bit: never wraps
