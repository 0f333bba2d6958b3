// OPAQUE's client side in a Web Worker: Argon2id (64 MiB) runs here, so the page never freezes.
// The password arrives by postMessage and never leaves the browser.
import * as opaque from "../vendor/opaque.js";

// Listen at once: a message that arrived while the WebAssembly was still loading would be lost.
const loaded = opaque.ready;

const operations = {
  startRegistration: ({ password }) => opaque.client.startRegistration({ password }),
  finishRegistration: (params) => opaque.client.finishRegistration(params),
  startLogin: ({ password }) => opaque.client.startLogin({ password }),
  // undefined when the server's answer does not fit the password: wrong password or unknown user
  finishLogin: (params) => opaque.client.finishLogin(params) ?? null,
};

self.onmessage = async ({ data: { id, operation, params } }) => {
  try {
    await loaded;
    self.postMessage({ id, result: await operations[operation](params) });
  } catch (error) {
    self.postMessage({ id, error: String(error?.message ?? error) });
  }
};
