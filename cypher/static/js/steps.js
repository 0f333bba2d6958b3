// The live protocol visualisation: each step turns active, then done (with its time) or failed.

// Screen readers hear each step through the page's polite live region.
function announce(text) {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}

const ICONS = { waiting: "bi-circle", active: "bi-arrow-repeat", done: "bi-check-circle-fill", failed: "bi-x-circle-fill" };

export class Steps {
  constructor(root = document.querySelector("[data-steps]")) {
    this.root = root;
    this.startedAt = new Map();
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
    item.querySelector("[data-step-state]").textContent = state;
    if (time !== undefined) item.querySelector("[data-step-time]").textContent = time;
    if (message) item.querySelector("[data-step-message]").textContent = message;
  }

  reset() {
    for (const item of this.root.querySelectorAll("[data-step]")) {
      this.set(item.dataset.step, "waiting", { time: "" });
    }
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
