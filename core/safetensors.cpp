// safetensors.cpp — see safetensors.hpp.
#include "safetensors.hpp"
