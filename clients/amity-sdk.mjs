// The official Amity TypeScript SDK (@amityco/ts-sdk, as published) against a gateway: create a client pointed at
// the gateway with real-time disabled, log in, renew the access token, log out securely, and report what the SDK
// itself believes at each step. Environment: AMITY_URL (e.g. http://127.0.0.1:8000), AMITY_API_KEY,
// AMITY_USER_ID, AMITY_DISPLAY_NAME, and for a secure network AMITY_AUTH_TOKEN (login) and AMITY_RENEW_AUTH_TOKEN
// (renewal). Prints one JSON document; exits non-zero when a step fails.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { Client, API_REGIONS } = require("@amityco/ts-sdk");

const baseUrl = process.env.AMITY_URL;

// SDK fault, not the server's: from 6.30 every response handler builds `new Request(response.request.url)`, and
// under axios' Node adapter `response.request` is a ClientRequest without `url`. A browser would resolve such a
// request against the page; resolve it against the gateway the same way.
const NodeRequest = globalThis.Request;
globalThis.Request = class extends NodeRequest {
  constructor(input, init = {}) {
    const { body, ...rest } = init;
    super(input ?? baseUrl, rest);
  }
};

function view(client) {
  const token = client.token;
  return {
    sessionState: client.sessionState,
    userId: client.userId ?? null,
    accessToken: token?.accessToken ?? null,
    issuedAt: token?.issuedAt ?? null,
    expiresAt: token?.expiresAt ?? null,
    authorization: client.http.defaults.headers.common.Authorization || null,
  };
}

async function until(predicate, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const report = {};
let exitCode = 0;
try {
  const client = Client.createClient(process.env.AMITY_API_KEY, API_REGIONS.SG, {
    apiEndpoint: { http: baseUrl },
    rteEnabled: false,
  });
  const states = [];
  Client.onSessionStateChange((state) => states.push(state));
  let renewals = 0;
  const sessionHandler = {
    sessionWillRenewAccessToken(renewal) {
      renewals += 1;
      renewal.renew();
    },
  };

  const params = { userId: process.env.AMITY_USER_ID, displayName: process.env.AMITY_DISPLAY_NAME };
  if (process.env.AMITY_AUTH_TOKEN) params.authToken = process.env.AMITY_AUTH_TOKEN;
  report.loggedIn = await Client.login(params, sessionHandler, { disableRTE: true });
  report.afterLogin = { ...view(client), activeUser: Client.getActiveUser() };

  const before = client.token.accessToken;
  const renewal = Client.renewal();
  if (process.env.AMITY_RENEW_AUTH_TOKEN) renewal.renewWithAuthToken(process.env.AMITY_RENEW_AUTH_TOKEN);
  else renewal.renew();
  await until(() => client.token?.accessToken && client.token.accessToken !== before, "the renewed token");
  await until(() => client.sessionState === "established", "the session to be established again");
  report.afterRenewal = view(client);

  report.loggedOut = await Client.secureLogout();
  report.afterLogout = view(client);
  report.states = states;
  report.renewalsAskedBySdk = renewals;
} catch (error) {
  report.error = String(error?.stack ?? error);
  exitCode = 1;
}
console.log(JSON.stringify(report));
// The SDK keeps timers running (marker and analytics engines); the run is over.
process.exit(exitCode);
