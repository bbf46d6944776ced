#pragma once
//! \file
//! Umbrella header of the tensor layer: `strided_view`, the `tensor` concept, `view()`,
//! `make_view()`, `invalid_argument`, and the int32 / int64 token-id views.

#include "selfreplay/error.hpp"
#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/strided_view.hpp"
#include "selfreplay/tensor/token_ids.hpp"
