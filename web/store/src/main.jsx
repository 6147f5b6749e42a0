// Start: read the runtime configuration (/config.json, same origin), start the tracker, render the store.
import { render } from "preact";

import clickstream from "../../tracker/src/index.js";
import { App } from "./app.jsx";
import { createAuth } from "./auth.js";
import "./styles.css";

const root = document.getElementById("app");

function fail(message) {
  root.innerHTML = "";
  const p = document.createElement("p");
  p.className = "fatal";
  p.setAttribute("role", "alert");
  p.textContent = message;
  root.append(p);
}

async function start() {
  let config;
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    config = await res.json();
  } catch (e) {
    fail(`The store could not load its configuration (/config.json): ${e.message}`);
    return;
  }
  const auth = createAuth({
    config: { ...config, redirectUri: config.redirectUri || `${location.origin}/auth/callback` },
    fetch: (...args) => fetch(...args),
    storage: localStorage,
    session: sessionStorage,
  });
  try {
    clickstream.init({
      appId: config.appId,
      apiBase: config.apiBase || "",
      region: config.region,
      identityPoolId: config.identityPoolId,
      identityEndpoint: config.identityEndpoint,
      requireConsent: !!config.requireConsent,
      currency: config.currency || "USD",
      getToken: (opts) => auth.getIdToken(opts),
      autoPageView: false, // each route tracks its own page view once rendered
    });
  } catch (e) {
    console.error("analytics disabled:", e.message); // the store works without it
  }
  root.textContent = ""; // the <noscript> note
  render(<App config={config} auth={auth} />, root);
}

start();
