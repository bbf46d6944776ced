// libFuzzer harness: state files. For each stateful type (reservoir, ring, task-balanced buffer,
// self_generated, a weighted mixture holding its sources by reference, keyed reservoir, keyed
// task-balanced buffer), restores either the
// fuzzer's bytes as an image or a valid image (of an object run by the input) edited by the
// input (bytes overwritten, the image cut or extended, the checksum resealed or not). Invariants:
// a refused load leaves the object's state image and next batches equal to an untouched twin's;
// an accepted one gives an object that draws ids >= 0 (below V for generated rows) and takes rows.
#include <cstdint>
#include <cstring>
#include <vector>

#include "input.hpp"
#include "selfreplay/replay.hpp"
#include "selfreplay/sampling.hpp"

namespace sr = selfreplay;
using image_t = std::vector<unsigned char>;

namespace {

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

sr::self_generated_options generated_options() {
    return {.prompts = {{3}, {4, 1}, {2}}, .weights = {3.0, 1.0, 0.0}, .batch_size = 3, .seq_len = 3, .buffer_batches = 2, .seed = 42};
}

std::vector<std::int32_t> rows(std::int32_t first, sr::index_t n, sr::index_t T) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n * T));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = first + static_cast<std::int32_t>(i / static_cast<std::size_t>(T));
    return ids;
}

template <class S>
std::vector<std::int32_t> draw(S& s, sr::index_t n) {
    std::vector<std::int32_t> out(static_cast<std::size_t>(n * s.seq_len()));
    s.draw(sr::make_view(out.data(), {n, s.seq_len()}));
    return out;
}

// Every stateful object the harness restores, with the same settings; `run` moves it along.
struct objects {
    sr::reservoir_buffer reservoir{sr::reservoir_options{.capacity = 5, .seq_len = 2, .seed = 1}};
    sr::ring_buffer ring{sr::ring_options{.capacity = 4, .seq_len = 2, .seed = 2}};
    sr::task_balanced_buffer tasks{sr::task_balanced_options{.capacity = 5, .seq_len = 2, .seed = 3}};
    sr::self_generated<bigram> generated{model, generated_options()};
    sr::reservoir_buffer member{sr::reservoir_options{.capacity = 4, .seq_len = 3, .seed = 4}};
    sr::weighted_mixture<sr::reservoir_buffer&, sr::self_generated<bigram>&> mix{{2.0, 1.0}, member, generated};
    sr::keyed_reservoir keyed{sr::keyed_reservoir_options{.capacity = 5, .seq_len = 2, .seed = 5}};
    sr::keyed_task_balanced_buffer keyed_tasks{sr::keyed_task_balanced_options{.capacity = 5, .seq_len = 2, .seed = 6}};

    objects() { member.add(sr::make_view(rows(900, 2, 3).data(), {2, 3})); }
    objects(const objects&) = delete;

    void run(fuzz::input& in) {
        for (int k = static_cast<int>(in.in(0, 4)); k > 0; --k) {
            const auto n = in.in(1, 9);
            const auto ids = rows(static_cast<std::int32_t>(in.in(0, 1000)), n, 2);
            const auto v = sr::make_view(ids.data(), {n, 2});
            reservoir.add(v);
            ring.add(v);
            tasks.add(v, static_cast<std::int32_t>(in.in(-3, 3)));
            keyed.add(v, static_cast<std::uint64_t>(in.in(0, 1000)));
            keyed_tasks.add(v, static_cast<std::int32_t>(in.in(-3, 3)), static_cast<std::uint64_t>(in.in(0, 1000)));
            const auto m = rows(static_cast<std::int32_t>(in.in(0, 1000)), n, 3);
            member.add(sr::make_view(m.data(), {n, 3}));
            draw(reservoir, 2);
            draw(ring, 1);
            draw(tasks, 3);
            draw(keyed, 2);
            draw(keyed_tasks, 3);
            draw(mix, in.in(1, 7));
        }
    }

