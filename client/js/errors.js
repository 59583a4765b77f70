// The server's error codes (docs/protocol.md, docs/api.md) in plain language, in one place.
import { has, t } from "./i18n.js";

/**
 * A message for people from an error code.
 * @param {string} code the protocol or REST error code
 * @param {{via?: string, retry_after?: number}} context how the person joined, retry time
 */
export function errorMessage(code, context = {}) {
  if (code === "bad_credentials" && context.via === "link") return t("err.bad_credentials.link");
  if (code === "locked_out") {
    const minutes = Math.max(1, Math.ceil((context.retry_after || 300) / 60));
    return t("err.locked_out", { m: minutes });
  }
  // the server has no "too early" code yet; these are the names it may take
  if (code === "not_started" || code === "too_early" || code === "not_open") return t("err.too_early");
  const key = `err.${code}`;
  return has(key) ? t(key) : t("err.generic", { code });
}

/** A message for a failed getUserMedia, by the DOMException's name. */
export function deviceErrorKind(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return window.isSecureContext ? "denied" : "insecure";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") return "notfound";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  if (name === "TypeError" && !navigator.mediaDevices) return "insecure";
  return "denied";
}
