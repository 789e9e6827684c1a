# cmake/coblkInstall.cmake - what `cmake --install` puts where, and the two
# ways a program finds it afterwards: find_package(coblk) and pkg-config.
#
#   <prefix>/include/coblk/{runtime,compress,storage,ublk}/*.h   the layers' headers
#   <prefix>/<libdir>/libcoblk_*.a                               the static libraries
#   <prefix>/<libdir>/cmake/coblk/                               coblkConfig.cmake, ...Version, ...Targets
#   <prefix>/<libdir>/pkgconfig/coblk.pc
#   <prefix>/sbin/coblk                                          the command
#   <prefix>/lib/systemd/system/coblk@.service, coblk.target     the units of `coblk up`
#
# The command goes to sbin: it manages block devices through
# /dev/ublk-control, which needs root, as zramctl, losetup and blkdiscard do
# (Debian keeps those in /usr/sbin). cmd/'s library, the examples, the tests
# and the benchmarks are not installed. Included from the top-level
# CMakeLists.txt once every layer's targets exist.

include(CMakePackageConfigHelpers)

set(COBLK_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/coblk" CACHE STRING
    "Where coblkConfig.cmake goes, relative to the prefix")
set(COBLK_INSTALL_SYSTEMDUNITDIR "lib/systemd/system" CACHE STRING
    "Where systemd units go, relative to the prefix")

# ---- libraries ---------------------------------------------------------------
# Every layer library that was built, under the name a consumer links:
# coblk::runtime, coblk::compress, coblk::storage, coblk::ublk,
# coblk::ublk_zram. The ALIAS gives a project that adds coblk as a
# subdirectory the same names.
set(coblk_installed_libraries)
foreach(name runtime compress storage ublk ublk_zram)
  if(TARGET coblk_${name})
    set_target_properties(coblk_${name} PROPERTIES EXPORT_NAME ${name})
    add_library(coblk::${name} ALIAS coblk_${name})
    list(APPEND coblk_installed_libraries coblk_${name})
    # A sanitized static library needs the sanitizer's run-time library in
    # every program that links it; the build adds that with
    # add_link_options, which an exported target does not carry.
    if(COBLK_SANITIZE)
      target_link_options(coblk_${name} INTERFACE $<INSTALL_INTERFACE:-fsanitize=${COBLK_SANITIZE}>)
    endif()
  endif()
endforeach()
if(NOT coblk_installed_libraries)
  return()
endif()
install(TARGETS ${coblk_installed_libraries} EXPORT coblkTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

# ---- headers -----------------------------------------------------------------
# Each built layer's headers, as "coblk/<layer>/x.h". runtime/'s always:
# compress/ and storage/ use its header-only parts (result.h, spsc_ring.h)
# even in a build without the runtime library. The zram target's headers
# only with its library.
foreach(layer runtime compress storage ublk)
  if(layer STREQUAL "runtime" OR TARGET coblk_${layer})
    set(exclude)
    if(layer STREQUAL "ublk" AND NOT TARGET coblk_ublk_zram)
      set(exclude PATTERN "zram_*" EXCLUDE)
    endif()
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${layer}/
            DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/coblk/${layer}
            FILES_MATCHING PATTERN "*.h" PATTERN "examples" EXCLUDE ${exclude})
  endif()
endforeach()

