# Runs one fuzz target for ctest (cmake -P, so it needs no shell):
#   MODE=fuzz    fuzzes for SECONDS on a fresh copy of corpus/<TARGET>/
#   MODE=replay  runs the target once on every file of regressions/<TARGET>/
# Flags shared with scripts/fuzz live in <TARGET>.options (one per line, -dict= relative to
# tests/fuzz/), so both runners fuzz the same way.
foreach(var FUZZER TARGET FUZZ_DIR WORK_DIR ARTIFACTS MODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

set(flags -timeout=5 -rss_limit_mb=1024)
# UBSan prints no stack by default, and a report without one does not say who called.
if(NOT DEFINED ENV{UBSAN_OPTIONS})
  set(ENV{UBSAN_OPTIONS} print_stacktrace=1)
endif()
if(EXISTS ${FUZZ_DIR}/${TARGET}.options)
  file(STRINGS ${FUZZ_DIR}/${TARGET}.options lines)
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(line STREQUAL "" OR line MATCHES "^#")
      continue()
    endif()
    string(REGEX REPLACE "^-dict=" "-dict=${FUZZ_DIR}/" line "${line}")
    list(APPEND flags ${line})
  endforeach()
endif()

if(MODE STREQUAL "replay")
  file(GLOB inputs ${FUZZ_DIR}/regressions/${TARGET}/*)
  list(FILTER inputs EXCLUDE REGEX "/README[^/]*$")
  if(NOT inputs)
    message(STATUS "${TARGET}: no regression inputs")
    return()
  endif()
  # Given files instead of folders, libFuzzer runs each once and exits non-zero on a crash.
  execute_process(COMMAND ${FUZZER} ${flags} ${inputs} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TARGET}: a regression input crashes again (exit ${rc})")
  endif()
  return()
endif()

if(NOT DEFINED SECONDS)
  set(SECONDS 30)
endif()
# A scratch copy: libFuzzer writes every new interesting input into the first corpus folder.
set(corpus ${WORK_DIR}/${TARGET})
file(REMOVE_RECURSE ${corpus})
file(MAKE_DIRECTORY ${corpus} ${ARTIFACTS}/${TARGET})
file(GLOB seeds ${FUZZ_DIR}/corpus/${TARGET}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${corpus})
endif()
execute_process(COMMAND ${FUZZER} ${flags} -max_total_time=${SECONDS} -print_final_stats=1
                        -artifact_prefix=${ARTIFACTS}/${TARGET}/ ${corpus}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TARGET}: the fuzzer found a problem (exit ${rc}); the input is in "
                      "${ARTIFACTS}/${TARGET}/ (make it a regression: see tests/fuzz/README.md)")
endif()
