#pragma once
#include <cstdint>
uint32_t esp_random();
