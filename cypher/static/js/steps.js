// The live protocol visualisation: each step turns active, then done (with its time) or failed.
// A step that waits for the person (a code to type) shows so, without spinning.

// Screen readers hear each step through the page's polite live region.
function announce(text) {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}

const ICONS = {
  waiting: "bi-circle",
  input: "bi-keyboard",
  active: "bi-arrow-repeat",
  done: "bi-check-circle-fill",
  failed: "bi-x-circle-fill",
};
const SPOKEN = { input: "waiting for you" };

export class Steps {
  constructor(root = document.querySelector("[data-steps]")) {
    this.root = root;
    this.startedAt = new Map();
    // Each step's own description, to come back to once a failure's message is over.
    for (const item of root.querySelectorAll("[data-step]")) {
      item.dataset.message = item.querySelector("[data-step-message]").textContent;
    }
  }

  item(id) {
    return this.root.querySelector(`[data-step="${id}"]`);
  }

  set(id, state, { time, message } = {}) {
    const item = this.item(id);
    item.dataset.state = state;
    const icon = item.querySelector(".step-icon");
    icon.classList.remove(...Object.values(ICONS));
    icon.classList.add(ICONS[state]);
    item.querySelector("[data-step-state]").textContent = SPOKEN[state] ?? state;
    if (time !== undefined) item.querySelector("[data-step-time]").textContent = time;
    item.querySelector("[data-step-message]").textContent = message ?? item.dataset.message;
  }

  reset() {
    for (const item of this.root.querySelectorAll("[data-step]")) {
      this.set(item.dataset.step, "waiting", { time: "" });
    }
  }

  // The step needs the person now (a code to type): nothing is being computed yet.
  awaitInput(id, message) {
    this.set(id, "input", { time: "", message });
  }

  start(id) {
    this.startedAt.set(id, performance.now());
    this.set(id, "active", { time: "" });
    announce(`${this.item(id).querySelector(".step-title").textContent}…`);
  }

  done(id) {
    const elapsed = performance.now() - (this.startedAt.get(id) ?? performance.now());
    this.set(id, "done", { time: `${elapsed < 10 ? elapsed.toFixed(1) : Math.round(elapsed)} ms` });
  }

  fail(id, message) {
    this.set(id, "failed", { message });
    announce(`${this.item(id).querySelector(".step-title").textContent} failed: ${message}`);
  }

  // Run one step's work: active while it runs, then done or failed where it failed.
  async run(id, work) {
    this.start(id);
    try {
      const result = await work();
      this.done(id);
      return result;
    } catch (error) {
      this.fail(id, error.message);
      throw error;
    }
  }
}
