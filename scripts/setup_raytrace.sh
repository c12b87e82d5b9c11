#!/usr/bin/env bash
# Install the optional ray-tracing extra (Sionna RT) into the active Python environment.
#
#   . .venv/bin/activate && bash scripts/setup_raytrace.sh
#
# * Dr.Jit (Sionna's JIT) crashes with the LLVM 15 these Debian 12 machines ship; it needs
#   Debian's libllvm19. This script installs it with apt-get when it is missing (needs root or
#   sudo) and prints the DRJIT_LIBLLVM_PATH to export. wifidiff_fast.raytrace sets that
#   variable itself (only when unset) to the same path, so exporting it is optional.
# * Idempotent: running it again changes nothing once everything is in place.
# * Env overrides: PYTHON (default: python in PATH), SIONNA_RT_SPEC (default: sionna-rt>=1.0).
set -euo pipefail

PYTHON="${PYTHON:-python}"
SPEC="${SIONNA_RT_SPEC:-sionna-rt>=1.0}"
find_llvm19() {
    local f
    for f in /usr/lib/*-linux-gnu/libLLVM-19.so /usr/lib/*-linux-gnu/libLLVM.so.19.1 /usr/lib/llvm-19/lib/libLLVM-19.so; do
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    dpkg -L libllvm19 2>/dev/null | grep -E '/libLLVM(-19\.so|\.so\.19[.0-9]*)$' | head -n1
}
LLVM_LIB="$(find_llvm19 || true)"

if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ]; then
    echo "setup_raytrace: warning: no virtual environment is active; pip installs into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
fi

# 1) libllvm19 ------------------------------------------------------------------------------
if [ -n "$LLVM_LIB" ] && [ -e "$LLVM_LIB" ]; then
    echo "setup_raytrace: libllvm19 present ($LLVM_LIB)"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            echo "setup_raytrace: libllvm19 is missing and this is not root (and no sudo):" >&2
            echo "  run 'apt-get install libllvm19' as root, then rerun this script." >&2
            exit 1
        fi
    fi
    echo "setup_raytrace: installing Debian libllvm19 ..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libllvm19
    LLVM_LIB="$(find_llvm19 || true)"
    [ -n "$LLVM_LIB" ] && [ -e "$LLVM_LIB" ] || { echo "setup_raytrace: libllvm19 installed but libLLVM-19.so not found" >&2; exit 1; }
fi

# 2) sionna-rt ------------------------------------------------------------------------------
if DRJIT_LIBLLVM_PATH="$LLVM_LIB" "$PYTHON" -c 'import sionna.rt' >/dev/null 2>&1; then
    echo "setup_raytrace: sionna-rt already importable ($("$PYTHON" -c 'import importlib.metadata as m; print(m.version("sionna-rt"))'))"
else
    echo "setup_raytrace: pip installing $SPEC ..."
    # (grep drops pip's noise about absent local mirror folders)
    "$PYTHON" -m pip install --quiet "$SPEC" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi

# 3) smoke test: Dr.Jit's LLVM backend must come up with libllvm19 and trace a tiny map --------
DRJIT_LIBLLVM_PATH="$LLVM_LIB" "$PYTHON" - <<'PY'
import mitsuba as mi
mi.set_variant("llvm_ad_mono_polarized")
import sionna.rt as rt
scene = rt.Scene()
scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
scene.rx_array = scene.tx_array
scene.add(rt.Transmitter("tx", position=mi.Point3f(0, 0, 10)))
rm = rt.RadioMapSolver()(scene, center=mi.Point3f(0, 0, 1.5), orientation=mi.Point3f(0, 0, 0),
                         size=mi.Point2f(32, 32), cell_size=mi.Point2f(2, 2), samples_per_tx=10000)
assert rm.path_gain.numpy().shape == (1, 16, 16) and rm.path_gain.numpy().max() > 0
print(f"setup_raytrace: sionna-rt {rt.__version__} traced a test map on Dr.Jit's LLVM backend")
PY

echo
echo "export DRJIT_LIBLLVM_PATH=$LLVM_LIB"
