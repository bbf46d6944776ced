// Transactional, validated loading (issue 22): a refused load leaves every object exactly as it
// was, for every stateful type, under truncated, extended and edited images (edits resealed with a
// correct checksum: the checksum guards against accidents, not against a crafted writer); every
// restored field is validated; the committed version-1 file still loads.

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "selfreplay/compose/strategy.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/sampling.hpp"
#include "support.hpp"

namespace sr = selfreplay;
using replay_test::numbered_rows;
using replay_test::token_batch;
using image_t = std::vector<unsigned char>;

namespace {

constexpr std::size_t header = 24; // magic, version, byte-order mark, payload size

// A bigram model over V = 5 tokens (as in self_generated.cpp).
struct bigram {
    static constexpr sr::index_t V = 5;
    sr::index_t vocab_size() const { return V; }
    void next_token_logits(sr::strided_view<const std::int32_t, 2> prefixes, sr::strided_view<float, 2> logits) {
        for (sr::index_t b = 0; b < prefixes.extent(0); ++b) {
            const std::int32_t last = prefixes(b, prefixes.extent(1) - 1);
            for (sr::index_t v = 0; v < V; ++v) logits(b, v) = static_cast<float>(((last + 1) * (v + 2)) % 7) * 0.4f;
        }
    }
};
bigram model;

sr::self_generated_options sg_options() {
    return {.prompts = {{3}, {4, 1}, {2}}, .weights = {3.0, 1.0, 0.0}, .batch_size = 4, .seq_len = 3, .buffer_batches = 2, .seed = 42};
}

// Recomputes the payload size and checksum of an image whose payload was edited.
image_t reseal(image_t image) {
    const std::uint64_t n = image.size() - header - 8;
    std::memcpy(image.data() + 16, &n, 8);
    const std::uint64_t sum = sr::detail::fnv1a64(image.data() + header, n);
    std::memcpy(image.data() + header + n, &sum, 8);
    return image;
}

// Writes `value` at payload offset `at` and reseals.
template <class V>
image_t with(const image_t& image, std::size_t at, V value) {
    image_t out = image;
    std::memcpy(out.data() + header + at, &value, sizeof value);
    return reseal(out);
}

// Every mutation of `image`: each truncation, one byte appended to the file, one byte appended
// to the payload (resealed), and each payload byte xor-ed with 0x01, 0x80 and 0xff (resealed).
std::vector<image_t> mutations(const image_t& image) {
    std::vector<image_t> all;
    for (std::size_t cut = 0; cut < image.size(); ++cut) all.emplace_back(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(cut));
    all.push_back(image);
    all.back().push_back(0);
    image_t longer(image.begin(), image.end() - 8);
    longer.push_back(0x2a);
    longer.insert(longer.end(), 8, 0);
    all.push_back(reseal(longer));
    for (std::size_t p = header; p + 8 < image.size(); ++p)
        for (unsigned char x : {0x01, 0x80, 0xff}) {
            image_t e = image;
            e[p] ^= x;
            all.push_back(reseal(e));
        }
    return all;
}

// Draws n batches of [rows, T] from source.
template <class S>
std::vector<std::int32_t> batches(S& s, int n, sr::index_t rows) {
    std::vector<std::int32_t> all;
    token_batch out(rows, s.seq_len());
    for (int i = 0; i < n; ++i) {
        s.draw(out.view());
        all.insert(all.end(), out.ids.begin(), out.ids.end());
    }
    return all;
}

// For every mutation of `image`: restores it into a fresh target (`make`, a callable returning a
// holder whose `object()` is restored and whose `next()` draws and adds). Refused: the target's
// state image and its next batches equal those of an untouched twin. Accepted: the target is
// usable (draws ids in [0, limit): buffers know no vocabulary, only that ids are >= 0; takes more rows). Returns the number refused.
template <class Make>
std::size_t check_mutations(const image_t& image, Make make, std::int32_t limit) {
    std::size_t refused = 0, accepted = 0;
    for (const auto& m : mutations(image)) {
        auto target = make();
        auto twin = make();
        try {
            sr::restore_state_bytes(m, "mutated", target.object());
        } catch (const sr::invalid_argument& e) {
            ++refused;
            REQUIRE(std::string(e.what()).find("'mutated'") != std::string::npos);
            REQUIRE(sr::state_bytes(target.object()) == sr::state_bytes(twin.object()));
            REQUIRE(target.next() == twin.next());
            continue;
        }
        ++accepted;
        for (std::int32_t id : target.next()) REQUIRE((id >= 0 && id < limit));
    }
    INFO("refused " << refused << ", accepted " << accepted);
    CHECK(refused > image.size()); // every truncation and extension at least
    return refused;
}

// Holders: an object in a state other than the image's, `next` draws and (for buffers) adds.
const sr::reservoir_options reservoir_settings{.capacity = 6, .seq_len = 2, .seed = 9};
const sr::ring_options ring_settings{.capacity = 6, .seq_len = 2, .seed = 9};
const sr::task_balanced_options task_settings{.capacity = 5, .seq_len = 2, .seed = 9};

const sr::keyed_reservoir_options keyed_settings{.capacity = 6, .seq_len = 2, .seed = 9};
const sr::keyed_task_balanced_options keyed_task_settings{.capacity = 5, .seq_len = 2, .seed = 9};

// Offers `rows` to a buffer: as the rows of task `task` with first global id `first` where the
// buffer takes them.
template <class B>
void offer(B& b, const token_batch& rows, std::int32_t task, std::uint64_t first) {
    if constexpr (std::is_same_v<B, sr::task_balanced_buffer>)
        b.add(rows.view(), task);
    else if constexpr (std::is_same_v<B, sr::keyed_reservoir>)
        b.add(rows.view(), first);
    else if constexpr (std::is_same_v<B, sr::keyed_task_balanced_buffer>)
        b.add(rows.view(), task, first);
    else
        b.add(rows.view());
}

// A buffer offered 3 rows of task 4; `next` draws, offers 9 rows of task 11, draws.
template <class B>
struct buffer_holder {
    B b;
    explicit buffer_holder(const typename B::options_type& settings) : b(settings) { offer(b, numbered_rows(500, 3, 2), 4, 500); }
    B& object() { return b; }
    std::vector<std::int32_t> next() {
        auto out = batches(b, 2, 3);
        offer(b, numbered_rows(700, 9, 2), 11, 700);
        auto more = batches(b, 2, 3);
        out.insert(out.end(), more.begin(), more.end());
        return out;
    }
};
struct generated_holder {
    sr::self_generated<bigram> s{model, sg_options()};
    generated_holder() { batches(s, 1, 3); }
    sr::self_generated<bigram>& object() { return s; }
    std::vector<std::int32_t> next() {
        auto out = batches(s, 5, 3);
        out.push_back(static_cast<std::int32_t>(s.generate_calls()));
        return out;
    }
};
// A mixture holding its sources by reference: a refused load must leave the referents unchanged.
struct mixture_holder {
    sr::reservoir_buffer a{{.capacity = 6, .seq_len = 3, .seed = 1}};
    sr::self_generated<bigram> g{model, sg_options()};
    sr::weighted_mixture<sr::reservoir_buffer&, sr::self_generated<bigram>&> mix{{2.0, 1.0}, a, g};
    mixture_holder() {
        a.add(numbered_rows(500, 4, 3).view());
        batches(mix, 1, 2);
    }
    mixture_holder(const mixture_holder&) = delete;
    auto& object() { return mix; }
    std::vector<std::int32_t> next() {
        auto out = batches(mix, 4, 5);
        out.push_back(static_cast<std::int32_t>(g.generate_calls()));
        return out;
    }
};

// The saved states: objects run a while (other settings than the holders' current states).
image_t reservoir_image() {
    sr::reservoir_buffer b({.capacity = 6, .seq_len = 2, .seed = 9});
    b.add(numbered_rows(0, 20, 2).view());
    batches(b, 3, 2);
    return sr::state_bytes(b);
}
image_t ring_image() {
    sr::ring_buffer b({.capacity = 6, .seq_len = 2, .seed = 9});
    b.add(numbered_rows(0, 20, 2).view());
    batches(b, 3, 2);
    return sr::state_bytes(b);
}
image_t task_image() {
    sr::task_balanced_buffer b({.capacity = 5, .seq_len = 2, .seed = 9});
    b.add(numbered_rows(0, 7, 2).view(), 1);
    b.add(numbered_rows(100, 2, 2).view(), 2);
    b.add(numbered_rows(200, 5, 2).view(), 3);
    batches(b, 2, 2);
    return sr::state_bytes(b);
}
image_t keyed_image() {
    sr::keyed_reservoir b(keyed_settings);
    b.add(numbered_rows(0, 20, 2).view(), 0);
    batches(b, 3, 2);
    return sr::state_bytes(b);
}
image_t keyed_task_image() {
    sr::keyed_task_balanced_buffer b(keyed_task_settings);
    b.add(numbered_rows(0, 7, 2).view(), 3, 0);
    b.add(numbered_rows(100, 2, 2).view(), 1, 100);
    b.add(numbered_rows(200, 5, 2).view(), 2, 200);
    batches(b, 2, 2);
    return sr::state_bytes(b);
}
image_t generated_image() {
    sr::self_generated<bigram> s(model, sg_options());
    batches(s, 3, 3);
    return sr::state_bytes(s);
}
image_t mixture_image() {
    mixture_holder h;
    batches(h.mix, 5, 5);
    return sr::state_bytes(h.mix);
}

// Payload offsets of fields (see each type's `save`): a tag is 8 bytes of length, then its text.
constexpr std::size_t tag(std::size_t chars) { return 8 + chars; }

} // namespace

