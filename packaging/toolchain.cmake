# Cross-compiling graph2mqtt for another Debian architecture with Debian's own cross toolchain
# (crossbuild-essential-ARCH) and the ARCH's -dev packages installed beside the native ones
# (multiarch: dpkg --add-architecture ARCH). scripts/package --arch ARCH does all of it:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=packaging/toolchain.cmake -DG2M_DEB_ARCH=arm64
# G2M_DEB_ARCH (or the environment variable of that name): arm64, armhf or amd64.
if(NOT G2M_DEB_ARCH)
  set(G2M_DEB_ARCH "$ENV{G2M_DEB_ARCH}")
endif()
# try_compile projects read this file again: hand them the architecture.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES G2M_DEB_ARCH)

if(G2M_DEB_ARCH STREQUAL "arm64")
  set(G2M_TRIPLET aarch64-linux-gnu)
  set(CMAKE_SYSTEM_PROCESSOR aarch64)
  set(G2M_QEMU qemu-aarch64-static)
elseif(G2M_DEB_ARCH STREQUAL "armhf")
  set(G2M_TRIPLET arm-linux-gnueabihf)
  set(CMAKE_SYSTEM_PROCESSOR armv7l)
  set(G2M_QEMU qemu-arm-static)
elseif(G2M_DEB_ARCH STREQUAL "amd64")
  set(G2M_TRIPLET x86_64-linux-gnu)
  set(CMAKE_SYSTEM_PROCESSOR x86_64)
  set(G2M_QEMU qemu-x86_64-static)
else()
  message(FATAL_ERROR "packaging/toolchain.cmake: G2M_DEB_ARCH must be arm64, armhf or amd64, "
                      "not '${G2M_DEB_ARCH}'")
endif()

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${G2M_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${G2M_TRIPLET}-g++)
# Debian's multiarch layout: headers in /usr/include(/TRIPLET), libraries and CMake packages in
# /usr/lib/TRIPLET. CMake searches lib/<CMAKE_LIBRARY_ARCHITECTURE> and never the build
# machine's /usr/lib/x86_64-linux-gnu for the target.
set(CMAKE_LIBRARY_ARCHITECTURE ${G2M_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# The cross-built programs run under qemu-user (qemu-user-static); Debian's multiarch loader and
# libraries (/lib/ld-linux-*.so, /usr/lib/TRIPLET) are where the binary expects them.
set(CMAKE_CROSSCOMPILING_EMULATOR ${G2M_QEMU})
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${G2M_DEB_ARCH})
# FindCURL and FindOpenSSL ask pkg-config first: it must read the target's .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${G2M_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
