#pragma once
//! \file
//! Reports of the toy experiment: terminal tables, results/toy.json, the CSV of accuracy over
//! steps and a hand-written SVG plot (one panel per strategy, one line per task).

#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "experiment.hpp"

namespace lab {

struct summary {
    double avg_accuracy, avg_forgetting, bwt;
};

//! The continual-learning metrics of an accuracy matrix (selfreplay/metrics/continual.hpp).
inline summary summarize(const selfreplay::accuracy_matrix& R) {
    return {selfreplay::average_accuracy(R), selfreplay::average_forgetting(R), selfreplay::backward_transfer(R)};
}

inline std::string num(double v, int prec = 4) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return buf;
}

//! Writes the SVG plot: one panel per strategy, two per row, each titled by the strategy's name
//! and summary (bold) over its replay source and mixer (grey), one line per task, dashed lines
//! where the trained task changes, and one legend row under the panels. Text is laid out from
//! an upper bound of its width (0.62 em per character at 12 px), so titles and legend entries
//! never overlap.
inline void write_svg(const std::vector<strategy_result>& results, const toy_options& o, const std::string& path) {
    const int pw = 420, ph = 240, ml = 50, mr = 30, mt = 50, mb = 45, legend_h = 30;
    const int cols = int(std::min<std::size_t>(2, results.size()));
    const int rows = int((results.size() + 1) / 2);
    const int W = cols * (pw + ml + mr), H = rows * (ph + mt + mb) + legend_h;
    const char* colors[toy::num_tasks] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    const auto text_width = [](const std::string& text, double font_px) { return 0.62 * font_px * double(text.size()); };
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (std::size_t k = 0; k < results.size(); ++k) {
        const auto& r = results[k];
        const int x0 = int(k % 2) * (pw + ml + mr) + ml, y0 = int(k / 2) * (ph + mt + mb) + mt;
        const double max_step = double(r.curve.empty() ? 1 : r.curve.back().step);
        auto X = [&](double step) { return x0 + step / max_step * pw; };
        auto Y = [&](double acc) { return y0 + (1 - acc) * ph; };
        const auto sm = summarize(r.matrix);
        const std::string title = r.spec.name + ": avg acc " + num(sm.avg_accuracy, 3) + ", forgetting " + num(sm.avg_forgetting, 3);
        const std::string subtitle = std::string("replay ") + replay_name(r.spec.replay) + ", mixer " + mixer_name(r.spec.mixer);
        // a title wider than its panel is shrunk to fit (textLength), never run into the next one
        const auto fit = [&](const std::string& text, double font_px) {
            return text_width(text, font_px) > pw ? " textLength=\"" + std::to_string(pw) + "\" lengthAdjust=\"spacingAndGlyphs\"" : std::string();
        };
        s << "<text x=\"" << x0 << "\" y=\"" << y0 - 24 << "\" font-weight=\"bold\"" << fit(title, 12) << ">" << title << "</text>\n";
        s << "<text x=\"" << x0 << "\" y=\"" << y0 - 8 << "\" font-size=\"11\" fill=\"#555\"" << fit(subtitle, 11) << ">" << subtitle
          << "</text>\n";
        s << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << pw << "\" height=\"" << ph
          << "\" fill=\"none\" stroke=\"#444\"/>\n";
        for (double a : {0.0, 0.25, 0.5, 0.75, 1.0})
            s << "<line x1=\"" << x0 << "\" x2=\"" << x0 + pw << "\" y1=\"" << Y(a) << "\" y2=\"" << Y(a)
              << "\" stroke=\"#ddd\"/><text x=\"" << x0 - 6 << "\" y=\"" << Y(a) + 4 << "\" text-anchor=\"end\">" << num(a, 2)
              << "</text>\n";
        for (std::size_t i = 0; i + 1 < r.curve.size(); ++i)
            if (r.curve[i].task_trained != r.curve[i + 1].task_trained)
                s << "<line x1=\"" << X(double(r.curve[i].step)) << "\" x2=\"" << X(double(r.curve[i].step)) << "\" y1=\"" << y0
                  << "\" y2=\"" << y0 + ph << "\" stroke=\"#999\" stroke-dasharray=\"4,3\"/>\n";
        for (int t = 0; t < o.tasks; ++t) {
            s << "<polyline fill=\"none\" stroke-width=\"1.8\" stroke=\"" << colors[t] << "\" points=\"" << X(0) << "," << Y(0);
            for (const auto& p : r.curve) s << " " << X(double(p.step)) << "," << Y(p.acc[t]);
            s << "\"/>\n";
        }
        s << "<text x=\"" << x0 + pw / 2 << "\" y=\"" << y0 + ph + 32 << "\" text-anchor=\"middle\">training step</text>\n";
        s << "<text x=\"" << x0 << "\" y=\"" << y0 + ph + 16 << "\">0</text><text x=\"" << x0 + pw << "\" y=\"" << y0 + ph + 16
          << "\" text-anchor=\"end\">" << long(max_step) << "</text>\n";
    }
    double x = ml;
    for (int t = 0; t < o.tasks; ++t) {
        const std::string label = "accuracy on " + std::string(toy::task_names[t]);
        s << "<rect x=\"" << x << "\" y=\"" << H - 20 << "\" width=\"14\" height=\"4\" fill=\"" << colors[t] << "\"/><text x=\"" << x + 18
          << "\" y=\"" << H - 14 << "\">" << label << "</text>\n";
        x += 18 + text_width(label, 12) + 24;
    }
    s << "</svg>\n";
    std::ofstream f(path);
    if (!(f << s.str())) throw std::runtime_error("cannot write " + path);
}

