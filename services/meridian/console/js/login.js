// Signing in: the demo people in dev (`meridian dev`), the identity provider (authorisation code
// with PKCE) when one is configured, or a pasted token.

import { api, signIn } from "./api.js";
import { h, page, field, showErrors, failure } from "./ui.js";

let settings = null;

export async function consoleConfig() {
  if (!settings) {
    const response = await fetch("config.json", { headers: { Accept: "application/json" } });
    settings = await response.json();
  }
  return settings;
}

/** The sign-in page; `done` runs once signed in. */
export async function login(done) {
  let config;
  try {
    config = await consoleConfig();
  } catch (e) {
    page("Sign in", failure(e));
    return;
  }
  const parts = [];
  if (config.login === "dev") {
    parts.push(h("section", { class: "card", "aria-labelledby": "dev-login" },
      h("h2", { id: "dev-login" }, "Demo organisation"),
      h("p", { class: "muted" }, "meridian dev: sign in as one of the demo people."),
      h("div", { class: "people" }, config.people.map((p) =>
        h("button", { type: "button", "data-user": p.id, onclick: () => devLogin(p.id, done) },
          h("span", {}, h("strong", {}, p.name), ` (${p.id})`),
          h("span", { class: "roles" }, p.roles.join(", ")))))));
  }
  if (config.login === "oidc") {
    parts.push(h("section", { class: "card" },
      h("h2", {}, "Single sign-on"),
      h("button", { type: "button", class: "primary", onclick: () => oidcStart(config.oidc) }, "Sign in with your organisation")));
  }
  const form = h("form", { class: "stack", novalidate: true },
    field("token", "Access token", { kind: "textarea", hint: "A bearer token the API accepts (JWT)." }),
    h("div", {}, h("button", { class: "primary" }, "Use this token")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = form.elements.token.value.trim();
    try {
      const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      signIn({ token, user: { id: claims.sub, name: claims.name || claims.sub, roles: claims.roles || [] },
        expires_at: claims.exp ? new Date(claims.exp * 1000).toISOString() : null });
    } catch {
      showErrors(form, { fields: { token: "is not a JWT" }, message: "" });
      return;
    }
    done();
  });
  parts.push(h("details", { class: "card" }, h("summary", {}, "Sign in with a token"), form));
  page("Sign in", h("div", { class: "login" }, parts));
}

async function devLogin(user, done) {
  try {
    const answer = await api("POST", "login", { user });
    signIn({ token: answer.token, user: answer.user, expires_at: answer.expires_at });
    done();
  } catch (e) {
    document.getElementById("main").prepend(failure(e));
  }
}

// --- OpenID Connect: authorisation code with PKCE, all in the browser.

function random(bytes = 32) {
  const a = crypto.getRandomValues(new Uint8Array(bytes));
  return base64url(a);
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function discovery(oidc) {
  const response = await fetch(`${oidc.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  return response.json();
}

function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

async function oidcStart(oidc) {
  const meta = await discovery(oidc);
  const verifier = random(48);
  const state = random(16);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  sessionStorage.setItem("meridian.pkce", JSON.stringify({ verifier, state, back: location.hash }));
  const q = new URLSearchParams({
    response_type: "code", client_id: oidc.client_id, redirect_uri: redirectUri(), scope: oidc.scope,
    state, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${meta.authorization_endpoint}?${q}`);
}

/** Completes a sign-in the identity provider sent back (`?code=…&state=…`); true if it did. */
export async function oidcReturn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return false;
  const pending = JSON.parse(sessionStorage.getItem("meridian.pkce") || "null");
  sessionStorage.removeItem("meridian.pkce");
  history.replaceState(null, "", redirectUri() + (pending?.back || "#/inbox"));
  if (params.has("error")) throw new Error(`Sign-in refused: ${params.get("error_description") || params.get("error")}`);
  if (!pending || pending.state !== params.get("state")) throw new Error("Sign-in answer does not match the request (state)");
  const config = await consoleConfig();
  const meta = await discovery(config.oidc);
  const response = await fetch(meta.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
      client_id: config.oidc.client_id, code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok) throw new Error(`Token endpoint: ${tokens.error_description || tokens.error || response.status}`);
  const token = tokens.access_token;
  const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  signIn({ token, user: { id: claims.sub, name: claims.name || claims.preferred_username || claims.sub, roles: claims.roles || [] },
    expires_at: new Date((claims.exp || 0) * 1000).toISOString() });
  return true;
}
