#pragma once
//! \file
//! The toy continual-learning tasks of the paper (../../docs/lab.md): `add` (a + b),
//! `reversal` (the digits of a reversed), `sort` (the digits of a in ascending order) and
//! `modadd` ((a + b) mod 1000), with a and b three-digit numbers 000..999.
//!
//! Sequence: [task, a2 a1 a0, SEP, b2 b1 b0 | NULL, EQ, answer (4 digits, left-padded), EOS],
//! padded with PAD to `toy_len` = 14 tokens (one-operand tasks are 12 tokens long).

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lab::toy {

enum token : std::int32_t { SEP = 10, NUL = 11, EQ = 12, EOS = 13, PAD = 14, TASK0 = 15 };
inline constexpr int num_tasks = 4;
inline constexpr int vocab = TASK0 + num_tasks;  // 19
inline constexpr int toy_len = 14;
inline constexpr int answer_digits = 4;
inline constexpr std::array<std::string_view, num_tasks> task_names{"add", "reversal", "sort", "modadd"};

inline bool two_operands(int task) { return task == 0 || task == 3; }
//! Tokens up to and including EQ: what greedy decoding is given.
inline int prompt_len(int task) { return two_operands(task) ? 9 : 7; }

//! The four answer digits of `task` for operands a, b (0..999).
inline std::array<int, answer_digits> answer(int task, int a, int b) {
    int value = 0;
    int d2 = a / 100, d1 = a / 10 % 10, d0 = a % 10;
    switch (task) {
    case 0: value = a + b; break;
    case 1: value = d0 * 100 + d1 * 10 + d2; break;
    case 2: {
        int x[3] = {d2, d1, d0};
        for (int i = 0; i < 3; ++i)
            for (int j = i + 1; j < 3; ++j)
                if (x[j] < x[i]) std::swap(x[i], x[j]);
        value = x[0] * 100 + x[1] * 10 + x[2];
        break;
    }
    case 3: value = (a + b) % 1000; break;
    default: throw std::invalid_argument("lab::toy::answer: task " + std::to_string(task) + " out of range");
    }
    return {value / 1000, value / 100 % 10, value / 10 % 10, value % 10};
}

//! Writes the `toy_len` tokens of one example into `out`.
inline void encode(int task, int a, int b, std::int32_t* out) {
    const auto ans = answer(task, a, b);
    std::fill(out, out + toy_len, std::int32_t{PAD});
    int i = 0;
    out[i++] = TASK0 + task;
    out[i++] = a / 100;
    out[i++] = a / 10 % 10;
    out[i++] = a % 10;
    out[i++] = SEP;
    if (two_operands(task)) {
        out[i++] = b / 100;
        out[i++] = b / 10 % 10;
        out[i++] = b % 10;
    } else {
        out[i++] = NUL;
    }
    out[i++] = EQ;
    for (int dgt : ans) out[i++] = dgt;
    out[i] = EOS;
}

//! Human-readable form of a token sequence ("+ 123|456=0579$").
inline std::string render(const std::int32_t* t, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        const auto v = t[i];
        if (v >= 0 && v <= 9) s += char('0' + v);
        else if (v == SEP) s += '|';
        else if (v == NUL) s += '_';
        else if (v == EQ) s += '=';
        else if (v == EOS) s += '$';
        else if (v == PAD) s += '.';
        else if (v >= TASK0 && v < TASK0 + num_tasks) s += "+rsm"[v - TASK0];
        else s += '?';
    }
    return s;
}

}  // namespace lab::toy
