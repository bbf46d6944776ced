#pragma once
//! \file
//! Saving and restoring replay state (buffers, random-stream counters, the step) so that a resumed
//! run draws exactly the batches an uninterrupted one would.
//!
//! File format, version 1. Integers and IEEE-754 binary64 doubles are stored in the writer's
//! byte order, which is little-endian on every platform the library supports (x86-64, AArch64);
//! the byte-order mark (bytes 04 03 02 01 in a little-endian file) makes a reader of the other
//! endianness refuse the file instead of misreading it. A file of version 1 written by this
//! build is committed as tests/data/replay/state_v1.bin (and keyed_state_v1.bin beside it):
//! later builds must load them or refuse them with a message naming the version.
//!
//! | offset | bytes | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `"SRPLYST\0"` |
//! | 8 | 4 | format version (uint32, = 1) |
//! | 12 | 4 | byte-order mark (uint32 0x01020304) |
//! | 16 | 8 | payload size in bytes (uint64) |
//! | 24 | n | payload: each object's record, in the order given to `save_state` |
//! | 24+n | 8 | FNV-1a 64-bit checksum of the payload |
//!
//! Each record starts with the object's tag (a length-prefixed string such as
//! `"reservoir_buffer"`) so that restoring into the wrong kind of object fails with a message
//! naming both. A file that is truncated, too long, foreign (bad magic or byte order), of
//! another version, corrupted (checksum) or holding other objects is refused with
//! `selfreplay::invalid_argument` naming the file and the reason.
//!
//! Loading is transactional: every record is read and validated as if it came from outside (the
//! checksum guards against accidents, not against a crafted or buggy writer: ids, sizes against
//! capacities, counters, credits, duplicate ids are checked) before any object changes, so a
//! refused load leaves every object exactly as it was. The library's types do this in two phases,
//! `stage` (read and validate, const) and `commit` (noexcept); see `stageable`.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! Version of the state format written by this build (and the only one it reads).
inline constexpr std::uint32_t state_format_version = 1;

namespace detail {
inline constexpr std::array<char, 8> state_magic{'S', 'R', 'P', 'L', 'Y', 'S', 'T', '\0'};
inline constexpr std::uint32_t state_byte_order_mark = 0x01020304u;

//! FNV-1a, 64 bit (Fowler, Noll, Vo): the payload checksum of the state format.
inline std::uint64_t fnv1a64(const unsigned char* data, std::size_t n) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < n; ++i) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
} // namespace detail

//! Accumulates the payload of a state file: objects append their fields with `put` and their
//! arrays with `put_array`, starting with `tag`.
class state_writer {
public:
    //! Starts an object's record with its type name.
    void tag(std::string_view name) { put_string(name); }

    //! Appends one arithmetic value in native representation.
    template <class V>
        requires std::is_arithmetic_v<V>
    void put(V value) {
        const auto* p = reinterpret_cast<const unsigned char*>(&value);
        bytes_.insert(bytes_.end(), p, p + sizeof(V));
    }

    //! Starts a buffer's record: its tag, then its settings capacity, seq_len (int64) and seed
    //! (uint64), as `state_reader::expect_buffer_header` reads them.
    void buffer_header(std::string_view name, std::int64_t capacity, std::int64_t seq_len, std::uint64_t seed) {
        tag(name);
        put<std::int64_t>(capacity);
        put<std::int64_t>(seq_len);
        put<std::uint64_t>(seed);
    }

    //! Appends a length-prefixed string.
    void put_string(std::string_view s) {
        put<std::uint64_t>(s.size());
        bytes_.insert(bytes_.end(), s.begin(), s.end());
    }

    //! Appends a length-prefixed array of arithmetic values.
    template <class V>
        requires std::is_arithmetic_v<V>
    void put_array(const std::vector<V>& values) {
        put<std::uint64_t>(values.size());
        const auto* p = reinterpret_cast<const unsigned char*>(values.data());
        bytes_.insert(bytes_.end(), p, p + values.size() * sizeof(V));
    }

    //! The payload written so far.
    const std::vector<unsigned char>& payload() const noexcept { return bytes_; }

private:
    std::vector<unsigned char> bytes_;
};

//! Reads a payload written by `state_writer`, refusing reads past its end with a clear error.
class state_reader {
public:
    //! \param payload the bytes to read (not copied; must outlive the reader)
    //! \param source  a name for messages (the file path)
    state_reader(const std::vector<unsigned char>& payload, std::string source)
        : bytes_(payload), source_(std::move(source)) {}

    //! Reads an object's tag and refuses the record unless it is `expected`.
    void expect_tag(std::string_view expected) {
        const std::string found = get_string(expected);
        if (found != expected)
            fail("holds a '" + found + "' record where a '" + std::string(expected) + "' was expected");
    }

