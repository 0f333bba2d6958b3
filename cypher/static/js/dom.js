// Small helpers the pages share.

export const USERNAME = /^[A-Za-z0-9._@-]{3,64}$/;

export const $ = (id) => document.getElementById(id);

export function show(element, visible) {
  element.classList.toggle("d-none", !visible);
}

// Put a message in an alert element, or hide it when the message is empty.
export function showError(id, message) {
  $(id).textContent = message;
  show($(id), Boolean(message));
}

// Keep controls disabled while the server asks for a wait (Retry-After), then give them back.
export function holdFor(seconds, ...controls) {
  if (!seconds) return;
  for (const control of controls) control.disabled = true;
  setTimeout(() => {
    for (const control of controls) control.disabled = false;
  }, seconds * 1000);
}

// A TOTP field keeps digits only and submits its form at six: a whole code needs no click.
export function submitAtSixDigits(input, form) {
  input.addEventListener("input", () => {
    input.value = input.value.replace(/\D/g, "").slice(0, 6);
    if (input.value.length === 6) form.requestSubmit();
  });
}

// A time from the API (ISO 8601, UTC) in the reader's own zone and format.
export function when(iso) {
  return new Date(iso).toLocaleString();
}

// Called by each page's module once its handlers are attached: the forms' submit buttons work from
// now on, and the notice that the scripts did not load never shows.
export function pageReady() {
  $("scripts-missing")?.remove();
  for (const control of document.querySelectorAll("[data-await-script]")) control.disabled = false;
}