TEST_CASE("refused loads leave every stateful type exactly as it was (truncated, extended, edited images)") {
    check_mutations(reservoir_image(), [] { return buffer_holder<sr::reservoir_buffer>(reservoir_settings); }, std::numeric_limits<std::int32_t>::max());
    check_mutations(ring_image(), [] { return buffer_holder<sr::ring_buffer>(ring_settings); }, std::numeric_limits<std::int32_t>::max());
    check_mutations(task_image(), [] { return buffer_holder<sr::task_balanced_buffer>(task_settings); }, std::numeric_limits<std::int32_t>::max());
    check_mutations(generated_image(), [] { return generated_holder{}; }, bigram::V);
    check_mutations(keyed_image(), [] { return buffer_holder<sr::keyed_reservoir>(keyed_settings); }, std::numeric_limits<std::int32_t>::max());
    check_mutations(keyed_task_image(), [] { return buffer_holder<sr::keyed_task_balanced_buffer>(keyed_task_settings); }, std::numeric_limits<std::int32_t>::max());
    // mixtures are not copyable with reference members: build in place
    std::size_t refused = 0;
    const auto image = mixture_image();
    for (const auto& m : mutations(image)) {
        mixture_holder target, twin;
        try {
            sr::restore_state_bytes(m, "mutated", target.mix);
        } catch (const sr::invalid_argument&) {
            ++refused;
            REQUIRE(sr::state_bytes(target.mix) == sr::state_bytes(twin.mix));
            REQUIRE(target.next() == twin.next());
            continue;
        }
        for (std::int32_t id : target.next()) REQUIRE(id >= 0);
    }
    CHECK(refused > image.size());
}

