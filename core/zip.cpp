// zip.cpp — see zip.hpp.
#include "zip.hpp"
