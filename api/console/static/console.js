// The console's only script (no library): keeps each [data-poll] fragment current by short
// polling our own server, and sends the [data-action] buttons' POSTs with the CSRF token.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const flash = (text, isError) => {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.className = isError ? "error" : "ok";
};
const toLogin = () => {
  window.location.assign("/console/login?next=" + encodeURIComponent(location.pathname + location.search));
};

async function refresh(element) {
  // A hidden tab does not poll: a forgotten console costs Redis nothing.
  if (document.hidden) return;
  const response = await fetch(element.dataset.poll, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) return toLogin();
  if (!response.ok) return;
  const html = await response.text();
  // Keep focus and an open <details> where they were across the swap.
  const open = [...element.querySelectorAll("details[open]")].map((d) => d.id || d.textContent.slice(0, 40));
  element.innerHTML = html;
  element.querySelectorAll("details").forEach((d) => {
    if (open.includes(d.id || d.textContent.slice(0, 40))) d.open = true;
  });
}

function refreshAll() {
  document.querySelectorAll("[data-poll]").forEach((element) => refresh(element).catch(() => {}));
}

async function act(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const response = await fetch(button.dataset.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/json" },
      body: "{}",
    });
    if (response.status === 401) return toLogin();
    const body = await response.json().catch(() => ({}));
    flash(body.detail || response.statusText, !response.ok);
    if (response.ok && body.redirect) return window.location.assign(body.redirect);
  } catch (error) {
    flash("The server did not answer: " + error, true);
  } finally {
    button.disabled = false;
  }
  refreshAll();
}

async function logout() {
  await fetch("/console/logout", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf() },
  }).catch(() => {});
  window.location.assign("/console/login");
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) return void act(button);
  if (event.target.closest("button[data-logout]")) logout();
});

document.querySelectorAll("[data-poll]").forEach((element) => {
  const every = Number(element.dataset.everyMs) || 3000;
  setInterval(() => refresh(element).catch(() => {}), every);
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshAll();
});