TEST_CASE("several objects in one file: a refusal in the last leaves the first unchanged") {
    sr::reservoir_buffer a({.capacity = 6, .seq_len = 2, .seed = 9}), b({.capacity = 6, .seq_len = 2, .seed = 9});
    a.add(numbered_rows(0, 20, 2).view());
    b.add(numbered_rows(50, 2, 2).view());
    const auto image = sr::state_bytes(a, a);
    const auto before = sr::state_bytes(b);
    sr::reservoir_buffer other({.capacity = 7, .seq_len = 2, .seed = 9});
    CHECK_THROWS_WITH(sr::restore_state_bytes(image, "two.bin", b, other), Catch::Contains("other settings"));
    CHECK(sr::state_bytes(b) == before);
    // one byte more in the payload (resealed): refused after reading both records, none changed
    image_t longer(image.begin(), image.end() - 8);
    longer.push_back(0);
    longer.insert(longer.end(), 8, 0);
    sr::reservoir_buffer c({.capacity = 6, .seq_len = 2, .seed = 9});
    CHECK_THROWS_WITH(sr::restore_state_bytes(reseal(longer), "long.bin", b, c), Catch::Contains("bytes more"));
    CHECK(sr::state_bytes(b) == before);
    CHECK(c.size() == 0);
}

