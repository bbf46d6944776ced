#pragma once
//! \file
//! The lab across processes (`mpirun -np N selfreplay-lab ...`, `scripts/lab --ranks N`): the
//! `--shards` shards of every model pass (training forward and backward, generation of
//! self-generated replay, evaluation) are split over the ranks, `selfreplay::shard_of(shards,
//! rank, ranks)` giving each rank a contiguous range of shards; each rank runs its shards on its
//! `--threads` threads, and the shards' outputs are exchanged (an allgather of bytes, exact):
//! logits or hidden states of every row after a forward pass or a decoding step, and every
//! shard's parameter gradient after a backward pass, which each rank then sums in shard order as
//! one process does. Everything else (data, replay sampling, the objective, the optimizer) runs
//! on every rank on identical inputs, so every rank holds the same parameters, and the results
//! are bit-identical to one process with the same `--shards`, for any number of ranks.
//! Built with MPI when CMake finds it (SELFREPLAY_LAB_MPI); otherwise there is one rank.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include <selfreplay/replay/shard.hpp>

#ifdef SELFREPLAY_LAB_MPI
#include <mpi.h>
#endif

namespace lab {

//! This process's place among the ranks of the run, and the exchange of shard outputs.
class process_group {
public:
    int rank() const { return rank_; }    //!< 0 .. ranks() - 1
    int ranks() const { return ranks_; }  //!< number of processes (1 without MPI)

    //! The shards [begin, end) of `shards` that this rank runs.
    selfreplay::row_shard owned(int shards) const { return selfreplay::shard_of(shards, rank_, ranks_); }

    //! Every rank holds its own part of `data` (a row-major buffer split into `shards` parts of
    //! `sizes[k]` floats, in order); afterwards every rank holds every part. Parts of the ranks'
    //! shards are contiguous, so this is one allgather of bytes (exact). No-op with one rank.
    void share(float* data, const std::vector<std::ptrdiff_t>& sizes) const {
        if (ranks_ == 1) return;
#ifdef SELFREPLAY_LAB_MPI
        std::vector<int> counts(std::size_t(ranks_), 0), offsets(std::size_t(ranks_), 0);
        std::ptrdiff_t at = 0;
        for (int r = 0; r < ranks_; ++r) {
            const auto s = selfreplay::shard_of(std::ptrdiff_t(sizes.size()), r, ranks_);
            std::ptrdiff_t n = 0;
            for (auto k = s.begin; k < s.end; ++k) n += sizes[std::size_t(k)];
            if (at > 2147483647 || n > 2147483647) throw std::length_error("lab::process_group::share: more than 2^31 floats");
            offsets[std::size_t(r)] = int(at);
            counts[std::size_t(r)] = int(n);
            at += n;
        }
        check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), offsets.data(), MPI_FLOAT,
                             MPI_COMM_WORLD),
              "MPI_Allgatherv");
#else
        (void)data;
        (void)sizes;
#endif
    }

    //! The group of this process (one rank until an `mpi_session` starts).
    static process_group& world() {
        static process_group g;
        return g;
    }

private:
    friend class mpi_session;
#ifdef SELFREPLAY_LAB_MPI
    static void check(int code, const char* what) {
        if (code != MPI_SUCCESS) throw std::runtime_error(std::string("lab: ") + what + " failed with code " + std::to_string(code));
    }
#endif
    int rank_ = 0, ranks_ = 1;
};

//! MPI for the lifetime of `main` (MPI_Init / MPI_Finalize) and `process_group::world()` set to
//! MPI_COMM_WORLD; without MPI, one rank.
class mpi_session {
public:
    mpi_session(int* argc, char*** argv) {
#ifdef SELFREPLAY_LAB_MPI
        process_group::check(MPI_Init(argc, argv), "MPI_Init");
        auto& g = process_group::world();
        MPI_Comm_rank(MPI_COMM_WORLD, &g.rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &g.ranks_);
#else
        (void)argc;
        (void)argv;
#endif
    }
    mpi_session(const mpi_session&) = delete;
    mpi_session& operator=(const mpi_session&) = delete;
    ~mpi_session() {
#ifdef SELFREPLAY_LAB_MPI
        MPI_Finalize();
#endif
    }
    //! Whether this lab was built with MPI.
    static constexpr bool with_mpi() {
#ifdef SELFREPLAY_LAB_MPI
        return true;
#else
        return false;
#endif
    }
};

}  // namespace lab
