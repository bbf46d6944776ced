#pragma once
//! \file
//! Results tables: a `metrics_record` (one row of named cells: text, integers, reals) and a
//! `report` (rows with a shared, ordered set of columns) that prints as an aligned text table
//! and writes CSV (RFC 4180) and JSON.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "selfreplay/error.hpp"

namespace selfreplay {

//! One cell of a report: empty, text, an integer or a real number.
using cell = std::variant<std::monostate, std::string, std::int64_t, double>;

//! One row of named cells, in insertion order: `metrics_record{}.set("method", "kl_pre")
//! .set("lr", 1e-4).set("steps", 2000).set("forgetting", f.value())`. Setting a name again
//! replaces its value in place.
class metrics_record {
public:
    //! Sets `name` to a text value.
    metrics_record& set(std::string_view name, std::string_view text) { return put(name, cell(std::string(text))); }
    //! Sets `name` to a text value (string literals).
    metrics_record& set(std::string_view name, const char* text) { return set(name, std::string_view(text)); }
    //! Sets `name` to a text value.
    metrics_record& set(std::string_view name, const std::string& text) { return set(name, std::string_view(text)); }
    //! Booleans are neither text nor numbers here: store `"true"`/`"false"` or 0/1 explicitly.
    metrics_record& set(std::string_view name, bool value) = delete;
    //! Sets `name` to a real value (NaN and infinities allowed: JSON writes them as null).
    metrics_record& set(std::string_view name, double value) { return put(name, cell(value)); }
    //! Sets `name` to an integer value (any integral type but bool; must fit in int64).
    template <std::integral I>
        requires(!std::same_as<I, bool>)
    metrics_record& set(std::string_view name, I value) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (value > static_cast<std::make_unsigned_t<std::int64_t>>(INT64_MAX))
                throw invalid_argument("metrics_record::set", "value", "does not fit in int64: " + std::to_string(value));
        }
        return put(name, cell(static_cast<std::int64_t>(value)));
    }
    //! Sets `name` to a cell (an empty cell leaves it blank).
    metrics_record& set(std::string_view name, const cell& value) { return put(name, value); }

    //! The cells in insertion order.
    const std::vector<std::pair<std::string, cell>>& fields() const noexcept { return fields_; }
    //! The cell named `name`, or nullptr.
    const cell* find(std::string_view name) const noexcept {
        for (const auto& f : fields_)
            if (f.first == name) return &f.second;
        return nullptr;
    }

private:
    metrics_record& put(std::string_view name, cell value) {
        if (name.empty()) throw invalid_argument("metrics_record::set", "name", "must not be empty");
        for (auto& f : fields_)
            if (f.first == name) {
                f.second = std::move(value);
                return *this;
            }
        fields_.emplace_back(std::string(name), std::move(value));
        return *this;
    }
    std::vector<std::pair<std::string, cell>> fields_;
};

namespace detail {

//! Shortest text that reads back as the same double, positional for decimal exponents in
//! [-4, 16) and scientific otherwise, as Python's `repr` chooses ("0.0001", "1e-05", "1e+16");
//! "nan", "inf", "-inf" for non-finite values.
inline std::string exact_number(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[400];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    const std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
    const char* e = sci.data() + sci.find('e') + 1;
    int exponent = 0;
    std::from_chars(e + (*e == '+'), sci.data() + sci.size(), exponent);
    if (exponent < -4 || exponent >= 16) return std::string(sci);
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    return std::string(buf, r.ptr);
}

//! `v` with `precision` significant digits (printf %g), for the text table.
inline std::string short_number(double v, int precision) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    return buf;
}

//! Number of code points of UTF-8 text (its display width for alignment).
inline std::size_t display_width(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

inline void json_string(std::ostream& os, std::string_view s) {
    os << '"';
    for (unsigned char c : s) {
        switch (c) {
        case '"': os << "\\\""; break;
        case '\\': os << "\\\\"; break;
        case '\b': os << "\\b"; break;
        case '\f': os << "\\f"; break;
        case '\n': os << "\\n"; break;
        case '\r': os << "\\r"; break;
        case '\t': os << "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                os << buf;
            } else {
                os << static_cast<char>(c);
            }
        }
    }
    os << '"';
}

inline void csv_field(std::ostream& os, std::string_view s) {
    const bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos ||
                       (!s.empty() && (s.front() == ' ' || s.back() == ' '));
    if (!quote) {
        os << s;
        return;
    }
    os << '"';
    for (char c : s) {
        if (c == '"') os << '"';
        os << c;
    }
    os << '"';
}

} // namespace detail

//! A table of rows over an ordered set of columns: the union of the rows' names in
//! first-appearance order (or given up front). Missing cells are blank in text and CSV and
//! `null` in JSON.
//!
//! Output formats:
//! - `text(precision)`: an aligned table, header and a rule; numbers right-aligned (reals with
//!   `precision` significant digits), text left-aligned.
//! - `csv()`: RFC 4180: a header line, fields quoted when they hold a comma, a quote, CR/LF or
//!   edge spaces (quotes doubled); reals in shortest round-trip form; NaN as `nan`, infinities
//!   as `inf`/`-inf` (what pandas and numpy read); lines end with "\n".
//! - `json()`: an array of objects, one per row, keys in column order; strings escaped per
//!   RFC 8259; reals in shortest round-trip form; NaN and infinities as `null`.
class report {
public:
    report() = default;
    //! A report whose first columns are `columns`, in this order.
    explicit report(std::vector<std::string> columns) {
        for (auto& c : columns) add_column(c);
    }