TEST_CASE("restored fields are validated as if they came from outside") {
    const auto res = reservoir_image();
    const std::size_t r0 = tag(16); // after "reservoir_buffer"
    sr::reservoir_buffer b({.capacity = 6, .seq_len = 2, .seed = 9});
    // a negative token id (checksum fixed): the buffer would then draw it
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::int32_t>(res, r0 + 48, -5), "neg.bin", b), Catch::Contains("negative token id -5"));
    // seen = 2^64 - 1: the next add divided by zero (SIGFPE)
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(res, r0 + 24, ~std::uint64_t{0}), "seen.bin", b),
                      Catch::Contains("'seen'") && Catch::Contains("2^61"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(res, r0 + 32, std::uint64_t{1} << 62), "draws.bin", b),
                      Catch::Contains("'draws'"));
    // seen below the number of stored sequences
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(res, r0 + 24, 2), "few.bin", b), Catch::Contains("sequences of 2"));
    CHECK(b.size() == 0);

    // self_generated: credits, block position, flag
    const auto gen = generated_image();
    const std::size_t g0 = tag(14); // after "self_generated"
    const std::size_t credits = g0 + 32 + 8 + 8 + 1 + 8;
    sr::self_generated<bigram> s(model, sg_options());
    for (double bad : {8.77e289, 1e15, -3.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
        CHECK_THROWS_WITH(sr::restore_state_bytes(with<double>(gen, credits, bad), "credit.bin", s), Catch::Contains("credit"));
    // the prompt of weight 0 never carries a credit
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<double>(gen, credits + 16, 0.5), "zero.bin", s), Catch::Contains("weight is 0"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(gen, g0 + 32, 5), "start.bin", s), Catch::Contains("not a multiple"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::int64_t>(gen, g0 + 40, 9), "used.bin", s), Catch::Contains("position in the block"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint8_t>(gen, g0 + 48, 2), "flag.bin", s), Catch::Contains("block flag"));
    CHECK(s.rows_drawn() == 0);
    CHECK(s.generate_calls() == 0);

    // weighted_mixture: its own credits (the source records follow them)
    const auto mix = mixture_image();
    mixture_holder h, twin;
    for (double bad : {8.77e289, 1e15})
        CHECK_THROWS_WITH(sr::restore_state_bytes(with<double>(mix, tag(16) + 16, bad), "mix.bin", h.mix), Catch::Contains("credit"));
    // an image that ends inside the second source: the first (restored first) is unchanged
    image_t cut(mix.begin(), mix.end() - 8 - 12);
    cut.insert(cut.end(), 8, 0);
    CHECK_THROWS_WITH(sr::restore_state_bytes(reseal(cut), "cut.bin", h.mix), Catch::Contains("ends early"));
    CHECK(sr::state_bytes(h.a) == sr::state_bytes(twin.a));
    CHECK(sr::state_bytes(h.mix) == sr::state_bytes(twin.mix));
}

