#pragma once
#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

// As in tensorflow/lite/core/c/common.h (TFLite Micro, 2024): the fields the glue reads.
enum TfLiteType { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteUInt8 = 3, kTfLiteInt8 = 9 };
struct TfLiteTensor {
  TfLiteType type;
  size_t bytes;
  union {
    uint8_t* uint8;
    int8_t* int8;
    float* f;
  } data;
};
namespace tflite {
class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& resolver, uint8_t* arena, size_t arena_size);
  TfLiteStatus AllocateTensors();
  TfLiteStatus Invoke();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
};
}  // namespace tflite
