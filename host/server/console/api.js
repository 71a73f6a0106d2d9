// api.js -- every call the console makes: the token from sessionStorage as a
// bearer header, no cookies, nothing cached. A 401 means the token is wrong
// (or the host made a new one): the caller asks for it again.

const KEY = "paste-host.token";

/** The host refused the token (401), or there is none yet. */
export class Refused extends Error {}

export const token = () => sessionStorage.getItem(KEY);
export const setToken = (t) => sessionStorage.setItem(KEY, t);
export const clearToken = () => sessionStorage.removeItem(KEY);

/**
 * call -- fetch an admin path with the token; resolves with the status and the
 * parsed JSON body (null if it is not JSON); throws Refused on 401 and on no token.
 */
export async function call(path, init = {}) {
  const t = token();
  if (!t) throw new Refused("no token");
  const res = await fetch(path, {
    ...init, cache: "no-store", credentials: "omit",
    headers: { ...init.headers, Authorization: `Bearer ${t}` },
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text };
  }
  if (res.status === 401) throw new Refused(body?.message ?? "the host refused the token");
  return { status: res.status, ok: res.ok, body };
}
