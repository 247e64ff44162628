// The HTTP API of `movierec serve`, with paths relative to the page.

export class ApiError extends Error {}

/** GET or POST JSON; a non-2xx answer becomes an ApiError with the server's message. */
export async function api(path, { body, signal } = {}) {
  const init = body === undefined ? { signal } : {
    method: "POST", signal, body: JSON.stringify(body), headers: { "content-type": "application/json" },
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const detail = data && data.detail;
    const text = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : `HTTP ${res.status}`;
    throw new ApiError(text);
  }
  return data;
}

/** The list in an answer, whichever key holds it. */
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const k of keys) if (data && Array.isArray(data[k])) return data[k];
  return [];
}

export const isAbort = (e) => e && e.name === "AbortError";
