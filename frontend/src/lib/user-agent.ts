// A session's User-Agent in words ("Firefox 128 on Linux"), for the account page. Parsed here,
// not on the server: it is only for showing, and the raw string stays available (as a title).
// Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", Android says "Linux".

const BROWSERS: [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/\b(?:OPR|Opera)\/(\d+)/, 'Opera'],
  [/\b(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
  [/\bHeadlessChrome\/(\d+)/, 'Chrome (headless)'],
  [/\b(?:Chrome|CriOS)\/(\d+)/, 'Chrome'],
  [/\bVersion\/(\d+)(?:\.\d+)*.*\bSafari\//, 'Safari'],
];

const SYSTEMS: [RegExp, string][] = [
  [/\bWindows\b/, 'Windows'],
  [/\bAndroid\b/, 'Android'],
  [/\b(?:iPhone|iPad|iPod)\b/, 'iOS'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b|\bX11\b/, 'Linux'],
];

// Scripts and tools name themselves first: "curl/8.5.0", "python-requests/2.31".
const TOOLS: [RegExp, string][] = [
  [/^curl\/([\d.]+)/i, 'curl'],
  [/^Wget\/([\d.]+)/i, 'Wget'],
  [/^python-requests\/([\d.]+)/i, 'Python requests'],
  [/^python-httpx\/([\d.]+)/i, 'Python httpx'],
  [/^Python-urllib\/([\d.]+)/i, 'Python'],
  [/^PostmanRuntime\/([\d.]+)/i, 'Postman'],
  [/^node(?:-fetch)?(?:\/([\d.]+))?/i, 'Node.js'],
  [/^Werkzeug\/([\d.]+)/i, 'Werkzeug test client'],
];

export function describeClient(userAgent: string | null | undefined): string {
  const ua = (userAgent ?? '').trim();
  if (!ua) return 'unknown client';
  for (const [pattern, name] of TOOLS) {
    const found = ua.match(pattern);
    if (found) return found[1] ? `${name} ${found[1]}` : name;
  }
  const system = SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1];
  for (const [pattern, name] of BROWSERS) {
    const found = ua.match(pattern);
    if (found) return `${name} ${found[1]}${system ? ` on ${system}` : ''}`;
  }
  // Something else: its first product token, shortened, rather than nothing.
  const first = ua.split(/\s+/)[0];
  return first.length > 40 ? `${first.slice(0, 40)}…` : first;
}
