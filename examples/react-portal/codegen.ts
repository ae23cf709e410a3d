import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every operation in src/, from the schema the server exports (`make schema`).
// The output is committed, so `npm run build` needs neither the server nor this step.
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        scalars: { UUID: "string", Decimal: "string", DateTime: "string" },
      },
    },
  },
};

export default config;
