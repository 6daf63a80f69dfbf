// make deploy-ui: reads the stack's outputs (aws cloudformation describe-stacks --query
// 'Stacks[0].Outputs', a JSON array of {OutputKey, OutputValue}) from the file named first and
//   config              prints the UI's config.json (API and WebSocket URLs, Cognito hosted UI)
//   output <OutputKey>  prints one output's value
import { readFileSync } from "node:fs";

const [file, mode, key] = process.argv.slice(2);
const outputs = Object.fromEntries(JSON.parse(readFileSync(file, "utf8")).map((o) => [o.OutputKey, o.OutputValue]));
function need(k) {
  if (!outputs[k]) {
    console.error(`ui-config: the stack has no output ${k}`);
    process.exit(1);
  }
  return outputs[k];
}
if (mode === "output") {
  console.log(need(key));
} else if (mode === "config") {
  const config = { api_url: need("ApiUrl"), ws_url: need("WebSocketUrl"), auth: { mode: "token" } };
  // With the stack's own user pool: the hosted UI (authorization code + PKCE). With an external
  // identity provider (IdpIssuer), users paste a token.
  if (outputs.AuthUrl && outputs.UserPoolClientId) config.auth = { mode: "cognito", domain: outputs.AuthUrl, client_id: outputs.UserPoolClientId };
  console.log(JSON.stringify(config, null, 2));
} else {
  console.error("usage: ui-config.mjs OUTPUTS.json config | output KEY");
  process.exit(2);
}
