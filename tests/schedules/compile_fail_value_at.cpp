// Must not compile: a string is neither a number nor a schedule; value_at's first error is one
// sentence naming the concept and the argument ('value').
#include "selfreplay/schedules.hpp"

int main() { return static_cast<int>(selfreplay::value_at("0.5", 3)); }