    //! Reads a buffer's record start written by `state_writer::buffer_header` and refuses it
    //! unless it has tag `expected` and the given settings.
    void expect_buffer_header(std::string_view expected, std::int64_t capacity, std::int64_t seq_len, std::uint64_t seed) {
        expect_tag(expected);
        const auto c = get<std::int64_t>("capacity");
        const auto t = get<std::int64_t>("seq_len");
        const auto s = get<std::uint64_t>("seed");
        if (c != capacity || t != seq_len || s != seed)
            fail("holds a " + std::string(expected) + " with other settings (capacity " + std::to_string(c) + ", seq_len " +
                 std::to_string(t) + ", seed " + std::to_string(s) + ")");
    }

    //! Reads one arithmetic value; `what` names the field for messages.
    template <class V>
        requires std::is_arithmetic_v<V>
    V get(std::string_view what) {
        need(sizeof(V), what);
        V v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof(V));
        pos_ += sizeof(V);
        return v;
    }

    //! Reads a uint64 counter (items offered, batches drawn, rows generated) and refuses a value
    //! no run reaches: 2^61 or more (the replay streams keep 61 bits of a counter, see
    //! replay/detail/random.hpp; a larger one would also overflow the arithmetic on it).
    std::uint64_t get_counter(std::string_view what) {
        const auto v = get<std::uint64_t>(what);
        if (v >= counter_limit)
            fail("holds the counter '" + std::string(what) + "' = " + std::to_string(v) + ", beyond 2^61 - 1");
        return v;
    }

    //! The bound of `get_counter`: counters saved by a real run stay below it.
    static constexpr std::uint64_t counter_limit = std::uint64_t(1) << 61;

    //! Reads a length-prefixed string.
    std::string get_string(std::string_view what) {
        const auto n = get<std::uint64_t>(what);
        need(n, what);
        std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        return s;
    }

    //! Reads a length-prefixed array of arithmetic values.
    template <class V>
        requires std::is_arithmetic_v<V>
    std::vector<V> get_array(std::string_view what) {
        const auto n = get<std::uint64_t>(what);
        if (n > (bytes_.size() - pos_) / sizeof(V)) fail("ends early while reading '" + std::string(what) + "'");
        std::vector<V> v(static_cast<std::size_t>(n));
        if (!v.empty()) std::memcpy(v.data(), bytes_.data() + pos_, v.size() * sizeof(V));
        pos_ += v.size() * sizeof(V);
        return v;
    }

    //! Refuses the state with `why` (the file is inconsistent with the object being restored).
    [[noreturn]] void fail(const std::string& why) const {
        throw invalid_argument("load_state", "path", "'" + source_ + "' " + why);
    }

    //! Throws unless every byte has been read.
    void expect_end() const {
        if (pos_ != bytes_.size())
            fail("holds " + std::to_string(bytes_.size() - pos_) +
                 " bytes more than the objects being restored (a state of other objects?)");
    }

private:
    void need(std::uint64_t n, std::string_view what) const {
        if (n > bytes_.size() - pos_) fail("ends early while reading '" + std::string(what) + "'");
    }

    const std::vector<unsigned char>& bytes_;
    std::string source_;
    std::size_t pos_ = 0;
};

//! Satisfied by objects whose state can be saved and restored:
//! `x.save(state_writer&) const` and `x.restore(state_reader&)`. `restore` must leave the object
//! unchanged when it throws. Types that are neither `stageable` nor copyable cannot be restored
//! by `load_state` (it could not undo them when a later record is refused).
template <class X>
concept saveable = requires(const X& cx, X& x, state_writer& w, state_reader& r) {
    cx.save(w);
    x.restore(r);
};

//! A `saveable` whose restore is split in two phases: `x.stage(state_reader&) const` reads and
//! validates its record into a `typename X::staged_state` without changing `x`, and
//! `x.commit(staged_state&&) noexcept` installs it. `restore(r)` is `commit(stage(r))`. Composite
//! states (`weighted_mixture`, `strategy`, several objects in one file) stage every part before
//! committing any, which makes them transactional.
template <class X>
concept stageable = saveable<X> && requires(const X& cx, X& x, state_reader& r, typename X::staged_state&& s) {
    { cx.stage(r) } -> std::same_as<typename X::staged_state>;
    { x.commit(std::move(s)) } noexcept;
};