    //! Appends a row; names not seen before become new columns at the right.
    report& add(const metrics_record& row) {
        for (const auto& f : row.fields()) add_column(f.first);
        rows_.push_back(row);
        return *this;
    }

    //! Column names in order.
    const std::vector<std::string>& columns() const noexcept { return columns_; }
    //! Number of rows.
    std::size_t rows() const noexcept { return rows_.size(); }
    //! The cell of row `i` in column `name` (empty when the row does not set it). Throws
    //! `invalid_argument` for a row out of range.
    cell at(std::size_t i, std::string_view name) const {
        if (i >= rows_.size())
            throw invalid_argument("report::at", "i", "must be < " + std::to_string(rows_.size()) + ", got " + std::to_string(i));
        const cell* c = rows_[i].find(name);
        return c ? *c : cell{};
    }

    //! Writes the aligned text table.
    void write_text(std::ostream& os, int precision = 6) const {
        const std::size_t nc = columns_.size();
        std::vector<std::vector<std::string>> text(rows_.size(), std::vector<std::string>(nc));
        std::vector<std::size_t> width(nc);
        std::vector<bool> numeric(nc, true);
        for (std::size_t c = 0; c < nc; ++c) width[c] = detail::display_width(columns_[c]);
        for (std::size_t r = 0; r < rows_.size(); ++r)
            for (std::size_t c = 0; c < nc; ++c) {
                const cell v = at(r, columns_[c]);
                if (const auto* s = std::get_if<std::string>(&v)) {
                    text[r][c] = *s;
                    numeric[c] = false;
                } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
                    text[r][c] = std::to_string(*n);
                } else if (const auto* d = std::get_if<double>(&v)) {
                    text[r][c] = detail::short_number(*d, precision);
                }
                width[c] = std::max(width[c], detail::display_width(text[r][c]));
            }
        auto put = [&](const std::string& s, std::size_t c, bool right) {
            const std::string pad(width[c] - detail::display_width(s), ' ');
            if (c > 0) os << "  ";
            os << (right ? pad + s : (c + 1 == nc ? s : s + pad));
        };
        for (std::size_t c = 0; c < nc; ++c) put(columns_[c], c, numeric[c]);
        os << '\n';
        for (std::size_t c = 0; c < nc; ++c) {
            if (c > 0) os << "  ";
            os << std::string(width[c], '-');
        }
        os << '\n';
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            for (std::size_t c = 0; c < nc; ++c) put(text[r][c], c, numeric[c]);
            os << '\n';
        }
    }
    //! The aligned text table as a string.
    std::string text(int precision = 6) const {
        std::ostringstream os;
        write_text(os, precision);
        return os.str();
    }

    //! Writes CSV.
    void write_csv(std::ostream& os) const {
        for (std::size_t c = 0; c < columns_.size(); ++c) {
            if (c > 0) os << ',';
            detail::csv_field(os, columns_[c]);
        }
        os << '\n';
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            for (std::size_t c = 0; c < columns_.size(); ++c) {
                if (c > 0) os << ',';
                const cell v = at(r, columns_[c]);
                if (const auto* s = std::get_if<std::string>(&v)) detail::csv_field(os, *s);
                else if (const auto* n = std::get_if<std::int64_t>(&v)) os << *n;
                else if (const auto* d = std::get_if<double>(&v)) os << detail::exact_number(*d);
            }
            os << '\n';
        }
    }
    //! CSV as a string.
    std::string csv() const {
        std::ostringstream os;
        write_csv(os);
        return os.str();
    }

    //! Writes JSON (an array of row objects), one row per line.
    void write_json(std::ostream& os) const {
        os << '[';
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            os << (r ? ",\n " : "\n ") << '{';
            for (std::size_t c = 0; c < columns_.size(); ++c) {
                if (c > 0) os << ", ";
                detail::json_string(os, columns_[c]);
                os << ": ";
                const cell v = at(r, columns_[c]);
                if (const auto* s = std::get_if<std::string>(&v)) detail::json_string(os, *s);
                else if (const auto* n = std::get_if<std::int64_t>(&v)) os << *n;
                else if (const auto* d = std::get_if<double>(&v); d && std::isfinite(*d)) os << detail::exact_number(*d);
                else os << "null";
            }
            os << '}';
        }
        os << (rows_.empty() ? "]\n" : "\n]\n");
    }
    //! JSON as a string.
    std::string json() const {
        std::ostringstream os;
        write_json(os);
        return os.str();
    }

    //! Writes CSV to the file `path` (replacing it). Throws `invalid_argument` when it cannot
    //! be written.
    void save_csv(const std::string& path) const { save(path, "report::save_csv", [&](std::ostream& os) { write_csv(os); }); }
    //! Writes JSON to the file `path` (replacing it). Throws `invalid_argument` when it cannot
    //! be written.
    void save_json(const std::string& path) const { save(path, "report::save_json", [&](std::ostream& os) { write_json(os); }); }

private:
    void add_column(const std::string& name) {
        if (name.empty()) throw invalid_argument("report", "columns", "must not hold an empty name");
        for (const auto& c : columns_)
            if (c == name) return;
        columns_.push_back(name);
    }
    template <class F>
    static void save(const std::string& path, const char* where, F&& write) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out) throw invalid_argument(where, "path", "cannot be opened for writing: " + path);
        write(out);
        out.flush();
        if (!out) throw invalid_argument(where, "path", "could not be written completely: " + path);
    }

    std::vector<std::string> columns_;
    std::vector<metrics_record> rows_;
};

} // namespace selfreplay
