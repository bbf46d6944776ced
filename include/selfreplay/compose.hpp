#pragma once
//! \file
//! Umbrella header of the composition layer (Boost.Hana): `strategy` bundles and compile-time
//! policy grids (`for_each_combination`, `for_each_strategy`, `grid_size`).

#include "selfreplay/compose/grid.hpp"
#include "selfreplay/compose/strategy.hpp"