# ---- the command -------------------------------------------------------------
if(TARGET coblk)
  install(TARGETS coblk RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
endif()

# ---- what the libraries need from the system ---------------------------------
# Both package files name the same dependencies, as the build used them.
# Files linked by path (static lz4/zstd, mimalloc): coblkConfig.cmake checks
# they still exist, coblk.pc lists them in Libs.private.
set(COBLK_CONFIG_NEEDS_LIBURING OFF)
set(COBLK_CONFIG_LINKED_FILES)
set(pc_libs)              # -lcoblk_*, users before what they use
set(pc_libs_private)
set(pc_requires_private)
set(pc_cflags)
foreach(name ublk_zram ublk storage compress runtime)
  if(TARGET coblk_${name})
    string(APPEND pc_libs " -lcoblk_${name}")
  endif()
endforeach()
if(TARGET coblk_runtime OR TARGET coblk_ublk)
  set(COBLK_CONFIG_NEEDS_LIBURING ON)
  set(pc_requires_private "liburing")
endif()
if(TARGET coblk_compress)
  list(APPEND COBLK_CONFIG_LINKED_FILES ${COBLK_LZ4_STATIC_LIBRARY} ${COBLK_ZSTD_STATIC_LIBRARY})
endif()
if(TARGET coblk_runtime AND COBLK_USE_MIMALLOC)
  list(APPEND COBLK_CONFIG_LINKED_FILES ${MIMALLOC_LIBRARY})
endif()
foreach(file IN LISTS COBLK_CONFIG_LINKED_FILES)
  string(APPEND pc_libs_private " ${file}")
endforeach()
string(APPEND pc_libs_private " -pthread")
# coblk_runtime's PUBLIC compile options (runtime/CMakeLists.txt) reach CMake
# consumers with the target; pkg-config consumers get them in Cflags.
if(TARGET coblk_runtime AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  string(APPEND pc_cflags " -foptimize-sibling-calls")
  if(COBLK_SANITIZE MATCHES "address")
    string(APPEND pc_cflags " -fno-sanitize-address-use-after-scope")
  endif()
  if(COBLK_SANITIZE MATCHES "thread")
    string(APPEND pc_cflags " -Wno-tsan")
  endif()
endif()
if(COBLK_SANITIZE)
  string(APPEND pc_libs " -fsanitize=${COBLK_SANITIZE}")
endif()

# ---- find_package(coblk) -----------------------------------------------------
set(COBLK_CONFIG_COMPONENTS)
foreach(target IN LISTS coblk_installed_libraries)
  get_target_property(name ${target} EXPORT_NAME)
  list(APPEND COBLK_CONFIG_COMPONENTS ${name})
endforeach()
install(EXPORT coblkTargets NAMESPACE coblk:: DESTINATION ${COBLK_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/coblkConfig.cmake.in
  ${PROJECT_BINARY_DIR}/coblkConfig.cmake INSTALL_DESTINATION ${COBLK_INSTALL_CMAKEDIR})
# 0.x: a new minor version may break the API, so only 0.1.* satisfies 0.1.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/coblkConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/coblkConfig.cmake ${PROJECT_BINARY_DIR}/coblkConfigVersion.cmake
        DESTINATION ${COBLK_INSTALL_CMAKEDIR})

# ---- pkg-config coblk --------------------------------------------------------
# Relocatable: the prefix is found from the .pc file's own place
# (${pcfiledir}), so `cmake --install build --prefix DIR` works for any DIR.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(pc_libdir "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(pc_includedir "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" pc_up "${pc_up}")
  set(pc_prefix "\${pcfiledir}/${pc_up}")
  set(pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
string(STRIP "${pc_libs}" pc_libs)
string(STRIP "${pc_libs_private}" pc_libs_private)
string(STRIP "${pc_cflags}" pc_cflags)
configure_file(${PROJECT_SOURCE_DIR}/cmake/coblk.pc.in ${PROJECT_BINARY_DIR}/coblk.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/coblk.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---- documentation and service files -----------------------------------------
# Install rules that pick them up when they are added:
#   docs/man/<name>.<section>   a roff man page -> share/man/man<section>/
#   cmd/systemd/<unit>         a systemd unit (.service, .socket, .target,
#                               .timer) -> ${COBLK_INSTALL_SYSTEMDUNITDIR}
# A unit naming the binary should say ${CMAKE_INSTALL_FULL_SBINDIR}/coblk.
file(GLOB coblk_man_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/man/*.[1-8])
foreach(page IN LISTS coblk_man_pages)
  string(REGEX REPLACE ".*\\.([1-8])$" "\\1" section "${page}")
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
file(GLOB coblk_systemd_units CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/cmd/systemd/*.service
     ${PROJECT_SOURCE_DIR}/cmd/systemd/*.socket ${PROJECT_SOURCE_DIR}/cmd/systemd/*.target
     ${PROJECT_SOURCE_DIR}/cmd/systemd/*.timer)
if(coblk_systemd_units)
  install(FILES ${coblk_systemd_units} DESTINATION ${COBLK_INSTALL_SYSTEMDUNITDIR})
endif()
# cmd/systemd/<unit>.in: a unit that names the binary as @COBLK_SBINDIR@,
# configured with this install's sbin directory (coblk@.service,
# coblk.target; test/cmd checks them with systemd-analyze verify).
if(TARGET coblk)
  set(COBLK_SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})
  file(GLOB coblk_systemd_templates CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/cmd/systemd/*.in)
  foreach(template IN LISTS coblk_systemd_templates)
    get_filename_component(unit ${template} NAME_WLE)
    configure_file(${template} ${PROJECT_BINARY_DIR}/cmd/systemd/${unit} @ONLY)
    install(FILES ${PROJECT_BINARY_DIR}/cmd/systemd/${unit} DESTINATION ${COBLK_INSTALL_SYSTEMDUNITDIR})
  endforeach()
endif()
