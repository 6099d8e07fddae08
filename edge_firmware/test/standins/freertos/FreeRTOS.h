// Host stand-in for ESP-IDF 4.4's FreeRTOS (as arduino-esp32 2.0.x ships it):
// declarations only, for the glue check.
#pragma once
#include <cstdint>

typedef uint32_t TickType_t;
typedef int BaseType_t;
typedef unsigned UBaseType_t;
typedef void* TaskHandle_t;
typedef void* QueueHandle_t;
typedef void (*TaskFunction_t)(void*);
#define pdPASS 1
#define pdTRUE 1
#define portTICK_PERIOD_MS 1
#define pdMS_TO_TICKS(ms) (static_cast<TickType_t>(ms) / portTICK_PERIOD_MS)
