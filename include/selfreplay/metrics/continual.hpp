#pragma once
//! \file
//! Task-sequence (continual-learning) metrics from an accuracy matrix R[i][j] = accuracy on
//! task j after training tasks 0..i: average accuracy, learning accuracy, backward and forward
//! transfer (Lopez-Paz & Ranzato 2017), average forgetting (Chaudhry et al. 2018, max over
//! history) and Avalanche's first-minus-last forgetting.
//!
//! With k = trained() - 1 (the last row) all metrics describe the state after training task k;
//! for the usual square matrix (k = T - 1) they are the textbook definitions. Accuracies may be
//! fractions or percentages; the metrics keep the unit.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! R[i][j]: accuracy on task j (of `tasks()` tasks) after training tasks 0..i (`trained()`
//! rows, 1 <= trained() <= tasks()). Every row has `tasks()` finite entries. Build it whole or
//! one row at a time with `add_row` after each task.
class accuracy_matrix {
public:
    //! An empty matrix with `tasks` columns (rows come with `add_row`); 0 leaves the width to
    //! the first row.
    explicit accuracy_matrix(std::size_t tasks = 0) : tasks_(tasks) {}

    //! A matrix from its rows. Throws `invalid_argument` when there are no rows, rows are
    //! ragged or empty, there are more rows than tasks, or an entry is NaN or infinite.
    accuracy_matrix(std::initializer_list<std::initializer_list<double>> rows) {
        require(rows.size() > 0, "accuracy_matrix", "rows", "must hold at least one row");
        for (const auto& r : rows) add_row(std::vector<double>(r));
    }
    //! A matrix from its rows (same checks).
    explicit accuracy_matrix(const std::vector<std::vector<double>>& rows) {
        require(!rows.empty(), "accuracy_matrix", "rows", "must hold at least one row");
        for (const auto& r : rows) add_row(r);
    }

    //! Appends the accuracies on every task after training the next one.
    void add_row(std::span<const double> row) {
        if (tasks_ == 0) tasks_ = row.size();
        require(!row.empty(), "accuracy_matrix::add_row", "row", "must not be empty");
        if (row.size() != tasks_)
            throw invalid_argument("accuracy_matrix::add_row", "row",
                                   "is ragged: row " + std::to_string(trained()) + " has " + std::to_string(row.size()) +
                                       " entries but the matrix has " + std::to_string(tasks_) + " tasks");
        if (trained() + 1 > tasks_)
            throw invalid_argument("accuracy_matrix::add_row", "row",
                                   "would be row " + std::to_string(trained()) + ", but there are only " +
                                       std::to_string(tasks_) + " tasks to train");
        for (std::size_t j = 0; j < row.size(); ++j)
            if (!std::isfinite(row[j]))
                throw invalid_argument("accuracy_matrix::add_row", "row",
                                       "has a non-finite entry R[" + std::to_string(trained()) + "][" + std::to_string(j) +
                                           "] = " + std::to_string(row[j]));
        values_.insert(values_.end(), row.begin(), row.end());
    }
    //! `add_row` from a braced list.
    void add_row(std::initializer_list<double> row) { add_row(std::span<const double>(row.begin(), row.size())); }

    //! Number of rows: tasks trained so far.
    std::size_t trained() const noexcept { return tasks_ ? values_.size() / tasks_ : 0; }
    //! Number of tasks (columns).
    std::size_t tasks() const noexcept { return tasks_; }
    //! True when no row was added.
    bool empty() const noexcept { return values_.empty(); }
    //! R[i][j]; throws `invalid_argument` when (i, j) is outside the matrix.
    double operator()(std::size_t i, std::size_t j) const {
        if (i >= trained() || j >= tasks_)
            throw invalid_argument("accuracy_matrix", "(i, j)",
                                   "is outside the matrix: (" + std::to_string(i) + ", " + std::to_string(j) + ") of " +
                                       std::to_string(trained()) + " x " + std::to_string(tasks_));
        return values_[i * tasks_ + j];
    }

private:
    std::size_t tasks_ = 0;
    std::vector<double> values_; // row-major
};

namespace detail {
inline std::size_t last_row(const accuracy_matrix& r, const char* where) {
    require(!r.empty(), where, "accuracy", "must hold at least one row");
    return r.trained() - 1;
}
} // namespace detail

