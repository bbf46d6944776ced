#pragma once
//! \file
//! Umbrella header of the replay layer: replay sources (stored-exemplar buffers, self-generated
//! replay, weighted mixtures), replay mixers, the combined objective, and state save/restore.

#include "selfreplay/replay/mixer.hpp"
#include "selfreplay/replay/mixers.hpp"
#include "selfreplay/replay/keyed_reservoir.hpp"
#include "selfreplay/replay/keyed_task_balanced_buffer.hpp"
#include "selfreplay/replay/mixture.hpp"
#include "selfreplay/replay/objective.hpp"
#include "selfreplay/replay/reservoir_buffer.hpp"
#include "selfreplay/replay/ring_buffer.hpp"
#include "selfreplay/replay/self_generated.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"
#include "selfreplay/replay/task_balanced_buffer.hpp"
