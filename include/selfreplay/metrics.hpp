#pragma once
//! \file
//! Umbrella header of the metrics layer: the `forgetting_metric` concept and its exactly
//! mergeable accumulators (mean_loss, mean_kl, forgetting, second_half_loss,
//! weight_distance_ratio, weight_norm, exact_sum), task-sequence metrics over an
//! accuracy_matrix, steps_to_target / compute_multiplier / pareto_frontier, and the report
//! (aligned text, CSV, JSON).

#include "selfreplay/metrics/concept.hpp"
#include "selfreplay/metrics/continual.hpp"
#include "selfreplay/metrics/curves.hpp"
#include "selfreplay/metrics/exact_sum.hpp"
#include "selfreplay/metrics/mean.hpp"
#include "selfreplay/metrics/report.hpp"
#include "selfreplay/metrics/weights.hpp"
