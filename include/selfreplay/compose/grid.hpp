#pragma once
//! \file
//! Policy grids expanded at compile time: `for_each_combination` over the cartesian product of
//! lists of policy types, and `for_each_strategy` over the product of lists of policy values,
//! instantiating one `strategy` per combination.

#include <boost/hana/all_of.hpp>
#include <boost/hana/at.hpp>
#include <boost/hana/bool.hpp>
#include <boost/hana/cartesian_product.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>
#include <boost/hana/unpack.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

#include "selfreplay/compose/strategy.hpp"

namespace selfreplay {

//! Calls `f(hana::type_c<A>, hana::type_c<B>, ...)` once per element of the cartesian product of
//! the type lists `axes` (each a `boost::hana::tuple_t<...>`), in row-major order (the last axis
//! varies fastest). The product is expanded at compile time: each call is a separate
//! instantiation. Example: `for_each_combination(hana::tuple_t<reservoir_buffer, ring_buffer>,`
//! `hana::tuple_t<ntp_pre<>, kl_pre<>>, f)` makes four calls; `f(auto source, auto mixer)` gets
//! `hana::type_c` values, whose nested `type` is the combination's type.
template <class F, class... Axes>
constexpr void for_each_combination_impl(F&& f, const Axes&... axes) {
    const auto product = boost::hana::cartesian_product(boost::hana::make_tuple(axes...));
    constexpr bool callable = decltype(boost::hana::all_of(product, [](const auto& combination) {
        return boost::hana::unpack(combination, [](const auto&... t) {
            return boost::hana::bool_c<std::is_invocable_v<F&, decltype(t)...>>;
        });
    }))::value;
    if constexpr (!callable)
        static_assert(detail::always_false<F>,
                      "selfreplay::for_each_combination: argument 'f' (the callback, last) cannot be called with "
                      "one boost::hana::type_c per axis (f(auto source, auto mixer, ...))");
    else
        boost::hana::for_each(product, [&](const auto& combination) { boost::hana::unpack(combination, f); });
}

//! See above: `for_each_combination(axis_1, ..., axis_n, f)` with the callback last.
template <class... Args>
constexpr void for_each_combination(Args&&... args) {
    static_assert(sizeof...(Args) >= 2, "selfreplay::for_each_combination: give at least one axis and a callback");
    auto all = boost::hana::make_tuple(std::forward<Args>(args)...);
    constexpr std::size_t n = sizeof...(Args);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        for_each_combination_impl(boost::hana::at_c<n - 1>(all), boost::hana::at_c<I>(all)...);
    }(std::make_index_sequence<n - 1>{});
}

//! Number of combinations of the given axes (the product of their lengths), at compile time.
template <class... Axes>
constexpr std::size_t grid_size(const Axes&... axes) {
    return (std::size_t{1} * ... * static_cast<std::size_t>(decltype(boost::hana::length(axes))::value));
}

//! For each combination (source, mixer, schedule) of the values in the three tuples (each a
//! `boost::hana::tuple` of policy objects, possibly of different types), builds
//! `strategy<S, M, Sch>{.source = source, .mixer = mixer, .schedule = schedule}` (copies, so
//! every combination starts fresh) and calls `f(strategy&)`. Row-major order, the schedule
//! varying fastest; the callback typically runs one training per strategy.
template <class Sources, class Mixers, class Schedules, class F>
void for_each_strategy(const Sources& sources, const Mixers& mixers, const Schedules& schedules, F&& f) {
    const auto product = boost::hana::cartesian_product(boost::hana::make_tuple(sources, mixers, schedules));
    boost::hana::for_each(product, [&](const auto& combination) {
        boost::hana::unpack(combination, [&](const auto& source, const auto& mixer, const auto& sched) {
            using S = std::decay_t<decltype(source)>;
            using M = std::decay_t<decltype(mixer)>;
            using Sch = std::decay_t<decltype(sched)>;
            strategy<S, M, Sch> s{.source = source, .mixer = mixer, .schedule = sched};
            f(s);
        });
    });
}

} // namespace selfreplay
