#pragma once
//! \file
//! The core of selfreplay: every layer that needs only the standard library (and Boost.Hana
//! for `compose/`). Backend adapters are separate: `selfreplay/adapters/eigen.hpp`,
//! `selfreplay/adapters/xtensor.hpp`.

#include "selfreplay/isa.hpp"
#include "selfreplay/tensor.hpp"
#include "selfreplay/random.hpp"
#include "selfreplay/losses.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/schedules.hpp"
#include "selfreplay/metrics.hpp"
#include "selfreplay/sampling.hpp"
#include "selfreplay/compose.hpp"
