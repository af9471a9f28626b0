#!/usr/bin/env bash
# The packaging tests: aioc installed into a prefix and used from there,
# and aioc added to another project with add_subdirectory().
#
#   consumer-run.sh install          BUILD PREFIX  install BUILD, check the files
#   consumer-run.sh find_package     SRC PREFIX WORK   CMake consumer, versions
#   consumer-run.sh pkg_config       SRC PREFIX WORK   cc with pkg-config's flags
#   consumer-run.sh man              PREFIX            the man pages
#   consumer-run.sh add_subdirectory SRC WORK          the source tree as a part
#
# Environment (set by tests/CMakeLists.txt): CMAKE, CC, GENERATOR, VERSION
# (X.Y.Z), SOVERSION, LIBDIR (relative to the prefix), JOBS.
set -euo pipefail

mode=$1
shift
: "${CMAKE:=cmake}" "${CC:=cc}" "${GENERATOR:=Unix Makefiles}" "${JOBS:=2}"

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*"; exit 1; }

configure() { # configure SRC BUILD [ARGS...]
  local src=$1 build=$2
  shift 2
  "$CMAKE" -S "$src" -B "$build" -G "$GENERATOR" -DCMAKE_C_COMPILER="$CC" \
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON "$@"
}

case $mode in
install)
  build=$1 prefix=$2
  rm -rf "$prefix"
  step "cmake --install $build --prefix $prefix"
  "$CMAKE" --install "$build" --prefix "$prefix" >/dev/null
  lib=$prefix/$LIBDIR
  for f in include/aioc.h "$LIBDIR/libaioc.a" "$LIBDIR/libaioc.so" \
           "$LIBDIR/libaioc.so.$SOVERSION" "$LIBDIR/libaioc.so.$VERSION" \
           "$LIBDIR/cmake/aioc/aiocConfig.cmake" \
           "$LIBDIR/cmake/aioc/aiocConfigVersion.cmake" \
           "$LIBDIR/cmake/aioc/aiocTargets.cmake" \
           "$LIBDIR/pkgconfig/aioc.pc" share/doc/aioc/LICENSE \
           share/man/man3/aioc_gather.3; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
    echo "installed: $f"
  done
  src_headers=$(cd "$(dirname "$0")/../../include/aioc" && ls)
  inst_headers=$(cd "$prefix/include/aioc" && ls)
  [ "$src_headers" = "$inst_headers" ] || fail "headers differ: $inst_headers"
  soname=$(readelf -d "$lib/libaioc.so.$VERSION" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  [ "$soname" = "libaioc.so.$SOVERSION" ] || fail "soname $soname"
  echo "soname: $soname"
  grep -q 'find_dependency(Threads)' "$lib/cmake/aioc/aiocConfig.cmake" ||
    fail "aiocConfig.cmake does not find Threads"
  ;;

find_package)
  src=$1 prefix=$2 work=$3
  rm -rf "$work"
  IFS=. read -r major minor patch <<<"$VERSION"
  step "find_package(aioc $major.$minor CONFIG REQUIRED) from $prefix"
  configure "$src/tests/consumer" "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DAIOC_REQUEST="$major.$minor" -DAIOC_EXPECT_PREFIX="$prefix"
  "$CMAKE" --build "$work/build" -j "$JOBS"
  step "run the consumers (shared library found through the build RPATH)"
  "$work/build/consumer_shared"
  "$work/build/consumer_static"
  "$work/build/consumer_shared" | grep -q "from $prefix/" ||
    fail "consumer_shared does not use $prefix's library"

  step "version compatibility (SameMinorVersion)"
  probe() { configure "$src/tests/consumer" "$work/probe" -Uaioc_DIR \
              -DCMAKE_PREFIX_PATH="$prefix" -DAIOC_PROBE=ON -DAIOC_REQUEST="$1"; }
  probe "$VERSION" >/dev/null || fail "find_package(aioc $VERSION) failed"
  echo "accepted: $VERSION"
  rejected=("$major.$((minor + 1))" "$((major + 1)).0")
  [ "$minor" -gt 0 ] && rejected+=("$major.$((minor - 1))")
  [ "$patch" -lt 99 ] && rejected+=("$major.$minor.$((patch + 1))")
  for v in "${rejected[@]}"; do
    if probe "$v" >"$work/probe.log" 2>&1; then fail "find_package(aioc $v) accepted $VERSION"; fi
    grep -q "requested version \"$v\"" "$work/probe.log" ||
      { cat "$work/probe.log"; fail "find_package(aioc $v) failed for another reason"; }
    echo "rejected: $v"
  done
  ;;