//! Prints the accuracy matrices and the summary table; writes toy.json, toy_curves.csv, toy.svg.
inline void report_toy(const std::vector<strategy_result>& results, const toy_options& o, double seconds, const std::string& dir,
                       std::ostream& os) {
    for (const auto& r : results) {
        os << "\naccuracy matrix, " << r.spec.name << " (row i: after training task i; column j: task j)\n";
        os << "          ";
        for (int j = 0; j < o.tasks; ++j) os << std::string(10 - toy::task_names[j].size(), ' ') << toy::task_names[j];
        os << "\n";
        for (std::size_t i = 0; i < r.matrix.trained(); ++i) {
            os << std::string(10 - toy::task_names[i].size(), ' ') << toy::task_names[i];
            for (std::size_t c = 0; c < r.matrix.tasks(); ++c) os << "    " << num(r.matrix(i, c), 4);
            os << "\n";
        }
    }
    selfreplay::report table;
    for (const auto& r : results) {
        const auto s = summarize(r.matrix);
        table.add(selfreplay::metrics_record{}
                      .set("strategy", std::string_view(r.spec.name))
                      .set("replay", replay_name(r.spec.replay))
                      .set("mixer", mixer_name(r.spec.mixer))
                      .set("c", double(r.spec.c))
                      .set("avg_accuracy", s.avg_accuracy)
                      .set("avg_forgetting", s.avg_forgetting)
                      .set("bwt", s.bwt));
    }
    os << "\n" << table.text(3);
    os << "\nwall time " << num(seconds, 1) << " s\n";

    std::ostringstream j;
    j << "{\"experiment\": \"toy-continual\", \"seconds\": " << num(seconds, 2) << ", \"strategies\": [";
    for (std::size_t k = 0; k < results.size(); ++k) {
        const auto& r = results[k];
        const auto s = summarize(r.matrix);
        j << (k ? ", " : "") << "\n  {\"name\": \"" << r.spec.name << "\", \"replay\": \"" << replay_name(r.spec.replay)
          << "\", \"mixer\": \"" << mixer_name(r.spec.mixer) << "\", \"avg_accuracy\": " << num(s.avg_accuracy, 6)
          << ", \"avg_forgetting\": " << num(s.avg_forgetting, 6) << ", \"bwt\": " << num(s.bwt, 6) << ", \"accuracy_matrix\": [";
        for (std::size_t i = 0; i < r.matrix.trained(); ++i) {
            j << (i ? ", " : "") << "[";
            for (std::size_t c = 0; c < r.matrix.tasks(); ++c) j << (c ? ", " : "") << num(r.matrix(i, c), 6);
            j << "]";
        }
        j << "]}";
    }
    j << "\n]}\n";
    {
        std::ofstream f(dir + "/toy.json");
        if (!(f << j.str())) throw std::runtime_error("cannot write " + dir + "/toy.json");
    }
    selfreplay::report curves;
    for (const auto& r : results)
        for (const auto& p : r.curve) {
            selfreplay::metrics_record row;
            row.set("strategy", std::string_view(r.spec.name)).set("task_trained", toy::task_names[p.task_trained]).set("step", p.step).set("loss", p.loss);
            for (int t = 0; t < o.tasks; ++t) row.set("acc_" + std::string(toy::task_names[t]), p.acc[t]);
            curves.add(row);
        }
    {
        std::ofstream f(dir + "/toy_curves.csv");
        if (!(f << curves.csv())) throw std::runtime_error("cannot write " + dir + "/toy_curves.csv");
    }
    write_svg(results, o, dir + "/toy.svg");
    os << "wrote " << dir << "/toy.json, " << dir << "/toy_curves.csv, " << dir << "/toy.svg\n";
}

//! Grid mode: one row per (source, mixer) combination: forgetting, new-task (learning)
//! accuracy, final average accuracy and wall time; printed and written as grid.csv / grid.json.
inline void report_grid(const std::vector<strategy_result>& results, double seconds, const std::string& dir, std::ostream& os) {
    selfreplay::report table;
    for (const auto& r : results)
        table.add(selfreplay::metrics_record{}
                      .set("strategy", std::string_view(r.spec.name))
                      .set("source", replay_name(r.spec.replay))
                      .set("mixer", mixer_name(r.spec.mixer))
                      .set("c_or_fraction", double(r.spec.c))
                      .set("avg_forgetting", selfreplay::average_forgetting(r.matrix))
                      .set("new_task_accuracy", selfreplay::learning_accuracy(r.matrix))
                      .set("avg_accuracy", selfreplay::average_accuracy(r.matrix))
                      .set("bwt", selfreplay::backward_transfer(r.matrix))
                      .set("seconds", r.seconds));
    os << "\n" << table.text(3) << "\nwall time " << num(seconds, 1) << " s\n";
    std::ofstream csv(dir + "/grid.csv"), json(dir + "/grid.json");
    if (!(csv << table.csv()) || !(json << table.json() << "\n")) throw std::runtime_error("cannot write " + dir + "/grid.csv or grid.json");
    os << "wrote " << dir << "/grid.csv, " << dir << "/grid.json\n";
}

}  // namespace lab
