# Runs the lab's small toy experiment under `mpiexec -np 1` and `-np 2` (same --shards) and fails
# unless both write the same toy_curves.csv (every averaged training loss with 17 digits, every
# accuracy) and the same toy.json apart from wall times. Variables: LAB, MPIEXEC, NP_FLAG, OUT.
set(args --tasks 2 --steps 40 --strategies none,self-kl,stored --target-accuracy 0 --batch 12 --replay-batch 6
         --buffer-batches 2 --stored-batch 4 --memory 16 --eval-every 20 --eval-size 12 --width 16 --heads 2 --ff 32
         --warmup 2 --shards 3 --threads 1 --quiet)
foreach(np 1 2)
  file(REMOVE_RECURSE "${OUT}/np${np}")
  execute_process(COMMAND "${MPIEXEC}" ${NP_FLAG} ${np} "${LAB}" ${args} --out "${OUT}/np${np}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "mpiexec -np ${np} failed (${rc}):\n${out}\n${err}")
  endif()
  file(READ "${OUT}/np${np}/toy_curves.csv" curves${np})
  file(READ "${OUT}/np${np}/toy.json" json)
  string(REGEX REPLACE "\"seconds\": [0-9.e+-]+" "\"seconds\": _" json${np} "${json}")
endforeach()
if(NOT curves1 STREQUAL curves2)
  message(FATAL_ERROR "toy_curves.csv differs between 1 and 2 ranks:\n${curves1}\n---\n${curves2}")
endif()
if(NOT json1 STREQUAL json2)
  message(FATAL_ERROR "toy.json differs between 1 and 2 ranks:\n${json1}\n---\n${json2}")
endif()
string(LENGTH "${curves1}" n)
if(n LESS 200)
  message(FATAL_ERROR "toy_curves.csv is too short to compare:\n${curves1}")
endif()
message(STATUS "1 and 2 ranks: identical curves and results")
