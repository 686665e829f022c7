#!/usr/bin/env bash
# Provides the two software WebGPU adapters the tests run on, and the browser for the app tests:
#
# - Mesa's lavapipe (the default test adapter: 2-7x faster than SwiftShader here, with
#   shader-f16). Dawn refuses the Mesa 22.3 of Debian 12, so the newer driver is fetched from
#   the codename's backports suite, through the mirror the machine's apt sources already name,
#   with a private apt configuration: nothing in the system's sources or installed packages
#   changes. The .debs are unpacked into .cache/lavapipe/ (git-ignored) with an ICD file that
#   points at the unpacked driver; src/platform/node/adapter-choice.ts finds it there.
# - SwiftShader, from Debian's chromium package (with the browser itself), and the Vulkan
#   loader libvulkan1 that Dawn opens. Installed with apt-get when missing (root only).
#
# Idempotent and quiet: when everything is in place it only checks a few files. Set
# WEBSPARK_SKIP_LAVAPIPE=1 to skip lavapipe (the tests then run on SwiftShader).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "setup-test-env: $*" >&2; }

# --- SwiftShader, the browser and the Vulkan loader (system packages) -------------------------
vulkan_loader_present() { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; }
if [ -f /usr/lib/chromium/vk_swiftshader_icd.json ] && [ -x /usr/bin/chromium ] && vulkan_loader_present; then
  :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing Debian's chromium (SwiftShader WebGPU driver + browser) and libvulkan1 (the Vulkan loader Dawn opens)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium libvulkan1 >/dev/null
elif ls /dev/nvidia0 /dev/dri/renderD* >/dev/null 2>&1; then
  say "no chromium/SwiftShader, using the machine's GPU driver"
else
  say "no GPU and no SwiftShader. Run as root: apt-get install chromium libvulkan1"
  exit 1
fi

# --- lavapipe, unpacked into the project's cache --------------------------------------------
[ "${WEBSPARK_SKIP_LAVAPIPE:-}" = 1 ] && exit 0
cache="$root/.cache/lavapipe"
icd="$cache/lvp_icd.json"
stamp="$cache/complete"
if [ -f "$stamp" ] && [ -f "$icd" ] && [ -f "$(cat "$stamp")" ]; then
  exit 0
fi
cannot() {
  say "lavapipe is not available ($1); the tests will run on SwiftShader, 2-7x slower."
  say "To retry: rm -rf .cache/lavapipe && bash tools/setup-test-env.sh"
  exit 0
}
[ "$(uname -m)" = x86_64 ] || cannot "only x86_64 Debian is supported by this script"
command -v apt-get >/dev/null && command -v dpkg >/dev/null || cannot "no apt-get/dpkg: not a Debian system"
codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
[ -n "$codename" ] || cannot "no VERSION_CODENAME in /etc/os-release"

# The mirror of the codename's own suite, as the configured sources name it (never a fixed host).
mirror="$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 2>/dev/null |
  awk -v c="$codename" '$1 == c { print $2; exit }')"
[ -n "$mirror" ] || cannot "the apt sources name no mirror for the suite '$codename'"

say "fetching Mesa's lavapipe from $codename-backports into .cache/lavapipe (once)..."
rm -rf "$cache"
work="$cache/apt"
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs" "$cache/root" "$cache/tools"
printf 'deb %s %s main\ndeb %s %s-backports main\n' "$mirror" "$codename" "$mirror" "$codename" >"$work/sources.list"
apt_private=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work" -o "Dir::Cache::archives=$work/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=$(id -un)" -qq
)
apt-get "${apt_private[@]}" update >"$work/update.log" 2>&1 || cannot "apt-get update failed: see $work/update.log"

# What the driver needs beyond this machine's installed packages, as apt itself resolves it
# (a dry run against the real dpkg status; nothing is installed).
packages="$(apt-get "${apt_private[@]}" -s install -t "$codename-backports" mesa-vulkan-drivers 2>"$work/resolve.log" |
  awk '/^Inst /{ v = $0; sub(/.*\(/, "", v); split(v, a, " "); print $2 "=" a[1] }')" ||
  cannot "apt could not resolve mesa-vulkan-drivers from $codename-backports: see $work/resolve.log"
version="$(echo "$packages" | tr ' ' '\n' | sed -n 's/^mesa-vulkan-drivers=//p')"
[ -n "$version" ] || cannot "no mesa-vulkan-drivers in $codename-backports"
# Dawn refuses Mesa before 24 (22.3 lacks shaderUniform*ArrayDynamicIndexing).
dpkg --compare-versions "$version" ge 24 || cannot "mesa-vulkan-drivers $version is older than 24, which Dawn needs"

# shellcheck disable=SC2086 # one package=version per word
(cd "$work/debs" && apt-get "${apt_private[@]}" download $packages patchelf >"$work/download.log" 2>&1) ||
  cannot "downloading the packages failed: see $work/download.log"
for deb in "$work/debs"/*.deb; do
  case "$deb" in
    */patchelf_*) dpkg-deb -x "$deb" "$cache/tools" ;;
    *) dpkg-deb -x "$deb" "$cache/root" ;;
  esac
done
lib="$(find "$cache/root" -name libvulkan_lvp.so -print -quit)"
[ -n "$lib" ] || cannot "the unpacked mesa-vulkan-drivers has no libvulkan_lvp.so"
# The driver's own libraries (libdrm of the same suite) before the system's older ones.
"$cache/tools/usr/bin/patchelf" --set-rpath '$ORIGIN' "$lib" || cannot "patchelf failed on $lib"
missing="$(ldd "$lib" | awk '/not found/ { print $1 }' | tr '\n' ' ')"
[ -z "$missing" ] || cannot "the driver needs libraries this machine lacks: $missing"
printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.4.0" } }\n' "$lib" >"$icd"
rm -rf "$work/lists" "$work/archives" "$work/debs"
echo "$lib" >"$stamp"
say "lavapipe (mesa-vulkan-drivers $version) is ready: $icd"
