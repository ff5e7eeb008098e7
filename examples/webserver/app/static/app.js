// The login page of examples/webserver. It talks to weblogin's endpoints with JSON fetches from
// the same origin; it never sees a token: once the login is approved, the server holds the
// tokens in its session and the page only asks the server what it needs.
"use strict";

const $ = (id) => document.getElementById(id);

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await r.json(); } catch (e) { /* empty body */ }
  return { status: r.status, data, retryAfter: r.headers.get("Retry-After") };
}

function showError(msg) { $("error").textContent = msg || ""; }

// countdown shows the seconds left until expiresIn runs out; it returns a stop function.
function countdown(el, bar, expiresIn) {
  const end = Date.now() + expiresIn * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((end - Date.now()) / 1000));
    el.textContent = left + " s left";
    if (bar) { bar.max = expiresIn; bar.value = left; }
  };
  tick();
  const t = setInterval(tick, 1000);
  return () => clearInterval(t);
}

// waitFor polls a status endpoint until the login ends; the server holds each request for a
// while (long poll), so the page asks again at once, but at most once a second: the server
// answers at once when two status requests of this login already wait (another tab).
async function waitFor(flow, loginId, state) {
  for (;;) {
    if (state.cancelled) return null;
    const asked = Date.now();
    const r = await post("/auth/" + flow + "/status", { loginId });
    if (r.status === 202) {
      const wait = 1000 - (Date.now() - asked); // at most one request a second
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
      continue;
    }
    if (r.status === 200) return r.data;
    if (r.status === 503 && r.retryAfter) {
      await new Promise((ok) => setTimeout(ok, Number(r.retryAfter) * 1000));
      continue;
    }
    throw new Error(r.data.error_description || r.data.error || ("status " + r.status));
  }
}

let current = null; // { flow, loginId, state, stop }

async function run(flow, body, onStart) {
  showError("");
  const r = await post("/auth/" + flow + "/start", body);
  if (r.status !== 200) {
    showError(r.data.error_description || r.data.error || ("status " + r.status));
    return;
  }
  const state = { cancelled: false };
  const stop = onStart(r.data);
  current = { flow, loginId: r.data.loginId, state, stop };
  try {
    const done = await waitFor(flow, r.data.loginId, state);
    if (done) await signedIn();
  } catch (e) {
    showError(e.message);
  } finally {
    stop();
    reset();
  }
}

function reset() {
  current = null;
  $("ciba-progress").hidden = true;
  $("ciba-form").hidden = false;
  $("qr-progress").hidden = true;
  $("qr-start").hidden = false;
}

async function cancel() {
  if (!current) return;
  current.state.cancelled = true;
  await post("/auth/" + current.flow + "/cancel", { loginId: current.loginId });
}

async function signedIn() {
  const r = await fetch("/app/me", { credentials: "same-origin" });
  if (r.status !== 200) { $("signed-in").hidden = true; $("signed-out").hidden = false; return; }
  const me = await r.json();
  $("who").textContent = me.name || me.subject;
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
}

$("ciba-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  run("ciba", { userIdentifier: $("user").value, loginHintKind: "login_hint" }, (d) => {
    $("ciba-form").hidden = true;
    $("ciba-code").textContent = d.bindingCode;
    $("ciba-progress").hidden = false;
    return countdown($("ciba-countdown"), $("ciba-bar"), d.expiresIn);
  });
});
$("ciba-cancel").addEventListener("click", cancel);

$("qr-start").addEventListener("click", () => {
  run("qr", {}, (d) => {
    $("qr-start").hidden = true;
    // The SVG comes from the server; as an image it cannot run script.
    $("qr-image").src = "data:image/svg+xml;base64," + btoa(d.qrSvg);
    $("qr-code").textContent = d.bindingCode;
    $("qr-progress").hidden = false;
    return countdown($("qr-countdown"), null, d.expiresIn);
  });
});
$("qr-cancel").addEventListener("click", cancel);

$("call-api").addEventListener("click", async () => {
  const r = await fetch("/app/me", { credentials: "same-origin" });
  $("api-result").textContent = JSON.stringify((await r.json()).api, null, 2);
});

$("logout").addEventListener("click", async () => {
  await post("/app/logout", {});
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  $("api-result").textContent = "";
});

signedIn();
