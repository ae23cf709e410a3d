// Starts GraphiQL on GET /graphql/. A file rather than an inline script, so the page's
// Content-Security-Policy can be `script-src 'self'`; everything it loads comes from this server.
(function () {
  "use strict";

  const WELCOME = `# CloudPilot GraphQL API
#
# Put credentials in the Headers tab below, as JSON:
#   operator: {"Authorization": "Bearer <tokenAuth's accessToken>"}
#   portal:   {"X-Public-Key": "<the operator's 32-hex public key>"}
# They go as HTTP headers; subscriptions run over a WebSocket, which
# cannot carry headers, and send the same two in connection_init.
#
# Run: Ctrl-Enter. Complete: Ctrl-Space. Docs, Explorer: on the left.

query Packages($routerId: ID!) {
  packages(routerId: $routerId) {
    id
    name
    price
  }
}
`;

  // Header names the server reads credentials from (matched case-insensitively, as over HTTP).
  const CREDENTIAL_HEADERS = ["authorization", "x-public-key"];

  const container = document.getElementById("graphiql");
  const endpoint = new URL(container.dataset.endpoint, window.location.href);
  endpoint.search = "";
  endpoint.hash = "";
  const socketEndpoint = new URL(endpoint.href);
  socketEndpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  const httpFetcher = GraphiQL.createFetcher({ url: endpoint.href });

  function isSubscription(params, options) {
    const document = options && options.documentAST;
    const operation = document && GraphiQL.GraphQL.getOperationAST(document, params.operationName || undefined);
    return Boolean(operation) && operation.operation === "subscription";
  }

  function credentialsFrom(headers) {
    const credentials = {};
    for (const [name, value] of Object.entries(headers || {})) {
      if (CREDENTIAL_HEADERS.includes(name.toLowerCase())) {
        credentials[name] = value;
      }
    }
    return credentials;
  }

  function describeSocketError(error) {
    // A refused socket ends with a close event (4403 for bad credentials), not a GraphQL error.
    if (error && typeof error.code === "number" && "reason" in error) {
      return new Error(`The WebSocket closed: ${error.code} ${error.reason || ""}`.trim());
    }
    return error;
  }

  // One socket per subscription, opened with the headers the editor holds when it starts, so
  // switching credentials takes effect on the next run. GraphiQL's own subscriptionUrl option would
  // put every header in the payload and retry a refused socket five times before saying why.
  function subscribeOverWebSocket(params, headers) {
    return {
      subscribe(sink) {
        const client = graphqlWs.createClient({
          url: socketEndpoint.href,
          connectionParams: credentialsFrom(headers),
          retryAttempts: 0,
        });
        const unsubscribe = client.subscribe(params, {
          next: (result) => sink.next(result),
          error: (error) => {
            client.dispose();
            sink.error(describeSocketError(error));
          },
          complete: () => {
            client.dispose();
            sink.complete();
          },
        });
        return {
          unsubscribe() {
            unsubscribe();
            client.dispose();
          },
        };
      },
    };
  }

  function fetcher(params, options) {
    if (isSubscription(params, options)) {
      return subscribeOverWebSocket(params, options.headers);
    }
    return httpFetcher(params, options);
  }

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: WELCOME,
      // Empty rather than a {"X-Public-Key": ""} placeholder: whatever the editor holds is sent with
      // every request, schema introspection included, and an empty key is a refused credential.
      // The welcome text above says what to put here. Headers are not persisted (GraphiQL's
      // default), so no bearer token outlives the tab in localStorage.
      defaultHeaders: "",
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    }),
  );
})();
