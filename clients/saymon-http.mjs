// Seed 003 ("Create Session ID"), Node `http` variant, run against a gateway: log in (the body is
// written with req.write() and no Content-Length, so Node sends it chunked), then "Get Current
// User" with `Cookie: sid=<id>`. The seed's placeholders come from the environment: SAYMON_URL
// (e.g. http://127.0.0.1:8000; the seed gives only a hostname, so the port is added here),
// SAYMON_LOGIN, SAYMON_PASSWORD. Prints the login response text, then the current user response
// text, one per line.

import http from "node:http";

let login = process.env.SAYMON_LOGIN;
let password = process.env.SAYMON_PASSWORD;
let target = new URL(process.env.SAYMON_URL);
let saymonHostname = target.hostname;

function send(options, data) {
  return new Promise((resolve, reject) => {
    let req = http.request(options, function (res) {
      let chunks = [];

      res.on("data", function (chunk) {
        chunks.push(chunk);
      });

      res.on("end", function (chunk) {
        let body = Buffer.concat(chunks);
        console.log(body.toString());
        resolve(body.toString());
      });

      res.on("error", function (error) {
        console.error(error);
        reject(error);
      });
    });
    req.on("error", reject);
    if (data !== undefined) {
      req.write(data);
    }
    req.end();
  });
}

let path = "/node/api/users/session";

let options = {
  "method": "POST",
  "hostname": saymonHostname,
  "port": target.port,
  "headers": {
    "Content-Type": "application/json"
  },
  "path": path
};

let data = JSON.stringify({
  login: login,
  password: password
});

let result = await send(options, data);

// "Session ID in the response body is surrounded by quotation marks": remove them, as S1 warns.
let sessionId = JSON.parse(result);
path = "/node/api/users/current";

options = {
  "method": "GET",
  "hostname": saymonHostname,
  "port": target.port,
  "headers": {
    "Cookie": "sid=" + sessionId
  },
  "path": path
};

await send(options);
