// inflate.cpp — see inflate.hpp.
#include "inflate.hpp"
