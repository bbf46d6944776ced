#pragma once
//! \file
//! Umbrella header of the schedules layer: the `schedule` concept, its models (constant,
//! linear, polynomial, warmup_constant / linear_warmup, exponential_decay, piecewise_constant,
//! piecewise_linear, inverse_sqrt, cosine_decay, warmup_cosine, sgdr, one_cycle, wsd) and the
//! combinators join, scale, clamp. Standard library only.

#include "selfreplay/schedules/basic.hpp"
#include "selfreplay/schedules/combinators.hpp"
#include "selfreplay/schedules/concept.hpp"
#include "selfreplay/schedules/cosine.hpp"
#include "selfreplay/schedules/math.hpp"
#include "selfreplay/schedules/wsd.hpp"