namespace detail {
//! The staged record of one object: its `stage` for a `stageable` type; for any other copyable
//! saveable type a copy of the object with the record restored into it (committed by moving it
//! back).
template <class X, bool = stageable<X>>
struct staged_record {
    using type = typename X::staged_state;
};
template <class X>
struct staged_record<X, false> {
    static_assert(std::is_copy_constructible_v<X> && std::is_nothrow_move_assignable_v<X>,
                  "selfreplay: restoring a saveable type transactionally needs stage/commit (see "
                  "selfreplay::stageable) or a copy constructor and a noexcept move assignment");
    using type = X;
};

//! Reads and validates x's record from r without changing x.
template <class X>
typename staged_record<X>::type stage_record(const X& x, state_reader& r) {
    if constexpr (stageable<X>) {
        return x.stage(r);
    } else {
        X copy(x);
        copy.restore(r);
        return copy;
    }
}

//! Installs a record staged by `stage_record`.
template <class X>
void commit_record(X& x, typename staged_record<X>::type&& staged) noexcept {
    if constexpr (stageable<X>)
        x.commit(std::move(staged));
    else
        x = std::move(staged);
}
} // namespace detail

//! The complete file image (header, payload, checksum) of the given objects' states.
template <saveable... X>
std::vector<unsigned char> state_bytes(const X&... objects) {
    state_writer w;
    (objects.save(w), ...);
    const auto& p = w.payload();
    std::vector<unsigned char> out;
    auto append = [&](const void* data, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(data);
        out.insert(out.end(), b, b + n);
    };
    append(detail::state_magic.data(), detail::state_magic.size());
    append(&state_format_version, sizeof state_format_version);
    append(&detail::state_byte_order_mark, sizeof detail::state_byte_order_mark);
    const std::uint64_t n = p.size();
    append(&n, sizeof n);
    append(p.data(), p.size());
    const std::uint64_t sum = detail::fnv1a64(p.data(), p.size());
    append(&sum, sizeof sum);
    return out;
}

//! Restores the objects (in the order they were saved) from a file image made by `state_bytes`.
//! `source` names the image in messages. Throws `invalid_argument` for a foreign, truncated,
//! corrupted, mismatched or invalid image, and then leaves every object unchanged.
template <saveable... X>
void restore_state_bytes(const std::vector<unsigned char>& image, const std::string& source, X&... objects) {
    auto refuse = [&](const std::string& why) { throw invalid_argument("load_state", "path", "'" + source + "' " + why); };
    constexpr std::size_t header = 8 + 4 + 4 + 8;
    if (image.size() < 8 || std::memcmp(image.data(), detail::state_magic.data(), 8) != 0)
        refuse("is not a selfreplay state file (bad magic)");
    if (image.size() < header) refuse("is truncated: " + std::to_string(image.size()) + " bytes, shorter than the header");
    std::uint32_t version = 0, mark = 0;
    std::uint64_t n = 0;
    std::memcpy(&version, image.data() + 8, 4);
    std::memcpy(&mark, image.data() + 12, 4);
    std::memcpy(&n, image.data() + 16, 8);
    if (mark != detail::state_byte_order_mark) refuse("was written with another byte order");
    if (version != state_format_version)
        refuse("has format version " + std::to_string(version) + "; this build reads version " +
               std::to_string(state_format_version));
    if (n > image.size() - header || image.size() - header - n < 8)
        refuse("is truncated: the header announces " + std::to_string(n) + " payload bytes plus checksum, the file has " +
               std::to_string(image.size() - header));
    if (image.size() - header - n > 8)
        refuse("has " + std::to_string(image.size() - header - n - 8) + " unexpected bytes after the checksum");
    const std::vector<unsigned char> payload(image.begin() + header, image.begin() + static_cast<std::ptrdiff_t>(header + n));
    std::uint64_t sum = 0;
    std::memcpy(&sum, image.data() + header + n, 8);
    if (sum != detail::fnv1a64(payload.data(), payload.size())) refuse("is corrupted (checksum mismatch)");
    state_reader r(payload, source);
    // every record is read and validated before any object changes
    std::tuple<typename detail::staged_record<X>::type...> staged{detail::stage_record(objects, r)...};
    r.expect_end();
    std::apply([&](auto&... s) { (detail::commit_record(objects, std::move(s)), ...); }, staged);
}

//! Writes the objects' states to the file at `path` (see the format above). Throws
//! `invalid_argument` when the file cannot be written.
template <saveable... X>
void save_state(const std::string& path, const X&... objects) {
    const auto image = state_bytes(objects...);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    require(static_cast<bool>(f), "save_state", "path", "'" + path + "' cannot be opened for writing");
    f.write(reinterpret_cast<const char*>(image.data()), static_cast<std::streamsize>(image.size()));
    f.close();
    require(static_cast<bool>(f), "save_state", "path", "'" + path + "' could not be written completely");
}

//! Restores the objects from the file at `path`, in the order `save_state` was given them.
//! Throws `invalid_argument` for a missing, foreign, truncated, corrupted or mismatched file.
template <saveable... X>
void load_state(const std::string& path, X&... objects) {
    std::ifstream f(path, std::ios::binary);
    require(static_cast<bool>(f), "load_state", "path", "'" + path + "' cannot be opened for reading");
    std::vector<unsigned char> image((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    restore_state_bytes(image, path, objects...);
}

} // namespace selfreplay
