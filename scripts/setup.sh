# Sourced by scripts/demo and scripts/test: installs the Debian packages tapegrad needs when any
# is missing, and sets the build settings they share.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(cmake g++ make libxtensor-dev xtl-dev libxsimd-dev libopenblas-dev libxsmm-dev doctest-dev zlib1g-dev libcli11-dev)
JOBS="${JOBS:-$(nproc)}"

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

ensure_packages() {
  local missing
  missing=$(missing_packages "$@" | tr '\n' ' ')
  [ -z "${missing// /}" ] && return 0
  echo "tapegrad: installing missing Debian packages: $missing" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing; } >&2; then
    echo "tapegrad: could not install: $missing" >&2
    echo "tapegrad: install them with: apt-get install -y $missing" >&2
    exit 1
  fi
}

ensure_packages "${PACKAGES[@]}"
# The tests also check that NumPy reads the files tapegrad writes, that clang builds the library,
# the GradBench tool (JSON through nlohmann-json) and data-parallel training over Open MPI.
TEST_PACKAGES=(python3-numpy clang nlohmann-json3-dev libopenmpi-dev openmpi-bin)
# The demo trains on Fashion-MNIST and draws its loss curve and its graph.
DEMO_PACKAGES=(dataset-fashion-mnist gnuplot-nox graphviz)
# The character-level LSTM trains on the fortunes' text.
CHAR_LSTM_PACKAGES=(fortunes gnuplot-nox)