TEST_CASE("task_balanced_buffer: duplicate task ids, group sizes against quotas and counts are validated") {
    // build the record by hand (see task_balanced_buffer::save): 2 tasks, capacity 5, seq_len 2
    auto record = [](std::int32_t id0, std::int32_t id1, std::uint64_t seen0, std::uint64_t seen1, std::size_t rows0,
                     std::size_t rows1, std::uint64_t ingested) {
        sr::state_writer w;
        w.tag("task_balanced_buffer");
        w.put<std::int64_t>(5);
        w.put<std::int64_t>(2);
        w.put<std::uint64_t>(9);
        w.put<std::uint64_t>(ingested);
        w.put<std::uint64_t>(0);
        w.put<std::uint64_t>(0);
        w.put<std::uint64_t>(2);
        w.put<std::int32_t>(id0);
        w.put<std::uint64_t>(seen0);
        w.put_array(std::vector<std::int32_t>(2 * rows0, 1));
        w.put<std::int32_t>(id1);
        w.put<std::uint64_t>(seen1);
        w.put_array(std::vector<std::int32_t>(2 * rows1, 1));
        image_t image(header, 0);
        std::memcpy(image.data(), sr::detail::state_magic.data(), 8);
        std::memcpy(image.data() + 8, &sr::state_format_version, 4);
        std::memcpy(image.data() + 12, &sr::detail::state_byte_order_mark, 4);
        image.insert(image.end(), w.payload().begin(), w.payload().end());
        image.insert(image.end(), 8, 0);
        return reseal(image);
    };
    sr::task_balanced_buffer b({.capacity = 5, .seq_len = 2, .seed = 9});
    // quotas of 2 tasks over capacity 5: 3 and 2
    CHECK_NOTHROW(sr::restore_state_bytes(record(1, 2, 10, 4, 3, 2, 14), "ok.bin", b));
    CHECK(b.size() == 5);
    sr::task_balanced_buffer c({.capacity = 5, .seq_len = 2, .seed = 9});
    CHECK_THROWS_WITH(sr::restore_state_bytes(record(1, 1, 10, 4, 3, 2, 14), "dup.bin", c), Catch::Contains("task id 1 twice"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record(1, 2, 10, 4, 5, 2, 14), "over.bin", c), Catch::Contains("quota 3"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record(1, 2, 10, 4, 3, 1, 14), "under.bin", c), Catch::Contains("quota 2"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record(1, 2, 10, 4, 3, 2, 15), "count.bin", c), Catch::Contains("adding up to 14"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record(1, 2, 10, ~std::uint64_t{0}, 3, 2, 14), "seen.bin", c), Catch::Contains("2^61"));
    CHECK(c.size() == 0);
    CHECK(c.tasks().empty());
}

TEST_CASE("keyed_reservoir: ids (order, duplicates, count), tokens and counters are validated") {
    // the record (see keyed_reservoir::save): tag, capacity, seq_len, seed, seen, draws, ids, tokens
    const auto image = keyed_image();
    const std::size_t k0 = tag(15); // after "keyed_reservoir"
    const std::size_t ids = k0 + 40 + 8; // the first id, after the id count
    const std::size_t tokens = ids + 6 * 8 + 8; // the first token id, after the token count
    sr::keyed_reservoir source(keyed_settings);
    source.add(numbered_rows(0, 20, 2).view(), 0);
    std::uint64_t first = 0, second = 0;
    std::memcpy(&first, image.data() + header + ids, 8);
    std::memcpy(&second, image.data() + header + ids + 8, 8);
    REQUIRE(first == source.id(0));
    REQUIRE(second == source.id(1));
    sr::keyed_reservoir b(keyed_settings);
    // an id twice, two ids swapped (out of key order), an id whose key does not fit its place
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(image, ids + 8, first), "dup.bin", b),
                      Catch::Contains("out of (key, id) order or twice"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(with<std::uint64_t>(image, ids, second), ids + 8, first), "swap.bin", b),
                      Catch::Contains("out of (key, id) order"));
    // more sequences than the capacity: an extra id and its tokens in a record of capacity 6
    {
        sr::state_writer w;
        w.tag("keyed_reservoir");
        w.put<std::int64_t>(6);
        w.put<std::int64_t>(2);
        w.put<std::uint64_t>(9);
        w.put<std::uint64_t>(20);
        w.put<std::uint64_t>(0);
        std::vector<std::uint64_t> seven;
        sr::keyed_reservoir big({.capacity = 7, .seq_len = 2, .seed = 9});
        big.add(numbered_rows(0, 20, 2).view(), 0);
        for (sr::index_t i = 0; i < 7; ++i) seven.push_back(big.id(i));
        w.put_array(seven);
        w.put_array(std::vector<std::int32_t>(14, 1));
        image_t over(header, 0);
        std::memcpy(over.data(), image.data(), header);
        over.insert(over.end(), w.payload().begin(), w.payload().end());
        over.insert(over.end(), 8, 0);
        CHECK_THROWS_WITH(sr::restore_state_bytes(reseal(over), "over.bin", b), Catch::Contains("more than its limit of 6"));
    }
    // a negative token id; fewer sequences offered than held; counters beyond 2^61
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::int32_t>(image, tokens + 4, -3), "neg.bin", b), Catch::Contains("negative token id -3"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(image, k0 + 24, 5), "seen.bin", b), Catch::Contains("only 5 were offered"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(with<std::uint64_t>(image, k0 + 32, std::uint64_t{1} << 62), "draws.bin", b),
                      Catch::Contains("'draws'") && Catch::Contains("2^61"));
    CHECK(b.size() == 0);
    CHECK(b.seen() == 0);
    // the unedited image loads and holds the source's ids
    sr::restore_state_bytes(image, "ok.bin", b);
    CHECK(b.size() == 6);
    CHECK(b.id(0) == first);
}

