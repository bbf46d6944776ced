#pragma once
//! \file
//! Data of the lab's text experiment (`selfreplay-lab text`, docs/lab.md "Text experiment"):
//! reading fortune files (strfile text format: entries separated by lines holding only "%") or
//! plain text, UTF-8 decoding, a character vocabulary shared by both corpora (rare characters
//! map to one UNK id), held-out splits, and a `replay_source` of fixed-length windows that
//! starts every sequence with the corpus's dataset-id token (English = 0, Spanish = 1, as in the
//! paper's setup).

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <selfreplay/random/counter_rng.hpp>
#include <selfreplay/random/uniform.hpp>
#include <selfreplay/replay/source.hpp>

namespace lab::text {

//! Dataset-id tokens (first token of every sequence) and the id of rare characters.
enum special : std::int32_t { ENGLISH = 0, SPANISH = 1, UNK = 2, first_char = 3 };

//! Decodes UTF-8; an invalid byte becomes U+FFFD (later mapped to UNK).
inline std::u32string decode_utf8(const std::string& s) {
    std::u32string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
        char32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
        bool ok = n >= 0;
        for (int k = 1; ok && k <= n; ++k) {
            if (i + std::size_t(k) >= s.size()) { ok = false; break; }
            const auto d = static_cast<unsigned char>(s[i + std::size_t(k)]);
            if ((d >> 6) != 0x2) ok = false;
            else cp = (cp << 6) | (d & 0x3F);
        }
        if (!ok) {
            out.push_back(U'\uFFFD');
            ++i;
            continue;
        }
        out.push_back(cp);
        i += std::size_t(n) + 1;
    }
    return out;
}

//! Encodes one code point as UTF-8 (for printing samples and the JSON vocabulary).
inline std::string encode_utf8(char32_t c) {
    std::string s;
    if (c < 0x80) s += char(c);
    else if (c < 0x800) s += {char(0xC0 | (c >> 6)), char(0x80 | (c & 0x3F))};
    else if (c < 0x10000) s += {char(0xE0 | (c >> 12)), char(0x80 | ((c >> 6) & 0x3F)), char(0x80 | (c & 0x3F))};
    else s += {char(0xF0 | (c >> 18)), char(0x80 | ((c >> 12) & 0x3F)), char(0x80 | ((c >> 6) & 0x3F)), char(0x80 | (c & 0x3F))};
    return s;
}

