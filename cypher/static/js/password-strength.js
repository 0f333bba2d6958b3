// Password quality is the browser's job (the server never sees the password): zxcvbn-ts with its
// dictionaries of common and leaked passwords. At least 10 characters and a score of 3.
import { ZxcvbnFactory } from "../vendor/zxcvbn-ts/core/index.mjs";
import * as common from "../vendor/zxcvbn-ts/language-common/index.mjs";
import * as english from "../vendor/zxcvbn-ts/language-en/index.mjs";

export const MIN_LENGTH = 10;
export const MAX_LENGTH = 128;
export const MIN_SCORE = 3;
const LABELS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];
const COLOURS = ["bg-danger", "bg-danger", "bg-warning", "bg-success", "bg-success"];

const zxcvbn = new ZxcvbnFactory({
  dictionary: { ...common.dictionary, ...english.dictionary },
  graphs: common.adjacencyGraphs,
  translations: english.translations,
});

export function assess(password, userInputs = []) {
  const result = zxcvbn.check(password, userInputs);
  const feedback = [result.feedback.warning, ...result.feedback.suggestions].filter(Boolean).join(" ");
  return { score: result.score, label: LABELS[result.score], feedback };
}

// The refusal for a password, or null when it may be used.
export function problemWith(password, userInputs = []) {
  if (password.length < MIN_LENGTH) return `Use at least ${MIN_LENGTH} characters.`;
  if (password.length > MAX_LENGTH) return `Use at most ${MAX_LENGTH} characters.`;
  const { score, feedback } = assess(password, userInputs);
  if (score < MIN_SCORE) return `This password is too easy to guess. ${feedback}`.trim();
  return null;
}

// Keep a strength meter (#strength-fill, #strength-bar, #strength-feedback) up to date.
export function attachMeter(input, userInputs = () => []) {
  const fill = document.getElementById("strength-fill");
  const bar = document.getElementById("strength-bar");
  const text = document.getElementById("strength-feedback");
  input.addEventListener("input", () => {
    const password = input.value.normalize("NFC");
    if (!password) {
      fill.className = "progress-bar";
      fill.style.width = "0%";
      bar.setAttribute("aria-valuenow", "0");
      text.textContent = "";
      return;
    }
    const { score, label, feedback } = assess(password, userInputs());
    fill.className = `progress-bar ${COLOURS[score]}`;
    fill.style.width = `${(score + 1) * 20}%`;  // CSSOM, which the CSP allows
    bar.setAttribute("aria-valuenow", String(score));
    text.textContent = `${label}. ${feedback}`.trim();
  });
}
