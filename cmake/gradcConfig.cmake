# gradcConfig.cmake: the CMake package of gradc, installed by `make install`
# as PREFIX/lib/cmake/gradc/. In a project anywhere:
#
#   find_package(gradc REQUIRED)             # -DCMAKE_PREFIX_PATH=PREFIX if not a system prefix
#   gradc_add_model(reg linear.nn)           # a static library of the generated pair
#   target_link_libraries(myprogram PRIVATE reg)
#
# and myprogram includes the header named after the model's `model` line
# (`model myreg` gives myreg.h; without one, the file's name: linear.h).
#
# gradc_add_model(TARGET FILE.nn [GRADC_FLAGS flag...]) runs `gradc -c` on the
# model at build time, so a changed model file is compiled again; a changed
# `model` line makes CMake configure again (the file is a configure
# dependency), so the new names are used. GRADC_FLAGS are passed to gradc
# (for example --predict-only or --embed-params PARAMS).
#
# Sets GRADC_EXECUTABLE (the installed gradc beside this file, then the
# source tree's build/gradc when used from a clone with
# -Dgradc_DIR=CLONE/cmake, then gradc on PATH) and GRADC_VERSION.
include_guard(GLOBAL)

get_filename_component(_gradc_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
find_program(GRADC_EXECUTABLE gradc
  HINTS "${_gradc_prefix}/bin" "${CMAKE_CURRENT_LIST_DIR}/../build"
  NO_DEFAULT_PATH)
find_program(GRADC_EXECUTABLE gradc)
if(NOT GRADC_EXECUTABLE)
  set(gradc_FOUND FALSE)
  set(gradc_NOT_FOUND_MESSAGE "no gradc program beside ${CMAKE_CURRENT_LIST_FILE} or on PATH")
  return()
endif()
execute_process(COMMAND "${GRADC_EXECUTABLE}" --version OUTPUT_VARIABLE _gradc_v OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REGEX REPLACE "^gradc ([^ ]+).*" "\\1" GRADC_VERSION "${_gradc_v}")
find_library(GRADC_LIBM m)

function(gradc_add_model target model)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "GRADC_FLAGS")
  get_filename_component(model "${model}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  # the model's C name, as gradc makes it: the `model` line's name, or the
  # file's without .nn; characters other than letters, digits and _ become
  # _, and a name that does not start with a letter or _ gets m_ before it
  file(STRINGS "${model}" line REGEX "^[ \t]*model[ \t]+[^ \t#]+" LIMIT_COUNT 1)
  if(line)
    string(REGEX REPLACE "^[ \t]*model[ \t]+([^ \t#]+).*" "\\1" name "${line}")
  else()
    get_filename_component(name "${model}" NAME)
    string(REGEX REPLACE "\\.nn$" "" name "${name}")
  endif()
  string(REGEX REPLACE "[^A-Za-z0-9_]" "_" name "${name}")
  if(NOT name MATCHES "^[A-Za-z_]")
    set(name "m_${name}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${model}")
  set(out "${CMAKE_CURRENT_BINARY_DIR}/gradc_${target}")
  file(MAKE_DIRECTORY "${out}")
  add_custom_command(
    OUTPUT "${out}/${name}.c" "${out}/${name}.h"
    COMMAND "${GRADC_EXECUTABLE}" -c ${arg_GRADC_FLAGS} "${model}" -o "${out}/${name}.c"
    DEPENDS "${model}" "${GRADC_EXECUTABLE}"
    COMMENT "gradc: compiling ${model}"
    VERBATIM)
  add_library(${target} STATIC "${out}/${name}.c" "${out}/${name}.h")
  target_include_directories(${target} PUBLIC "${out}")
  if(GRADC_LIBM)
    target_link_libraries(${target} PUBLIC "${GRADC_LIBM}")
  endif()
endfunction()
