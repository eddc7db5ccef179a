#!/usr/bin/env bash
# Sourced by test.sh: Debian's Chromium for the browser test (tests/test_browser.py), installed with apt-get
# when missing and the user is root. Playwright drives this executable; its own browser download is not used.
# Without root (or without apt-get) nothing is installed and the browser test is skipped with the reason.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian's chromium for the browser test (apt-get)..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
      >/tmp/avbias-chromium-install.log 2>&1 \
      && echo "[setup] chromium $(chromium --version 2>/dev/null | awk '{print $2}') installed" \
      || echo "[setup] chromium could not be installed (see /tmp/avbias-chromium-install.log): the browser test will be skipped" >&2
  else
    echo "[setup] no chromium and not root: the browser test will be skipped (apt-get install chromium to run it)" >&2
  fi
fi