//! Average accuracy after the last trained task k: mean over j <= k of R[k][j]
//! (all tasks, mean_j R[T-1][j], for a square matrix; Chaudhry et al. 2018 A_k).
inline double average_accuracy(const accuracy_matrix& r) {
    const std::size_t k = detail::last_row(r, "average_accuracy");
    double s = 0;
    for (std::size_t j = 0; j <= k; ++j) s += r(k, j);
    return s / static_cast<double>(k + 1);
}

//! Learning accuracy: mean over j <= k of R[j][j], the accuracy on each task right after
//! training it (plasticity).
inline double learning_accuracy(const accuracy_matrix& r) {
    const std::size_t k = detail::last_row(r, "learning_accuracy");
    double s = 0;
    for (std::size_t j = 0; j <= k; ++j) s += r(j, j);
    return s / static_cast<double>(k + 1);
}

//! Backward transfer (Lopez-Paz & Ranzato 2017): mean over j < k of R[k][j] - R[j][j].
//! Negative when earlier tasks were forgotten. 0 with one trained task (nothing earlier).
inline double backward_transfer(const accuracy_matrix& r) {
    const std::size_t k = detail::last_row(r, "backward_transfer");
    if (k == 0) return 0.0;
    double s = 0;
    for (std::size_t j = 0; j < k; ++j) s += r(k, j) - r(j, j);
    return s / static_cast<double>(k);
}

//! Per-task forgetting after task k (Chaudhry et al. 2018): for each j < k,
//! max over i < k of R[i][j], minus R[k][j]. Empty with one trained task.
inline std::vector<double> forgetting_per_task(const accuracy_matrix& r) {
    const std::size_t k = detail::last_row(r, "forgetting_per_task");
    std::vector<double> f(k);
    for (std::size_t j = 0; j < k; ++j) {
        double best = r(0, j);
        for (std::size_t i = 1; i < k; ++i) best = std::max(best, r(i, j));
        f[j] = best - r(k, j);
    }
    return f;
}

//! Average forgetting (Chaudhry et al. 2018): mean over j < k of max_{i < k} R[i][j] - R[k][j]
//! (max over history). 0 with one trained task.
inline double average_forgetting(const accuracy_matrix& r) {
    const auto f = forgetting_per_task(r);
    if (f.empty()) return 0.0;
    double s = 0;
    for (double x : f) s += x;
    return s / static_cast<double>(f.size());
}

//! Avalanche's forgetting, averaged: mean over j < k of R[j][j] - R[k][j] (accuracy right after
//! training j minus accuracy now; first minus last, not max over history). Equals
//! -backward_transfer. 0 with one trained task.
inline double average_first_last_forgetting(const accuracy_matrix& r) {
    const std::size_t k = detail::last_row(r, "average_first_last_forgetting");
    if (k == 0) return 0.0;
    double s = 0;
    for (std::size_t j = 0; j < k; ++j) s += r(j, j) - r(k, j);
    return s / static_cast<double>(k);
}

//! Forward transfer (Lopez-Paz & Ranzato 2017; Avalanche): mean over 1 <= j <= min(k + 1, T - 1)
//! of R[j-1][j] - baseline[j], the accuracy on task j just before training it minus the
//! accuracy of the untrained model (`baseline`, one entry per task). 0 with one task.
inline double forward_transfer(const accuracy_matrix& r, std::span<const double> baseline) {
    const std::size_t k = detail::last_row(r, "forward_transfer");
    if (baseline.size() != r.tasks())
        throw invalid_argument("forward_transfer", "baseline",
                               "must have one entry per task (" + std::to_string(r.tasks()) + "), got " +
                                   std::to_string(baseline.size()));
    for (std::size_t j = 0; j < baseline.size(); ++j)
        if (!std::isfinite(baseline[j]))
            throw invalid_argument("forward_transfer", "baseline",
                                   "has a non-finite entry b[" + std::to_string(j) + "] = " + std::to_string(baseline[j]));
    const std::size_t last = std::min(k + 1, r.tasks() - 1);
    if (last == 0) return 0.0;
    double s = 0;
    for (std::size_t j = 1; j <= last; ++j) s += r(j - 1, j) - baseline[j];
    return s / static_cast<double>(last);
}
//! `forward_transfer` with a braced list of baselines.
inline double forward_transfer(const accuracy_matrix& r, std::initializer_list<double> baseline) {
    return forward_transfer(r, std::span<const double>(baseline.begin(), baseline.size()));
}

} // namespace selfreplay
