// The console's shell: sign-in, navigation, and the route table (#/path).

import { session, signOut } from "./api.js";
import { h, page, failure, status, takeFlash } from "./ui.js";
import { login, oidcReturn } from "./login.js";
import { inbox, task } from "./inbox.js";
import { list, detail, create } from "./desk.js";
import { cis, ci } from "./cmdb.js";
import { calendar } from "./calendar.js";
import { serviceLevels, evidence } from "./dashboards.js";

const ROUTES = [
  [/^#\/inbox$/, () => inbox()],
  [/^#\/tasks\/([\w-]+)$/, (id) => task(id)],
  [/^#\/(incidents|requests|problems)$/, (kind) => list(kind)],
  [/^#\/(incidents|requests|problems)\/new$/, (kind) => create(kind)],
  [/^#\/(incidents|requests|problems)\/([\w-]+)$/, (kind, id) => detail(kind, id)],
  [/^#\/cis$/, () => cis()],
  [/^#\/cis\/([\w.:-]+)$/, (id) => ci(id)],
  [/^#\/calendar$/, () => calendar()],
  [/^#\/service-levels$/, () => serviceLevels()],
  [/^#\/evidence$/, () => evidence()],
];

function who() {
  const s = session();
  const box = document.getElementById("who");
  if (!s) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    h("span", { title: (s.user.roles || []).join(", ") }, s.user.name || s.user.id),
    h("button", { type: "button", onclick: () => { signOut(); route(); } }, "Sign out"));
}

function highlight(hash) {
  for (const a of document.querySelectorAll("#nav a")) {
    const here = hash.startsWith(a.getAttribute("href"));
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

/** Renders the page of the address; `moved` (a navigation, not the first load) puts the focus
 * on the new content, so a screen reader starts there. */
async function route(moved = false) {
  status(takeFlash());
  who();
  if (!session()) {
    await login(() => {
      who();
      route();
    });
    return;
  }
  const hash = location.hash && location.hash !== "#/" ? location.hash.split("?")[0] : "#/inbox";
  if (hash !== location.hash.split("?")[0]) {
    history.replaceState(null, "", hash);
  }
  highlight(hash);
  document.getElementById("nav").classList.remove("open");
  for (const [pattern, view] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      try {
        await view(...m.slice(1).map(decodeURIComponent));
      } catch (e) {
        page("Something went wrong", failure(e));
      }
      if (moved) document.getElementById("main").focus({ preventScroll: true });
      return;
    }
  }
  page("Not found", h("p", {}, "No such page. ", h("a", { href: "#/inbox" }, "Go to the approvals inbox.")));
}

async function start() {
  const menu = document.querySelector(".menu");
  menu.addEventListener("click", () => {
    const nav = document.getElementById("nav");
    const open = nav.classList.toggle("open");
    menu.setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("hashchange", () => route(true));
  window.addEventListener("meridian:signed-out", () => route());
  try {
    await oidcReturn();
  } catch (e) {
    page("Sign in", failure(e));
    return;
  }
  await route();
}

start();
