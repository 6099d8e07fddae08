#pragma once
#include <cstdint>

int64_t esp_timer_get_time();  // microseconds since boot, 64-bit: never wraps
