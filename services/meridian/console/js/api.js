// The REST API with the signed-in person's token. Errors are RFC 7807 problems.

const KEY = "meridian.session";

/** The session: { token, user: { id, name, roles }, expires_at }, or null. */
export function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (s && s.expires_at && Date.parse(s.expires_at) <= Date.now()) {
      sessionStorage.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function signIn(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** A problem the API answered with: `status`, `title`, `detail`, `code` and `fields` (name → reason). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code || "";
    this.fields = {};
    for (const p of problem["invalid-params"] || []) {
      this.fields[p.name] = p.reason;
    }
  }
}

/** Calls the API; resolves to the JSON body (null when empty); rejects with an ApiError. */
export async function api(method, path, body, headers = {}) {
  const s = session();
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (s) init.headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: "The server cannot be reached", detail: String(e) });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { title: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    if (response.status === 401) {
      signOut();
      window.dispatchEvent(new Event("meridian:signed-out"));
    }
    throw new ApiError(response.status, data || { title: response.statusText });
  }
  return data;
}

/** A query string of the non-empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** An id of the API (UUID) inside a text, such as a conflict's reason. */
export const ID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Adds to `names` (id → name) the CIs named by id in `texts` that it lacks (at most 20). */
export async function nameCis(texts, names) {
  const unknown = new Set(texts.flatMap((t) => String(t).match(ID) || []).filter((id) => !names.has(id)));
  const found = await Promise.all([...unknown].slice(0, 20).map((id) => api("GET", `/v1/cis/${id}`).catch(() => null)));
  for (const ci of found) if (ci) names.set(ci.id, ci.name);
  return names;
}

/** `text` with the ids `names` knows replaced by their names. */
export function named(text, names) {
  return String(text).replace(ID, (id) => names.get(id) || id);
}
