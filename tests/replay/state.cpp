// Save / restore: exact resumption of stored sources, and refusal of bad files.

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "selfreplay/replay.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("selfreplay_test_replay_" + name + ".bin")).string();
}

// Draws `n` batches of [B, T] and returns them concatenated.
template <class S>
std::vector<std::int32_t> next_batches(S& source, int n, sr::index_t B) {
    std::vector<std::int32_t> all;
    token_batch out(B, source.seq_len());
    for (int i = 0; i < n; ++i) {
        source.draw(out.view());
        all.insert(all.end(), out.ids.begin(), out.ids.end());
    }
    return all;
}

// Runs `source` a while, saves, records the next 100 batches, restores a fresh copy (built by
// `make`) from the file, and checks it draws the same 100 batches.
template <class Make, class Feed>
void check_resume(const std::string& name, Make make, Feed feed) {
    auto source = make();
    feed(source, 0);
    next_batches(source, 7, 5);
    feed(source, 1);
    const std::string path = temp_path(name);
    sr::save_state(path, source);
    const auto expected = next_batches(source, 100, 5);
    auto resumed = make();
    sr::load_state(path, resumed);
    CHECK(next_batches(resumed, 100, 5) == expected);
    std::remove(path.c_str());
}

} // namespace

TEST_CASE("save/restore reproduces the next 100 batches of stored sources") {
    auto feed = [](auto& buf, int part) { buf.add(numbered_rows(part * 1000, 40, 4).view()); };
    check_resume("reservoir", [] { return sr::reservoir_buffer({.capacity = 16, .seq_len = 4, .seed = 5}); }, feed);
    check_resume("ring", [] { return sr::ring_buffer({.capacity = 16, .seq_len = 4, .seed = 5}); }, feed);
    check_resume(
        "task_balanced", [] { return sr::task_balanced_buffer({.capacity = 16, .seq_len = 4, .seed = 5}); },
        [](auto& buf, int part) {
            buf.add(numbered_rows(part * 1000, 30, 4).view(), part);
            buf.add(numbered_rows(part * 1000 + 500, 3, 4).view(), 7);
        });
    check_resume(
        "keyed", [] { return sr::keyed_reservoir({.capacity = 16, .seq_len = 4, .seed = 5}); },
        [](auto& buf, int part) { buf.add(numbered_rows(part * 1000, 40, 4).view(), std::uint64_t(part) * 40); });
    check_resume(
        "keyed_task_balanced", [] { return sr::keyed_task_balanced_buffer({.capacity = 16, .seq_len = 4, .seed = 5}); },
        [](auto& buf, int part) {
            buf.add(numbered_rows(part * 1000, 30, 4).view(), part, std::uint64_t(part) * 40);
            buf.add(numbered_rows(part * 1000 + 500, 3, 4).view(), 7, std::uint64_t(part) * 40 + 30);
        });
}

TEST_CASE("restore continues insertion exactly as an uninterrupted buffer") {
    sr::reservoir_buffer a({.capacity = 8, .seq_len = 2, .seed = 1});
    a.add(numbered_rows(0, 30, 2).view());
    const auto image = sr::state_bytes(a);
    sr::reservoir_buffer b({.capacity = 8, .seq_len = 2, .seed = 1});
    sr::restore_state_bytes(image, "memory", b);
    a.add(numbered_rows(30, 50, 2).view());
    b.add(numbered_rows(30, 50, 2).view());
    CHECK(sr::state_bytes(a) == sr::state_bytes(b));
    // a keyed reservoir restored and then merged or added to equals the uninterrupted one
    sr::keyed_reservoir k({.capacity = 8, .seq_len = 2, .seed = 1}), part({.capacity = 8, .seq_len = 2, .seed = 1});
    k.add(numbered_rows(0, 30, 2).view(), 0);
    part.add(numbered_rows(30, 50, 2).view(), 30);
    sr::keyed_reservoir r({.capacity = 8, .seq_len = 2, .seed = 1});
    sr::restore_state_bytes(sr::state_bytes(k), "memory", r);
    CHECK(sr::state_bytes(r) == sr::state_bytes(k));
    k.merge(part);
    r.merge(part);
    r.add(numbered_rows(80, 5, 2).view(), 80);
    k.add(numbered_rows(80, 5, 2).view(), 80);
    CHECK(sr::state_bytes(r) == sr::state_bytes(k));
}

TEST_CASE("load_state refuses truncated, foreign, corrupted and mismatched files") {
    sr::reservoir_buffer a({.capacity = 8, .seq_len = 2, .seed = 1});
    a.add(numbered_rows(0, 30, 2).view());
    const auto image = sr::state_bytes(a);
    sr::reservoir_buffer b({.capacity = 8, .seq_len = 2, .seed = 1});

    for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{20}, image.size() / 2, image.size() - 1}) {
        const std::vector<unsigned char> truncated(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(cut));
        CHECK_THROWS_WITH(sr::restore_state_bytes(truncated, "t.bin", b),
                          Catch::Contains("load_state") && Catch::Contains("'t.bin'") &&
                              (Catch::Contains("truncated") || Catch::Contains("bad magic")));
    }
    auto foreign = image;
    foreign[0] = 'X';
    CHECK_THROWS_WITH(sr::restore_state_bytes(foreign, "f.bin", b), Catch::Contains("not a selfreplay state file"));
    auto versioned = image;
    versioned[8] = 2;
    CHECK_THROWS_WITH(sr::restore_state_bytes(versioned, "v.bin", b), Catch::Contains("format version 2"));
    auto corrupted = image;
    corrupted[40] ^= 1;
    CHECK_THROWS_WITH(sr::restore_state_bytes(corrupted, "c.bin", b), Catch::Contains("checksum"));
    auto longer = image;
    longer.push_back(0);
    CHECK_THROWS_WITH(sr::restore_state_bytes(longer, "l.bin", b), Catch::Contains("unexpected bytes"));

    sr::ring_buffer ring({.capacity = 8, .seq_len = 2, .seed = 1});
    CHECK_THROWS_WITH(sr::restore_state_bytes(image, "r.bin", ring),
                      Catch::Contains("'reservoir_buffer' record where a 'ring_buffer' was expected"));
    sr::reservoir_buffer other({.capacity = 9, .seq_len = 2, .seed = 1});
    CHECK_THROWS_WITH(sr::restore_state_bytes(image, "o.bin", other), Catch::Contains("other settings"));
    CHECK_THROWS_WITH(sr::load_state("/nonexistent/dir/x.bin", b), Catch::Contains("cannot be opened"));
    // the failed restores left b untouched
    CHECK(b.size() == 0);
    // a file of one object read as two: the second finds nothing left
    CHECK_THROWS_WITH(sr::restore_state_bytes(image, "two.bin", b, other), Catch::Contains("ends early"));
    // a file of two objects read as one: bytes left over
    CHECK_THROWS_WITH(sr::restore_state_bytes(sr::state_bytes(a, a), "one.bin", b), Catch::Contains("bytes more"));
}
