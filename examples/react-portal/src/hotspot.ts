// What the MikroTik hotspot's login.html hands over in the query string (portal/mikrotik/login.html):
// routerId, mac, ip, link-login-only, link-orig and error, each "$(name)" left unexpanded when the
// hotspot had no value for it.
export interface HotspotVisit {
  routerId: string | null;
  mac: string | null;
  ip: string | null;
  loginUrl: string | null;
  originalUrl: string | null;
  error: string | null;
}

function clean(value: string | null): string | null {
  const trimmed = (value ?? "").trim();
  return trimmed && trimmed !== "---" && !trimmed.startsWith("$(") ? trimmed : null;
}

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

/**
 * link-login-only as given, when it points at one of the operator's hotspots; otherwise null.
 *
 * The page's URL is anyone's to craft, and an access code posted to a stranger's host is a code given
 * away: as the built-in portal does with Router.hotspotAddress, only a registered address is trusted.
 */
export function trustedLoginUrl(link: string | null, hotspotAddresses: string[]): string | null {
  if (!link || /[\\\s\x00-\x1f\x7f]/.test(link)) return null;
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return null;
  }
  if (!(url.protocol in DEFAULT_PORTS) || url.username || url.password) return null;
  const port = url.port || DEFAULT_PORTS[url.protocol];
  const matches = hotspotAddresses.some((address) => {
    const [host, addressPort] = address.split(/:(?=\d+$)/);
    return host === url.hostname && (addressPort ?? DEFAULT_PORTS[url.protocol]) === port;
  });
  return matches ? url.href : null;
}

export function readHotspotVisit(search: string, hotspotAddresses: string[]): HotspotVisit {
  const params = new URLSearchParams(search);
  return {
    routerId: clean(params.get("routerId") ?? params.get("router")),
    mac: clean(params.get("mac")),
    ip: clean(params.get("ip")),
    loginUrl: trustedLoginUrl(clean(params.get("link-login-only")), hotspotAddresses),
    originalUrl: clean(params.get("link-orig") ?? params.get("dst")),
    error: clean(params.get("error")),
  };
}

/** Logs the device in the way the hotspot's own form does: a POST of the code as username and password. */
export function postLogin(loginUrl: string, code: string, originalUrl: string | null): void {
  const form = document.createElement("form");
  form.method = "post";
  form.action = loginUrl;
  form.hidden = true;
  for (const [name, value] of [["username", code], ["password", code], ["dst", originalUrl ?? ""]]) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}
