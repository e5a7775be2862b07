// The signed-in token. It lives in sessionStorage only: it is gone when
// the tab closes, is not shared with other tabs, never goes to
// localStorage, a cookie or a URL.

const key = "fleetscan.token";

/** token is the signed-in token, or null. */
export function token(): string | null {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null; // storage disabled: nobody is signed in
  }
}

/** signIn keeps t for this tab. */
export function signIn(t: string): void {
  sessionStorage.setItem(key, t);
}

/** signOut forgets the token. */
export function signOut(): void {
  try {
    sessionStorage.removeItem(key);
  } catch {
    // nothing was stored
  }
}
