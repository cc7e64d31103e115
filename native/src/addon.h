// Registration hooks of the N-API modules that live outside addon.cc.
#pragma once
#include <napi.h>

namespace glmv {
void register_mapped(Napi::Env env, Napi::Object exports);  // mapped.cc
void register_quant(Napi::Env env, Napi::Object exports);   // quant.cc
}  // namespace glmv