//! The entries of one text file: strfile format (lines holding only "%" separate entries) or, with
//! no such line, one entry per blank-line-separated paragraph. Inside an entry, runs of white space
//! (newlines and tabs included) become one space, control characters (e.g. the backspaces of
//! overstruck text) are dropped. Throws std::runtime_error naming the file when it cannot be read.
inline std::vector<std::u32string> read_entries(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw std::runtime_error("cannot read '" + path + "': " + (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open '" + path + "' for reading");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw std::runtime_error("error while reading '" + path + "'");
    const std::u32string all = decode_utf8(ss.str());
    std::vector<std::u32string> lines(1);
    for (char32_t c : all) {
        if (c == U'\n') lines.emplace_back();
        else if (c != U'\r') lines.back() += c;
    }
    const bool strfile = std::any_of(lines.begin(), lines.end(), [](const std::u32string& l) { return l == U"%"; });
    std::vector<std::u32string> entries(1);
    for (const auto& l : lines) {
        const bool blank = std::all_of(l.begin(), l.end(), [](char32_t c) { return c == U' ' || c == U'\t'; });
        if (strfile ? l == U"%" : blank) {
            entries.emplace_back();
            continue;
        }
        auto& e = entries.back();
        for (char32_t c : l) {
            if (c == U'\b' && !e.empty() && e.back() != U' ') e.pop_back();  // overstrike: keep the second glyph
            if (c < 0x20 && c != U'\t') continue;
            if (c == 0x7F) continue;
            const bool space = c == U' ' || c == U'\t';
            if (space) {
                if (!e.empty() && e.back() != U' ') e += U' ';
            } else {
                e += c;
            }
        }
        if (!e.empty() && e.back() != U' ') e += U' ';
    }
    std::vector<std::u32string> out;
    for (auto& e : entries) {
        while (!e.empty() && e.back() == U' ') e.pop_back();
        if (!e.empty()) out.push_back(std::move(e));
    }
    return out;
}

//! The default corpora: a few English files of Debian's `fortunes` and every Spanish file of
//! `fortunes-es` (regular files only, not the .dat/.u8 indexes nor the symbolic links).
struct default_files {
    static constexpr const char* dir = "/usr/share/games/fortunes";
    static std::vector<std::string> english() {
        std::vector<std::string> f;
        for (const char* n : {"fortunes", "literature", "humorists", "wisdom", "people", "politics", "science", "work"})
            f.push_back(std::string(dir) + "/" + n);
        return f;
    }
    static std::vector<std::string> spanish() {
        std::vector<std::string> f;
        const std::string es = std::string(dir) + "/es";
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(es, ec)) {
            const auto name = e.path().filename().string();
            if (!e.is_symlink(ec) && e.is_regular_file(ec) && name.size() > 9 && name.ends_with(".fortunes")) f.push_back(e.path().string());
        }
        std::sort(f.begin(), f.end());
        return f;
    }
};

//! Character vocabulary over both corpora: ids 0, 1 are the dataset ids, 2 is UNK, then every
//! character seen at least `min_count` times, in code-point order.
struct vocabulary {
    std::vector<char32_t> chars;          //!< chars[i] has id first_char + i
    std::map<char32_t, std::int32_t> ids; //!< character -> id

    vocabulary() = default;
    vocabulary(const std::vector<const std::vector<std::u32string>*>& corpora, long min_count) {
        std::map<char32_t, long> count;
        for (const auto* c : corpora)
            for (const auto& e : *c)
                for (char32_t ch : e) ++count[ch];
        ++count[U'\n'];
        count[U'\n'] = std::max(count[U'\n'], min_count);  // the entry separator is always in
        for (auto [ch, n] : count)
            if (n >= min_count && ch != U'\uFFFD') {
                ids[ch] = first_char + std::int32_t(chars.size());
                chars.push_back(ch);
            }
    }
    int size() const { return first_char + int(chars.size()); }  //!< V
    std::int32_t id(char32_t c) const {
        const auto it = ids.find(c);
        return it == ids.end() ? std::int32_t(UNK) : it->second;
    }
    //! Printable form of token `t` (dataset ids as <en>/<es>, UNK as ?, newline as "/").
    std::string show(std::int32_t t) const {
        if (t == ENGLISH) return "<en>";
        if (t == SPANISH) return "<es>";
        if (t == UNK || t < 0 || t >= size()) return "?";
        const char32_t c = chars[std::size_t(t - first_char)];
        return c == U'\n' ? std::string(" / ") : encode_utf8(c);
    }
};

//! One corpus split into a training and a held-out token stream (entries joined by newlines).
struct corpus {
    std::vector<std::int32_t> train, valid;
    std::size_t entries = 0, train_entries = 0;
};

//! Splits `entries` deterministically: entry i is held out when a uniform draw of stream
//! (seed, salt, i) falls below `valid_fraction`.
inline corpus split(const std::vector<std::u32string>& entries, const vocabulary& v, double valid_fraction, std::uint64_t seed,
                    std::uint64_t salt) {
    corpus c;
    c.entries = entries.size();
    for (std::size_t i = 0; i < entries.size(); ++i) {
        selfreplay::counter_rng rng{.seed = seed, .stream = salt, .counter = 2 * std::uint64_t(i)};
        auto& out = selfreplay::uniform_double(rng) < valid_fraction ? c.valid : c.train;
        if (&out == &c.train) ++c.train_entries;
        for (char32_t ch : entries[i]) out.push_back(v.id(ch));
        out.push_back(v.id(U'\n'));
    }
    return c;
}

//! A `selfreplay::replay_source` (and the trainer's batch sampler) over a token stream: each
//! sequence is [dataset id, T-1 consecutive tokens of the stream from a uniformly drawn offset].
//! Sequence g (counted over the source's life) uses stream (seed, salt, g): deterministic.
struct window_source {
    const std::vector<std::int32_t>* stream = nullptr;  //!< the tokens (outlives the source)
    std::int32_t dataset_id = ENGLISH;                  //!< first token of every sequence
    selfreplay::index_t length = 64;                    //!< T, dataset id included
    std::uint64_t seed = 0;
    std::uint64_t salt = 0;
    std::uint64_t drawn = 0;  //!< sequences handed out so far

    selfreplay::index_t seq_len() const { return length; }
    //! Fills `out` [B, T] (int32 or int64 ids).
    template <class Id>
    void draw(selfreplay::strided_view<Id, 2> out) {
        const auto n = static_cast<std::uint64_t>(stream->size());
        if (out.extent(1) != length || n + 1 < std::uint64_t(length))
            throw std::invalid_argument("lab::text::window_source::draw: rows must have length " + std::to_string(length) +
                                        " and the stream at least T - 1 tokens");
        const std::uint64_t starts = n - std::uint64_t(length - 1) + 1;
        for (selfreplay::index_t r = 0; r < out.extent(0); ++r) {
            selfreplay::counter_rng rng{.seed = seed, .stream = salt, .counter = 2 * drawn++};
            const auto at = std::min<std::uint64_t>(starts - 1, std::uint64_t(selfreplay::uniform_double(rng) * double(starts)));
            out(r, 0) = dataset_id;
            for (selfreplay::index_t t = 1; t < length; ++t) out(r, t) = (*stream)[at + std::uint64_t(t - 1)];
        }
    }
};
static_assert(selfreplay::replay_source<window_source>);

//! `n` held-out sequences [dataset id, T-1 tokens], evenly spaced windows of the stream
//! (overlapping only when the stream is short), row-major [n, T].
inline std::vector<std::int32_t> eval_set(const std::vector<std::int32_t>& stream, std::int32_t id, int n, int T) {
    if (stream.size() + 1 < std::size_t(T))
        throw std::runtime_error("held-out text too short: " + std::to_string(stream.size()) + " tokens for sequences of " +
                                 std::to_string(T));
    std::vector<std::int32_t> out(std::size_t(n) * T);
    const std::size_t starts = stream.size() - std::size_t(T - 1) + 1;
    for (int i = 0; i < n; ++i) {
        const std::size_t at = std::size_t(double(i) * double(starts) / n);
        out[std::size_t(i) * T] = id;
        for (int t = 1; t < T; ++t) out[std::size_t(i) * T + t] = stream[at + std::size_t(t - 1)];
    }
    return out;
}

}  // namespace lab::text