    image_t image(int kind) const {
        switch (kind) {
        case 0: return sr::state_bytes(reservoir);
        case 1: return sr::state_bytes(ring);
        case 2: return sr::state_bytes(tasks);
        case 3: return sr::state_bytes(generated);
        case 5: return sr::state_bytes(keyed);
        case 6: return sr::state_bytes(keyed_tasks);
        default: return sr::state_bytes(mix);
        }
    }
    void restore(int kind, const image_t& image) {
        switch (kind) {
        case 0: return sr::restore_state_bytes(image, "fuzz", reservoir);
        case 1: return sr::restore_state_bytes(image, "fuzz", ring);
        case 2: return sr::restore_state_bytes(image, "fuzz", tasks);
        case 3: return sr::restore_state_bytes(image, "fuzz", generated);
        case 5: return sr::restore_state_bytes(image, "fuzz", keyed);
        case 6: return sr::restore_state_bytes(image, "fuzz", keyed_tasks);
        default: return sr::restore_state_bytes(image, "fuzz", mix);
        }
    }
    // The next batches and insertions of object `kind` (for the mixture: of it and its members).
    std::vector<std::int32_t> next(int kind) {
        const auto more = rows(5000, 7, 2);
        const auto v = sr::make_view(more.data(), {7, 2});
        std::vector<std::int32_t> out;
        auto append = [&](const std::vector<std::int32_t>& x) { out.insert(out.end(), x.begin(), x.end()); };
        switch (kind) {
        case 0: reservoir.add(v); append(draw(reservoir, 4)); break;
        case 1: ring.add(v); append(draw(ring, 4)); break;
        case 2: tasks.add(v, 9); append(draw(tasks, 4)); tasks.add(v, 0); append(draw(tasks, 4)); break;
        case 3: append(draw(generated, 7)); out.push_back(static_cast<std::int32_t>(generated.generate_calls())); break;
        case 5: keyed.add(v, 5000); append(draw(keyed, 4)); break;
        case 6: keyed_tasks.add(v, 9, 5000); append(draw(keyed_tasks, 4)); keyed_tasks.add(v, 0, 6000); append(draw(keyed_tasks, 4)); break;
        default: append(draw(mix, 9)); out.push_back(static_cast<std::int32_t>(generated.generate_calls()));
        }
        return out;
    }
};

image_t reseal(image_t image) {
    if (image.size() < 32) return image;
    const std::uint64_t n = image.size() - 32;
    std::memcpy(image.data() + 16, &n, 8);
    const std::uint64_t sum = sr::detail::fnv1a64(image.data() + 24, n);
    std::memcpy(image.data() + 24 + n, &sum, 8);
    return image;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::input in(data, size);
    const int kind = static_cast<int>(in.in(0, 6));
    const bool raw = in.in(0, 7) == 0;
    image_t image;
    {
        objects source;
        source.run(in);
        image = source.image(kind);
    }
    if (raw) {
        image.assign(data, data + size);
    } else {
        for (int e = static_cast<int>(in.in(0, 4)); e > 0; --e) {
            const auto op = in.in(0, 3);
            if (op == 0 && !image.empty()) image.resize(static_cast<std::size_t>(in.in(0, static_cast<std::int64_t>(image.size()) - 1)));
            else if (op == 1) image.insert(image.begin() + static_cast<std::ptrdiff_t>(in.in(0, static_cast<std::int64_t>(image.size()))), in.byte());
            else if (!image.empty()) image[static_cast<std::size_t>(in.in(0, static_cast<std::int64_t>(image.size()) - 1))] = in.byte();
        }
        if (in.flag()) image = reseal(image);
    }
    // target and twin: the same objects moved along by the same fixed bytes
    static const std::uint8_t fixed[] = {3, 0, 0, 0, 5, 0, 0, 0, 77, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 9};
    objects target, twin;
    fuzz::input f1(fixed, sizeof fixed), f2(fixed, sizeof fixed);
    target.run(f1);
    twin.run(f2);
    try {
        target.restore(kind, image);
    } catch (const sr::invalid_argument&) {
        fuzz::check(target.image(kind) == twin.image(kind), "a refused load changed the object's state");
        fuzz::check(target.next(kind) == twin.next(kind), "a refused load changed the object's next batches");
        return 0;
    }
    const auto ids = target.next(kind);
    for (std::size_t i = 0; i < ids.size(); ++i) fuzz::check(ids[i] >= 0, "a loaded object draws a negative id", ids[i]);
    if (kind == 3)
        for (std::size_t i = 0; i + 1 < ids.size(); ++i) fuzz::check(ids[i] < bigram::V, "generated id outside [0, V)", ids[i]);
    return 0;
}
