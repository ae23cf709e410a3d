import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import type { ResolvedConfig } from "./config";

/** Queries and mutations over HTTP, subscriptions over graphql-ws, both with the operator's public key. */
export function createApolloClient(config: ResolvedConfig): ApolloClient {
  const http = new HttpLink({ uri: config.apiUrl, headers: { "X-Public-Key": config.publicKey } });
  const ws = new GraphQLWsLink(
    createClient({
      url: config.wsUrl,
      // Browsers cannot set headers on a WebSocket: the key travels in connection_init.
      connectionParams: { "X-Public-Key": config.publicKey },
      // A blocked socket must fail fast, so the portal falls back to polling instead of retrying.
      retryAttempts: 0,
      connectionAckWaitTimeout: 5000,
    }),
  );
  const isSubscription = ({ query }: ApolloLink.Operation) => {
    const definition = getMainDefinition(query);
    return definition.kind === "OperationDefinition" && definition.operation === "subscription";
  };
  return new ApolloClient({ link: ApolloLink.split(isSubscription, ws, http), cache: new InMemoryCache() });
}