pkg_config)
  src=$1 prefix=$2 work=$3
  rm -rf "$work"
  mkdir -p "$work"
  export PKG_CONFIG_PATH=$prefix/$LIBDIR/pkgconfig
  unset PKG_CONFIG_LIBDIR
  step "pkg-config from $PKG_CONFIG_PATH"
  [ "$(pkg-config --modversion aioc)" = "$VERSION" ] ||
    fail "pkg-config --modversion: $(pkg-config --modversion aioc)"
  flags=$(pkg-config --cflags --libs aioc)
  echo "pkg-config --cflags --libs aioc: $flags"
  static_libs=$(pkg-config --static --libs aioc)
  echo "pkg-config --static --libs aioc: $static_libs"
  for l in -lpthread -lm -lcares -lcurl -lssl -lcrypto; do
    case " $static_libs " in *" $l "*) ;; *) fail "--static does not add $l" ;; esac
  done
  defs=(-DCONSUMER_VERSION="\"$VERSION\"")
  cc_consumer() { # cc_consumer OUT SHARED FLAGS...
    local out=$1 shared=$2
    shift 2
    # shellcheck disable=SC2086
    "$CC" -Wall -Wextra -Werror -o "$work/$out" "$src/tests/consumer/consumer.c" \
      "${defs[@]}" -DCONSUMER_SHARED="$shared" "$@" -ldl
  }
  # shellcheck disable=SC2086
  cc_consumer with_ld_path 1 $flags
  step "run with LD_LIBRARY_PATH"
  LD_LIBRARY_PATH=$prefix/$LIBDIR "$work/with_ld_path" | tee "$work/out"
  grep -q "from $prefix/" "$work/out" || fail "not $prefix's library"
  # shellcheck disable=SC2086
  cc_consumer with_rpath 1 $flags -Wl,-rpath,"$prefix/$LIBDIR"
  step "run with an rpath"
  env -u LD_LIBRARY_PATH "$work/with_rpath" | tee "$work/out"
  grep -q "from $prefix/" "$work/out" || fail "not $prefix's library"
  # shellcheck disable=SC2086
  cc_consumer static 0 $(pkg-config --cflags aioc) "$prefix/$LIBDIR/libaioc.a" \
    $(pkg-config --static --libs-only-l aioc | sed 's/-laioc//')
  step "run the static link"
  "$work/static"
  ;;

man)
  prefix=$1
  man_dir=$prefix/share/man
  command -v groff >/dev/null || { echo "no groff: skipped"; exit 77; }
  command -v man >/dev/null || { echo "no man: skipped"; exit 77; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  step "MANPATH=$man_dir man -w aioc_gather"
  found=$(MANPATH=$man_dir man -w aioc_gather)
  [ "$found" = "$man_dir/man3/aioc_gather.3" ] || fail "man -w: $found"
  echo "$found"
  step "every public function has a page"
  for fn in $(cat "$prefix"/include/aioc/*.h | tr '\n' ' ' |
              grep -o 'AIOC_API [^;(#]*aioc_[a-z0-9_]*(' |
              sed 's/.*[ *]\(aioc_[a-z0-9_]*\)($/\1/'); do
    [ -f "$man_dir/man3/$fn.3" ] || fail "no page for $fn"
  done
  MANPATH=$man_dir MANPAGER=cat MANWIDTH=80 man aioc_condition_release >"$tmp/man.out" 2>&1
  grep -q 'aioc_condition_release' "$tmp/man.out" || fail "aioc_condition_release"
  step "man -l renders without warnings"
  MANWIDTH=80 man --warnings -l "$man_dir/man3/aioc_gather.3" 2>"$tmp/man.err" |
    grep -q 'RETURN VALUE' || fail "man -l aioc_gather.3"
  [ ! -s "$tmp/man.err" ] || { cat "$tmp/man.err"; fail "man -l warnings"; }
  step "groff -man -Tutf8 -ww -z on every page"
  pages=() links=0
  for page in "$man_dir"/man3/*.3; do
    IFS= read -r first <"$page" || true
    if [[ $first == ".so "* ]]; then
      [ -f "$man_dir/${first#.so }" ] || fail "$page: .so to a missing page"
      links=$((links + 1))
    else
      pages+=("$page")
    fi
  done
  n=${#pages[@]}
  [ "$n" -gt 100 ] || fail "only $n pages"
  for s in NAME SYNOPSIS DESCRIPTION 'RETURN VALUE' 'SEE ALSO'; do
    missing=$(grep -L "^\.SH $s\$" "${pages[@]}" || true)
    [ -z "$missing" ] || fail "no $s section in: $missing"
  done
  err=$(groff -man -Tutf8 -ww -z "${pages[@]}" 2>&1)
  [ -z "$err" ] || fail "groff: $err"
  echo "$n pages, $links .so pages: clean"
  step "the tools' pages (section 1)"
  page=$man_dir/man1/aioc-ps.1
  [ -f "$page" ] || fail "not installed: $page"
  err=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$err" ] || fail "groff: $err"
  MANPATH=$man_dir MANPAGER=cat MANWIDTH=80 man 1 aioc-ps >"$tmp/man1.out" 2>&1
  grep -q 'EXIT STATUS' "$tmp/man1.out" || fail "man 1 aioc-ps"
  echo "aioc-ps.1: clean"
  ;;

add_subdirectory)
  src=$1 work=$2
  rm -rf "$work"
  step "add_subdirectory($src) with AIOC_STATIC_TLS_IE OFF"
  configure "$src/tests/consumer" "$work/build" -DAIOC_SOURCE_DIR="$src"
  "$CMAKE" --build "$work/build" -j "$JOBS"
  step "run the consumers"
  "$work/build/consumer_shared"
  "$work/build/consumer_static"
  step "the static library in a dlopen()ed module"
  "$work/build/consumer_plugin_host" "$work/build/libconsumer_plugin.so"
  step "no install rules"
  "$CMAKE" --install "$work/build" --prefix "$work/inst" >/dev/null
  if [ -d "$work/inst" ] && [ -n "$(find "$work/inst" -type f)" ]; then
    fail "add_subdirectory(aioc) installed: $(find "$work/inst" -type f)"
  fi
  echo "nothing installed"
  ;;

*)
  fail "unknown mode $mode"
  ;;
esac
echo "passed"
