# Run by ctest: install tapegrad from BUILD_DIR into WORK_DIR/prefix, build the consumer against
# it, and run the consumer; then build and run it against the build tree's package.
file(REMOVE_RECURSE "${WORK_DIR}")
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
if(NOT EXISTS "${WORK_DIR}/prefix/include/tapegrad/tapegrad.hpp")
  message(FATAL_ERROR "tapegrad.hpp was not installed")
endif()
if(NOT EXISTS "${WORK_DIR}/prefix/share/doc/tapegrad/LICENSE")
  message(FATAL_ERROR "the licence was not installed in share/doc/tapegrad")
endif()
# Only the public headers: not the kernels' (which need libxsmm's and xsimd's headers).
foreach(internal ops/kernels.hpp ops/vector_math.hpp ops/vector_math_kernels.hpp)
  if(EXISTS "${WORK_DIR}/prefix/include/tapegrad/${internal}")
    message(FATAL_ERROR "the internal header ${internal} was installed")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
# Where tapegrad::distributed was built, the consumer asking for the component gets it.
if(EXISTS "${BUILD_DIR}/tapegradDistributedTargets.cmake")
  run("${WORK_DIR}/build/consumer_distributed")
endif()
# The build tree is a package too: the same consumer against it, without installing.
run(${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/build-tree" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release "-Dtapegrad_DIR=${BUILD_DIR}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build-tree" --target consumer)
run("${WORK_DIR}/build-tree/consumer")
