// Declarations as in ESP-IDF 4.4 (esp_random.h), as arduino-esp32 2.0.x ships it.
#pragma once
#include <cstdint>
uint32_t esp_random();
