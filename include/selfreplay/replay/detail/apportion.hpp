#pragma once
//! \file
//! Deterministic apportionment of batch rows over weighted parts, exact in the long run.

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "selfreplay/error.hpp"
#include "selfreplay/tensor/strided_view.hpp"

namespace selfreplay::detail {

//! Splits batches of rows over parts in proportion to weights, by carried credits: for each batch
//! of B rows, credit_i += B * w_i / sum(w); part i gets floor(credit_i) rows, the rows left over go
//! one each to the parts with the largest remaining credit (lowest index first on ties), and the
//! rows given are subtracted from the credits. Each part's total stays within one row of its exact
//! share at every batch, and the split of a batch depends only on the batches before it.
class apportioner {
public:
    apportioner() = default;

    //! Throws `invalid_argument` (naming `where` and `argument`) unless the weights are finite,
    //! non-negative and sum to a positive number.
    apportioner(const std::vector<double>& weights, std::string_view where, std::string_view argument)
        : share_(weights.size()), credit_(weights.size(), 0.0) {
        require(!weights.empty(), where, argument, "must hold at least one weight");
        double total = 0;
        for (std::size_t i = 0; i < weights.size(); ++i) {
            require(std::isfinite(weights[i]) && weights[i] >= 0, where, argument,
                    "must hold finite non-negative weights, got ", weights[i], " at index ", i);
            total += weights[i];
        }
        require(total > 0, where, argument, "must hold at least one positive weight");
        for (std::size_t i = 0; i < weights.size(); ++i) share_[i] = weights[i] / total;
    }

    //! Rows of the next batch of `rows` rows given to each part (sums to `rows`).
    std::vector<index_t> next(index_t rows) {
        const std::size_t n = share_.size();
        std::vector<index_t> count(n, 0);
        index_t given = 0;
        for (std::size_t i = 0; i < n; ++i) {
            credit_[i] += static_cast<double>(rows) * share_[i];
            count[i] = credit_[i] > 0 ? static_cast<index_t>(std::floor(credit_[i])) : 0;
            given += count[i];
        }
        while (given > rows) { // rounding excess (only from floating error): take from the smallest credit
            std::size_t k = n;
            for (std::size_t i = 0; i < n; ++i)
                if (count[i] > 0 && (k == n || credit_[i] - static_cast<double>(count[i]) < credit_[k] - static_cast<double>(count[k]))) k = i;
            --count[k];
            --given;
        }
        while (given < rows) {
            std::size_t k = n;
            for (std::size_t i = 0; i < n; ++i)
                if (share_[i] > 0 && (k == n || credit_[i] - static_cast<double>(count[i]) > credit_[k] - static_cast<double>(count[k]))) k = i;
            ++count[k];
            ++given;
        }
        for (std::size_t i = 0; i < n; ++i) credit_[i] -= static_cast<double>(count[i]);
        return count;
    }

    const std::vector<double>& credits() const noexcept { return credit_; } //!< the carried credits (state)

    //! Why `credits` cannot be this apportioner's state (empty when they can): one per part, each
    //! finite and in [-2, 2] (`next` keeps them in [-1, 1) up to rounding; a larger one would
    //! make it hand out that many rows, or overflow the cast to a row count), and 0 for a part of
    //! weight 0 (whose credit never moves).
    std::string invalid_credits(const std::vector<double>& credits) const {
        if (credits.size() != credit_.size())
            return "holds " + std::to_string(credits.size()) + " credits for " + std::to_string(credit_.size()) + " parts";
        for (std::size_t i = 0; i < credits.size(); ++i) {
            if (!(credits[i] >= -2 && credits[i] <= 2))
                return "holds the apportionment credit " + std::to_string(credits[i]) + " for part " + std::to_string(i) +
                       ", outside [-2, 2]";
            if (share_[i] == 0 && credits[i] != 0)
                return "holds a nonzero apportionment credit for part " + std::to_string(i) + ", whose weight is 0";
        }
        return {};
    }

    //! Replaces the credits with credits that `invalid_credits` accepts (a saved state, validated
    //! by the caller, or a copy of `credits()`).
    void set_credits(std::vector<double> credits) noexcept { credit_ = std::move(credits); }
    std::size_t parts() const noexcept { return share_.size(); } //!< number of parts

private:
    std::vector<double> share_;
    std::vector<double> credit_;
};

} // namespace selfreplay::detail
