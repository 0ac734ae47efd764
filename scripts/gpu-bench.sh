#!/usr/bin/env bash
# One command on a machine with a GPU: check the Vulkan loader and driver, run the kernel
# tests of the GPU variants (cooperative-matrix ones included), then `bench --full --json`
# and the kernel figures, everything written into one folder. Meant to end in under
# 8 minutes on a datacenter GPU.
#
#   scripts/gpu-bench.sh [OUT_DIR]            builds with cargo (release) first
#   VIDEOSSM_PREBUILT=DIR scripts/gpu-bench.sh OUT_DIR
#       uses DIR/videossm and DIR/kernels (the `tests/kernels` binary, from
#       `cargo test --release --test kernels --no-run`) on a machine without Rust.
#
# Extra `bench --full` flags can be given in VIDEOSSM_FULL_ARGS (e.g. "--peak-tflops 67,990").
set -uo pipefail
out=${1:-gpu-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
log() { echo "[gpu-bench] $*" | tee -a "$out/summary.txt"; }
root=$(cd "$(dirname "$0")/.." && pwd)

# 1. The Vulkan loader and a driver for the GPU.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    log "no Vulkan loader (libvulkan.so.1): install it (Debian/Ubuntu: apt-get install libvulkan1; Fedora: dnf install vulkan-loader)"
    exit 2
fi
icds=$(ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ /usr/local/nvidia/share/vulkan/icd.d/ 2>/dev/null | grep -c '\.json$')
log "Vulkan loader found; $icds driver manifest(s) in the usual folders"
if [ "$icds" = 0 ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    log "no Vulkan driver manifest: install your GPU's Vulkan driver (NVIDIA: the proprietary driver's libnvidia-gl / nvidia_icd.json; AMD/Intel: mesa-vulkan-drivers), or point VK_DRIVER_FILES at its .json"
    exit 2
fi

# 2. The binaries.
if [ -n "${VIDEOSSM_PREBUILT:-}" ]; then
    bin=$VIDEOSSM_PREBUILT/videossm
    kernels=$VIDEOSSM_PREBUILT/kernels
else
    (cd "$root" && cargo build --release -p videossm && cargo test --release --test kernels --no-run) >"$out/build.log" 2>&1 || { log "build failed: $out/build.log"; exit 1; }
    bin=$root/target/release/videossm
    kernels=$(ls -t "$root"/target/release/deps/kernels-* | grep -v '\.d$' | head -1)
fi
for b in "$bin" "$kernels"; do
    [ -x "$b" ] || { log "missing binary $b"; exit 1; }
done

"$bin" info >"$out/info.txt" 2>&1
log "adapters: $(grep -c '^\[' "$out/info.txt") listed (see info.txt)"
if ! grep -Eq 'DiscreteGpu|IntegratedGpu' "$out/info.txt"; then
    log "warning: no hardware GPU adapter, only software ones: the figures will be a CPU's"
fi

# 3. The kernel tests: on a GPU adapter the models choose the GPU variants themselves,
# and each family's tests also force every variant (cooperative matrix where offered).
export VIDEOSSM_BACKEND=${VIDEOSSM_BACKEND:-vulkan}
timeout 240 "$kernels" --test-threads 1 >"$out/kernel-tests.txt" 2>&1
log "kernel tests: exit $? ($(grep -E '^test result' "$out/kernel-tests.txt" | tail -1))"

# 4. The full-size chunk and the kernel figures.
# shellcheck disable=SC2086
timeout 300 "$bin" bench --full --json ${VIDEOSSM_FULL_ARGS:-} >"$out/full.json" 2>"$out/full.log"
log "bench --full: exit $?"
timeout 120 "$bin" bench --json --chunks 8 >"$out/bench.json" 2>"$out/bench.log"
log "bench: exit $?"
# Beside the committed lavapipe run (at a small frame: the table says the configs differ).
if [ -s "$out/full.json" ] && [ -f "$root/docs/bench/lavapipe-full.json" ]; then
    "$bin" bench --compare "$root/docs/bench/lavapipe-full.json" "$out/full.json" >"$out/compare.md" 2>&1
fi
log "done: $out"
