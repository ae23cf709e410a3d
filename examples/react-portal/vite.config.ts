import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` forwards /graphql/ (HTTP and WebSocket) to a local `make run`, so the dev server is
// same-origin with the API; a production build calls the apiUrl of its config.json directly.
const api = process.env.CLOUDPILOT_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  // Relative asset URLs: the build works from any folder (a CDN path, a router's hotspot directory).
  base: "./",
  server: {
    proxy: {
      "/graphql/": { target: api, ws: true, changeOrigin: true },
      "/simulator/": { target: api, changeOrigin: true },
    },
  },
});
