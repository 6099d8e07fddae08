#pragma once
#include <cstdint>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
class MicroOpResolver {};
template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddFullyConnected();
  TfLiteStatus AddReshape();
  TfLiteStatus AddQuantize();
  TfLiteStatus AddConcatenation();
  TfLiteStatus AddMul();
  TfLiteStatus AddAdd();
  TfLiteStatus AddStridedSlice();
  TfLiteStatus AddAveragePool2D();
  TfLiteStatus AddSub();
  TfLiteStatus AddConv2D();
};
}  // namespace tflite
