#pragma once
//! \file
//! Umbrella header of the random layer: `philox4x32`, `counter_rng`, `uniform_float`,
//! `uniform_double`, `uniform_float_open`.

#include "selfreplay/random/counter_rng.hpp"
#include "selfreplay/random/philox.hpp"
#include "selfreplay/random/uniform.hpp"
