// Must not compile: the mixer's add_terms takes only objective_context<float>, so it does not model
// selfreplay::replay_mixer; evaluate_objective's first error is one sentence naming the concept and
// the argument ('mixer'), and says that one add_terms template serves both element types.
#include <cstdint>

#include "selfreplay/replay.hpp"

struct float_only_mixer {
    static constexpr bool needs_replay_batch = false;
    static constexpr bool needs_student_replay_logits = false;
    static constexpr bool needs_reference_replay_logits = false;
    static constexpr bool needs_reference_train_logits = false;
    static constexpr std::size_t terms = 0;
    selfreplay::index_t replace_rows(std::int64_t, selfreplay::index_t) const { return 0; }
    void add_terms(selfreplay::objective_context<float>&) const {}
};

int main() {
    selfreplay::evaluate_objective(float_only_mixer{}, 0, selfreplay::objective_inputs<float>{});
}