TEST_CASE("keyed_task_balanced_buffer: task order, quotas, counts and ids are validated") {
    // build the record by hand (see keyed_task_balanced_buffer::save): capacity 5, seq_len 2, seed 9
    struct task_record {
        std::int32_t task;
        std::uint64_t seen;
        std::vector<std::uint64_t> ids;
    };
    sr::keyed_task_balanced_buffer keys(keyed_task_settings); // bottom ids of tasks 0 and 1 (ids 0..9, 10..19)
    keys.add(numbered_rows(0, 10, 2).view(), 0, 0);
    keys.add(numbered_rows(10, 10, 2).view(), 1, 10);
    auto held = [&](std::int32_t task, std::size_t n) {
        std::vector<std::uint64_t> ids;
        for (sr::index_t i = 0; i < sr::index_t(n); ++i) ids.push_back(keys.id(task, i));
        return ids;
    };
    auto record = [](const std::vector<task_record>& tasks) {
        sr::state_writer w;
        w.tag("keyed_task_balanced_buffer");
        w.put<std::int64_t>(5);
        w.put<std::int64_t>(2);
        w.put<std::uint64_t>(9);
        w.put<std::uint64_t>(0);
        w.put<std::uint64_t>(tasks.size());
        for (const auto& t : tasks) {
            w.put<std::int32_t>(t.task);
            w.put<std::uint64_t>(t.seen);
            w.put_array(t.ids);
            w.put_array(std::vector<std::int32_t>(2 * t.ids.size(), 1));
        }
        image_t image(header, 0);
        std::memcpy(image.data(), sr::detail::state_magic.data(), 8);
        std::memcpy(image.data() + 8, &sr::state_format_version, 4);
        std::memcpy(image.data() + 12, &sr::detail::state_byte_order_mark, 4);
        image.insert(image.end(), w.payload().begin(), w.payload().end());
        image.insert(image.end(), 8, 0);
        return reseal(image);
    };
    sr::keyed_task_balanced_buffer b(keyed_task_settings);
    // quotas of 2 tasks over capacity 5: 3 and 2
    CHECK_NOTHROW(sr::restore_state_bytes(record({{0, 10, held(0, 3)}, {1, 10, held(1, 2)}}), "ok.bin", b));
    CHECK(b.size() == 5);
    sr::keyed_task_balanced_buffer c(keyed_task_settings);
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{1, 10, held(1, 3)}, {0, 10, held(0, 2)}}), "order.bin", c),
                      Catch::Contains("task ids out of ascending order or twice (task 0 after task 1)"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, 10, held(0, 3)}, {0, 10, held(0, 2)}}), "dup.bin", c),
                      Catch::Contains("out of ascending order or twice"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, 10, held(0, 3)}, {1, 10, held(1, 3)}}), "over.bin", c),
                      Catch::Contains("3 sequences for task 1, more than its limit of 2"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, 10, held(0, 3)}, {1, 10, {}}}), "none.bin", c),
                      Catch::Contains("no sequence for task 1 although its quota is 2"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, 10, held(0, 3)}, {1, 0, {}}}), "never.bin", c),
                      Catch::Contains("task 1, which was never offered a row"));
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, 2, held(0, 3)}, {1, 10, held(1, 2)}}), "seen.bin", c),
                      Catch::Contains("3 sequences for task 0 but only 2 were offered"));
    auto swapped = held(0, 3);
    std::swap(swapped[0], swapped[1]);
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, 10, swapped}, {1, 10, held(1, 2)}}), "swap.bin", c),
                      Catch::Contains("ids of task 0 out of (key, id) order"));
    const std::uint64_t big = std::uint64_t{1} << 60;
    CHECK_THROWS_WITH(sr::restore_state_bytes(record({{0, big, held(0, 3)}, {1, big, held(1, 2)}}), "total.bin", c),
                      Catch::Contains("adding up to 2^61"));
    CHECK(c.size() == 0);
    CHECK(c.tasks().empty());
}

