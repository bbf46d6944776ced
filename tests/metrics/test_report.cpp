// metrics_record and report: aligned text, CSV (RFC 4180 quoting) and JSON (RFC 8259 escaping,
// NaN as null), exact expected bytes; shortest round-trip numbers read back exactly.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "selfreplay/metrics.hpp"

using namespace selfreplay;

namespace {
report sample() {
    report r;
    r.add(metrics_record{}.set("method", "none").set("lr", 1e-4).set("steps", 2000).set("forgetting", 0.4125));
    r.add(metrics_record{}.set("method", "kl_pre").set("lr", 0.001).set("steps", std::size_t{150}).set("forgetting", -0.01));
    return r;
}
} // namespace

TEST_CASE("metrics_record keeps insertion order and replaces on a repeated name") {
    metrics_record m;
    m.set("b", 1).set("a", "x").set("b", 2.5);
    REQUIRE(m.fields().size() == 2);
    CHECK(m.fields()[0].first == "b");
    CHECK(std::get<double>(m.fields()[0].second) == 2.5);
    CHECK(std::get<std::string>(*m.find("a")) == "x");
    CHECK(m.find("zzz") == nullptr);
    const std::string text = "from a std::string";
    CHECK(std::get<std::string>(*metrics_record{}.set("s", text).find("s")) == text);
    CHECK(std::get<double>(*metrics_record{}.set("f", 0.5f).find("f")) == 0.5);
    CHECK(std::get<std::int64_t>(metrics_record{}.set("n", std::uint32_t{7}).fields()[0].second) == 7);
    CHECK_THROWS_WITH(metrics_record{}.set("", 1.0), Catch::Contains("argument 'name' must not be empty"));
    CHECK_THROWS_WITH(metrics_record{}.set("n", std::numeric_limits<std::uint64_t>::max()), Catch::Contains("does not fit in int64"));
}

TEST_CASE("report prints an aligned text table") {
    const std::string want = "method      lr  steps  forgetting\n"
                             "------  ------  -----  ----------\n"
                             "none    0.0001   2000      0.4125\n"
                             "kl_pre   0.001    150       -0.01\n";
    CHECK(sample().text() == want);
    // Precision, missing cells, UTF-8 width (code points), NaN.
    report r;
    r.add(metrics_record{}.set("name", "é").set("x", 3.14159265));
    r.add(metrics_record{}.set("name", "ab").set("y", std::nan("")));
    CHECK(r.text(3) == "name     x    y\n"
                       "----  ----  ---\n"
                       "é     3.14     \n"
                       "ab          nan\n");
}

TEST_CASE("report writes CSV with RFC 4180 quoting and exact numbers") {
    CHECK(sample().csv() == "method,lr,steps,forgetting\n"
                            "none,0.0001,2000,0.4125\n"
                            "kl_pre,0.001,150,-0.01\n");
    report r({"text", "value"});
    r.add(metrics_record{}.set("text", "a,b").set("value", 0.1));
    r.add(metrics_record{}.set("text", "say \"hi\"\nbye").set("value", std::numeric_limits<double>::infinity()));
    r.add(metrics_record{}.set("text", " padded").set("value", std::nan("")));
    r.add(metrics_record{}.set("value", 1.0 / 3.0));
    CHECK(r.csv() == "text,value\n"
                     "\"a,b\",0.1\n"
                     "\"say \"\"hi\"\"\nbye\",inf\n"
                     "\" padded\",nan\n"
                     ",0.3333333333333333\n");
    // Shortest round-trip form reads back as the same double.
    for (double v : {0.1, 1.0 / 3.0, 1e-300, 6.02214076e23, -2.5e-7, 123456789.0, 1e-4, 1e15, 1e16, 5e-324, 1.7976931348623157e308}) {
        report one;
        one.add(metrics_record{}.set("v", v));
        const std::string csv = one.csv();
        CHECK(std::strtod(csv.c_str() + 2, nullptr) == v);
    }
}

TEST_CASE("report writes JSON with escaping, NaN and infinities as null, missing cells as null") {
    CHECK(sample().json() == "[\n"
                             " {\"method\": \"none\", \"lr\": 0.0001, \"steps\": 2000, \"forgetting\": 0.4125},\n"
                             " {\"method\": \"kl_pre\", \"lr\": 0.001, \"steps\": 150, \"forgetting\": -0.01}\n"
                             "]\n");
    report r;
    r.add(metrics_record{}.set("s", "quote\" back\\ nl\n tab\t ctl\x01 é").set("nan", std::nan("")));
    r.add(metrics_record{}.set("inf", -std::numeric_limits<double>::infinity()));
    CHECK(r.json() == "[\n"
                      " {\"s\": \"quote\\\" back\\\\ nl\\n tab\\t ctl\\u0001 é\", \"nan\": null, \"inf\": null},\n"
                      " {\"s\": null, \"nan\": null, \"inf\": null}\n"
                      "]\n");
    CHECK(report{}.json() == "[]\n");
    CHECK(report{}.csv() == "\n");
    // Number forms follow Python's repr: positional for exponents in [-4, 16), else scientific.
    CHECK(detail::exact_number(1e-4) == "0.0001");
    CHECK(detail::exact_number(1e-5) == "1e-05");
    CHECK(detail::exact_number(123456789.0) == "123456789");
    CHECK(detail::exact_number(1e16) == "1e+16");
    CHECK(detail::exact_number(-2.5) == "-2.5");
}

TEST_CASE("report saves files and reports unwritable paths") {
    const auto dir = std::filesystem::temp_directory_path() / ("selfreplay_report_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const report r = sample();
    r.save_csv((dir / "t.csv").string());
    r.save_json((dir / "t.json").string());
    auto slurp = [](const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    };
    CHECK(slurp(dir / "t.csv") == r.csv());
    CHECK(slurp(dir / "t.json") == r.json());
    std::filesystem::remove_all(dir);
    CHECK_THROWS_WITH(r.save_json((dir / "missing" / "t.json").string()), Catch::Contains("report::save_json: argument 'path' cannot be opened"));
    CHECK(r.at(1, "steps") == cell(std::int64_t{150}));
    CHECK(std::holds_alternative<std::monostate>(r.at(0, "nope")));
    CHECK_THROWS_WITH(r.at(2, "lr"), Catch::Contains("argument 'i' must be < 2, got 2"));
}
