// Host stand-in: ESP-IDF 4.4 esp_task_wdt.h, the task watchdog.
#pragma once
#include "freertos/FreeRTOS.h"

typedef int esp_err_t;
esp_err_t esp_task_wdt_init(uint32_t timeout_s, bool panic);
esp_err_t esp_task_wdt_add(TaskHandle_t task);  // nullptr: the calling task
esp_err_t esp_task_wdt_reset();
