# Tools the tests use besides PostgreSQL, installed when missing on a fresh
# Debian/Ubuntu/Fedora machine or macOS with Homebrew. Sourced by scripts/test.

# zbarimg decodes the ticket QR codes in tests/e2e/events.rs: an independent decoder,
# so the test proves the PNG scans, not that guildops agrees with itself.
ensure_zbarimg() {
  if command -v zbarimg >/dev/null; then return 0; fi
  echo "zbarimg not found; installing it (the events tests decode QR codes with it)" >&2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zbar-tools >/dev/null 2>&1 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zbar-tools >/dev/null; }
  elif [ "$(id -u)" = 0 ] && command -v dnf >/dev/null; then
    dnf install -y -q zbar
  elif command -v brew >/dev/null; then
    brew install zbar
  else
    echo "cannot install zbarimg here: install zbar-tools (Debian) or zbar; the events tests need it" >&2
    return 1
  fi
  command -v zbarimg >/dev/null
}

# Headless Chromium and its WebDriver, for the door page test in
# tests/e2e/events_page.rs.
ensure_chromedriver() {
  if command -v chromedriver >/dev/null; then return 0; fi
  echo "chromedriver not found; installing chromium and chromium-driver (the door page test drives them)" >&2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
  elif [ "$(id -u)" = 0 ] && command -v dnf >/dev/null; then
    dnf install -y -q chromium chromedriver
  elif command -v brew >/dev/null; then
    brew install --cask chromedriver
  else
    echo "cannot install chromedriver here: install chromium and chromium-driver (Debian); the door page test needs them" >&2
    return 1
  fi
  command -v chromedriver >/dev/null
}
