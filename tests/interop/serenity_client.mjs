// Drive Cypher's HTTP API with @serenity-kit/opaque, the browser's OPAQUE library, under Node.
//
//   node tests/interop/serenity_client.mjs <baseUrl> <op> <username> <password> [<op> <username> <password> ...]
//
// <op> is `register` or `login`. The operations run in order against the server and the script
// prints ONE JSON line: {"config": {...}, "results": [{...}, ...]}, one result per operation, for
// tests/test_interop_serenity.py to check. Protocol failures are results, not exceptions; the exit
// status is non-zero only when the script itself cannot run.

// The vendored ESM build, the very file the browser loads (`make install` copies it from npm).
// It sits under our package.json ("type": "module"), so every Node version loads it as ESM.
const libraryUrl = new URL("../../cypher/static/vendor/opaque.js", import.meta.url);
const opaque = await import(libraryUrl.href);

async function postJson(baseUrl, path, body) {
  const response = await fetch(baseUrl + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

function byteLength(base64url) {
  return Buffer.from(base64url, "base64url").length;
}

function summary(response) {
  return { status: response.status, keys: Object.keys(response.body), body: response.body };
}

async function register(baseUrl, config, username, password) {
  const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password });
  const init = await postJson(baseUrl, "/register/init", { username, registrationRequest });
  const result = { op: "register", username, init: summary(init), finish: null };
  if (init.status !== 200) return result;

  const { registrationRecord } = opaque.client.finishRegistration({
    clientRegistrationState,
    registrationResponse: init.body.registrationResponse,
    password,
    identifiers: { client: init.body.username, server: init.body.serverId },
    keyStretching: config.keyStretching,
  });
  result.messageBytes = {
    registrationRequest: byteLength(registrationRequest),
    registrationResponse: byteLength(init.body.registrationResponse),
    registrationRecord: byteLength(registrationRecord),
  };
  const finish = await postJson(baseUrl, "/register/finish", {
    username: init.body.username,
    registrationId: init.body.registrationId,
    registrationRecord,
  });
  result.finish = summary(finish);
  return result;
}

async function login(baseUrl, config, username, password) {
  const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password });
  const init = await postJson(baseUrl, "/login/init", { username, startLoginRequest });
  const result = { op: "login", username, init: summary(init), finishLoginUndefined: null, finish: null };
  if (init.status !== 200) return result;

  const finished = opaque.client.finishLogin({
    clientLoginState,
    loginResponse: init.body.loginResponse,
    password,
    identifiers: { client: init.body.username, server: init.body.serverId },
    keyStretching: config.keyStretching,
  });
  result.finishLoginUndefined = finished === undefined;
  result.messageBytes = { ke1: byteLength(startLoginRequest), ke2: byteLength(init.body.loginResponse) };
  if (finished === undefined) return result; // the client found the password wrong: nothing is sent

  result.messageBytes.ke3 = byteLength(finished.finishLoginRequest);
  result.sessionKeyBytes = byteLength(finished.sessionKey);
  result.exportKeyBytes = byteLength(finished.exportKey);
  const finish = await postJson(baseUrl, "/login/finish", {
    loginId: init.body.loginId,
    finishLoginRequest: finished.finishLoginRequest,
  });
  result.finish = summary(finish);
  result.finish.setCookie = finish.headers.getSetCookie();
  return result;
}

async function main(argv) {
  const [baseUrl, ...operations] = argv;
  if (!baseUrl || operations.length === 0 || operations.length % 3 !== 0) {
    throw new Error("usage: serenity_client.mjs <baseUrl> (register|login <username> <password>)...");
  }
  await opaque.ready;

  const configResponse = await fetch(baseUrl + "/api/opaque-config");
  const config = await configResponse.json();
  const results = [];
  for (let i = 0; i < operations.length; i += 3) {
    const [op, username, password] = operations.slice(i, i + 3);
    if (op === "register") results.push(await register(baseUrl, config, username, password));
    else if (op === "login") results.push(await login(baseUrl, config, username, password));
    else throw new Error(`unknown operation ${JSON.stringify(op)}`);
  }
  return { config: { status: configResponse.status, ...config }, results };
}

console.log(JSON.stringify(await main(process.argv.slice(2))));
