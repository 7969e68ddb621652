// The ISSP dashboard's session flow (seed 001) through tough-cookie, the cookie jar Node HTTP clients use, against
// a gateway: create a session, validate it with POST and with GET, delete it, validate once more. Each response's
// Set-Cookie goes into the jar and each request sends what the jar holds, as a browser does.
// Environment: ISSP_URL (e.g. http://127.0.0.1:8000) and ISSP_USER_ID (a provisioned user id).
// Prints one JSON line per step: {step, status, body, setCookie, stored}, where `stored` is the jar's cookies for
// the URL after the step ({key, value, httpOnly, path, sameSite, expires}).

import { CookieJar } from "tough-cookie";

const base = process.env.ISSP_URL;
const userId = process.env.ISSP_USER_ID;
const jar = new CookieJar();

async function step(name, method, path, body) {
  const url = base + path;
  const headers = {};
  const cookie = await jar.getCookieString(url);
  if (cookie) headers["Cookie"] = cookie;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const setCookie = response.headers.getSetCookie();
  for (const header of setCookie) await jar.setCookie(header, url);
  const stored = (await jar.getCookies(url)).map((c) => ({
    key: c.key,
    value: c.value,
    httpOnly: c.httpOnly,
    path: c.path,
    sameSite: c.sameSite,
    expires: c.expiryTime(),
  }));
  console.log(JSON.stringify({ step: name, status: response.status, body: await response.json(), setCookie, stored }));
}

try {
  await step("create", "POST", "/api/session/createSession", { userID: userId });
  await step("validate", "POST", "/api/session/validateSession");
  await step("validate-get", "GET", "/api/session/validateSession");
  await step("delete", "DELETE", "/api/session/deleteSession");
  await step("validate-after-delete", "POST", "/api/session/validateSession");
} catch (error) {
  console.error(error);
  process.exit(1);
}
