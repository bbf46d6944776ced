#pragma once
//! \file
//! Umbrella header of the sampling layer: logits processors and chains, draws,
//! the `language_model` concept and batched `generate`.

#include "selfreplay/sampling/bias.hpp"
#include "selfreplay/sampling/context.hpp"
#include "selfreplay/sampling/draw.hpp"
#include "selfreplay/sampling/generate.hpp"
#include "selfreplay/sampling/language_model.hpp"
#include "selfreplay/sampling/penalties.hpp"
#include "selfreplay/sampling/processor.hpp"
#include "selfreplay/sampling/temperature.hpp"
#include "selfreplay/sampling/truncation.hpp"
