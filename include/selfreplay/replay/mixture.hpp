#pragma once
//! \file
//! `weighted_mixture`: a replay source that splits each batch over several sources by weight.

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <iterator>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "selfreplay/replay/detail/apportion.hpp"
#include "selfreplay/replay/shard.hpp"
#include "selfreplay/replay/source.hpp"
#include "selfreplay/replay/state_io.hpp"

namespace selfreplay {

//! A weighted mixture of replay sources: each batch of B rows is split over the sources in
//! proportion to their weights by deterministic apportionment with carried credits (source i's
//! cumulative row count stays within one row of B * w_i / sum(w) summed over batches), and the
//! rows of source 0 come first, then those of source 1, and so on. A source given 0 rows in a batch
//! is not asked to draw. Sources are held by value, or by reference when constructed from
//! `std::ref(source)` (so that a stored buffer can keep growing while the mixture draws from it).
//! All sources must have the same seq_len. Saveable when every source is.
template <class... Sources>
class weighted_mixture {
    static_assert(sizeof...(Sources) >= 1, "selfreplay::weighted_mixture: give at least one source");
    static_assert((replay_source<std::remove_reference_t<Sources>> && ...),
                  "selfreplay::weighted_mixture: argument 'sources' does not model selfreplay::replay_source "
                  SELFREPLAY_SOURCE_HINT);

public:
    //! \param weights one finite non-negative weight per source, not all zero
    //! \param sources the sources (values, or `std::ref(x)` to hold a reference)
    //! Throws `invalid_argument` for bad weights or sources of different seq_len.
    template <class... Args>
        requires(sizeof...(Args) == sizeof...(Sources))
    explicit weighted_mixture(const double (&weights)[sizeof...(Sources)], Args&&... sources)
        : sources_(std::forward<Args>(sources)...),
          split_(std::vector<double>(std::begin(weights), std::end(weights)), "weighted_mixture", "weights") {
        const index_t T = std::get<0>(sources_).seq_len();
        std::apply(
            [&](const auto&... s) {
                std::size_t i = 0;
                ((require(static_cast<index_t>(s.seq_len()) == T, "weighted_mixture", "sources",
                          "must all have the same seq_len: source 0 has ", T, ", source ", i, " has ", s.seq_len()),
                  ++i),
                 ...);
            },
            sources_);
    }

    //! Fills `out` ([B, seq_len] int32 or int64 ids): the first n_0 rows from source 0, the next n_1 from source 1, ...
    template <class X>
    void draw(X&& out) {
        const auto o = detail::token_rows(out, seq_len(), "weighted_mixture::draw", "out");
        const auto counts = split_.next(o.extent(0));
        index_t begin = 0;
        std::size_t i = 0;
        std::apply(
            [&](auto&... s) {
                ((counts[i] > 0 ? (s.draw(detail::row_range(o, begin, counts[i])), void()) : void(), begin += counts[i], ++i),
                 ...);
            },
            sources_);
    }

    //! Data parallelism: rows [shard.begin, shard.end) of the next global batch of `batch` rows
    //! into `out` ([end - begin, seq_len]). The batch is apportioned as a whole (as `draw` of
    //! `batch` rows would), and every source given rows in it draws its share of the shard with
    //! its own sharded `draw` (also when that share is empty), so the mixture and its sources
    //! advance as they would in one process. Every source must model `sharded_replay_source`.
    //! Throws `invalid_argument` naming `shard` unless 0 <= begin <= end <= batch, and `out` when
    //! its row count is not end - begin.
    template <class X>
        requires(sharded_replay_source<std::remove_reference_t<Sources>> && ...)
    void draw(X&& out, index_t batch, const row_shard& shard) {
        const auto o = detail::token_rows(out, seq_len(), "weighted_mixture::draw", "out");
        detail::require_sharded_draw(o.extent(0), batch, shard, "weighted_mixture::draw");
        const auto counts = split_.next(batch);
        index_t begin = 0; // first row of source i in the global batch
        std::size_t i = 0;
        std::apply(
            [&](auto&... s) {
                (([&] {
                     const index_t n = counts[i];
                     if (n > 0) {
                         const index_t lo = std::clamp(shard.begin - begin, index_t{0}, n);
                         const index_t hi = std::clamp(shard.end - begin, index_t{0}, n);
                         const index_t at = hi > lo ? begin + lo - shard.begin : 0; // an empty share points at row 0
                         s.draw(detail::row_range(o, at, hi - lo), n, row_shard{lo, hi});
                     }
                     begin += n;
                     ++i;
                 }()),
                 ...);
            },
            sources_);
    }