namespace {
// The objects of the committed version-1 fixture, in the state they had when it was written.
struct fixture_objects {
    sr::reservoir_buffer reservoir{{.capacity = 6, .seq_len = 3, .seed = 11}};
    sr::ring_buffer ring{{.capacity = 4, .seq_len = 3, .seed = 12}};
    sr::task_balanced_buffer tasks{{.capacity = 5, .seq_len = 3, .seed = 13}};
    sr::self_generated<bigram> generated{model, {.prompts = {{3}, {4, 1}}, .weights = {3.0, 1.0}, .batch_size = 4, .seq_len = 3, .buffer_batches = 2, .seed = 14}};
    void run() {
        reservoir.add(numbered_rows(0, 17, 3).view());
        ring.add(numbered_rows(100, 9, 3).view());
        tasks.add(numbered_rows(200, 6, 3).view(), 7);
        tasks.add(numbered_rows(300, 4, 3).view(), 2);
        batches(reservoir, 2, 2);
        batches(ring, 3, 2);
        batches(tasks, 1, 4);
        batches(generated, 3, 3);
    }
    std::vector<std::int32_t> next() {
        std::vector<std::int32_t> all;
        for (auto part : {batches(reservoir, 3, 4), batches(ring, 3, 4), batches(tasks, 3, 4), batches(generated, 3, 4)})
            all.insert(all.end(), part.begin(), part.end());
        return all;
    }
};
const std::string fixture_path = std::string(SELFREPLAY_TEST_DATA_DIR) + "/replay/state_v1.bin";
} // namespace

