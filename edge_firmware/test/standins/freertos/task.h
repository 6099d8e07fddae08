// Host stand-in: ESP-IDF 4.4 freertos/task.h, the calls the glue makes.
#pragma once
#include "freertos/FreeRTOS.h"

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t code, const char* name, uint32_t stack_depth, void* parameters,
                                   UBaseType_t priority, TaskHandle_t* created, BaseType_t core_id);
void vTaskDelayUntil(TickType_t* previous_wake, TickType_t increment);
TickType_t xTaskGetTickCount();
