# The GradBench tool as GradBench runs it: a session piped through the real executable. It must
# answer every line (each echoing its id), exit 0 at end of input, and on a malformed line or an
# unknown argument exit with status 2 and a message on stderr, within the timeout (no hang).
# GradBench passes --multithreaded to tools that use threads: the same session then runs on every
# core, and the start reply says how many.
foreach(flag "" "--multithreaded")
  execute_process(COMMAND ${TOOL} ${flag} INPUT_FILE ${DATA}/gradbench_session.jsonl OUTPUT_VARIABLE out
    ERROR_VARIABLE err RESULT_VARIABLE status TIMEOUT 60)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "the session (flags '${flag}') ended with status '${status}': ${err}")
  endif()
  string(REGEX MATCHALL "[^\n]+" replies "${out}")
  list(LENGTH replies count)
  if(NOT count EQUAL 6)
    message(FATAL_ERROR "6 messages (flags '${flag}') got ${count} replies:\n${out}")
  endif()
  foreach(id RANGE 5)
    list(GET replies ${id} reply)
    if(NOT reply MATCHES "[{,]\"id\":${id}[,}]")
      message(FATAL_ERROR "reply ${id} does not carry its id: ${reply}")
    endif()
  endforeach()
  # One thread by default; with --multithreaded more than one on a machine of several cores.
  list(GET replies 0 start)
  if(NOT start MATCHES "\"threads\":([0-9]+)[,}]")
    message(FATAL_ERROR "the start reply (flags '${flag}') gives no thread count: ${start}")
  endif()
  set(threads ${CMAKE_MATCH_1})
  if(flag STREQUAL "" AND NOT threads EQUAL 1)
    message(FATAL_ERROR "the start reply does not say one thread: ${start}")
  elseif(flag STREQUAL "--multithreaded" AND CORES GREATER 1 AND threads LESS 2)
    message(FATAL_ERROR "--multithreaded on ${CORES} cores, but the start reply says ${threads} thread(s): ${start}")
  endif()
  list(GET replies 2 primal)
  if(NOT primal MATCHES "\"output\":3.40760596444438")
    message(FATAL_ERROR "wrong lse primal (flags '${flag}'): ${primal}")
  endif()
endforeach()

execute_process(COMMAND ${TOOL} --threads 2 INPUT_FILE ${DATA}/gradbench_session.jsonl OUTPUT_VARIABLE out
  ERROR_VARIABLE err RESULT_VARIABLE status TIMEOUT 60)
if(NOT status EQUAL 2 OR NOT err MATCHES "unexpected argument '--threads'")
  message(FATAL_ERROR "an unknown argument gave status '${status}' and stderr: ${err}")
endif()

file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/gradbench_malformed.jsonl "{\"id\":0,\"kind\":\"start\"}\n{\"id\":1,\"kind\n")
execute_process(COMMAND ${TOOL} INPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/gradbench_malformed.jsonl
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status TIMEOUT 60)
if(NOT status EQUAL 2 OR NOT err MATCHES "line 2 is not valid JSON")
  message(FATAL_ERROR "a malformed line gave status '${status}' and stderr: ${err}")
endif()
message(STATUS "gradbench tool: 6 replies to a piped session, with and without --multithreaded; a malformed line and an unknown argument exit 2")
