#pragma once
//! \file
//! Umbrella header of the losses: `next_token_loss` (cross-entropy), `kl_divergence` (forward /
//! reverse KL), `generalized_jsd` (TRL GKD) and `kl_estimate` (k1 / k2 / k3), all with fused
//! gradients with respect to the logits (or log-probs); their linear forms from hidden states
//! (`linear_next_token_loss`, `linear_kl_divergence`, `linear_generalized_jsd`) with the `matmul`
//! backend concept. See docs/losses.md.

#include "selfreplay/losses/common.hpp"
#include "selfreplay/losses/cross_entropy.hpp"
#include "selfreplay/losses/jsd.hpp"
#include "selfreplay/losses/kl.hpp"
#include "selfreplay/losses/kl_estimators.hpp"
#include "selfreplay/losses/linear.hpp"
#include "selfreplay/losses/matmul.hpp"
