// The lab's checkpoint files (examples/lab/checkpoint.hpp): atomic writes, the two alternating
// slots, and refusal of corrupt, truncated, foreign-version, other-mode and other-configuration
// checkpoints with the file and the reason named. The end-to-end SIGKILL test is resume_test.sh.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.hpp"

namespace {

namespace ck = lab::checkpoint;
namespace fs = std::filesystem;

// A body of one counter and one array, standing for a mode's state.
struct counter_body {
    std::int64_t step = 0;
    std::vector<double> values;
    void save(selfreplay::state_writer& w) const {
        w.put<std::int64_t>(step);
        w.put_array(values);
    }
    void restore(selfreplay::state_reader& r) {
        step = r.get<std::int64_t>("step");
        if (step < 0) r.fail("holds a negative step");
        values = r.get_array<double>("values");
    }
};
using envelope = ck::envelope<counter_body>;

envelope make(std::int64_t step, const std::string& config = "--seed 1\n--batch 8\n") {
    return envelope{"toy", config, 0, counter_body{step, {0.5, double(step)}}};
}

std::vector<unsigned char> read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// a fresh scratch directory per test case
std::string scratch(const std::string& name) {
    const auto dir = fs::temp_directory_path() / ("selfreplay_checkpoint_test_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

}  // namespace

TEST_CASE("write_atomic replaces the file and leaves no temporary behind", "[lab][checkpoint]") {
    const auto dir = scratch("atomic");
    const std::string p = dir + "/f.ckpt";
    ck::write_atomic(p, {1, 2, 3});
    ck::write_atomic(p, {4, 5});
    CHECK(read(p) == std::vector<unsigned char>{4, 5});
    CHECK_FALSE(fs::exists(p + ".tmp"));
    CHECK_THROWS_WITH(ck::write_atomic(dir + "/no/such/dir/f.ckpt", {1}), Catch::Contains("no/such/dir/f.ckpt.tmp"));
}

TEST_CASE("checkpoints alternate between two slots and resume from the newest", "[lab][checkpoint]") {
    const auto dir = scratch("slots");
    ck::slots s(dir, "toy");
    auto e = make(0);
    CHECK_FALSE(s.load(e, std::cerr));  // nothing yet: a fresh start
    for (std::int64_t step : {3, 6, 9}) {
        e = make(step);
        s.save(e);
    }
    CHECK(s.sequence() == 3);
    CHECK(fs::exists(s.path(0)));
    CHECK(fs::exists(s.path(1)));  // checkpoint 2 (step 6) survives the writing of checkpoint 3
    ck::slots again(dir, "toy");
    auto back = make(0);
    std::ostringstream log;
    REQUIRE(again.load(back, log));
    CHECK(back.body.step == 9);
    CHECK(back.sequence == 3);
    CHECK(log.str().empty());
    // the next checkpoint of the resumed run overwrites the older slot
    back.body.step = 12;
    again.save(back);
    auto newest = make(0);
    REQUIRE(ck::slots(dir, "toy").load(newest, log));
    CHECK(newest.body.step == 12);
}

TEST_CASE("a corrupt or truncated newest checkpoint is refused with its reason; the previous one is used", "[lab][checkpoint]") {
    const auto dir = scratch("fallback");
    ck::slots s(dir, "toy");
    for (std::int64_t step : {3, 6}) {
        auto e = make(step);
        s.save(e);
    }
    const std::string newest = s.path(0);  // sequence 2
    auto image = read(newest);
    SECTION("corrupt") {
        image[image.size() / 2] ^= 0x40;
        write(newest, image);
        auto e = make(0);
        std::ostringstream log;
        REQUIRE(ck::slots(dir, "toy").load(e, log));
        CHECK(e.body.step == 3);
        CHECK_THAT(log.str(), Catch::Contains("'" + newest + "'") && Catch::Contains("checksum mismatch"));
    }
    SECTION("truncated, both") {
        image.resize(image.size() - 3);
        write(newest, image);
        auto older = read(s.path(1));
        older.resize(10);
        write(s.path(1), older);
        auto e = make(0);
        std::ostringstream log;
        CHECK_THROWS_WITH(ck::slots(dir, "toy").load(e, log),
                          Catch::Contains("no usable checkpoint") && Catch::Contains("'" + newest + "'") &&
                              Catch::Contains("'" + s.path(1) + "'") && Catch::Contains("truncated"));
        CHECK(e.body.step == 0);  // unchanged
    }
}

TEST_CASE("checkpoints of another version, mode or configuration are refused, naming the difference", "[lab][checkpoint]") {
    const auto dir = scratch("mismatch");
    ck::slots s(dir, "toy");
    auto e = make(5);
    s.save(e);
    std::ostringstream log;
    SECTION("configuration") {
        auto other = make(0, "--seed 1\n--batch 16\n");
        CHECK_THROWS_WITH(ck::slots(dir, "toy").load(other, log),
                          Catch::Contains("another configuration: '--batch 8' in the checkpoint, '--batch 16' in this run") &&
                              Catch::Contains(s.path(1)));
    }
    SECTION("mode") {
        auto other = make(0);
        other.mode = "grid";
        CHECK_THROWS_WITH(ck::slots(dir, "toy").load(other, log), Catch::Contains("a checkpoint of 'toy', not of 'grid'"));
    }
    SECTION("version") {
        // the version field follows the payload's tag (length-prefixed); the checksum is resealed
        auto image = read(s.path(1));
        const std::size_t header = 24, at = header + 8 + std::strlen("selfreplay-lab checkpoint");
        const std::uint32_t v = ck::format_version + 1;
        std::memcpy(image.data() + at, &v, 4);
        const std::uint64_t n = image.size() - header - 8;
        const std::uint64_t sum = selfreplay::detail::fnv1a64(image.data() + header, n);
        std::memcpy(image.data() + header + n, &sum, 8);
        write(s.path(1), image);
        auto other = make(0);
        CHECK_THROWS_WITH(ck::slots(dir, "toy").load(other, log),
                          Catch::Contains("lab checkpoint of version 2; this build reads version 1"));
    }
    SECTION("an invalid field") {
        auto bad = make(-4);
        s.save(bad);
        auto other = make(0);
        // the newest (step -4) is refused, the older one (step 5) is used
        REQUIRE(ck::slots(dir, "toy").load(other, log));
        CHECK(other.body.step == 5);
        CHECK_THAT(log.str(), Catch::Contains("negative step"));
    }
}

TEST_CASE("config_text holds values exactly and names the first differing flag", "[lab][checkpoint]") {
    const auto a = ck::config_text{}.add("--lr", 0.1f).add("--c", 0.1).add_list("--steps", std::vector<int>{3, 4}).str();
    CHECK(a == "--lr 0.10000000149011612\n--c 0.10000000000000001\n--steps 3,4\n");
    CHECK(ck::config_difference(a, a).empty());
    CHECK(ck::config_difference(a, "--lr 0.10000000149011612\n") == "'--c 0.10000000000000001' in the checkpoint, '(nothing)' in this run");
}

TEST_CASE("prepare refuses a fresh run over existing checkpoints (unless it only reads) and --resume without a directory", "[lab][checkpoint]") {
    const auto dir = scratch("prepare");
    ck::prepare({.dir = dir}, "toy.");
    write(dir + "/toy.1.ckpt", {1});
    CHECK_THROWS_WITH(ck::prepare({.dir = dir}, "toy."), Catch::Contains("already holds checkpoints (toy.1.ckpt)"));
    CHECK_NOTHROW(ck::prepare({.dir = dir, .resume = true}, "toy."));
    CHECK_NOTHROW(ck::prepare({.dir = dir}, "grid."));
    CHECK_NOTHROW(ck::prepare({.dir = dir, .every = 100, .resume = false, .write = false}, "toy."));  // a reader only
    CHECK_THROWS_WITH(ck::prepare({.dir = "", .every = 100, .resume = true}, "toy."), Catch::Contains("--resume needs --checkpoint"));
}

TEST_CASE("optimizer moments: counts and values are validated", "[lab][checkpoint]") {
    lab::adamw o;
    o.reset(3);
    o.t = 7;
    o.m = {0.1f, -0.2f, 0.3f};
    o.v = {0.01f, 0.02f, 0.03f};
    selfreplay::state_writer w;
    ck::put_adamw(w, o);
    lab::adamw back;
    selfreplay::state_reader r(w.payload(), "opt.bin");
    ck::get_adamw(r, "optimizer", back, 3);
    CHECK(back.t == 7);
    CHECK(back.m == o.m);
    CHECK(back.v == o.v);
    selfreplay::state_reader r2(w.payload(), "opt.bin");
    CHECK_THROWS_WITH(ck::get_adamw(r2, "optimizer", back, 4), Catch::Contains("'opt.bin' holds 3 optimizer moments"));
    o.v[1] = -1.f;
    selfreplay::state_writer w3;
    ck::put_adamw(w3, o);
    selfreplay::state_reader r3(w3.payload(), "opt.bin");
    CHECK_THROWS_WITH(ck::get_adamw(r3, "optimizer", back, 3), Catch::Contains("invalid optimizer moments"));
}
