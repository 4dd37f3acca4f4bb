#!/usr/bin/env bash
# Installs the system packages Spillway's local engines and tests use, on
# Debian/Ubuntu (run as root, or with sudo). Safe to run again: it installs
# only what is missing.
#   espeak-ng                         local speech synthesis (local/tts-*)
#   pocketsphinx, pocketsphinx-en-us  local transcription (local/stt-*)
#   ffmpeg                            opus/aac/flac output, m4a and other input formats
#   sox                               test audio (speech mixed with noise for the VAD tests)
#   redis-server                      shared state across instances (tests start their own)
#   curl                              used by the tests as a real client
#   chromium                          the playground's browser test (Playwright drives it)
#   openssl                           self-signed certificates for the TLS tests
set -euo pipefail
PACKAGES=(espeak-ng pocketsphinx pocketsphinx-en-us ffmpeg sox redis-server curl chromium openssl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
