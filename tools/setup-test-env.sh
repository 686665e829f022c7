#!/usr/bin/env bash
# Makes sure the tests can find WebGPU and a browser: Debian's chromium package brings both
# SwiftShader's Vulkan driver (WebGPU in Node without a GPU) and the browser for the app tests.
# Installs it with apt-get when missing (root only); otherwise says what to run.
set -euo pipefail
if [ -f /usr/lib/chromium/vk_swiftshader_icd.json ] && [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup-test-env: installing Debian's chromium (SwiftShader WebGPU driver + browser)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
  exit 0
fi
if ls /dev/nvidia0 /dev/dri/renderD* >/dev/null 2>&1; then
  echo "setup-test-env: no chromium/SwiftShader, using the machine's GPU driver" >&2
  exit 0
fi
echo "setup-test-env: no GPU and no SwiftShader. Run as root: apt-get install chromium" >&2
exit 1
