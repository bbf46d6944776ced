# cmake -P script: builds and runs tests/CONSUMER (default: consumer) against selfreplay in MODE
# (installed: cmake --install BUILD_DIR into WORK_DIR/prefix, then find_package;
#  subdirectory: add_subdirectory(SOURCE_DIR)). With EXPECT_ERROR=<regex> the consumer is
# configured against the installed package with COMPONENTS=<list> and must fail with that message.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

if(NOT CONSUMER)
  set(CONSUMER consumer)
endif()
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_build ${WORK_DIR}/build)
if(EXPECT_ERROR)
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/${CONSUMER} -B ${consumer_build}
                          -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
                          "-DSELFREPLAY_COMPONENTS=${COMPONENTS}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT "${out}${err}" MATCHES "${EXPECT_ERROR}")
    message(FATAL_ERROR "expected the configuration to fail with '${EXPECT_ERROR}', got (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "failed as expected:\n${err}")
  return()
endif()
if(MODE STREQUAL "installed")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/${CONSUMER} -B ${consumer_build} -DCMAKE_CXX_COMPILER=${CXX}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/${CONSUMER} -B ${consumer_build} -DCMAKE_CXX_COMPILER=${CXX}
      -DSELFREPLAY_SOURCE_DIR=${SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} --build ${consumer_build})
file(GLOB program ${consumer_build}/*consumer)
run(${program})
