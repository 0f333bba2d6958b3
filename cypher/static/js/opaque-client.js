// Talks to opaque-worker.js: each call is a promise for the worker's answer.

const worker = new Worker(new URL("./opaque-worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 0;

worker.onmessage = ({ data }) => {
  const call = pending.get(data.id);
  pending.delete(data.id);
  if (data.error) call.reject(new Error(data.error));
  else call.resolve(data.result);
};
worker.onerror = (event) => {
  for (const call of pending.values()) call.reject(new Error(event.message || "The OPAQUE worker failed."));
  pending.clear();
};

export function opaqueCall(operation, params) {
  return new Promise((resolve, reject) => {
    const id = ++nextId;
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, operation, params });
  });
}

// The same password typed on another device must give the same bytes.
export function normalisePassword(password) {
  return password.normalize("NFC");
}
