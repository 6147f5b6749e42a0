// Debian's Chromium as every browser script and test here starts it: the binary (CHROMIUM_BIN, or CHROMIUM for
// the capture scripts, overrides it) and the flags that keep it headless, offline from Google's services and quiet.
export const CHROMIUM = process.env.CHROMIUM_BIN ?? process.env.CHROMIUM ?? "/usr/bin/chromium";

export const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
