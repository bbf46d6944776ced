# cmake -DBINARY_DIR=<build dir> -DTARGET=<target> -DREGEX=<regex> [-DMAX_ERRORS=<n>] -P compile_fail.cmake
# Passes when building TARGET fails and the compiler's first error line matches REGEX (the
# concept message must be the first thing a user reads, not the end of a list of overloads),
# and, with MAX_ERRORS, when there are at most n error lines in all (the sentence is not followed
# by the errors of the instantiation it stopped).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --target ${TARGET}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but it must not")
endif()
string(REGEX MATCH "[^\n]*error: [^\n]*" first "${out}\n${err}")
if(NOT first MATCHES "${REGEX}")
  message(FATAL_ERROR "${TARGET}: the first error is not the expected message (${REGEX}):\n${first}\n\n${out}${err}")
endif()
string(REGEX MATCHALL "error: " errors "${out}\n${err}")
list(LENGTH errors n)
if(MAX_ERRORS AND n GREATER MAX_ERRORS)
  message(FATAL_ERROR "${TARGET}: ${n} error lines, at most ${MAX_ERRORS} expected:\n${out}${err}")
endif()
message(STATUS "${TARGET}: first error as expected (${n} error lines in all):\n${first}")
