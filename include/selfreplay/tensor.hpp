#pragma once
//! \file
//! Umbrella header of the tensor layer: `strided_view`, the `tensor` concept, `view()`,
//! `make_view()` and `invalid_argument`.

#include "selfreplay/tensor/concept.hpp"
#include "selfreplay/tensor/error.hpp"
#include "selfreplay/tensor/strided_view.hpp"