    //! The common sequence length.
    index_t seq_len() const { return static_cast<index_t>(std::get<0>(sources_).seq_len()); }

    //! Source I (a reference to the held value, or to the referenced object).
    template <std::size_t I>
    auto& source() noexcept { return std::get<I>(sources_); }
    template <std::size_t I>
    const auto& source() const noexcept { return std::get<I>(sources_); } //!< source I, read-only

    //! Appends the state (credits, then each source's state) to `w`.
    void save(state_writer& w) const
        requires(saveable<std::remove_reference_t<Sources>> && ...)
    {
        w.tag("weighted_mixture");
        w.put<std::uint64_t>(sizeof...(Sources));
        w.put_array(split_.credits());
        std::apply([&](const auto&... s) { (s.save(w), ...); }, sources_);
    }

    //! A record read and validated by `stage` (see `stageable`): the credits and every source's
    //! staged record.
    struct staged_state {
        std::vector<double> credits; //!< the apportionment credits, one per source
        //! every source's staged record
        std::tuple<typename detail::staged_record<std::remove_reference_t<Sources>>::type...> sources;
    };

    //! Reads and validates a state saved by `save` (a mixture of the same sources), every source's
    //! record included, without changing the mixture or its sources. Throws `invalid_argument`
    //! for another number of sources, credits that the apportionment refuses (see
    //! `detail::apportioner::invalid_credits`) or a source record its source refuses.
    staged_state stage(state_reader& r) const
        requires(saveable<std::remove_reference_t<Sources>> && ...)
    {
        r.expect_tag("weighted_mixture");
        if (r.get<std::uint64_t>("source count") != sizeof...(Sources)) r.fail("holds a mixture of another number of sources");
        auto credits = r.get_array<double>("credits");
        if (const std::string why = split_.invalid_credits(credits); !why.empty()) r.fail(why);
        return std::apply(
            [&](const auto&... s) { return staged_state{std::move(credits), {detail::stage_record(s, r)...}}; }, sources_);
    }

    //! Installs a record staged by `stage` (the credits and every source's state).
    void commit(staged_state&& s) noexcept
        requires(saveable<std::remove_reference_t<Sources>> && ...)
    {
        split_.set_credits(std::move(s.credits));
        commit_sources(s, std::index_sequence_for<Sources...>{});
    }

    //! `commit(stage(r))`: throws as `stage` does, and then leaves the mixture and its sources unchanged.
    void restore(state_reader& r)
        requires(saveable<std::remove_reference_t<Sources>> && ...)
    {
        commit(stage(r));
    }

private:
    template <std::size_t... I>
    void commit_sources(staged_state& s, std::index_sequence<I...>) noexcept {
        (detail::commit_record(std::get<I>(sources_), std::move(std::get<I>(s.sources))), ...);
    }

    std::tuple<Sources...> sources_;
    detail::apportioner split_;
};

namespace detail {
template <class T>
struct mixture_member {
    using type = std::decay_t<T>;
};
template <class T>
struct mixture_member<std::reference_wrapper<T>> {
    using type = T&;
};
} // namespace detail

//! Deduction: sources passed by value are copied or moved; `std::ref(x)` is held as a reference.
template <std::size_t N, class... Args>
weighted_mixture(const double (&)[N], Args&&...)
    -> weighted_mixture<typename detail::mixture_member<std::decay_t<Args>>::type...>;

} // namespace selfreplay
