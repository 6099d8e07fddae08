// Host stand-in: ESP-IDF 4.4 freertos/queue.h (xQueueCreate, xQueueSend and
// xQueueReceive are macros there over these generic functions).
#pragma once
#include "freertos/FreeRTOS.h"

QueueHandle_t xQueueCreate(UBaseType_t length, UBaseType_t item_size);
BaseType_t xQueueSend(QueueHandle_t queue, const void* item, TickType_t wait);
BaseType_t xQueueReceive(QueueHandle_t queue, void* item, TickType_t wait);