TEST_CASE("the committed version-1 state file loads and resumes exactly (format stability)") {
    // A later build must load this file or refuse it naming the version; if the format changes,
    // keep this file, bump state_format_version, and make this test expect the refusal.
    std::ifstream f(fixture_path, std::ios::binary);
    REQUIRE(f);
    const image_t fixture((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    fixture_objects written;
    written.run();
    // this build still writes the very same bytes (little-endian, version 1)
    CHECK(sr::state_bytes(written.reservoir, written.ring, written.tasks, written.generated) == fixture);
    REQUIRE(fixture.size() > 16);
    CHECK(fixture[8] == 1);
    CHECK((fixture[12] == 0x04 && fixture[13] == 0x03 && fixture[14] == 0x02 && fixture[15] == 0x01));
    fixture_objects loaded;
    sr::load_state(fixture_path, loaded.reservoir, loaded.ring, loaded.tasks, loaded.generated);
    CHECK(loaded.next() == written.next());
    // another version is refused naming both versions
    image_t v2 = fixture;
    v2[8] = 2;
    fixture_objects other;
    CHECK_THROWS_WITH(sr::restore_state_bytes(v2, "v2.bin", other.reservoir, other.ring, other.tasks, other.generated),
                      Catch::Contains("format version 2") && Catch::Contains("reads version 1"));
}

TEST_CASE("write the version-1 fixture", "[.write-fixture]") {
    // run explicitly (test_replay "[.write-fixture]") only when the fixture must be recreated
    fixture_objects o;
    o.run();
    sr::save_state(fixture_path, o.reservoir, o.ring, o.tasks, o.generated);
}

namespace {
// The committed version-1 fixture of the keyed buffers (written after state_v1.bin, by the build
// that added their states): a keyed reservoir and a keyed task-balanced buffer (3 tasks), each fed
// two parts and merged, then drawn.
const sr::keyed_reservoir_options keyed_fixture_settings{.capacity = 7, .seq_len = 3, .seed = 15};
const sr::keyed_task_balanced_options keyed_task_fixture_settings{.capacity = 8, .seq_len = 3, .seed = 16};
struct keyed_fixture {
    sr::keyed_reservoir keyed{keyed_fixture_settings};
    sr::keyed_task_balanced_buffer tasks{keyed_task_fixture_settings};
    void run() {
        sr::keyed_reservoir other(keyed.options());
        keyed.add(numbered_rows(0, 11, 3).view(), 0);
        other.add(numbered_rows(11, 9, 3).view(), 11);
        keyed.merge(other);
        batches(keyed, 2, 3);
        sr::keyed_task_balanced_buffer other_tasks(tasks.options());
        tasks.add(numbered_rows(0, 9, 3).view(), 6, 0);
        other_tasks.add(numbered_rows(9, 2, 3).view(), 6, 9);
        other_tasks.add(numbered_rows(11, 7, 3).view(), -2, 11);
        tasks.add(numbered_rows(18, 5, 3).view(), 3, 18);
        tasks.merge(other_tasks);
        batches(tasks, 2, 3);
    }
    std::vector<std::int32_t> next() {
        auto all = batches(keyed, 3, 4);
        const auto more = batches(tasks, 3, 4);
        all.insert(all.end(), more.begin(), more.end());
        return all;
    }
};
const std::string keyed_fixture_path = std::string(SELFREPLAY_TEST_DATA_DIR) + "/replay/keyed_state_v1.bin";
} // namespace

TEST_CASE("the committed version-1 file of the keyed buffers loads and resumes exactly (format stability)") {
    std::ifstream f(keyed_fixture_path, std::ios::binary);
    REQUIRE(f);
    const image_t fixture((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    keyed_fixture written;
    written.run();
    CHECK(sr::state_bytes(written.keyed, written.tasks) == fixture);
    keyed_fixture loaded;
    sr::load_state(keyed_fixture_path, loaded.keyed, loaded.tasks);
    CHECK(loaded.next() == written.next());
}

TEST_CASE("write the version-1 keyed fixture", "[.write-fixture]") {
    keyed_fixture o;
    o.run();
    sr::save_state(keyed_fixture_path, o.keyed, o.tasks);
}

namespace {
// A user-written saveable type without stage / commit: restored into a copy, moved in on success.
struct counter {
    std::int64_t n = 0;
    void save(sr::state_writer& w) const {
        w.tag("counter");
        w.put<std::int64_t>(n);
    }
    void restore(sr::state_reader& r) {
        r.expect_tag("counter");
        n = r.get<std::int64_t>("n");
    }
};
static_assert(sr::saveable<counter> && !sr::stageable<counter>);
} // namespace

TEST_CASE("a saveable type without stage / commit is restored transactionally through a copy") {
    sr::reservoir_buffer a({.capacity = 6, .seq_len = 2, .seed = 9});
    a.add(numbered_rows(0, 20, 2).view());
    const auto image = sr::state_bytes(counter{41}, a);
    counter c{7};
    sr::reservoir_buffer b({.capacity = 6, .seq_len = 2, .seed = 9});
    sr::restore_state_bytes(image, "ok.bin", c, b);
    CHECK(c.n == 41);
    CHECK(sr::state_bytes(b) == sr::state_bytes(a));
    // the buffer's record refused (other settings): the counter, restored first, is unchanged
    counter d{7};
    sr::reservoir_buffer other({.capacity = 7, .seq_len = 2, .seed = 9});
    CHECK_THROWS_WITH(sr::restore_state_bytes(image, "bad.bin", d, other), Catch::Contains("other settings"));
    CHECK(d.n == 7);
}
