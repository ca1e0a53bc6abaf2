# Prints a random graph's reproducer with fuzz_graphs and compiles and runs it as a program of its
# own, against the build tree: a reproducer is self-contained.
execute_process(COMMAND ${FUZZ_GRAPHS} --reproducer 7 OUTPUT_FILE ${WORK_DIR}/reproducer.cpp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz_graphs --reproducer failed: ${rc}")
endif()
separate_arguments(libs UNIX_COMMAND "${LIBS}")
execute_process(COMMAND ${CXX} -std=c++17 -O1 -I${INCLUDE_DIR} ${WORK_DIR}/reproducer.cpp ${libs} -o ${WORK_DIR}/reproducer
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the reproducer does not compile:\n${err}")
endif()
execute_process(COMMAND ${WORK_DIR}/reproducer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "gradcheck passed")
  message(FATAL_ERROR "the reproducer of a passing graph did not pass: ${rc}")
endif()
