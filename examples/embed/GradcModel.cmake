# GradcModel.cmake: compile gradc model files as part of a CMake build.
#
#   include(GradcModel.cmake)
#   gradc_add_model(tiny ${CMAKE_CURRENT_SOURCE_DIR}/../tiny.nn)
#   target_link_libraries(myprogram PRIVATE tiny)
#
# gradc_add_model(TARGET MODEL.nn) runs `gradc -c` on the model as a custom
# command (so a changed model file is recompiled), and makes TARGET a static
# library of the generated MODEL.c with MODEL.h on its include path. The
# gradc program is found on PATH, or set GRADC_EXECUTABLE.
find_program(GRADC_EXECUTABLE gradc REQUIRED)

function(gradc_add_model target model)
  get_filename_component(name ${model} NAME_WE)
  string(MAKE_C_IDENTIFIER ${name} cname)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/gradc_${target})
  file(MAKE_DIRECTORY ${out})
  add_custom_command(
    OUTPUT ${out}/${cname}.c ${out}/${cname}.h
    COMMAND ${GRADC_EXECUTABLE} -c ${model} -o ${out}
    DEPENDS ${model} ${GRADC_EXECUTABLE}
    COMMENT "gradc: compiling ${name}.nn"
    VERBATIM)
  add_library(${target} STATIC ${out}/${cname}.c ${out}/${cname}.h)
  target_include_directories(${target} PUBLIC ${out})
  find_library(GRADC_LIBM m)
  if(GRADC_LIBM)
    target_link_libraries(${target} PUBLIC ${GRADC_LIBM})
  endif()
endfunction()
