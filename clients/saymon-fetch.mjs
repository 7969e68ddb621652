// Seed 003 ("Create Session ID"), fetch variant, run against a gateway: log in, then
// "Get Current User" with `Cookie: sid=<id>`. The seed's placeholders come from the environment:
// SAYMON_URL (e.g. http://127.0.0.1:8000), SAYMON_LOGIN, SAYMON_PASSWORD.
// Prints the login response text, then the current user response text, one per line.

let login = process.env.SAYMON_LOGIN;
let password = process.env.SAYMON_PASSWORD;
let saymonHostname = process.env.SAYMON_URL;
let path = "/node/api/users/session";

let headers = new Headers();
headers.append("Content-Type", "application/json");

let data = JSON.stringify({
  "login": login,
  "password": password
});

let requestOptions = {
  method: "POST",
  headers: headers,
  body: data
};

let result = await fetch(saymonHostname + path, requestOptions)
  .then(response => response.text())
  .catch(error => { console.log("error", error); process.exit(1); });
console.log(result);

// "Session ID in the response body is surrounded by quotation marks": remove them, as S1 warns.
let sessionId = JSON.parse(result);
path = "/node/api/users/current";

headers = new Headers();
headers.append("Cookie", "sid=" + sessionId);

requestOptions = {
  method: "GET",
  headers: headers
};

await fetch(saymonHostname + path, requestOptions)
  .then(response => response.text())
  .then(result => console.log(result))
  .catch(error => { console.log("error", error); process.exit(1); });
