# A rank that throws must end the whole job, promptly and with a message naming it: runs
# distributed_failure on 2 ranks with a 60 s timeout (a hang fails the test), once catching the
# exception and calling abort_all, once with the handler outside the Environment's scope.
foreach(mode caught handler-outside)
  set(args)
  set(expected "rank 1 of 2: load_fashion_mnist: '/nonexistent/fashion-mnist")
  if(mode STREQUAL "handler-outside")
    set(args --handler-outside)
    set(expected "rank 1 of 2: an exception is leaving the scope of distributed::Environment")
  endif()
  execute_process(COMMAND ${MPIEXEC} -np 2 ${MPIEXEC_FLAGS} ${PROGRAM} ${args}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status TIMEOUT 60)
  if(status MATCHES "timeout")
    message(FATAL_ERROR "${mode}: the job hung: ${status}\n${out}\n${err}")
  endif()
  if(status EQUAL 0)
    message(FATAL_ERROR "${mode}: the job exited 0 although rank 1 failed:\n${out}\n${err}")
  endif()
  string(FIND "${err}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${mode}: no '${expected}' (status ${status}):\n${out}\n${err}")
  endif()
  message(STATUS "${mode}: a failing rank ended the job (status ${status}) with: ${expected}")
endforeach()
