import { ApolloProvider } from "@apollo/client/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { createApolloClient } from "./apollo";
import { App } from "./App";
import { loadConfig } from "./config";
import "./portal.css";

const root = createRoot(document.getElementById("root")!);

loadConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <ApolloProvider client={createApolloClient(config)}>
          <App config={config} />
        </ApolloProvider>
      </StrictMode>,
    ),
  (error: unknown) => {
    console.error(error);
    root.render(<p className="errors" role="alert">This page is not set up: {String(error)}</p>);
  },
);
