// The deployment's settings, read at startup from config.json beside index.html, so one build can be
// pointed at any server without rebuilding.
export interface PortalConfig {
  /** The API's GraphQL endpoint, absolute or relative to this page ("/graphql/" behind Vite's proxy). */
  apiUrl: string;
  /** The operator's public key (32 hex characters): not a secret, it sits in every router's login.html. */
  publicKey: string;
  /** The router this portal sells for, unless the hotspot names one in the query string. */
  routerId?: string;
  /** The WebSocket endpoint; by default apiUrl with ws:// or wss://. */
  wsUrl?: string;
  /**
   * The operator's hotspot addresses ("host" or "host:port", as Router.hotspotAddress): the only places
   * an access code is posted to. Without them the customer types the code on the hotspot's page.
   */
  hotspotAddresses?: string[];
}

export interface ResolvedConfig extends PortalConfig {
  apiUrl: string;
  wsUrl: string;
  hotspotAddresses: string[];
}

export async function loadConfig(): Promise<ResolvedConfig> {
  const response = await fetch(new URL("config.json", document.baseURI), { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = (await response.json()) as PortalConfig;
  if (!config.apiUrl || !config.publicKey) throw new Error("config.json needs apiUrl and publicKey");
  const apiUrl = new URL(config.apiUrl, location.href);
  const wsUrl = config.wsUrl ? new URL(config.wsUrl, location.href) : new URL(apiUrl);
  if (!config.wsUrl) wsUrl.protocol = apiUrl.protocol === "https:" ? "wss:" : "ws:";
  return {
    ...config,
    apiUrl: apiUrl.href,
    wsUrl: wsUrl.href,
    hotspotAddresses: (config.hotspotAddresses ?? []).map((address) => address.toLowerCase()),
  };
}
